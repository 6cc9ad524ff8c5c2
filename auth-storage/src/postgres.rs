//! [`PostgresStore`]: users and tokens in PostgreSQL, via `sqlx`.

use std::time::Duration;

use auth_core::{async_trait, StoreError};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use uuid::Uuid;

use crate::cache::{Revocation, RevocationFeed, RevocationSubscription};

/// Connection settings for [`PostgresStore::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// Most pooled connections (default 10).
    pub max_connections: u32,
    /// How long to wait for a pooled connection or a new connection (default 5 s); past it the
    /// request fails with `store_unavailable` instead of hanging.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: Duration::from_secs(5) }
    }
}

/// Users, sessions and one-time secrets in PostgreSQL: the store for several server instances.
///
/// Migrations run on connect under sqlx's advisory lock, so instances starting together do not
/// race. Tables are prefixed `auth_`. Usernames and emails are unique through unique indexes on
/// their [`identifier_key`](auth_core::validate::identifier_key) (NFKC + case folding, computed in
/// Rust and stored beside them, not PostgreSQL's `lower()`, which disagrees with Rust and SQLite
/// on non-ASCII text), so concurrent registrations of one name cannot both succeed. Every query binds
/// its parameters. A database that goes away gives `store_unavailable`; the pool reconnects by
/// itself when it is back.
///
/// Cancellation-safe: an operation that spans several statements (`create_session`,
/// `rotate_refresh_token`, `take_secret`) runs in a task of its own until it commits or rolls back,
/// even if the request awaiting it is dropped (a client disconnecting), so no pooled connection is
/// ever left inside a transaction.
///
/// Our migrations share sqlx's `_sqlx_migrations` table: a host running its own sqlx migrations
/// on the same database should set `ignore_missing` on its migrator (ours does), or give auth
/// its own database.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use auth_core::{Auth, AuthConfig};
/// use auth_storage::PostgresStore;
///
/// let store = Arc::new(PostgresStore::connect("postgres://auth@localhost/app").await?);
/// let auth = Auth::builder(AuthConfig::new(vec![7u8; 32])?).stores(store).build()?;
/// # let _ = auth; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The same pool: PostgreSQL's writers do not wait by sleeping (the SQL code is shared
    /// with SQLite, whose writes have a connection of their own).
    writer: PgPool,
}

fn db_err(err: sqlx::Error) -> StoreError {
    StoreError::backend(err)
}

const USER_COLUMNS: &str = "id, username, email, email_verified, password_hash, role, status, \
                            preferences::text AS preferences, metadata::text AS metadata, created_at, updated_at, \
                            last_login_at, pending_email";

fn unique_violation(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        match db.constraint() {
            Some("auth_users_username_key") => return StoreError::UsernameTaken,
            Some("auth_users_email_key") => return StoreError::EmailTaken,
            _ => {}
        }
    }
    db_err(err)
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host:5432/db`) with [`PostgresOptions::default`]
    /// and runs the embedded migrations.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database is unreachable or a migration fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit options.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database is unreachable or a migration fails.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await
            .map_err(db_err)?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (the host's own database) and runs the migrations on it.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a migration fails.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await.map_err(StoreError::backend)?;
        Ok(Self { writer: pool.clone(), pool })
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The revocations a trigger on `auth_sessions.revoked_at` announces with `NOTIFY` on channel
    /// `auth_sessions_revoked`, and the user changes triggers on `auth_users` announce on the
    /// same channel (`user:<id>`), for a [`CachedSessionStore`](crate::CachedSessionStore) or a
    /// [`CachedUserStore`](crate::CachedUserStore) over this store. Each subscription is a
    /// `LISTEN` connection of its own, outside the pool.
    #[must_use]
    pub fn revocations(&self) -> PostgresRevocations {
        PostgresRevocations { pool: self.pool.clone() }
    }
}

/// The channel the migrations' trigger announces revoked session ids on.
const REVOKED_CHANNEL: &str = "auth_sessions_revoked";

/// The revocations a [`PostgresStore`] announces, for a
/// [`CachedSessionStore`](crate::CachedSessionStore); from [`PostgresStore::revocations`].
///
/// The ping asks the listening connection whether it is still listening
/// (`pg_listening_channels()`): PostgreSQL delivers the notifications of every transaction that
/// committed before the ping ahead of its answer, and a connection that answers without
/// listening (a transaction-mode pooler such as PgBouncer between us and PostgreSQL) fails the
/// ping, so the cache is never trusted there. Connect to PostgreSQL directly or through a
/// session-mode pooler.
#[derive(Debug, Clone)]
pub struct PostgresRevocations {
    pool: PgPool,
}

/// A subscription of [`PostgresRevocations`].
pub struct PostgresRevocationSubscription {
    listener: PgListener,
}

impl std::fmt::Debug for PostgresRevocationSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRevocationSubscription").finish_non_exhaustive()
    }
}

#[async_trait]
impl RevocationFeed for PostgresRevocations {
    type Subscription = PostgresRevocationSubscription;

    async fn subscribe(&self) -> Result<Self::Subscription, StoreError> {
        // A pool of one, so the listening connection is not taken from the store's pool.
        let options = (*self.pool.connect_options()).clone().application_name("auth-storage revocations");
        let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await.map_err(db_err)?;
        let mut listener = PgListener::connect_with(&pool).await.map_err(db_err)?;
        // A lost connection ends the subscription (the cache empties itself) instead of being
        // replaced silently, which would miss what was announced in between.
        listener.eager_reconnect(false);
        listener.listen(REVOKED_CHANNEL).await.map_err(db_err)?;
        Ok(PostgresRevocationSubscription { listener })
    }
}

/// A payload of the migrations' triggers: a session id, `user:` and a user id, or `all`.
fn notification(notification: &sqlx::postgres::PgNotification) -> Revocation {
    let payload = notification.payload();
    match payload.strip_prefix("user:") {
        Some(user) => Uuid::parse_str(user).map_or(Revocation::Unreadable, |id| Revocation::Users(vec![id])),
        None => Uuid::parse_str(payload).map_or(Revocation::Unreadable, |id| Revocation::Sessions(vec![id])),
    }
}

fn connection_closed() -> StoreError {
    StoreError::backend(std::io::Error::from(std::io::ErrorKind::ConnectionAborted))
}

#[async_trait]
impl RevocationSubscription for PostgresRevocationSubscription {
    async fn next(&mut self) -> Result<Revocation, StoreError> {
        match self.listener.try_recv().await.map_err(db_err)? {
            Some(n) => Ok(notification(&n)),
            None => Err(connection_closed()),
        }
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        let listening: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_listening_channels() AS c WHERE c = $1")
            .bind(REVOKED_CHANNEL)
            .fetch_optional(&mut self.listener)
            .await
            .map_err(db_err)?;
        match listening {
            Some(_) => Ok(()),
            None => Err(StoreError::backend(std::io::Error::other(format!(
                "the revocation connection is not listening on {REVOKED_CHANNEL} (a transaction-mode pooler?)"
            )))),
        }
    }

    fn buffered(&mut self) -> Option<Result<Revocation, StoreError>> {
        self.listener.next_buffered().map(|n| Ok(notification(&n)))
    }
}

/// Times are `timestamptz`.
type Time = DateTime<Utc>;
/// Ids are `uuid`.
type Id = Uuid;
/// Attempt counters are `INTEGER` (`int4`).
type Count = i32;

/// Unused: rotations are one call ([`ROTATE_IN_ONE_CALL`]), which takes this lock itself. Kept
/// for the shared multi-statement path: the row lock, then a read in a statement of its own, so
/// (READ COMMITTED) it sees what a concurrent rotation that held the lock committed.
const LOCK_REFRESH_TOKEN: Option<&str> = Some("SELECT 1 FROM auth_refresh_tokens WHERE token_hash = $1 FOR UPDATE");
const BEGIN_ROTATION: &str = "BEGIN";

/// Taken before a last-admin check: the row locks of every active admin, so two guarded changes
/// decide one after the other and the second (a statement of its own) sees the first's commit.
const LOCK_ADMINS: &str = "SELECT id FROM auth_users WHERE role = 'admin' AND status = 'active' ORDER BY id FOR UPDATE";

/// Prefix ranges compare bytes, to match the `COLLATE "C"` indexes.
const BYTE_ORDER: &str = " COLLATE \"C\"";

fn ts(t: DateTime<Utc>) -> Time {
    t
}

#[allow(clippy::unnecessary_wraps)] // The SQLite twin can fail.
fn from_ts(t: Time) -> Result<DateTime<Utc>, StoreError> {
    Ok(t)
}

fn db_id(id: Uuid) -> Id {
    id
}

#[allow(clippy::unnecessary_wraps)] // The SQLite twin can fail.
fn from_db_id(id: Id) -> Result<Uuid, StoreError> {
    Ok(id)
}

fn db_count(n: u32) -> Count {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Preferences and metadata are `jsonb`; a NULL-able text parameter needs its type named.
const JSON_PARAM: &str = "::jsonb";
const TEXT_PARAM: &str = "::text";

/// Taken before a second factor's state is read: the row lock, so concurrent uses of one factor
/// decide one after the other.
const LOCK_MFA_FACTOR: &str = "SELECT 1 FROM auth_mfa_totp WHERE user_id = $1 FOR UPDATE";

/// Taken before a login challenge is read (as [`LOCK_MFA_FACTOR`]).
const LOCK_MFA_CHALLENGE: &str = "SELECT 1 FROM auth_mfa_challenges WHERE token_hash = $1 FOR UPDATE";

/// A whole rotation in one round trip: `auth_rotate_refresh_token` (migration
/// `20261206000001_rotate_refresh_token.sql`) locks the presented token, decides by the rule of
/// `auth_core::rotation::decide` mirrored in PL/pgSQL (as the Redis backend mirrors it in Lua;
/// the conformance suite holds every backend to the same cases), carries the step out and
/// answers it with the session as read. Arguments: presented hash, successor hash (NULL: rotation
/// off), now, reuse grace and idle timeout in milliseconds.
const ROTATE_IN_ONE_CALL: Option<&str> = Some("SELECT * FROM auth_rotate_refresh_token($1, $2, $3, $4, $5)");

/// No change log: announcements go out by `NOTIFY`.
const PURGE_CHANGE_LOG: Option<(&str, i64)> = None;

crate::sql::sql_stores!(PostgresStore, PgPool, sqlx::PgConnection, sqlx::postgres::PgRow);
crate::sql_mfa::sql_mfa_store!(PostgresStore, PgPool, sqlx::PgConnection, sqlx::postgres::PgRow);
