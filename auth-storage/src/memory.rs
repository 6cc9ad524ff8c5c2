//! [`MemoryStore`]: users, tokens and rate limits in process memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::RwLock;
use std::time::Duration;

use auth_core::mfa::{self, ChallengeOutcome, ChallengePurpose, FactorUse, MfaChallenge, MfaStore, TotpFactor};
use auth_core::rotation::{self, RotationState, RotationStep};
use auth_core::{
    async_trait, AuditEvent, AuditQuery, AuditStore, MemoryRateLimiter, NewSecret, NewSession, NewUser, OnMismatch,
    RateLimitDecision, RateLimiter, RotationOutcome, RotationRequest, SecretCheck, SecretStore, Session, SessionStore,
    StoreError, TokenHash, User, UserQuery, UserRecord, UserStore, UserUpdate,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Users, sessions, one-time secrets and rate-limit counters in memory, for tests, development and
/// single-process deployments that accept losing everything on restart.
///
/// Every operation takes one lock, so each is atomic. Expired sessions and secrets are dropped
/// lazily when touched.
#[derive(Debug, Default)]
pub struct MemoryStore {
    users: RwLock<Users>,
    tokens: RwLock<Tokens>,
    /// The audit log, by id (UUID v7: time order).
    audit: RwLock<BTreeMap<Uuid, AuditEvent>>,
    /// Rate limiting: [`MemoryRateLimiter`]'s exact sliding-window log per key.
    limits: MemoryRateLimiter,
    /// Second factors and login challenges.
    mfa: RwLock<Mfa>,
}

#[derive(Debug, Default)]
struct Mfa {
    /// User → factor and the keyed hashes of its unused recovery codes.
    factors: HashMap<Uuid, (TotpFactor, HashSet<TokenHash>)>,
    challenges: HashMap<TokenHash, MfaChallenge>,
}

impl Mfa {
    /// [`MfaStore::use_factor`] under the lock: the decision is [`mfa::accepts`].
    fn apply(&mut self, user_id: Uuid, factor_use: FactorUse) -> bool {
        let Some((factor, codes)) = self.factors.get_mut(&user_id) else { return false };
        let has_code = matches!(&factor_use, FactorUse::RecoveryCode(code) if codes.contains(code));
        if !mfa::accepts(Some(factor), &factor_use, has_code) {
            return false;
        }
        match factor_use {
            FactorUse::TotpStep(step) => factor.last_used_step = Some(step),
            FactorUse::RecoveryCode(code) => {
                codes.remove(&code);
            }
            FactorUse::Confirm { step, recovery_codes, at, .. } => {
                factor.confirmed_at = Some(at);
                factor.last_used_step = Some(step);
                *codes = recovery_codes.into_iter().collect();
            }
            _ => return false,
        }
        factor.recovery_codes_left = u32::try_from(codes.len()).unwrap_or(u32::MAX);
        true
    }
}

#[derive(Debug, Default)]
struct Users {
    by_id: HashMap<Uuid, UserRecord>,
    by_username: HashMap<String, Uuid>,
    by_email: HashMap<String, Uuid>,
}

#[derive(Debug, Default)]
struct Tokens {
    sessions: HashMap<Uuid, Session>,
    /// Refresh-token hash → (session, spent at).
    refresh: HashMap<TokenHash, (Uuid, Option<DateTime<Utc>>)>,
    secrets: HashMap<(String, String), Secret>,
}

#[derive(Debug)]
struct Secret {
    hash: TokenHash,
    expires_at: DateTime<Utc>,
    attempts: u32,
    max_attempts: u32,
}

fn key(s: &str) -> String {
    auth_core::validate::identifier_key(s)
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::backend("memory store lock poisoned by a panic")
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn users_read(&self) -> Result<std::sync::RwLockReadGuard<'_, Users>, StoreError> {
        self.users.read().map_err(poisoned)
    }
    fn users_write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Users>, StoreError> {
        self.users.write().map_err(poisoned)
    }
    fn tokens_read(&self) -> Result<std::sync::RwLockReadGuard<'_, Tokens>, StoreError> {
        self.tokens.read().map_err(poisoned)
    }
    fn tokens_write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Tokens>, StoreError> {
        self.tokens.write().map_err(poisoned)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let mut users = self.users_write()?;
        let username = new.username.as_deref().map(key);
        let email = new.email.as_deref().map(key);
        if username.as_ref().is_some_and(|u| users.by_username.contains_key(u)) {
            return Err(StoreError::UsernameTaken);
        }
        if email.as_ref().is_some_and(|e| users.by_email.contains_key(e)) {
            return Err(StoreError::EmailTaken);
        }
        let user = new.to_user();
        if let Some(u) = username {
            users.by_username.insert(u, user.id);
        }
        if let Some(e) = email {
            users.by_email.insert(e, user.id);
        }
        let record = UserRecord { user: user.clone(), password_hash: new.password_hash, pending_email: None };
        users.by_id.insert(user.id, record);
        Ok(user)
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.users_read()?.by_id.get(&id).cloned())
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let users = self.users_read()?;
        Ok(users.by_username.get(&key(username)).and_then(|id| users.by_id.get(id)).cloned())
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let users = self.users_read()?;
        Ok(users.by_email.get(&key(email)).and_then(|id| users.by_id.get(id)).cloned())
    }

    async fn update_user(&self, id: Uuid, update: UserUpdate, at: DateTime<Utc>) -> Result<Option<User>, StoreError> {
        let mut guard = self.users_write()?;
        let users = &mut *guard;
        let Some(record) = users.by_id.get(&id) else { return Ok(None) };
        let others = users.by_id.values().map(|r| &r.user);
        if !update.preconditions_hold(record, others) {
            return Ok(None);
        }
        let (old_username, old_email) =
            (record.user.username.as_deref().map(key), record.user.email.as_deref().map(key));
        let new_username = update.username.as_deref().map(key).filter(|k| Some(k) != old_username.as_ref());
        let new_email = update.email.as_deref().map(key).filter(|k| Some(k) != old_email.as_ref());
        if new_username.as_ref().is_some_and(|k| users.by_username.contains_key(k)) {
            return Err(StoreError::UsernameTaken);
        }
        if new_email.as_ref().is_some_and(|k| users.by_email.contains_key(k)) {
            return Err(StoreError::EmailTaken);
        }
        if let Some(k) = new_username {
            old_username.map(|old| users.by_username.remove(&old));
            users.by_username.insert(k, id);
        }
        if let Some(k) = new_email {
            old_email.map(|old| users.by_email.remove(&old));
            users.by_email.insert(k, id);
        }
        let record = users.by_id.get_mut(&id).expect("checked above");
        update.apply(record, at);
        Ok(Some(record.user.clone()))
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
        let users = self.users_read()?;
        let mut page: Vec<&User> = users.by_id.values().map(|r| &r.user).filter(|u| query.matches(u)).collect();
        page.sort_by_key(|u| u.id);
        Ok(page.into_iter().take(query.limit as usize).cloned().collect())
    }

    async fn delete_user(&self, id: Uuid, keep_an_admin: bool) -> Result<bool, StoreError> {
        let mut users = self.users_write()?;
        let Some(record) = users.by_id.get(&id) else { return Ok(false) };
        if keep_an_admin
            && record.user.is_active_admin()
            && !users.by_id.values().any(|r| r.user.id != id && r.user.is_active_admin())
        {
            return Ok(false);
        }
        let record = users.by_id.remove(&id).expect("checked above");
        let mut mfa = self.mfa.write().map_err(poisoned)?;
        mfa.factors.remove(&id);
        mfa.challenges.retain(|_, c| c.user_id != id);
        if let Some(k) = record.user.username.as_deref().map(key) {
            users.by_username.remove(&k);
        }
        if let Some(k) = record.user.email.as_deref().map(key) {
            users.by_email.remove(&k);
        }
        Ok(true)
    }
}

#[async_trait]
impl MfaStore for MemoryStore {
    async fn totp_factor(&self, user_id: Uuid) -> Result<Option<TotpFactor>, StoreError> {
        Ok(self.mfa.read().map_err(poisoned)?.factors.get(&user_id).map(|(f, _)| f.clone()))
    }

    async fn put_pending_totp(&self, factor: TotpFactor) -> Result<bool, StoreError> {
        let mut mfa = self.mfa.write().map_err(poisoned)?;
        if mfa.factors.get(&factor.user_id).is_some_and(|(f, _)| f.is_active()) {
            return Ok(false);
        }
        mfa.factors.insert(factor.user_id, (factor, HashSet::new()));
        Ok(true)
    }

    async fn use_factor(&self, user_id: Uuid, factor_use: FactorUse) -> Result<bool, StoreError> {
        Ok(self.mfa.write().map_err(poisoned)?.apply(user_id, factor_use))
    }

    async fn replace_recovery_codes(&self, user_id: Uuid, new: Vec<TokenHash>) -> Result<bool, StoreError> {
        let mut mfa = self.mfa.write().map_err(poisoned)?;
        match mfa.factors.get_mut(&user_id) {
            Some((factor, codes)) if factor.is_active() => {
                *codes = new.into_iter().collect();
                factor.recovery_codes_left = u32::try_from(codes.len()).unwrap_or(u32::MAX);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn reseal_totp(&self, user_id: Uuid, current: &[u8], sealed: Vec<u8>) -> Result<bool, StoreError> {
        let mut mfa = self.mfa.write().map_err(poisoned)?;
        match mfa.factors.get_mut(&user_id) {
            Some((factor, _)) if factor.sealed_secret == current => {
                factor.sealed_secret = sealed;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_totp(&self, user_id: Uuid) -> Result<bool, StoreError> {
        let mut mfa = self.mfa.write().map_err(poisoned)?;
        mfa.challenges.retain(|_, c| c.user_id != user_id);
        Ok(mfa.factors.remove(&user_id).is_some())
    }

    async fn create_challenge(&self, challenge: MfaChallenge) -> Result<(), StoreError> {
        self.mfa.write().map_err(poisoned)?.challenges.insert(challenge.token_hash, challenge);
        Ok(())
    }

    async fn challenge(
        &self,
        token_hash: &TokenHash,
        purpose: ChallengePurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let mfa = self.mfa.read().map_err(poisoned)?;
        Ok(mfa.challenges.get(token_hash).filter(|c| mfa::challenge_is_live(c, purpose, now)).cloned())
    }

    async fn redeem_challenge(
        &self,
        token_hash: &TokenHash,
        purpose: ChallengePurpose,
        factor_use: FactorUse,
        now: DateTime<Utc>,
    ) -> Result<ChallengeOutcome, StoreError> {
        let mut mfa = self.mfa.write().map_err(poisoned)?;
        let Some(challenge) =
            mfa.challenges.get(token_hash).filter(|c| mfa::challenge_is_live(c, purpose, now)).cloned()
        else {
            return Ok(ChallengeOutcome::Dead);
        };
        if mfa.apply(challenge.user_id, factor_use) {
            mfa.challenges.remove(token_hash);
            return Ok(ChallengeOutcome::Redeemed(challenge));
        }
        let stored = mfa.challenges.get_mut(token_hash).expect("read above under the same lock");
        stored.attempts += 1;
        Ok(ChallengeOutcome::Rejected { attempts_left: mfa::CHALLENGE_MAX_ATTEMPTS.saturating_sub(stored.attempts) })
    }

    async fn purge_expired_mfa(&self, now: DateTime<Utc>, pending_before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut mfa = self.mfa.write().map_err(poisoned)?;
        let before = mfa.challenges.len() + mfa.factors.len();
        mfa.challenges.retain(|_, c| c.expires_at > now);
        mfa.factors.retain(|_, (f, _)| f.is_active() || f.created_at >= pending_before);
        Ok((before - mfa.challenges.len() - mfa.factors.len()) as u64)
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.audit.write().map_err(poisoned)?.insert(event.id, event);
        Ok(())
    }

    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        let audit = self.audit.read().map_err(poisoned)?;
        Ok(audit.values().rev().filter(|e| query.matches(e)).take(query.limit as usize).cloned().collect())
    }

    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut audit = self.audit.write().map_err(poisoned)?;
        let count = audit.len();
        audit.retain(|_, e| e.at >= before);
        Ok((count - audit.len()) as u64)
    }

    async fn forget_user_audit(&self, user_id: Uuid) -> Result<u64, StoreError> {
        let mut audit = self.audit.write().map_err(poisoned)?;
        let count = audit.len();
        audit.retain(|_, e| e.user_id != Some(user_id));
        Ok((count - audit.len()) as u64)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, new: NewSession) -> Result<(), StoreError> {
        let mut tokens = self.tokens_write()?;
        tokens.refresh.insert(new.refresh_token_hash, (new.session.id, None));
        tokens.sessions.insert(new.session.id, new.session);
        Ok(())
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        Ok(self.tokens_read()?.sessions.get(&id).cloned())
    }

    async fn live_session_expiry(
        &self,
        id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let tokens = self.tokens_read()?;
        Ok(tokens.sessions.get(&id).filter(|s| s.user_id == user_id && s.is_live(now)).map(|s| s.expires_at))
    }

    async fn rotate_refresh_token(&self, r: RotationRequest) -> Result<RotationOutcome, StoreError> {
        let mut guard = self.tokens_write()?;
        let tokens = &mut *guard;
        let Some(&(session_id, spent_at)) = tokens.refresh.get(&r.presented) else {
            return Ok(RotationOutcome::Unknown);
        };
        let Some(session) = tokens.sessions.get_mut(&session_id) else {
            return Ok(RotationOutcome::Unknown);
        };
        let successor_current =
            r.successor.is_some_and(|successor| tokens.refresh.get(&successor) == Some(&(session_id, None)));
        let step = rotation::decide(Some(RotationState { session, spent_at, successor_current }), &r);
        match (step, r.successor) {
            (RotationStep::Rotate, Some(successor)) => {
                tokens.refresh.insert(r.presented, (session_id, Some(r.now)));
                tokens.refresh.insert(successor, (session_id, None));
                session.last_used_at = r.now;
            }
            (RotationStep::Rotate | RotationStep::Keep, _) => session.last_used_at = r.now,
            (RotationStep::Revoke, _) => {
                session.revoked_at.get_or_insert(r.now);
            }
            (RotationStep::Grace | RotationStep::Unknown, _) => {}
        }
        Ok(step.outcome(session.clone(), r.now))
    }

    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tokens = self.tokens_write()?;
        Ok(match tokens.sessions.get_mut(&id) {
            Some(s) if s.revoked_at.is_none() => {
                s.revoked_at = Some(at);
                true
            }
            _ => false,
        })
    }

    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tokens = self.tokens_write()?;
        let mut count = 0;
        for s in tokens.sessions.values_mut() {
            if s.user_id == user_id && s.revoked_at.is_none() && Some(s.id) != except {
                s.revoked_at = Some(at);
                count += 1;
            }
        }
        Ok(count)
    }

    async fn delete_user_sessions(&self, user_id: Uuid, _at: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut guard = self.tokens_write()?;
        let tokens = &mut *guard;
        let before = tokens.sessions.len();
        tokens.sessions.retain(|_, s| s.user_id != user_id);
        let sessions = &tokens.sessions;
        tokens.refresh.retain(|_, (session_id, _)| sessions.contains_key(session_id));
        Ok((before - tokens.sessions.len()) as u64)
    }

    async fn user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let tokens = self.tokens_read()?;
        let mut list: Vec<Session> =
            tokens.sessions.values().filter(|s| s.user_id == user_id && s.is_live(now)).cloned().collect();
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(list)
    }

    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut guard = self.tokens_write()?;
        let tokens = &mut *guard;
        let before = tokens.sessions.len();
        tokens.sessions.retain(|_, s| s.is_live(now));
        let sessions = &tokens.sessions;
        tokens.refresh.retain(|_, (session_id, _)| sessions.contains_key(session_id));
        Ok((before - tokens.sessions.len()) as u64)
    }
}

#[async_trait]
impl SecretStore for MemoryStore {
    async fn put_secret(&self, new: NewSecret, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tokens = self.tokens_write()?;
        let entry = tokens.secrets.entry((new.purpose, new.key));
        let attempts = match &entry {
            std::collections::hash_map::Entry::Occupied(e) if e.get().expires_at > now => e.get().attempts,
            _ => 0,
        };
        let secret = Secret { hash: new.hash, expires_at: new.expires_at, attempts, max_attempts: new.max_attempts };
        entry.insert_entry(secret);
        Ok(())
    }

    async fn take_secret(
        &self,
        purpose: &str,
        key: &str,
        candidate: &TokenHash,
        on_mismatch: OnMismatch,
        now: DateTime<Utc>,
    ) -> Result<SecretCheck, StoreError> {
        let mut tokens = self.tokens_write()?;
        let id = (purpose.to_owned(), key.to_owned());
        let Some(secret) = tokens.secrets.get_mut(&id) else {
            return Ok(SecretCheck::Missing);
        };
        let expired = secret.expires_at <= now;
        let (check, keep) = crate::secret::judge(
            Some(secret.hash),
            expired,
            secret.attempts,
            secret.max_attempts,
            candidate,
            on_mismatch,
        );
        if keep {
            secret.attempts += 1;
        } else {
            tokens.secrets.remove(&id);
        }
        Ok(check)
    }

    async fn purge_expired_secrets(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tokens = self.tokens_write()?;
        let before = tokens.secrets.len();
        tokens.secrets.retain(|_, secret| secret.expires_at > now);
        Ok((before - tokens.secrets.len()) as u64)
    }
}

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError> {
        self.limits.check(key, limit, window).await
    }

    async fn peek(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError> {
        self.limits.peek(key, limit, window).await
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.limits.reset(key).await
    }
}
