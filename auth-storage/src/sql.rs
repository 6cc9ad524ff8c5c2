//! The store operations of the SQL backends — users, sessions, one-time secrets — written once
//! for SQLite and PostgreSQL.
//!
//! Both schemas have the same tables and columns; they differ in how a time, an id and a counter
//! are stored (SQLite: Unix seconds, UUID text, `INTEGER`; PostgreSQL: `timestamptz`, `uuid`,
//! `int4`) and in how a transaction takes the lock on a refresh token before reading its state.
//! Every statement here uses `$n` placeholders, which both drivers bind by number.
//!
//! `sql_stores!` expands, inside a backend's module, to its
//! [`UserStore`](auth_core::UserStore), [`SessionStore`](auth_core::SessionStore),
//! [`SecretStore`](auth_core::SecretStore) and [`AuditStore`](auth_core::AuditStore) implementations, their transactions and the row
//! decoders. The module provides what differs:
//!
//! | item | SQLite | PostgreSQL |
//! |---|---|---|
//! | `type Time`, `fn ts(DateTime<Utc>) -> Time`, `fn from_ts(Time) -> Result<DateTime<Utc>, StoreError>` | `i64` (Unix s) | `DateTime<Utc>` |
//! | `type Id`, `fn db_id(Uuid) -> Id`, `fn from_db_id(Id) -> Result<Uuid, StoreError>` | `String` | `Uuid` |
//! | `type Count`, `fn db_count(u32) -> Count` | `i64` | `i32` |
//! | `const BEGIN_ROTATION`, `const LOCK_REFRESH_TOKEN` (`$1`: the token hash; used without `ROTATE_IN_ONE_CALL`) | `BEGIN IMMEDIATE` (takes SQLite's write lock at once), no lock statement | `BEGIN`, `SELECT … FOR UPDATE` (unused) |
//! | `const ROTATE_IN_ONE_CALL` (a whole rotation) | `None`: a transaction that reads, calls [`rotation::decide`](auth_core::rotation::decide) and writes | `auth_rotate_refresh_token(…)`, the rule mirrored in PL/pgSQL: one round trip |
//! | `const PURGE_CHANGE_LOG` (with the session purge) | the change log's old entries | `None` (`NOTIFY`) |
//! | `const LOCK_ADMINS` (before a last-admin check) | a no-op `UPDATE` | `SELECT … FOR UPDATE` of the active admins |
//! | `const BYTE_ORDER` (after a prefix-range column) | `""` (`BINARY`) | `COLLATE "C"` |
//! | `const USER_COLUMNS` | the columns | `jsonb` columns read `::text` |
//! | `const JSON_PARAM`, `const TEXT_PARAM` (casts after a parameter) | `""` | `::jsonb`, `::text` |
//! | `fn db_err`, `fn unique_violation` (which index a conflict hit) | | |
//!
//! The decisions are the core's pure rules: [`rotation::decide`](auth_core::rotation::decide) for
//! refresh tokens and [`judge`](crate::secret::judge) for secrets. Multi-statement operations run
//! [`detached`](crate::detached::detached) from the request, so a cancelled request cannot leave a
//! pooled connection inside a transaction.

/// The columns of `auth_sessions`, in the order both backends' `session_from_row` read them.
pub(crate) const SESSION_COLUMNS: &str =
    "id, user_id, created_at, last_used_at, expires_at, ip, user_agent, auth_method, revoked_at";

/// See the [module documentation](self). Arguments: the store type, its pool type, its
/// connection type and its row type.
macro_rules! sql_stores {
    ($store:ty, $pool:ty, $conn:ty, $row:ty) => {
        /// A user row (`USER_COLUMNS`) as a [`UserRecord`](auth_core::UserRecord).
        fn user_from_row(row: &$row) -> Result<auth_core::UserRecord, auth_core::StoreError> {
            use sqlx::Row as _;
            let corrupt = |e: sqlx::Error| auth_core::StoreError::Corrupt(e.to_string());
            let json = |e: serde_json::Error| auth_core::StoreError::Corrupt(e.to_string());
            let status: String = row.try_get("status").map_err(corrupt)?;
            let preferences: String = row.try_get("preferences").map_err(corrupt)?;
            let metadata: String = row.try_get("metadata").map_err(corrupt)?;
            let last_login_at: Option<Time> = row.try_get("last_login_at").map_err(corrupt)?;
            Ok(auth_core::UserRecord {
                user: auth_core::User {
                    id: from_db_id(row.try_get("id").map_err(corrupt)?)?,
                    username: row.try_get("username").map_err(corrupt)?,
                    email: row.try_get("email").map_err(corrupt)?,
                    email_verified: row.try_get("email_verified").map_err(corrupt)?,
                    role: auth_core::Role::new(row.try_get::<String, _>("role").map_err(corrupt)?),
                    status: auth_core::UserStatus::parse(&status)
                        .ok_or_else(|| auth_core::StoreError::Corrupt(format!("bad status {status}")))?,
                    preferences: serde_json::from_str(&preferences).map_err(json)?,
                    metadata: serde_json::from_str(&metadata).map_err(json)?,
                    created_at: from_ts(row.try_get("created_at").map_err(corrupt)?)?,
                    updated_at: from_ts(row.try_get("updated_at").map_err(corrupt)?)?,
                    last_login_at: last_login_at.map(from_ts).transpose()?,
                },
                password_hash: row.try_get("password_hash").map_err(corrupt)?,
                pending_email: row.try_get("pending_email").map_err(corrupt)?,
            })
        }

        /// An audit row as an [`AuditEvent`](auth_core::AuditEvent).
        fn audit_from_row(row: &$row) -> Result<auth_core::AuditEvent, auth_core::StoreError> {
            use sqlx::Row as _;
            let corrupt = |e: sqlx::Error| auth_core::StoreError::Corrupt(e.to_string());
            let kind: String = row.try_get("type").map_err(corrupt)?;
            let outcome: String = row.try_get("outcome").map_err(corrupt)?;
            let details: String = row.try_get("details").map_err(corrupt)?;
            let user_id: Option<Id> = row.try_get("user_id").map_err(corrupt)?;
            let actor_id: Option<Id> = row.try_get("actor_id").map_err(corrupt)?;
            Ok(auth_core::AuditEvent {
                id: from_db_id(row.try_get("id").map_err(corrupt)?)?,
                at: from_ts(row.try_get("at").map_err(corrupt)?)?,
                kind: auth_core::AuditEventType::parse(&kind)
                    .ok_or_else(|| auth_core::StoreError::Corrupt(format!("unknown audit event type {kind}")))?,
                user_id: user_id.map(from_db_id).transpose()?,
                actor_id: actor_id.map(from_db_id).transpose()?,
                ip: row.try_get("ip").map_err(corrupt)?,
                user_agent: row.try_get("user_agent").map_err(corrupt)?,
                outcome: auth_core::AuditOutcome::parse(&outcome)
                    .ok_or_else(|| auth_core::StoreError::Corrupt(format!("unknown audit outcome {outcome}")))?,
                details: serde_json::from_str(&details).map_err(|e| auth_core::StoreError::Corrupt(e.to_string()))?,
            })
        }

        /// [`UserStore::update_user`](auth_core::UserStore::update_user) on `conn`: one `UPDATE`
        /// whose `WHERE` holds the preconditions.
        async fn update_user_on(
            conn: &mut $conn,
            id: uuid::Uuid,
            update: auth_core::UserUpdate,
            at: chrono::DateTime<chrono::Utc>,
        ) -> Result<Option<auth_core::User>, auth_core::StoreError> {
            use auth_core::validate::identifier_key;
            let preferences = update.preferences.as_ref().map(json_text).transpose()?;
            let metadata = update.metadata.as_ref().map(json_text).transpose()?;
            // $10, $11 and $18 are the compare-and-set preconditions: NULL means "any".
            let sql = format!(
                "UPDATE auth_users SET password_hash = COALESCE($1, password_hash), role = COALESCE($2, role), \
                 status = COALESCE($3, status), email_verified = COALESCE($4, email_verified), \
                 preferences = COALESCE($5{JSON_PARAM}, preferences), metadata = COALESCE($6{JSON_PARAM}, metadata), \
                 last_login_at = COALESCE($7, last_login_at), updated_at = $8, \
                 username = COALESCE($12, username), username_key = COALESCE($13, username_key), \
                 email = COALESCE($14, email), email_key = COALESCE($15, email_key), \
                 pending_email = CASE WHEN $16 THEN $17 ELSE pending_email END WHERE id = $9 \
                 AND ($10{TEXT_PARAM} IS NULL OR password_hash = $10) AND ($11{TEXT_PARAM} IS NULL OR status = $11) \
                 AND ($18{TEXT_PARAM} IS NULL OR NOT (role = $18 AND status = 'active') \
                 OR EXISTS (SELECT 1 FROM auth_users o WHERE o.role = $18 AND o.status = 'active' AND o.id <> $9)) \
                 RETURNING {USER_COLUMNS}"
            );
            let row = sqlx::query(&sql)
                .bind(update.password_hash)
                .bind(update.role.as_ref().map(auth_core::Role::as_str))
                .bind(update.status.map(auth_core::UserStatus::as_str))
                .bind(update.email_verified)
                .bind(preferences)
                .bind(metadata)
                .bind(update.last_login_at.map(ts))
                .bind(ts(at))
                .bind(db_id(id))
                .bind(update.if_password_hash)
                .bind(update.if_status.map(auth_core::UserStatus::as_str))
                .bind(update.username.as_deref())
                .bind(update.username.as_deref().map(identifier_key))
                .bind(update.email.as_deref())
                .bind(update.email.as_deref().map(identifier_key))
                .bind(update.pending_email.is_some())
                .bind(update.pending_email.flatten())
                .bind(update.if_an_admin_remains.then_some("admin"))
                .fetch_optional(conn)
                .await
                .map_err(unique_violation)?;
            Ok(row.as_ref().map(user_from_row).transpose()?.map(|r| r.user))
        }

        /// A last-admin-guarded [`update_user_on`] in one transaction that first takes
        /// `LOCK_ADMINS`; run detached.
        async fn update_user_guarded(
            pool: $pool,
            id: uuid::Uuid,
            update: auth_core::UserUpdate,
            at: chrono::DateTime<chrono::Utc>,
        ) -> Result<Option<auth_core::User>, auth_core::StoreError> {
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(LOCK_ADMINS).execute(&mut *tx).await.map_err(db_err)?;
            let user = update_user_on(&mut tx, id, update, at).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(user)
        }

        /// [`UserStore::delete_user`](auth_core::UserStore::delete_user) in one transaction;
        /// run detached.
        async fn delete_user(pool: $pool, id: uuid::Uuid, keep_an_admin: bool) -> Result<bool, auth_core::StoreError> {
            let mut tx = pool.begin().await.map_err(db_err)?;
            if keep_an_admin {
                sqlx::query(LOCK_ADMINS).execute(&mut *tx).await.map_err(db_err)?;
            }
            let sql = format!(
                "DELETE FROM auth_users WHERE id = $1 AND ($2{TEXT_PARAM} IS NULL \
                 OR NOT (role = $2 AND status = 'active') OR EXISTS (SELECT 1 FROM auth_users o \
                 WHERE o.role = $2 AND o.status = 'active' AND o.id <> $1))"
            );
            let done = sqlx::query(&sql)
                .bind(db_id(id))
                .bind(keep_an_admin.then_some("admin"))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(done.rows_affected() == 1)
        }

        /// A session row (`SESSION_COLUMNS`) as a [`Session`](auth_core::Session).
        fn session_from_row(row: &$row) -> Result<auth_core::Session, auth_core::StoreError> {
            use sqlx::Row as _;
            let corrupt = |e: sqlx::Error| auth_core::StoreError::Corrupt(e.to_string());
            let revoked_at: Option<Time> = row.try_get("revoked_at").map_err(corrupt)?;
            Ok(auth_core::Session {
                id: from_db_id(row.try_get("id").map_err(corrupt)?)?,
                user_id: from_db_id(row.try_get("user_id").map_err(corrupt)?)?,
                created_at: from_ts(row.try_get("created_at").map_err(corrupt)?)?,
                last_used_at: from_ts(row.try_get("last_used_at").map_err(corrupt)?)?,
                expires_at: from_ts(row.try_get("expires_at").map_err(corrupt)?)?,
                ip: row.try_get("ip").map_err(corrupt)?,
                user_agent: row.try_get("user_agent").map_err(corrupt)?,
                auth_method: crate::auth_method(&row.try_get::<String, _>("auth_method").map_err(corrupt)?)?,
                revoked_at: revoked_at.map(from_ts).transpose()?,
            })
        }

        fn json_text<T: serde::Serialize>(v: &T) -> Result<String, auth_core::StoreError> {
            serde_json::to_string(v).map_err(|e| auth_core::StoreError::Corrupt(e.to_string()))
        }

        impl $store {
            /// The user whose `column` (one of our constants, never input) is `key`.
            async fn user_where(
                &self,
                column: &str,
                key: String,
            ) -> Result<Option<auth_core::UserRecord>, auth_core::StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM auth_users WHERE {column} = $1");
                let row = sqlx::query(&sql).bind(key).fetch_optional(&self.pool).await.map_err(db_err)?;
                row.as_ref().map(user_from_row).transpose()
            }
        }

        #[auth_core::async_trait]
        impl auth_core::UserStore for $store {
            async fn create_user(&self, new: auth_core::NewUser) -> Result<auth_core::User, auth_core::StoreError> {
                use auth_core::validate::identifier_key;
                let user = new.to_user();
                let sql = format!(
                    "INSERT INTO auth_users (id, username, username_key, email, email_key, email_verified, \
                     password_hash, role, status, preferences, metadata, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10{JSON_PARAM}, $11{JSON_PARAM}, $12, $13)"
                );
                sqlx::query(&sql)
                    .bind(db_id(user.id))
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
                    .execute(&self.writer)
                    .await
                    .map_err(unique_violation)?;
                Ok(user)
            }

            async fn user_by_id(&self, id: uuid::Uuid) -> Result<Option<auth_core::UserRecord>, auth_core::StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = $1");
                let row = sqlx::query(&sql).bind(db_id(id)).fetch_optional(&self.pool).await.map_err(db_err)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn user_by_username(
                &self,
                username: &str,
            ) -> Result<Option<auth_core::UserRecord>, auth_core::StoreError> {
                self.user_where("username_key", auth_core::validate::identifier_key(username)).await
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<auth_core::UserRecord>, auth_core::StoreError> {
                self.user_where("email_key", auth_core::validate::identifier_key(email)).await
            }

            async fn update_user(
                &self,
                id: uuid::Uuid,
                update: auth_core::UserUpdate,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<auth_core::User>, auth_core::StoreError> {
                if update.if_an_admin_remains {
                    return crate::detached::detached(update_user_guarded(self.writer.clone(), id, update, at)).await;
                }
                let mut conn = self.writer.acquire().await.map_err(db_err)?;
                update_user_on(&mut conn, id, update, at).await
            }

            async fn list_users(
                &self,
                query: &auth_core::UserQuery,
            ) -> Result<Vec<auth_core::User>, auth_core::StoreError> {
                // Only the filters given, so each shape gets a plan that uses its index.
                let mut filters = Vec::new();
                let mut n = 0;
                let mut param = || {
                    n += 1;
                    format!("${n}")
                };
                if query.prefix.is_some() {
                    let (from, to) = (param(), param());
                    filters.push(format!(
                        "((username_key{BYTE_ORDER} >= {from} AND username_key{BYTE_ORDER} < {to}) \
                         OR (email_key{BYTE_ORDER} >= {from} AND email_key{BYTE_ORDER} < {to}))"
                    ));
                }
                if query.status.is_some() {
                    filters.push(format!("status = {}", param()));
                }
                if query.role.is_some() {
                    filters.push(format!("role = {}", param()));
                }
                if query.after.is_some() {
                    filters.push(format!("id > {}", param()));
                }
                let limit = param();
                let filter = if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
                let sql = format!("SELECT {USER_COLUMNS} FROM auth_users {filter} ORDER BY id LIMIT {limit}");
                // A prefix search is planned with its values every time (not kept prepared): a
                // plan made without them (PostgreSQL's generic plan) cannot tell a prefix that
                // 100 users match from one that half of them do, and walks the primary key in id
                // order past every user (0.4 s at a million) instead of reading the prefix range.
                let mut q = sqlx::query(&sql).persistent(query.prefix.is_none());
                if let (Some(prefix), Some(end)) = (&query.prefix, query.prefix_end()) {
                    q = q.bind(prefix.clone()).bind(end);
                }
                if let Some(status) = query.status {
                    q = q.bind(status.as_str());
                }
                if let Some(role) = &query.role {
                    q = q.bind(role.as_str().to_owned());
                }
                if let Some(after) = query.after {
                    q = q.bind(db_id(after));
                }
                let rows = q.bind(i64::from(query.limit)).fetch_all(&self.pool).await.map_err(db_err)?;
                rows.iter().map(|r| user_from_row(r).map(|r| r.user)).collect()
            }

            async fn delete_user(&self, id: uuid::Uuid, keep_an_admin: bool) -> Result<bool, auth_core::StoreError> {
                crate::detached::detached(delete_user(self.writer.clone(), id, keep_an_admin)).await
            }
        }

        #[auth_core::async_trait]
        impl auth_core::AuditStore for $store {
            async fn append_audit(&self, e: auth_core::AuditEvent) -> Result<(), auth_core::StoreError> {
                let sql = format!(
                    "INSERT INTO auth_audit_log (id, at, type, user_id, actor_id, ip, user_agent, outcome, details) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9{JSON_PARAM})"
                );
                sqlx::query(&sql)
                    .bind(db_id(e.id))
                    .bind(ts(e.at))
                    .bind(e.kind.as_str())
                    .bind(e.user_id.map(db_id))
                    .bind(e.actor_id.map(db_id))
                    .bind(&e.ip)
                    .bind(&e.user_agent)
                    .bind(e.outcome.as_str())
                    .bind(json_text(&e.details)?)
                    .execute(&self.writer)
                    .await
                    .map_err(db_err)?;
                Ok(())
            }

            async fn audit_events(
                &self,
                query: &auth_core::AuditQuery,
            ) -> Result<Vec<auth_core::AuditEvent>, auth_core::StoreError> {
                let mut filters = Vec::new();
                let mut n = 0;
                let mut param = || {
                    n += 1;
                    format!("${n}")
                };
                if query.user_id.is_some() {
                    filters.push(format!("user_id = {}", param()));
                }
                if query.kind.is_some() {
                    filters.push(format!("type = {}", param()));
                }
                if query.since.is_some() {
                    filters.push(format!("at >= {}", param()));
                }
                if query.until.is_some() {
                    filters.push(format!("at < {}", param()));
                }
                if query.before.is_some() {
                    filters.push(format!("id < {}", param()));
                }
                let limit = param();
                let filter = if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
                let sql = format!(
                    "SELECT id, at, type, user_id, actor_id, ip, user_agent, outcome, details{} AS details \
                     FROM auth_audit_log {filter} ORDER BY id DESC LIMIT {limit}",
                    TEXT_PARAM
                );
                let mut q = sqlx::query(&sql);
                if let Some(user_id) = query.user_id {
                    q = q.bind(db_id(user_id));
                }
                if let Some(kind) = query.kind {
                    q = q.bind(kind.as_str());
                }
                if let Some(since) = query.since {
                    q = q.bind(ts(since));
                }
                if let Some(until) = query.until {
                    q = q.bind(ts(until));
                }
                if let Some(before) = query.before {
                    q = q.bind(db_id(before));
                }
                let rows = q.bind(i64::from(query.limit)).fetch_all(&self.pool).await.map_err(db_err)?;
                rows.iter().map(audit_from_row).collect()
            }

            async fn purge_audit(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, auth_core::StoreError> {
                let done = sqlx::query("DELETE FROM auth_audit_log WHERE at < $1")
                    .bind(ts(before))
                    .execute(&self.writer)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            }

            async fn forget_user_audit(&self, user_id: uuid::Uuid) -> Result<u64, auth_core::StoreError> {
                let done = sqlx::query("DELETE FROM auth_audit_log WHERE user_id = $1")
                    .bind(db_id(user_id))
                    .execute(&self.writer)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            }
        }

        /// Adds an unspent refresh token (by hash) to a session.
        async fn insert_refresh_token(
            conn: &mut $conn,
            hash: &auth_core::TokenHash,
            session_id: uuid::Uuid,
            at: chrono::DateTime<chrono::Utc>,
        ) -> Result<(), auth_core::StoreError> {
            sqlx::query("INSERT INTO auth_refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
                .bind(&hash.as_bytes()[..])
                .bind(db_id(session_id))
                .bind(ts(at))
                .execute(conn)
                .await
                .map_err(db_err)?;
            Ok(())
        }

        #[auth_core::async_trait]
        impl auth_core::SessionStore for $store {
            async fn create_session(&self, new: auth_core::NewSession) -> Result<(), auth_core::StoreError> {
                crate::detached::detached(create_session(self.writer.clone(), new)).await
            }

            async fn session(&self, id: uuid::Uuid) -> Result<Option<auth_core::Session>, auth_core::StoreError> {
                let sql = format!("SELECT {} FROM auth_sessions WHERE id = $1", crate::sql::SESSION_COLUMNS);
                let row = sqlx::query(&sql).bind(db_id(id)).fetch_optional(&self.pool).await.map_err(db_err)?;
                row.as_ref().map(session_from_row).transpose()
            }

            /// The check behind every authenticated request (and `session_is_live`): three
            /// columns of one row by primary key, nothing decoded that liveness does not need.
            async fn live_session_expiry(
                &self,
                id: uuid::Uuid,
                user_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<chrono::DateTime<chrono::Utc>>, auth_core::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query("SELECT user_id, expires_at, revoked_at FROM auth_sessions WHERE id = $1")
                    .bind(db_id(id))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db_err)?;
                let Some(row) = row else { return Ok(None) };
                let corrupt = |e: sqlx::Error| auth_core::StoreError::Corrupt(e.to_string());
                let owner = from_db_id(row.try_get("user_id").map_err(corrupt)?)?;
                let expires_at = from_ts(row.try_get("expires_at").map_err(corrupt)?)?;
                let revoked_at: Option<Time> = row.try_get("revoked_at").map_err(corrupt)?;
                Ok((owner == user_id && revoked_at.is_none() && expires_at > now).then_some(expires_at))
            }

            async fn rotate_refresh_token(
                &self,
                r: auth_core::RotationRequest,
            ) -> Result<auth_core::RotationOutcome, auth_core::StoreError> {
                crate::detached::detached(rotate_refresh_token(self.writer.clone(), r)).await
            }

            async fn revoke_session(
                &self,
                id: uuid::Uuid,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, auth_core::StoreError> {
                let done = sqlx::query("UPDATE auth_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(ts(at))
                    .bind(db_id(id))
                    .execute(&self.writer)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke_user_sessions(
                &self,
                user_id: uuid::Uuid,
                except: Option<uuid::Uuid>,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, auth_core::StoreError> {
                let done = sqlx::query(
                    "UPDATE auth_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
                     AND id IS DISTINCT FROM $3",
                )
                .bind(ts(at))
                .bind(db_id(user_id))
                .bind(except.map(db_id))
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected())
            }

            /// One `DELETE`: refresh tokens go with their sessions (`ON DELETE CASCADE`), and on
            /// PostgreSQL a trigger announces each live one to the session caches.
            async fn delete_user_sessions(
                &self,
                user_id: uuid::Uuid,
                _at: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, auth_core::StoreError> {
                let done = sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1")
                    .bind(db_id(user_id))
                    .execute(&self.writer)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            }

            async fn user_sessions(
                &self,
                user_id: uuid::Uuid,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<auth_core::Session>, auth_core::StoreError> {
                let sql = format!(
                    "SELECT {} FROM auth_sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
                     ORDER BY created_at DESC, id DESC",
                    crate::sql::SESSION_COLUMNS
                );
                let rows =
                    sqlx::query(&sql).bind(db_id(user_id)).bind(ts(now)).fetch_all(&self.pool).await.map_err(db_err)?;
                rows.iter().map(session_from_row).collect()
            }

            async fn purge_expired_sessions(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, auth_core::StoreError> {
                // Refresh tokens go with their session (ON DELETE CASCADE).
                let done = sqlx::query("DELETE FROM auth_sessions WHERE revoked_at IS NOT NULL OR expires_at <= $1")
                    .bind(ts(now))
                    .execute(&self.writer)
                    .await
                    .map_err(db_err)?;
                if let Some((purge, retention_seconds)) = PURGE_CHANGE_LOG {
                    sqlx::query(purge)
                        .bind(now.timestamp() - retention_seconds)
                        .execute(&self.writer)
                        .await
                        .map_err(db_err)?;
                }
                Ok(done.rows_affected())
            }
        }

        #[auth_core::async_trait]
        impl auth_core::SecretStore for $store {
            async fn put_secret(
                &self,
                s: auth_core::NewSecret,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), auth_core::StoreError> {
                sqlx::query(
                    "INSERT INTO auth_one_time_secrets (purpose, key, secret_hash, expires_at, attempts, max_attempts) \
                     VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (purpose, key) DO UPDATE SET \
                     attempts = CASE WHEN auth_one_time_secrets.expires_at > $6 \
                     THEN auth_one_time_secrets.attempts ELSE 0 END, \
                     secret_hash = EXCLUDED.secret_hash, expires_at = EXCLUDED.expires_at, \
                     max_attempts = EXCLUDED.max_attempts",
                )
                .bind(&s.purpose)
                .bind(&s.key)
                .bind(&s.hash.as_bytes()[..])
                .bind(ts(s.expires_at))
                .bind(db_count(s.max_attempts))
                .bind(ts(now))
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn take_secret(
                &self,
                purpose: &str,
                key: &str,
                candidate: &auth_core::TokenHash,
                on_mismatch: auth_core::OnMismatch,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<auth_core::SecretCheck, auth_core::StoreError> {
                let (purpose, key) = (purpose.to_owned(), key.to_owned());
                crate::detached::detached(take_secret(self.writer.clone(), purpose, key, *candidate, on_mismatch, now))
                    .await
            }

            async fn purge_expired_secrets(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, auth_core::StoreError> {
                let done = sqlx::query("DELETE FROM auth_one_time_secrets WHERE expires_at <= $1")
                    .bind(ts(now))
                    .execute(&self.writer)
                    .await
                    .map_err(db_err)?;
                Ok(done.rows_affected())
            }
        }

        /// [`SessionStore::create_session`](auth_core::SessionStore::create_session) in one
        /// transaction; run detached.
        async fn create_session(pool: $pool, new: auth_core::NewSession) -> Result<(), auth_core::StoreError> {
            let s = &new.session;
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(
                "INSERT INTO auth_sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent, \
                 auth_method) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(db_id(s.id))
            .bind(db_id(s.user_id))
            .bind(ts(s.created_at))
            .bind(ts(s.last_used_at))
            .bind(ts(s.expires_at))
            .bind(&s.ip)
            .bind(&s.user_agent)
            .bind(s.auth_method.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            insert_refresh_token(&mut tx, &new.refresh_token_hash, s.id, s.created_at).await?;
            tx.commit().await.map_err(db_err)
        }

        /// [`SessionStore::rotate_refresh_token`](auth_core::SessionStore::rotate_refresh_token)
        /// in one transaction; run detached. With `ROTATE_IN_ONE_CALL` that is one statement;
        /// otherwise the presented token is locked first (`BEGIN_ROTATION`,
        /// `LOCK_REFRESH_TOKEN`), so concurrent rotations of one token decide one after the
        /// other, each reading what the one before committed, and the step comes from
        /// `rotation::decide`.
        async fn rotate_refresh_token(
            pool: $pool,
            r: auth_core::RotationRequest,
        ) -> Result<auth_core::RotationOutcome, auth_core::StoreError> {
            use auth_core::rotation::{self, RotationState, RotationStep};
            use sqlx::Row as _;
            let presented = &r.presented.as_bytes()[..];
            if let Some(call) = ROTATE_IN_ONE_CALL {
                // One round trip: the database decides and writes (autocommit), and answers the
                // step with the session as it read it.
                let millis = |d: chrono::TimeDelta| d.num_milliseconds();
                let row = sqlx::query(call)
                    .bind(presented)
                    .bind(r.successor.as_ref().map(|successor| &successor.as_bytes()[..]))
                    .bind(ts(r.now))
                    .bind(millis(r.reuse_grace))
                    .bind(millis(r.idle_timeout))
                    .fetch_optional(&pool)
                    .await
                    .map_err(db_err)?;
                let Some(row) = row else { return Ok(auth_core::RotationOutcome::Unknown) };
                let step: String =
                    row.try_get("step").map_err(|e| auth_core::StoreError::Corrupt(e.to_string()))?;
                let step = match step.as_str() {
                    "rotate" => RotationStep::Rotate,
                    "keep" => RotationStep::Keep,
                    "grace" => RotationStep::Grace,
                    "revoke" => RotationStep::Revoke,
                    "unknown" => RotationStep::Unknown,
                    other => return Err(auth_core::StoreError::Corrupt(format!("rotation step {other:?}"))),
                };
                return Ok(step.outcome(session_from_row(&row)?, r.now));
            }
            let mut tx = pool.begin_with(BEGIN_ROTATION).await.map_err(db_err)?;
            if let Some(lock) = LOCK_REFRESH_TOKEN {
                sqlx::query(lock).bind(presented).execute(&mut *tx).await.map_err(db_err)?;
            }
            let sql = format!(
                "SELECT s.{}, t.spent_at AS token_spent_at, EXISTS (SELECT 1 FROM auth_refresh_tokens n \
                 WHERE n.token_hash = $1 AND n.session_id = s.id AND n.spent_at IS NULL) AS successor_current \
                 FROM auth_refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id WHERE t.token_hash = $2",
                crate::sql::SESSION_COLUMNS.replace(", ", ", s.")
            );
            let row = sqlx::query(&sql)
                .bind(r.successor.as_ref().map(|successor| &successor.as_bytes()[..]))
                .bind(presented)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            let Some(row) = row else { return Ok(auth_core::RotationOutcome::Unknown) };
            let session = session_from_row(&row)?;
            let corrupt = |e: sqlx::Error| auth_core::StoreError::Corrupt(e.to_string());
            let spent_at: Option<Time> = row.try_get("token_spent_at").map_err(corrupt)?;
            let spent_at = spent_at.map(from_ts).transpose()?;
            let successor_current: bool = row.try_get("successor_current").map_err(corrupt)?;
            let step = rotation::decide(Some(RotationState { session: &session, spent_at, successor_current }), &r);
            if let (RotationStep::Rotate, Some(successor)) = (step, &r.successor) {
                sqlx::query("UPDATE auth_refresh_tokens SET spent_at = $1 WHERE token_hash = $2")
                    .bind(ts(r.now))
                    .bind(presented)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                insert_refresh_token(&mut tx, successor, session.id, r.now).await?;
            }
            match step {
                RotationStep::Rotate | RotationStep::Keep => {
                    sqlx::query("UPDATE auth_sessions SET last_used_at = $1 WHERE id = $2")
                        .bind(ts(r.now))
                        .bind(db_id(session.id))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                RotationStep::Revoke => {
                    sqlx::query("UPDATE auth_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                        .bind(ts(r.now))
                        .bind(db_id(session.id))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                RotationStep::Grace | RotationStep::Unknown => {}
            }
            tx.commit().await.map_err(db_err)?;
            Ok(step.outcome(session, r.now))
        }

        /// [`SecretStore::take_secret`](auth_core::SecretStore::take_secret) in one transaction;
        /// run detached. Counting the attempt first takes the row's lock (SQLite: the write
        /// lock), so concurrent takes decide one after the other.
        async fn take_secret(
            pool: $pool,
            purpose: String,
            key: String,
            candidate: auth_core::TokenHash,
            on_mismatch: auth_core::OnMismatch,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<auth_core::SecretCheck, auth_core::StoreError> {
            use sqlx::Row as _;
            let mut tx = pool.begin().await.map_err(db_err)?;
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
                return Ok(auth_core::SecretCheck::Missing);
            };
            let corrupt = |e: sqlx::Error| auth_core::StoreError::Corrupt(e.to_string());
            let hash: Vec<u8> = row.try_get("secret_hash").map_err(corrupt)?;
            let expires_at: Time = row.try_get("expires_at").map_err(corrupt)?;
            let attempts: Count = row.try_get("attempts").map_err(corrupt)?;
            let max_attempts: Count = row.try_get("max_attempts").map_err(corrupt)?;
            // `attempts` already counts this try.
            let failures = u32::try_from(attempts).map_or(u32::MAX, |a| a.saturating_sub(1));
            let max_attempts = u32::try_from(max_attempts).unwrap_or(0);
            let expired = from_ts(expires_at)? <= now;
            let stored = auth_core::TokenHash::from_slice(&hash);
            let (check, keep) = crate::secret::judge(stored, expired, failures, max_attempts, &candidate, on_mismatch);
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
    };
}

pub(crate) use sql_stores;
