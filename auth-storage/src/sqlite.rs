//! [`SqliteStore`]: auth_users and tokens in one SQLite file, via `sqlx`.

use std::str::FromStr;
use std::time::Duration;

use auth_core::{async_trait, StoreError};

use crate::cache::{Revocation, RevocationFeed, RevocationSubscription};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use uuid::Uuid;

/// Connection settings for [`SqliteStore::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Most pooled connections for reads (default 8): readers run in parallel in WAL mode.
    /// Writes go through one more connection of their own, so this process's writers queue in
    /// memory instead of contending for SQLite's write lock (which waits by sleeping).
    pub max_connections: u32,
    /// How long a writer waits for the database lock before failing (default 5 s).
    pub busy_timeout: Duration,
    /// How long to wait for a pooled connection (default 5 s).
    pub acquire_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self { max_connections: 8, busy_timeout: Duration::from_secs(5), acquire_timeout: Duration::from_secs(5) }
    }
}

/// Users, auth_sessions and one-time secrets in SQLite: the embedded default (one file, nothing to
/// install). WAL journal, `synchronous = NORMAL`, foreign keys on. Migrations run on connect.
///
/// Usernames and emails are unique through unique indexes on their
/// [`identifier_key`](auth_core::validate::identifier_key) (NFKC + case folding, computed in Rust
/// and stored beside them), so concurrent registrations of one name cannot both succeed.
///
/// Cancellation-safe: an operation that spans several statements (`create_session`,
/// `rotate_refresh_token`, `take_secret`) runs in a task of its own until it commits or rolls back,
/// even if the request awaiting it is dropped (a client disconnecting), so no pooled connection is
/// ever left inside a transaction.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use auth_core::{Auth, AuthConfig};
/// use auth_storage::SqliteStore;
///
/// let store = Arc::new(SqliteStore::connect("sqlite://auth.db").await?); // created if missing
/// let auth = Auth::builder(AuthConfig::new(vec![7u8; 32])?).stores(store).build()?;
/// # let _ = auth; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// Writes and transactions: one connection (the same pool as `pool` for an in-memory
    /// database or a host's pool).
    writer: SqlitePool,
}

fn db_err(err: sqlx::Error) -> StoreError {
    StoreError::backend(err)
}

fn ts(t: DateTime<Utc>) -> Time {
    t.timestamp()
}

fn from_ts(secs: Time) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| StoreError::Corrupt(format!("timestamp {secs} out of range")))
}

const USER_COLUMNS: &str = "id, username, email, email_verified, password_hash, role, status, preferences, \
                            metadata, created_at, updated_at, last_login_at, pending_email";

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/auth.db`, or
    /// `sqlite::memory:`) with [`SqliteOptions::default`], and runs the embedded migrations.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or a migration fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, SqliteOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit options.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or a migration fails.
    pub async fn connect_with(url: &str, options: SqliteOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(db_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        // An in-memory database exists per connection: keep exactly one.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = |max: u32| {
            SqlitePoolOptions::new()
                .max_connections(if in_memory { 1 } else { max })
                .min_connections(usize::from(in_memory) as u32)
                .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
                .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(1800)) })
                .acquire_timeout(options.acquire_timeout)
        };
        let pool = pool_options(options.max_connections).connect_with(connect.clone()).await.map_err(db_err)?;
        let mut store = Self::from_pool(pool).await?;
        if !in_memory {
            // After the migrations: the file is in WAL mode and has its tables.
            store.writer = pool_options(1).connect_with(connect).await.map_err(db_err)?;
        }
        Ok(store)
    }

    /// Uses an existing pool (the host's own database) for reads and writes, and runs the
    /// migrations on it.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a migration fails.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(StoreError::backend)?;
        Ok(Self { writer: pool.clone(), pool })
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The revoked sessions and changed users that triggers append to the change log
    /// (`auth_changes`), for a [`CachedSessionStore`](crate::CachedSessionStore) or a
    /// [`CachedUserStore`](crate::CachedUserStore) over this store: so a change made by another
    /// process on the same file (a second server, the `users` command) reaches this process's
    /// caches within [`CHANGE_POLL_INTERVAL`] (20 ms). Each subscription reads the log on a
    /// connection of its own, outside the pool.
    #[must_use]
    pub fn changes(&self) -> SqliteChanges {
        SqliteChanges { options: (*self.pool.connect_options()).clone() }
    }
}

/// How often a [`SqliteChanges`] subscription reads the change log: the longest a change made
/// by another process goes unseen by this one's caches.
pub const CHANGE_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long the change log keeps an entry (Unix seconds): far longer than a follower goes
/// without reading it (it stops trusting its cache after 3 s), so none misses one; one that does
/// (a process stopped for minutes) sees the gap in `seq` and empties its cache.
const CHANGE_LOG_RETENTION_SECONDS: i64 = 600;

/// The change log of a [`SqliteStore`], for the caches; from [`SqliteStore::changes`].
#[derive(Debug, Clone)]
pub struct SqliteChanges {
    options: SqliteConnectOptions,
}

/// A subscription of [`SqliteChanges`]: a connection and the last `seq` read.
pub struct SqliteChangeSubscription {
    connection: sqlx::SqliteConnection,
    last_seq: i64,
    read: std::collections::VecDeque<Revocation>,
}

impl std::fmt::Debug for SqliteChangeSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteChangeSubscription").field("last_seq", &self.last_seq).finish_non_exhaustive()
    }
}

#[async_trait]
impl RevocationFeed for SqliteChanges {
    type Subscription = SqliteChangeSubscription;

    async fn subscribe(&self) -> Result<Self::Subscription, StoreError> {
        use sqlx::Connection as _;
        let mut connection = sqlx::SqliteConnection::connect_with(&self.options).await.map_err(db_err)?;
        // The cache empties itself on subscribing: only what comes after matters.
        let last_seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM auth_changes")
            .fetch_one(&mut connection)
            .await
            .map_err(db_err)?;
        Ok(SqliteChangeSubscription { connection, last_seq, read: std::collections::VecDeque::new() })
    }
}

impl SqliteChangeSubscription {
    /// Reads what was appended since the last read (committed before this read began).
    async fn read_log(&mut self) -> Result<(), StoreError> {
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT seq, kind, id FROM auth_changes WHERE seq > $1 ORDER BY seq LIMIT 1000")
                .bind(self.last_seq)
                .fetch_all(&mut self.connection)
                .await
                .map_err(db_err)?;
        let Some(&(last, _, _)) = rows.last() else { return Ok(()) };
        let (mut sessions, mut users) = (Vec::new(), Vec::new());
        // Numbers are never skipped: a gap means entries were purged before this follower read them.
        let mut gap = rows[0].0 != self.last_seq + 1;
        for (_, kind, id) in rows {
            match (kind.as_str(), Uuid::parse_str(&id)) {
                ("session", Ok(id)) => sessions.push(id),
                ("user", Ok(id)) => users.push(id),
                _ => gap = true,
            }
        }
        self.last_seq = last;
        if gap {
            self.read.push_back(Revocation::Unreadable);
        }
        if !sessions.is_empty() {
            self.read.push_back(Revocation::Sessions(sessions));
        }
        if !users.is_empty() {
            self.read.push_back(Revocation::Users(users));
        }
        Ok(())
    }
}

#[async_trait]
impl RevocationSubscription for SqliteChangeSubscription {
    async fn next(&mut self) -> Result<Revocation, StoreError> {
        loop {
            if let Some(revocation) = self.read.pop_front() {
                return Ok(revocation);
            }
            tokio::time::sleep(CHANGE_POLL_INTERVAL).await;
            // Cancel-safe: the position moves only together with what was read.
            self.read_log().await?;
        }
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        self.read_log().await
    }

    fn buffered(&mut self) -> Option<Result<Revocation, StoreError>> {
        self.read.pop_front().map(Ok)
    }
}

fn unique_violation(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            let message = db.message();
            if message.contains("username_key") {
                return StoreError::UsernameTaken;
            }
            if message.contains("email_key") {
                return StoreError::EmailTaken;
            }
        }
    }
    db_err(err)
}

/// Times are stored as Unix seconds.
type Time = i64;
/// Ids are stored as UUID text.
type Id = String;
/// Attempt counters are `INTEGER`.
type Count = i64;

/// A rotation's transaction holds SQLite's write lock from its start, so concurrent rotations
/// (in this process or another) decide one after the other; no statement is needed for it.
const BEGIN_ROTATION: &str = "BEGIN IMMEDIATE";
const LOCK_REFRESH_TOKEN: Option<&str> = None;

/// Taken before a last-admin check: a write that changes nothing, so the transaction holds
/// SQLite's write lock and guarded changes decide one after the other.
const LOCK_ADMINS: &str = "UPDATE auth_users SET role = role WHERE role = 'admin' AND status = 'active'";

/// `BINARY` (byte order) is SQLite's default collation.
const BYTE_ORDER: &str = "";

fn db_id(id: Uuid) -> Id {
    id.to_string()
}

fn from_db_id(id: Id) -> Result<Uuid, StoreError> {
    Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(format!("bad uuid: {e}")))
}

fn db_count(n: u32) -> Count {
    i64::from(n)
}

/// No casts: SQLite keeps JSON and text as `TEXT`.
const JSON_PARAM: &str = "";
const TEXT_PARAM: &str = "";

/// Taken before a second factor's state is read: a no-op write, so the transaction holds the
/// write lock and concurrent uses of one factor decide one after the other.
const LOCK_MFA_FACTOR: &str = "UPDATE auth_mfa_totp SET last_used_step = last_used_step WHERE user_id = $1";

/// Taken before a login challenge is read (as [`LOCK_MFA_FACTOR`]).
const LOCK_MFA_CHALLENGE: &str = "UPDATE auth_mfa_challenges SET attempts = attempts WHERE token_hash = $1";

/// No stored functions in SQLite: a rotation is a transaction on the writer's connection that
/// calls `rotation::decide` (in process: no network round trips to save).
const ROTATE_IN_ONE_CALL: Option<&str> = None;

/// Purged with the expired sessions: change-log entries older than the retention.
const PURGE_CHANGE_LOG: Option<(&str, i64)> =
    Some(("DELETE FROM auth_changes WHERE at < $1", CHANGE_LOG_RETENTION_SECONDS));

crate::sql::sql_stores!(SqliteStore, SqlitePool, sqlx::SqliteConnection, sqlx::sqlite::SqliteRow);
crate::sql_mfa::sql_mfa_store!(SqliteStore, SqlitePool, sqlx::SqliteConnection, sqlx::sqlite::SqliteRow);
