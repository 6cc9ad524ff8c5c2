//! [`PostgresStore`]: users and tokens in PostgreSQL, via `sqlx`.

use std::time::Duration;

use auth_core::rotation::{self, RotationState, RotationStep};
use auth_core::validate::identifier_key;
use auth_core::{
    async_trait, NewSecret, NewSession, NewUser, OnMismatch, Preferences, Role, RotationOutcome, RotationRequest,
    SecretCheck, SecretStore, Session, SessionStore, StoreError, TokenHash, User, UserRecord, UserStatus, UserStore,
    UserUpdate,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::Row;
use uuid::Uuid;

use crate::detached::detached;

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
}

fn db_err(err: sqlx::Error) -> StoreError {
    StoreError::backend(err)
}

fn corrupt(err: sqlx::Error) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

const USER_COLUMNS: &str = "id, username, email, email_verified, password_hash, role, status, \
                            preferences::text AS preferences, metadata::text AS metadata, created_at, updated_at, \
                            last_login_at";

fn user_from_row(row: &PgRow) -> Result<UserRecord, StoreError> {
    let status: String = row.try_get("status").map_err(corrupt)?;
    let preferences: String = row.try_get("preferences").map_err(corrupt)?;
    let metadata: String = row.try_get("metadata").map_err(corrupt)?;
    Ok(UserRecord {
        user: User {
            id: row.try_get("id").map_err(corrupt)?,
            username: row.try_get("username").map_err(corrupt)?,
            email: row.try_get("email").map_err(corrupt)?,
            email_verified: row.try_get("email_verified").map_err(corrupt)?,
            role: Role::new(row.try_get::<String, _>("role").map_err(corrupt)?),
            status: UserStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("bad status {status}")))?,
            preferences: serde_json::from_str::<Preferences>(&preferences)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            metadata: serde_json::from_str(&metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: row.try_get("created_at").map_err(corrupt)?,
            updated_at: row.try_get("updated_at").map_err(corrupt)?,
            last_login_at: row.try_get("last_login_at").map_err(corrupt)?,
        },
        password_hash: row.try_get("password_hash").map_err(corrupt)?,
    })
}

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_used_at, expires_at, ip, user_agent, auth_method, revoked_at";

fn session_from_row(row: &PgRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: row.try_get("id").map_err(corrupt)?,
        user_id: row.try_get("user_id").map_err(corrupt)?,
        created_at: row.try_get("created_at").map_err(corrupt)?,
        last_used_at: row.try_get("last_used_at").map_err(corrupt)?,
        expires_at: row.try_get("expires_at").map_err(corrupt)?,
        ip: row.try_get("ip").map_err(corrupt)?,
        user_agent: row.try_get("user_agent").map_err(corrupt)?,
        auth_method: crate::auth_method(&row.try_get::<String, _>("auth_method").map_err(corrupt)?)?,
        revoked_at: row.try_get("revoked_at").map_err(corrupt)?,
    })
}

fn json_text<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

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
        Ok(Self { pool })
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn user_where(&self, condition: &str, value: String) -> Result<Option<UserRecord>, StoreError> {
        // `condition` is one of our constants, never input.
        let sql = format!("SELECT {USER_COLUMNS} FROM auth_users WHERE {condition}");
        let row = sqlx::query(&sql).bind(value).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }
}

/// Adds an unspent refresh token (by hash) to a session.
async fn insert_refresh_token(
    conn: &mut sqlx::PgConnection,
    hash: &TokenHash,
    session_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO auth_refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
        .bind(&hash.as_bytes()[..])
        .bind(session_id)
        .bind(at)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let user = new.to_user();
        sqlx::query(
            "INSERT INTO auth_users (id, username, email, email_verified, password_hash, role, status, preferences, \
             metadata, created_at, updated_at, username_key, email_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13)",
        )
        .bind(user.id)
        .bind(&user.username)
        .bind(&user.email)
        .bind(user.email_verified)
        .bind(&new.password_hash)
        .bind(user.role.as_str())
        .bind(user.status.as_str())
        .bind(json_text(&user.preferences)?)
        .bind(json_text(&user.metadata)?)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(user.username.as_deref().map(identifier_key))
        .bind(user.email.as_deref().map(identifier_key))
        .execute(&self.pool)
        .await
        .map_err(unique_violation)?;
        Ok(user)
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("username_key = $1", identifier_key(username)).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("email_key = $1", identifier_key(email)).await
    }

    async fn update_user(&self, id: Uuid, update: UserUpdate, at: DateTime<Utc>) -> Result<Option<User>, StoreError> {
        let preferences = update.preferences.as_ref().map(json_text).transpose()?;
        let metadata = update.metadata.as_ref().map(json_text).transpose()?;
        let sql = format!(
            "UPDATE auth_users SET password_hash = COALESCE($1, password_hash), role = COALESCE($2, role), \
             status = COALESCE($3, status), email_verified = COALESCE($4, email_verified), \
             preferences = COALESCE($5::jsonb, preferences), metadata = COALESCE($6::jsonb, metadata), \
             last_login_at = COALESCE($7, last_login_at), updated_at = $8 WHERE id = $9 \
             AND ($10::text IS NULL OR password_hash = $10) AND ($11::text IS NULL OR status = $11) \
             RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(update.password_hash)
            .bind(update.role.as_ref().map(Role::as_str))
            .bind(update.status.map(UserStatus::as_str))
            .bind(update.email_verified)
            .bind(preferences)
            .bind(metadata)
            .bind(update.last_login_at)
            .bind(at)
            .bind(id)
            .bind(update.if_password_hash)
            .bind(update.if_status.map(UserStatus::as_str))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.as_ref().map(user_from_row).transpose()?.map(|r| r.user))
    }

    async fn list_users(&self, offset: u64, limit: u64) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM auth_users ORDER BY created_at, id LIMIT $1 OFFSET $2");
        let rows = sqlx::query(&sql)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| user_from_row(r).map(|r| r.user)).collect()
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, new: NewSession) -> Result<(), StoreError> {
        detached(create_session(self.pool.clone(), new)).await
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn rotate_refresh_token(&self, r: RotationRequest) -> Result<RotationOutcome, StoreError> {
        detached(rotate_refresh_token(self.pool.clone(), r)).await
    }

    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE auth_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(id)
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
            "UPDATE auth_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
             AND id IS DISTINCT FROM $3",
        )
        .bind(at)
        .bind(user_id)
        .bind(except)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    async fn user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM auth_sessions WHERE user_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2 ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(&sql).bind(user_id).bind(now).fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        // Refresh tokens go with their session (ON DELETE CASCADE).
        let deleted = sqlx::query("DELETE FROM auth_sessions WHERE revoked_at IS NOT NULL OR expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        Ok(deleted)
    }
}

#[async_trait]
impl SecretStore for PostgresStore {
    async fn put_secret(&self, s: NewSecret, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_one_time_secrets (purpose, key, secret_hash, expires_at, attempts, max_attempts) \
             VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (purpose, key) DO UPDATE SET \
             attempts = CASE WHEN auth_one_time_secrets.expires_at > $6 THEN auth_one_time_secrets.attempts ELSE 0 END, \
             secret_hash = EXCLUDED.secret_hash, expires_at = EXCLUDED.expires_at, max_attempts = EXCLUDED.max_attempts",
        )
        .bind(&s.purpose)
        .bind(&s.key)
        .bind(&s.hash.as_bytes()[..])
        .bind(s.expires_at)
        .bind(i32::try_from(s.max_attempts).unwrap_or(i32::MAX))
        .bind(now)
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
        let deleted = sqlx::query("DELETE FROM auth_one_time_secrets WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        Ok(deleted)
    }
}

/// [`SessionStore::create_session`] in one transaction; run [`detached`].
async fn create_session(pool: PgPool, new: NewSession) -> Result<(), StoreError> {
    let s = &new.session;
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "INSERT INTO auth_sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent, auth_method) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(s.id)
    .bind(s.user_id)
    .bind(s.created_at)
    .bind(s.last_used_at)
    .bind(s.expires_at)
    .bind(&s.ip)
    .bind(&s.user_agent)
    .bind(s.auth_method.as_str())
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_refresh_token(&mut tx, &new.refresh_token_hash, s.id, s.created_at).await?;
    tx.commit().await.map_err(db_err)
}

/// [`SessionStore::rotate_refresh_token`] in one transaction; run [`detached`].
async fn rotate_refresh_token(pool: PgPool, r: RotationRequest) -> Result<RotationOutcome, StoreError> {
    let presented = &r.presented.as_bytes()[..];
    let mut tx = pool.begin().await.map_err(db_err)?;
    // Lock the presented token's row first: a concurrent rotation of the same token waits here.
    // The read below is a statement of its own, so (READ COMMITTED) it sees what that rotation
    // committed — the token spent, its successor current — and exactly one rotates it.
    sqlx::query("SELECT 1 FROM auth_refresh_tokens WHERE token_hash = $1 FOR UPDATE")
        .bind(presented)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    let sql = format!(
        "SELECT s.{}, t.spent_at AS token_spent_at, EXISTS (SELECT 1 FROM auth_refresh_tokens n \
         WHERE n.token_hash = $1 AND n.session_id = s.id AND n.spent_at IS NULL) AS successor_current \
         FROM auth_refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_hash = $2",
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
    let spent_at: Option<DateTime<Utc>> = row.try_get("token_spent_at").map_err(corrupt)?;
    let successor_current: bool = row.try_get("successor_current").map_err(corrupt)?;
    let step = rotation::decide(Some(RotationState { session: &session, spent_at, successor_current }), &r);
    match step {
        RotationStep::Rotate => {
            sqlx::query("UPDATE auth_refresh_tokens SET spent_at = $1 WHERE token_hash = $2")
                .bind(r.now)
                .bind(presented)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            insert_refresh_token(&mut tx, &r.successor, session.id, r.now).await?;
            sqlx::query("UPDATE auth_sessions SET last_used_at = $1 WHERE id = $2")
                .bind(r.now)
                .bind(session.id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        RotationStep::Revoke => {
            sqlx::query("UPDATE auth_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(r.now)
                .bind(session.id)
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
    pool: PgPool,
    purpose: String,
    key: String,
    candidate: TokenHash,
    on_mismatch: OnMismatch,
    now: DateTime<Utc>,
) -> Result<SecretCheck, StoreError> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    // Counting the attempt locks the row; concurrent takes run one after the other.
    let row = sqlx::query(
        "UPDATE auth_one_time_secrets SET attempts = attempts + 1 WHERE purpose = $1 AND key = $2 \
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
    let hash: Vec<u8> = row.try_get("secret_hash").map_err(corrupt)?;
    let expires_at: DateTime<Utc> = row.try_get("expires_at").map_err(corrupt)?;
    let attempts: i32 = row.try_get("attempts").map_err(corrupt)?;
    let max_attempts: i32 = row.try_get("max_attempts").map_err(corrupt)?;
    // `attempts` already counts this try.
    let failures = u32::try_from(attempts - 1).unwrap_or(u32::MAX);
    let max_attempts = u32::try_from(max_attempts).unwrap_or(0);
    let expired = expires_at <= now;
    let (check, keep) =
        crate::secret::judge(TokenHash::from_slice(&hash), expired, failures, max_attempts, &candidate, on_mismatch);
    if !keep {
        sqlx::query("DELETE FROM auth_one_time_secrets WHERE purpose = $1 AND key = $2")
            .bind(&purpose)
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(check)
}
