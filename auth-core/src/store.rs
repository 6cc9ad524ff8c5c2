//! The store traits, named after what they keep: [`UserStore`], [`SessionStore`],
//! [`SecretStore`] and [`RateLimiter`], and the types they trade.
//!
//! All four are object-safe (`async-trait`), so a host holds `Arc<dyn SessionStore>` and can mix
//! backends: users in SQL, sessions, secrets and limits in Redis; a backend implements only the
//! traits it is good at. Every method is atomic on its own; the
//! service never needs a transaction spanning two calls. `auth-storage` ships memory, SQLite,
//! PostgreSQL and Redis implementations and a conformance suite that runs against each.
//!
//! # Implementing a store
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::{Duration, Instant};
//! use auth_core::{async_trait, RateLimiter, RateLimitDecision, StoreError};
//!
//! /// Counts hits per key in fixed windows, for one process (coarser than a sliding window:
//! /// up to twice the limit can pass around a window boundary).
//! #[derive(Default)]
//! struct FixedWindow(Mutex<HashMap<String, (Instant, u32)>>);
//!
//! impl FixedWindow {
//!     fn decide(&self, key: &str, limit: u32, window: Duration, count: bool) -> RateLimitDecision {
//!         let now = Instant::now();
//!         let mut map = self.0.lock().unwrap();
//!         let entry = map.entry(key.to_owned()).or_insert((now, 0));
//!         if now.duration_since(entry.0) >= window {
//!             *entry = (now, 0);
//!         }
//!         if entry.1 >= limit {
//!             let retry = window - now.duration_since(entry.0);
//!             return RateLimitDecision::Limited { retry_after_seconds: retry.as_secs().max(1) };
//!         }
//!         entry.1 += u32::from(count);
//!         RateLimitDecision::Allowed { remaining: limit - entry.1 }
//!     }
//! }
//!
//! #[async_trait]
//! impl RateLimiter for FixedWindow {
//!     async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError> {
//!         Ok(self.decide(key, limit, window, true))
//!     }
//!
//!     async fn peek(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError> {
//!         Ok(self.decide(key, limit, window, false))
//!     }
//!
//!     async fn reset(&self, key: &str) -> Result<(), StoreError> {
//!         self.0.lock().unwrap().remove(key);
//!         Ok(())
//!     }
//! }
//! ```

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::secret::TokenHash;
use crate::user::{NewUser, User, UserQuery, UserRecord, UserUpdate};

/// Users: unique usernames and emails, lookups, partial updates.
///
/// Usernames and emails are compared by their [`identifier_key`](crate::validate::identifier_key)
/// (NFKC + Unicode case folding), computed in Rust and kept by the backend, never by a database's
/// own `lower()`, so every backend agrees on which identifiers are the same.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a user. Uniqueness of username and email, compared by `identifier_key`, must be
    /// enforced atomically by the backend (a unique index, not a read-then-write), so that of
    /// concurrent registrations of one name exactly one succeeds.
    ///
    /// # Errors
    /// [`StoreError::UsernameTaken`] / [`StoreError::EmailTaken`] on a conflict,
    /// [`StoreError::Backend`] when the backend fails.
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;

    /// The user with this id.
    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;

    /// The user whose username has the same `identifier_key` as `username`.
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;

    /// The user whose email has the same `identifier_key` as `email`.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Applies `update` and sets `updated_at = at`, atomically and only if the update's
    /// preconditions ([`UserUpdate::if_password_hash`], [`UserUpdate::if_status`],
    /// [`UserUpdate::if_an_admin_remains`]) hold; returns the updated user, or `None` when no
    /// user has this id or a precondition failed (then nothing changed).
    ///
    /// # Errors
    /// [`StoreError::UsernameTaken`] / [`StoreError::EmailTaken`] when a new username or email
    /// is another user's (nothing changed), [`StoreError::Backend`].
    async fn update_user(&self, id: Uuid, update: UserUpdate, at: DateTime<Utc>) -> Result<Option<User>, StoreError>;

    /// Users passing `query`'s filters in id order (UUID v7: creation order), at most
    /// `query.limit`, for admin screens. Keyset-paged (`query.after`), so a page costs the same at
    /// any depth; SQL backends answer the prefix filter from B-tree indexes on the identifier
    /// keys.
    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, StoreError>;

    /// Deletes the user; with `keep_an_admin`, only if the user is not an active admin or another
    /// active admin remains (checked under the same lock as
    /// [`UserUpdate::if_an_admin_remains`]). Returns whether a user was deleted. The username
    /// and email are free again at once.
    async fn delete_user(&self, id: Uuid, keep_an_admin: bool) -> Result<bool, StoreError>;
}

/// A login session: one per successful login, carrying a chain of rotating refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session id, carried as `sid` in access tokens.
    pub id: Uuid,
    /// Whose session it is.
    pub user_id: Uuid,
    /// When the session was created (the login).
    pub created_at: DateTime<Utc>,
    /// When a refresh token of the session was last used (or the login).
    pub last_used_at: DateTime<Utc>,
    /// Absolute end of the session (the refresh-token lifetime from login).
    pub expires_at: DateTime<Utc>,
    /// Client IP at login, as text.
    pub ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// How the user proved who they were when the session was created. Refreshes continue the
    /// session and keep it.
    pub auth_method: AuthMethod,
    /// When the session was revoked (logout, password change, reuse detection), if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// How a user authenticated to start a [`Session`], recorded on it (`auth_method` in the
/// stores: `password`, `email_code`, `external`, `password_otp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A password: `POST /login`, or registration with a password. Sessions stored before the
    /// method was recorded read as this.
    #[default]
    Password,
    /// A one-time code or link mailed to the account's address (email OTP, magic link).
    EmailCode,
    /// An identity the host verified its own way (an OAuth 2.0 / OpenID Connect provider, SSO,
    /// a passkey library) and handed to [`Auth::issue_session`](crate::Auth::issue_session).
    External,
    /// A password and then a second factor (a TOTP code or a recovery code): `POST /login/mfa`,
    /// or confirming an enrollment the role required. Stored `password_otp`.
    PasswordAndOtp,
}

impl AuthMethod {
    /// The stored name: `password`, `email_code`, `external` or `password_otp`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::EmailCode => "email_code",
            Self::External => "external",
            Self::PasswordAndOtp => "password_otp",
        }
    }

    /// The method of a stored name; `None` for a name this version does not know.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Password, Self::EmailCode, Self::External, Self::PasswordAndOtp].into_iter().find(|m| m.as_str() == name)
    }

    /// The `amr` values (RFC 8176) of a session made this way, as access tokens carry them:
    /// `["pwd"]`, `["otp"]` (a mailed one-time code), `["pwd","otp"]`; none for
    /// [`External`](Self::External), whose method only the host knows.
    #[must_use]
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            Self::EmailCode => &["otp"],
            Self::External => &[],
            Self::PasswordAndOtp => &["pwd", "otp"],
        }
    }

    /// Whether the session was made with two factors (what step-up accepts).
    #[must_use]
    pub fn is_multi_factor(self) -> bool {
        self == Self::PasswordAndOtp
    }
}

impl Session {
    /// Whether access tokens of this session are accepted at `now`: not revoked and not past
    /// `expires_at`.
    #[must_use]
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    /// Whether a refresh token of this session may be used at `now`: live, and used within the
    /// last `idle_timeout`.
    #[must_use]
    pub fn is_refreshable(&self, now: DateTime<Utc>, idle_timeout: TimeDelta) -> bool {
        self.is_live(now) && self.last_used_at + idle_timeout > now
    }
}

/// What [`SessionStore::create_session`] inserts: the session and its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session (with `revoked_at: None`).
    pub session: Session,
    /// SHA-256 of the first refresh token.
    pub refresh_token_hash: TokenHash,
}

/// One refresh-token rotation request. See [`SessionStore::rotate_refresh_token`].
#[derive(Debug, Clone, Copy)]
pub struct RotationRequest {
    /// SHA-256 of the refresh token the client presented.
    pub presented: TokenHash,
    /// SHA-256 of its successor. The successor is a deterministic function of the presented
    /// token (an HMAC under a server key), so a retry within the grace window yields the same one.
    /// `None` when rotation is off ([`AuthConfig::refresh_rotation`](crate::AuthConfig::refresh_rotation)):
    /// the presented token stays current.
    pub successor: Option<TokenHash>,
    /// The current time.
    pub now: DateTime<Utc>,
    /// How long after its rotation a spent token still answers with its successor.
    pub reuse_grace: TimeDelta,
    /// A session whose refresh tokens went unused this long is dead.
    pub idle_timeout: TimeDelta,
}

/// The outcome of [`SessionStore::rotate_refresh_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationOutcome {
    /// The presented token was current: it is now spent and the successor is current.
    Rotated(Session),
    /// Rotation is off (no successor) and the presented token was current: it stays current and
    /// the session's `last_used_at` is now.
    Kept(Session),
    /// The presented token was spent less than `reuse_grace` ago and its successor is still
    /// unspent: nothing changed, the caller may hand out the successor again.
    Grace(Session),
    /// The presented token was spent earlier than that (or its successor was spent too): the
    /// session has been revoked.
    Reused(Session),
    /// No live session has this token (unknown, expired, idle, or already revoked).
    Unknown,
}

/// How [`SecretStore::take_secret`] treats a wrong candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMismatch {
    /// Spend the secret on the first attempt, right or wrong (captcha answers).
    Spend,
    /// Count the failure; the secret dies when its attempts reach `max_attempts` (email codes).
    CountAttempt,
}

/// A one-time secret to keep: a captcha answer, an email code or a reset token, by hash only.
#[derive(Debug, Clone)]
pub struct NewSecret {
    /// What the secret is for, e.g. `captcha`, `email_code:register`, `reset_token`.
    pub purpose: String,
    /// The lookup key within the purpose: a captcha id, an email address, a token hash in hex.
    pub key: String,
    /// The hash of the secret.
    pub hash: TokenHash,
    /// When the secret stops being valid.
    pub expires_at: DateTime<Utc>,
    /// Wrong attempts after which the secret is dead.
    pub max_attempts: u32,
}

/// The outcome of [`SecretStore::take_secret`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretCheck {
    /// The candidate matched; the secret is now spent.
    Valid,
    /// The candidate did not match; `attempts_left` more tries remain (0: the secret is dead).
    Invalid {
        /// Remaining attempts.
        attempts_left: u32,
    },
    /// No such secret: never stored, expired, spent, or out of attempts.
    Missing,
}

/// Login sessions with their rotating refresh tokens: created at login, checked on every
/// authenticated request, rotated on refresh, revoked on logout.
///
/// Only hashes of refresh tokens are ever passed to a store.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session and its first refresh token.
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;

    /// The session with this id, live or not; `None` if unknown (or purged).
    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError>;

    /// Whether session `id` exists, belongs to `user_id` and [is live](Session::is_live) at
    /// `now`: the check behind every authenticated request. The default asks
    /// [`live_session_expiry`](Self::live_session_expiry).
    async fn session_is_live(&self, id: Uuid, user_id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.live_session_expiry(id, user_id, now).await?.is_some())
    }

    /// When session `id` expires (`expires_at`), if it exists, belongs to `user_id` and
    /// [is live](Session::is_live) at `now`; `None` otherwise. What a session cache remembers.
    /// The default reads the whole session; backends override it with a read of the three
    /// fields it needs, which also spares them decoding fields a newer version may have written.
    async fn live_session_expiry(
        &self,
        id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.session(id).await?.filter(|s| s.user_id == user_id && s.is_live(now)).map(|s| s.expires_at))
    }

    /// Atomically rotates a refresh token, implementing rotation with reuse detection:
    ///
    /// - presented token current and its session refreshable at `now` → mark it spent at `now`,
    ///   make `successor` current, set `last_used_at = now` → [`RotationOutcome::Rotated`]; with
    ///   no `successor` (rotation off) only set `last_used_at = now` → [`RotationOutcome::Kept`];
    /// - presented token spent at most `reuse_grace` ago and `successor` still current →
    ///   [`RotationOutcome::Grace`], nothing changes;
    /// - presented token spent otherwise, session still live → revoke the session at `now` →
    ///   [`RotationOutcome::Reused`];
    /// - anything else (unknown token, revoked, expired or idle session) → [`RotationOutcome::Unknown`].
    ///
    /// Of concurrent calls with one current token exactly one gets `Rotated`.
    ///
    /// The rule is [`rotation::decide`](crate::rotation::decide): read the presented token's
    /// state under a lock, decide, carry out the step in the same transaction.
    async fn rotate_refresh_token(&self, rotation: RotationRequest) -> Result<RotationOutcome, StoreError>;

    /// Revokes one session at `at`; `false` if it was unknown or already revoked.
    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Revokes every live session of `user_id` except `except`; returns how many were revoked.
    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Revokes (as [`revoke_user_sessions`](Self::revoke_user_sessions), so session caches of
    /// every instance hear of it) and then deletes every session of `user_id` with its refresh
    /// tokens, live or not: the account is being deleted. Returns how many sessions went.
    async fn delete_user_sessions(&self, user_id: Uuid, at: DateTime<Utc>) -> Result<u64, StoreError>;

    /// The user's sessions that are live at `now`, newest first.
    async fn user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError>;

    /// Deletes the sessions that can no longer be used at `now` (revoked, or past `expires_at`)
    /// with all their refresh tokens; returns how many sessions went. Hosts call it periodically
    /// (through [`Auth::purge_expired`](crate::Auth::purge_expired); the example server: hourly);
    /// backends with native expiry (Redis TTLs) may do nothing.
    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// One-time secrets with a TTL and an attempt cap, by hash only: captcha answers, mailed codes,
/// reset tokens.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Stores a one-time secret under (`purpose`, `key`). A secret already there and unexpired at
    /// `now` is replaced but keeps its failed-attempt count (so re-sending a code does not reset
    /// the cap); an expired one starts over at zero.
    async fn put_secret(&self, secret: NewSecret, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// Atomically checks `candidate` against the secret under (`purpose`, `key`) at `now`:
    /// a match spends it; a mismatch spends it or counts an attempt, per `on_mismatch`.
    /// Of concurrent calls with the right candidate exactly one gets [`SecretCheck::Valid`].
    async fn take_secret(
        &self,
        purpose: &str,
        key: &str,
        candidate: &TokenHash,
        on_mismatch: OnMismatch,
        now: DateTime<Utc>,
    ) -> Result<SecretCheck, StoreError>;

    /// Deletes the secrets expired at `now`; returns how many went. Hosts call it periodically
    /// (through [`Auth::purge_expired`](crate::Auth::purge_expired)); backends with native expiry
    /// (Redis TTLs) may do nothing.
    async fn purge_expired_secrets(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The decision of a [`RateLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitDecision {
    /// The hit was counted and is within the limit.
    Allowed {
        /// Hits left in the current window.
        remaining: u32,
    },
    /// Over the limit; the hit was not counted.
    Limited {
        /// Whole seconds (≥ 1) until a hit would be allowed again.
        retry_after_seconds: u64,
    },
}

/// Counts hits per key: at most `limit` within any `window` (a sliding window). Atomic, and
/// shared across instances for shared backends (Redis).
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one hit for `key` unless that would exceed `limit` within `window`; a refused hit
    /// is not counted.
    async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError>;

    /// What [`check`](Self::check) would decide, counting nothing (is an account locked out?).
    async fn peek(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError>;

    /// Forgets `key`'s hits (a successful login clears its failure count).
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
}
