//! [`RecordingTokenStore`]: a real token store that also remembers every one-time secret put
//! into it, so tests can see a stored hash (only the hash: answers stay unrecoverable without
//! the key).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auth_core::{
    NewSecret, NewSession, OnMismatch, RefreshRotation, Rotation, SecretCheck, Session, StoreError, TokenHash,
    TokenStore,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Delegates to `inner` and records `put_secret` calls.
pub struct RecordingTokenStore {
    inner: Arc<dyn TokenStore>,
    secrets: Mutex<Vec<NewSecret>>,
}

impl RecordingTokenStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn TokenStore>) -> Self {
        Self { inner, secrets: Mutex::new(Vec::new()) }
    }

    /// The last secret stored under `purpose` and `key`.
    pub fn secret(&self, purpose: &str, key: &str) -> Option<NewSecret> {
        self.secrets.lock().unwrap().iter().rev().find(|s| s.purpose == purpose && s.key == key).cloned()
    }
}

#[async_trait]
impl TokenStore for RecordingTokenStore {
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        self.inner.create_session(session).await
    }
    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        self.inner.session(id).await
    }
    async fn rotate_refresh_token(&self, rotation: RefreshRotation) -> Result<Rotation, StoreError> {
        self.inner.rotate_refresh_token(rotation).await
    }
    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.inner.revoke_session(id, at).await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.inner.revoke_user_sessions(user_id, except, at).await
    }
    async fn user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        self.inner.user_sessions(user_id, now).await
    }
    async fn put_secret(&self, secret: NewSecret, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.secrets.lock().unwrap().push(secret.clone());
        self.inner.put_secret(secret, now).await
    }
    async fn take_secret(
        &self,
        purpose: &str,
        key: &str,
        candidate: &TokenHash,
        on_mismatch: OnMismatch,
        now: DateTime<Utc>,
    ) -> Result<SecretCheck, StoreError> {
        self.inner.take_secret(purpose, key, candidate, on_mismatch, now).await
    }
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.purge_expired(now).await
    }
}
