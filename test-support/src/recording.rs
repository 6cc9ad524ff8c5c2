//! [`RecordingSecretStore`]: a real secret store that also remembers every one-time secret put
//! into it, so tests can see a stored hash (only the hash: answers stay unrecoverable without
//! the key).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auth_core::{NewSecret, OnMismatch, SecretCheck, SecretStore, StoreError, TokenHash};
use chrono::{DateTime, Utc};

/// Delegates to `inner` and records `put_secret` calls.
pub struct RecordingSecretStore {
    inner: Arc<dyn SecretStore>,
    secrets: Mutex<Vec<NewSecret>>,
}

impl RecordingSecretStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SecretStore>) -> Self {
        Self { inner, secrets: Mutex::new(Vec::new()) }
    }

    /// The last secret stored under `purpose` and `key`.
    pub fn secret(&self, purpose: &str, key: &str) -> Option<NewSecret> {
        self.secrets.lock().unwrap().iter().rev().find(|s| s.purpose == purpose && s.key == key).cloned()
    }
}

#[async_trait]
impl SecretStore for RecordingSecretStore {
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
    async fn purge_expired_secrets(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.purge_expired_secrets(now).await
    }
}
