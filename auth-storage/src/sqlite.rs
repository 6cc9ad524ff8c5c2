//! [`SqliteStore`]: auth_users and tokens in one SQLite file, via `sqlx`.

use std::str::FromStr;
use std::time::Duration;

use auth_core::rotation::{self, RotationState, RotationStep};
use auth_core::validate::identifier_key;
use auth_core::{
    async_trait, NewSecret, NewSession, NewUser, OnMismatch, Preferences, Role, RotationOutcome, RotationRequest,
    SecretCheck, SecretStore, Session, SessionStore, StoreError, TokenHash, User, UserRecord, UserStatus, UserStore,
    UserUpdate,
};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use crate::detached::detached;

/// Connection settings for [`SqliteStore::connect_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// Most pooled connections (default 8). SQLite serializes writers; readers run in parallel
    /// in WAL mode.
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
    pool: SqlitePool,
}

fn db_err(err: sqlx::Error) -> StoreError {
    StoreError::backend(err)
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_ts(secs: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| StoreError::Corrupt(format!("timestamp {secs} out of range")))
}

fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("bad uuid: {e}")))
}

fn json_text<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const USER_COLUMNS: &str = "id, username, email, email_verified, password_hash, role, status, preferences, \
                            metadata, created_at, updated_at, last_login_at";

fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let status: String = row.try_get("status").map_err(get)?;
    let preferences: String = row.try_get("preferences").map_err(get)?;
    let metadata: String = row.try_get("metadata").map_err(get)?;
    let last_login: Option<i64> = row.try_get("last_login_at").map_err(get)?;
    Ok(UserRecord {
        user: User {
            id: parse_uuid(&row.try_get::<String, _>("id").map_err(get)?)?,
            username: row.try_get("username").map_err(get)?,
            email: row.try_get("email").map_err(get)?,
            email_verified: row.try_get("email_verified").map_err(get)?,
            role: Role::new(row.try_get::<String, _>("role").map_err(get)?),
            status: UserStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("bad status {status}")))?,
            preferences: serde_json::from_str::<Preferences>(&preferences)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            metadata: serde_json::from_str(&metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: from_ts(row.try_get("created_at").map_err(get)?)?,
            updated_at: from_ts(row.try_get("updated_at").map_err(get)?)?,
            last_login_at: last_login.map(from_ts).transpose()?,
        },
        password_hash: row.try_get("password_hash").map_err(get)?,
    })
}

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_used_at, expires_at, ip, user_agent, auth_method, revoked_at";

fn session_from_row(row: &SqliteRow) -> Result<Session, StoreError> {
    let get = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let revoked: Option<i64> = row.try_get("revoked_at").map_err(get)?;
    Ok(Session {
        id: parse_uuid(&row.try_get::<String, _>("id").map_err(get)?)?,
        user_id: parse_uuid(&row.try_get::<String, _>("user_id").map_err(get)?)?,
        created_at: from_ts(row.try_get("created_at").map_err(get)?)?,
        last_used_at: from_ts(row.try_get("last_used_at").map_err(get)?)?,
        expires_at: from_ts(row.try_get("expires_at").map_err(get)?)?,
        ip: row.try_get("ip").map_err(get)?,
        user_agent: row.try_get("user_agent").map_err(get)?,
        auth_method: crate::auth_method(&row.try_get::<String, _>("auth_method").map_err(get)?)?,
        revoked_at: revoked.map(from_ts).transpose()?,
    })
}

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
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { options.max_connections })
            .min_connections(usize::from(in_memory) as u32)
            .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(1800)) })
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(db_err)?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (the host's own database) and runs the migrations on it.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a migration fails.
    pub async fn from_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.map_err(StoreError::backend)?;
        Ok(Self { pool })
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn user_where(&self, column: &str, value: String) -> Result<Option<UserRecord>, StoreError> {
        // `column` is one of our constants, never input.
        let sql = format!("SELECT {USER_COLUMNS} FROM auth_users WHERE {column} = ?");
        let row = sqlx::query(&sql).bind(value).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
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

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let user = new.to_user();
        sqlx::query(
            "INSERT INTO auth_users (id, username, username_key, email, email_key, email_verified, password_hash, role, \
             status, preferences, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(user.username.as_deref().map(identifier_key))
        .bind(&user.email)
        .bind(user.email.as_deref().map(identifier_key))
        .bind(user.email_verified)
        .bind(&new.password_hash)
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(json_text(&user.preferences)?)
        .bind(json_text(&user.metadata)?)
        .bind(ts(user.created_at))
        .bind(ts(user.updated_at))
        .execute(&self.pool)
        .await
        .map_err(unique_violation)?;
        Ok(user)
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("id", id.to_string()).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("username_key", identifier_key(username)).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("email_key", identifier_key(email)).await
    }

    async fn update_user(&self, id: Uuid, update: UserUpdate, at: DateTime<Utc>) -> Result<Option<User>, StoreError> {
        let preferences = update.preferences.as_ref().map(json_text).transpose()?;
        let metadata = update.metadata.as_ref().map(json_text).transpose()?;
        let sql = format!(
            "UPDATE auth_users SET password_hash = COALESCE(?1, password_hash), role = COALESCE(?2, role), \
             status = COALESCE(?3, status), email_verified = COALESCE(?4, email_verified), \
             preferences = COALESCE(?5, preferences), metadata = COALESCE(?6, metadata), \
             last_login_at = COALESCE(?7, last_login_at), updated_at = ?8 WHERE id = ?9 \
             AND (?10 IS NULL OR password_hash = ?10) AND (?11 IS NULL OR status = ?11) RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(update.password_hash)
            .bind(update.role.as_ref().map(Role::as_str))
            .bind(update.status.map(UserStatus::as_str))
            .bind(update.email_verified)
            .bind(preferences)
            .bind(metadata)
            .bind(update.last_login_at.map(ts))
            .bind(ts(at))
            .bind(id.to_string())
            .bind(update.if_password_hash)
            .bind(update.if_status.map(UserStatus::as_str))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.as_ref().map(user_from_row).transpose()?.map(|r| r.user))
    }

    async fn list_users(&self, offset: u64, limit: u64) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM auth_users ORDER BY created_at, id LIMIT ? OFFSET ?");
        let rows = sqlx::query(&sql)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| user_from_row(r).map(|r| r.user)).collect()
    }
}

/// Adds an unspent refresh token (by hash) to a session.
async fn insert_refresh_token(
    conn: &mut sqlx::SqliteConnection,
    hash: &TokenHash,
    session_id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO auth_refresh_tokens (token_hash, session_id, created_at) VALUES (?, ?, ?)")
        .bind(&hash.as_bytes()[..])
        .bind(session_id)
        .bind(ts(at))
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, new: NewSession) -> Result<(), StoreError> {
        detached(create_session(self.pool.clone(), new)).await
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE id = ?");
        let row = sqlx::query(&sql).bind(id.to_string()).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn rotate_refresh_token(&self, r: RotationRequest) -> Result<RotationOutcome, StoreError> {
        detached(rotate_refresh_token(self.pool.clone(), r)).await
    }

    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE auth_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(ts(at))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE auth_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND id IS NOT ?",
        )
        .bind(ts(at))
        .bind(user_id.to_string())
        .bind(except.map(|e| e.to_string()))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? \
             ORDER BY created_at DESC, id DESC"
        );
        let rows =
            sqlx::query(&sql).bind(user_id.to_string()).bind(ts(now)).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        // Refresh tokens go with their session (ON DELETE CASCADE).
        let deleted = sqlx::query("DELETE FROM auth_sessions WHERE revoked_at IS NOT NULL OR expires_at <= ?")
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        Ok(deleted)
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn put_secret(&self, s: NewSecret, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_one_time_secrets (purpose, key, secret_hash, expires_at, attempts, max_attempts) \
             VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (purpose, key) DO UPDATE SET \
             attempts = CASE WHEN auth_one_time_secrets.expires_at > ? THEN auth_one_time_secrets.attempts ELSE 0 END, \
             secret_hash = excluded.secret_hash, expires_at = excluded.expires_at, max_attempts = excluded.max_attempts",
        )
        .bind(&s.purpose)
        .bind(&s.key)
        .bind(&s.hash.as_bytes()[..])
        .bind(ts(s.expires_at))
        .bind(i64::from(s.max_attempts))
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
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
        detached(take_secret(self.pool.clone(), purpose.to_owned(), key.to_owned(), *candidate, on_mismatch, now)).await
    }

    async fn purge_expired_secrets(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM auth_one_time_secrets WHERE expires_at <= ?")
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        Ok(deleted)
    }
}

/// [`SessionStore::create_session`] in one transaction; run [`detached`].
async fn create_session(pool: SqlitePool, new: NewSession) -> Result<(), StoreError> {
    let s = &new.session;
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "INSERT INTO auth_sessions \
         (id, user_id, created_at, last_used_at, expires_at, ip, user_agent, auth_method, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
    )
    .bind(s.id.to_string())
    .bind(s.user_id.to_string())
    .bind(ts(s.created_at))
    .bind(ts(s.last_used_at))
    .bind(ts(s.expires_at))
    .bind(&s.ip)
    .bind(&s.user_agent)
    .bind(s.auth_method.as_str())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_refresh_token(&mut tx, &new.refresh_token_hash, &s.id.to_string(), s.created_at).await?;
    tx.commit().await.map_err(db_err)
}

/// [`SessionStore::rotate_refresh_token`] in one transaction; run [`detached`].
async fn rotate_refresh_token(pool: SqlitePool, r: RotationRequest) -> Result<RotationOutcome, StoreError> {
    let presented = &r.presented.as_bytes()[..];
    let mut tx = pool.begin().await.map_err(db_err)?;
    // A write first (changing nothing), so this transaction holds SQLite's write lock from its
    // first statement: concurrent rotations of one token decide one after the other.
    sqlx::query("UPDATE auth_refresh_tokens SET spent_at = spent_at WHERE token_hash = ?")
        .bind(presented)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let sql = format!(
        "SELECT s.{}, t.spent_at AS token_spent_at, EXISTS (SELECT 1 FROM auth_refresh_tokens n \
         WHERE n.token_hash = ? AND n.session_id = s.id AND n.spent_at IS NULL) AS successor_current \
         FROM auth_refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_hash = ?",
        SESSION_COLUMNS.replace(", ", ", s.")
    );
    let row = sqlx::query(&sql)
        .bind(&r.successor.as_bytes()[..])
        .bind(presented)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    let Some(row) = row else { return Ok(RotationOutcome::Unknown) };
    let session = session_from_row(&row)?;
    let corrupt = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let spent_at = row.try_get::<Option<i64>, _>("token_spent_at").map_err(corrupt)?.map(from_ts).transpose()?;
    let successor_current: bool = row.try_get("successor_current").map_err(corrupt)?;
    let step = rotation::decide(Some(RotationState { session: &session, spent_at, successor_current }), &r);
    let id = session.id.to_string();
    match step {
        RotationStep::Rotate => {
            sqlx::query("UPDATE auth_refresh_tokens SET spent_at = ? WHERE token_hash = ?")
                .bind(ts(r.now))
                .bind(presented)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            insert_refresh_token(&mut tx, &r.successor, &id, r.now).await?;
            sqlx::query("UPDATE auth_sessions SET last_used_at = ? WHERE id = ?")
                .bind(ts(r.now))
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        RotationStep::Revoke => {
            sqlx::query("UPDATE auth_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(ts(r.now))
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        RotationStep::Grace | RotationStep::Unknown => {}
    }
    tx.commit().await.map_err(db_err)?;
    Ok(step.outcome(session, r.now))
}

/// [`SecretStore::take_secret`] in one transaction; run [`detached`].
async fn take_secret(
    pool: SqlitePool,
    purpose: String,
    key: String,
    candidate: TokenHash,
    on_mismatch: OnMismatch,
    now: DateTime<Utc>,
) -> Result<SecretCheck, StoreError> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    // Count the attempt first (takes the write lock), then decide.
    let row = sqlx::query(
        "UPDATE auth_one_time_secrets SET attempts = attempts + 1 WHERE purpose = ? AND key = ? \
         RETURNING secret_hash, expires_at, attempts, max_attempts",
    )
    .bind(&purpose)
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let Some(row) = row else {
        return Ok(SecretCheck::Missing);
    };
    let corrupt = |e: sqlx::Error| StoreError::Corrupt(e.to_string());
    let hash: Vec<u8> = row.try_get("secret_hash").map_err(corrupt)?;
    let expires_at: i64 = row.try_get("expires_at").map_err(corrupt)?;
    let attempts: i64 = row.try_get("attempts").map_err(corrupt)?;
    let max_attempts: i64 = row.try_get("max_attempts").map_err(corrupt)?;
    // `attempts` already counts this try.
    let failures = u32::try_from(attempts - 1).unwrap_or(u32::MAX);
    let max_attempts = u32::try_from(max_attempts).unwrap_or(0);
    let expired = expires_at <= ts(now);
    let (check, keep) =
        crate::secret::judge(TokenHash::from_slice(&hash), expired, failures, max_attempts, &candidate, on_mismatch);
    if !keep {
        sqlx::query("DELETE FROM auth_one_time_secrets WHERE purpose = ? AND key = ?")
            .bind(&purpose)
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(check)
}
