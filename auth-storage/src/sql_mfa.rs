//! The [`MfaStore`](auth_core::MfaStore) of the SQL backends, written once for SQLite and
//! PostgreSQL like the other stores in [`sql`](crate::sql): `sql_mfa_store!` expands inside a
//! backend's module, which also provides, beyond what `sql_stores!` needs:
//!
//! | item | SQLite | PostgreSQL |
//! |---|---|---|
//! | `const LOCK_MFA_FACTOR` (`$1`: the user id) | a no-op `UPDATE` (takes the write lock) | `SELECT … FOR UPDATE` |
//! | `const LOCK_MFA_CHALLENGE` (`$1`: the token hash) | a no-op `UPDATE` | `SELECT … FOR UPDATE` |
//!
//! Each multi-statement operation locks the row it decides on, reads it, lets the core's pure
//! rules decide ([`mfa::accepts`](auth_core::mfa::accepts),
//! [`mfa::challenge_is_live`](auth_core::mfa::challenge_is_live)), and writes in the same
//! transaction, [`detached`](crate::detached::detached) from the request.

/// See the [module documentation](self). Arguments: the store type, its pool type, its
/// connection type and its row type.
macro_rules! sql_mfa_store {
    ($store:ty, $pool:ty, $conn:ty, $row:ty) => {
        const CHALLENGE_COLUMNS: &str =
            "token_hash, user_id, purpose, password_fingerprint, verified_at, expires_at, attempts";

        const FACTOR_COLUMNS: &str = "t.user_id, t.sealed_secret, t.created_at, t.confirmed_at, t.last_used_step, \
             (SELECT COUNT(*) FROM auth_mfa_recovery_codes r WHERE r.user_id = t.user_id) AS codes_left";

        fn factor_from_row(row: &$row) -> Result<auth_core::mfa::TotpFactor, auth_core::StoreError> {
            use sqlx::Row as _;
            let corrupt = |e: sqlx::Error| auth_core::StoreError::Corrupt(e.to_string());
            let confirmed_at: Option<Time> = row.try_get("confirmed_at").map_err(corrupt)?;
            let codes_left: i64 = row.try_get("codes_left").map_err(corrupt)?;
            Ok(auth_core::mfa::TotpFactor {
                user_id: from_db_id(row.try_get("user_id").map_err(corrupt)?)?,
                sealed_secret: row.try_get("sealed_secret").map_err(corrupt)?,
                created_at: from_ts(row.try_get("created_at").map_err(corrupt)?)?,
                confirmed_at: confirmed_at.map(from_ts).transpose()?,
                last_used_step: row.try_get("last_used_step").map_err(corrupt)?,
                recovery_codes_left: u32::try_from(codes_left).unwrap_or(0),
            })
        }

        fn challenge_from_row(row: &$row) -> Result<auth_core::mfa::MfaChallenge, auth_core::StoreError> {
            use sqlx::Row as _;
            let corrupt = |e: sqlx::Error| auth_core::StoreError::Corrupt(e.to_string());
            let hash = |name: &str| -> Result<auth_core::TokenHash, auth_core::StoreError> {
                let bytes: Vec<u8> = row.try_get(name).map_err(corrupt)?;
                auth_core::TokenHash::from_slice(&bytes)
                    .ok_or_else(|| auth_core::StoreError::Corrupt(format!("{name} is not 32 bytes")))
            };
            let purpose: String = row.try_get("purpose").map_err(corrupt)?;
            let attempts: Count = row.try_get("attempts").map_err(corrupt)?;
            Ok(auth_core::mfa::MfaChallenge {
                token_hash: hash("token_hash")?,
                user_id: from_db_id(row.try_get("user_id").map_err(corrupt)?)?,
                purpose: auth_core::mfa::ChallengePurpose::parse(&purpose)
                    .ok_or_else(|| auth_core::StoreError::Corrupt(format!("unknown challenge purpose {purpose}")))?,
                password_fingerprint: hash("password_fingerprint")?,
                verified_at: from_ts(row.try_get("verified_at").map_err(corrupt)?)?,
                expires_at: from_ts(row.try_get("expires_at").map_err(corrupt)?)?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            })
        }

        async fn factor_on(
            conn: &mut $conn,
            user_id: uuid::Uuid,
        ) -> Result<Option<auth_core::mfa::TotpFactor>, auth_core::StoreError> {
            let sql = format!("SELECT {FACTOR_COLUMNS} FROM auth_mfa_totp t WHERE t.user_id = $1");
            let row = sqlx::query(&sql).bind(db_id(user_id)).fetch_optional(&mut *conn).await.map_err(db_err)?;
            row.as_ref().map(factor_from_row).transpose()
        }

        async fn insert_recovery_codes(
            conn: &mut $conn,
            user_id: uuid::Uuid,
            codes: &[auth_core::TokenHash],
        ) -> Result<(), auth_core::StoreError> {
            sqlx::query("DELETE FROM auth_mfa_recovery_codes WHERE user_id = $1")
                .bind(db_id(user_id))
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            for code in codes {
                sqlx::query("INSERT INTO auth_mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(db_id(user_id))
                    .bind(&code.as_bytes()[..])
                    .execute(&mut *conn)
                    .await
                    .map_err(db_err)?;
            }
            Ok(())
        }

        /// [`MfaStore::use_factor`](auth_core::MfaStore::use_factor) inside a transaction: lock
        /// the factor row, read it, decide with [`auth_core::mfa::accepts`], write.
        async fn apply_factor_use(
            conn: &mut $conn,
            user_id: uuid::Uuid,
            factor_use: auth_core::mfa::FactorUse,
        ) -> Result<bool, auth_core::StoreError> {
            use auth_core::mfa::FactorUse;
            sqlx::query(LOCK_MFA_FACTOR).bind(db_id(user_id)).execute(&mut *conn).await.map_err(db_err)?;
            let factor = factor_on(conn, user_id).await?;
            let has_code = match &factor_use {
                FactorUse::RecoveryCode(code) => {
                    let (n,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM auth_mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2",
                    )
                    .bind(db_id(user_id))
                    .bind(&code.as_bytes()[..])
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db_err)?;
                    n > 0
                }
                _ => false,
            };
            if !auth_core::mfa::accepts(factor.as_ref(), &factor_use, has_code) {
                return Ok(false);
            }
            match factor_use {
                FactorUse::TotpStep(step) => {
                    sqlx::query("UPDATE auth_mfa_totp SET last_used_step = $1 WHERE user_id = $2")
                        .bind(step)
                        .bind(db_id(user_id))
                        .execute(&mut *conn)
                        .await
                        .map_err(db_err)?;
                }
                FactorUse::RecoveryCode(code) => {
                    sqlx::query("DELETE FROM auth_mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2")
                        .bind(db_id(user_id))
                        .bind(&code.as_bytes()[..])
                        .execute(&mut *conn)
                        .await
                        .map_err(db_err)?;
                }
                FactorUse::Confirm { step, recovery_codes, at, .. } => {
                    sqlx::query("UPDATE auth_mfa_totp SET confirmed_at = $1, last_used_step = $2 WHERE user_id = $3")
                        .bind(ts(at))
                        .bind(step)
                        .bind(db_id(user_id))
                        .execute(&mut *conn)
                        .await
                        .map_err(db_err)?;
                    insert_recovery_codes(conn, user_id, &recovery_codes).await?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        }

        async fn use_factor(
            pool: $pool,
            user_id: uuid::Uuid,
            factor_use: auth_core::mfa::FactorUse,
        ) -> Result<bool, auth_core::StoreError> {
            let mut tx = pool.begin().await.map_err(db_err)?;
            let accepted = apply_factor_use(&mut tx, user_id, factor_use).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(accepted)
        }

        async fn replace_recovery_codes(
            pool: $pool,
            user_id: uuid::Uuid,
            codes: Vec<auth_core::TokenHash>,
        ) -> Result<bool, auth_core::StoreError> {
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(LOCK_MFA_FACTOR).bind(db_id(user_id)).execute(&mut *tx).await.map_err(db_err)?;
            if !factor_on(&mut tx, user_id).await?.is_some_and(|f| f.is_active()) {
                return Ok(false);
            }
            insert_recovery_codes(&mut tx, user_id, &codes).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        }

        async fn delete_totp(pool: $pool, user_id: uuid::Uuid) -> Result<bool, auth_core::StoreError> {
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query("DELETE FROM auth_mfa_challenges WHERE user_id = $1")
                .bind(db_id(user_id))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            // Recovery codes go with the factor (ON DELETE CASCADE).
            let done = sqlx::query("DELETE FROM auth_mfa_totp WHERE user_id = $1")
                .bind(db_id(user_id))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(done.rows_affected() > 0)
        }

        async fn redeem_challenge(
            pool: $pool,
            token_hash: auth_core::TokenHash,
            purpose: auth_core::mfa::ChallengePurpose,
            factor_use: auth_core::mfa::FactorUse,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<auth_core::mfa::ChallengeOutcome, auth_core::StoreError> {
            use auth_core::mfa::ChallengeOutcome;
            let hash = &token_hash.as_bytes()[..];
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(LOCK_MFA_CHALLENGE).bind(hash).execute(&mut *tx).await.map_err(db_err)?;
            let row =
                sqlx::query(&format!("SELECT {CHALLENGE_COLUMNS} FROM auth_mfa_challenges WHERE token_hash = $1"))
                    .bind(hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            let challenge = row.as_ref().map(challenge_from_row).transpose()?;
            let Some(challenge) = challenge.filter(|c| auth_core::mfa::challenge_is_live(c, purpose, now)) else {
                return Ok(ChallengeOutcome::Dead);
            };
            let outcome = if apply_factor_use(&mut tx, challenge.user_id, factor_use).await? {
                sqlx::query("DELETE FROM auth_mfa_challenges WHERE token_hash = $1")
                    .bind(hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                ChallengeOutcome::Redeemed(challenge)
            } else {
                sqlx::query("UPDATE auth_mfa_challenges SET attempts = attempts + 1 WHERE token_hash = $1")
                    .bind(hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let attempts_left = auth_core::mfa::CHALLENGE_MAX_ATTEMPTS.saturating_sub(challenge.attempts + 1);
                ChallengeOutcome::Rejected { attempts_left }
            };
            tx.commit().await.map_err(db_err)?;
            Ok(outcome)
        }

        #[auth_core::async_trait]
        impl auth_core::MfaStore for $store {
            async fn totp_factor(
                &self,
                user_id: uuid::Uuid,
            ) -> Result<Option<auth_core::mfa::TotpFactor>, auth_core::StoreError> {
                let mut conn = self.pool.acquire().await.map_err(db_err)?;
                factor_on(&mut conn, user_id).await
            }

            async fn put_pending_totp(&self, f: auth_core::mfa::TotpFactor) -> Result<bool, auth_core::StoreError> {
                // Replaces a pending factor, never an active one.
                let done = sqlx::query(
                    "INSERT INTO auth_mfa_totp (user_id, sealed_secret, created_at, confirmed_at, last_used_step) \
                     VALUES ($1, $2, $3, NULL, NULL) ON CONFLICT (user_id) DO UPDATE SET \
                     sealed_secret = excluded.sealed_secret, created_at = excluded.created_at, \
                     last_used_step = NULL WHERE auth_mfa_totp.confirmed_at IS NULL",
                )
                .bind(db_id(f.user_id))
                .bind(&f.sealed_secret)
                .bind(ts(f.created_at))
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn use_factor(
                &self,
                user_id: uuid::Uuid,
                factor_use: auth_core::mfa::FactorUse,
            ) -> Result<bool, auth_core::StoreError> {
                crate::detached::detached(use_factor(self.writer.clone(), user_id, factor_use)).await
            }

            async fn replace_recovery_codes(
                &self,
                user_id: uuid::Uuid,
                codes: Vec<auth_core::TokenHash>,
            ) -> Result<bool, auth_core::StoreError> {
                crate::detached::detached(replace_recovery_codes(self.writer.clone(), user_id, codes)).await
            }

            async fn reseal_totp(
                &self,
                user_id: uuid::Uuid,
                current: &[u8],
                sealed: Vec<u8>,
            ) -> Result<bool, auth_core::StoreError> {
                let done = sqlx::query(
                    "UPDATE auth_mfa_totp SET sealed_secret = $1 WHERE user_id = $2 AND sealed_secret = $3",
                )
                .bind(sealed)
                .bind(db_id(user_id))
                .bind(current)
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_totp(&self, user_id: uuid::Uuid) -> Result<bool, auth_core::StoreError> {
                crate::detached::detached(delete_totp(self.writer.clone(), user_id)).await
            }

            async fn create_challenge(&self, c: auth_core::mfa::MfaChallenge) -> Result<(), auth_core::StoreError> {
                sqlx::query(
                    "INSERT INTO auth_mfa_challenges (token_hash, user_id, purpose, password_fingerprint, \
                     verified_at, expires_at, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&c.token_hash.as_bytes()[..])
                .bind(db_id(c.user_id))
                .bind(c.purpose.as_str())
                .bind(&c.password_fingerprint.as_bytes()[..])
                .bind(ts(c.verified_at))
                .bind(ts(c.expires_at))
                .bind(db_count(c.attempts))
                .execute(&self.writer)
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn challenge(
                &self,
                token_hash: &auth_core::TokenHash,
                purpose: auth_core::mfa::ChallengePurpose,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<auth_core::mfa::MfaChallenge>, auth_core::StoreError> {
                let row =
                    sqlx::query(&format!("SELECT {CHALLENGE_COLUMNS} FROM auth_mfa_challenges WHERE token_hash = $1"))
                        .bind(&token_hash.as_bytes()[..])
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db_err)?;
                let challenge = row.as_ref().map(challenge_from_row).transpose()?;
                Ok(challenge.filter(|c| auth_core::mfa::challenge_is_live(c, purpose, now)))
            }

            async fn redeem_challenge(
                &self,
                token_hash: &auth_core::TokenHash,
                purpose: auth_core::mfa::ChallengePurpose,
                factor_use: auth_core::mfa::FactorUse,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<auth_core::mfa::ChallengeOutcome, auth_core::StoreError> {
                crate::detached::detached(redeem_challenge(self.writer.clone(), *token_hash, purpose, factor_use, now))
                    .await
            }

            async fn purge_expired_mfa(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                pending_before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, auth_core::StoreError> {
                let challenges = sqlx::query("DELETE FROM auth_mfa_challenges WHERE expires_at <= $1")
                    .bind(ts(now))
                    .execute(&self.writer)
                    .await
                    .map_err(db_err)?;
                let pending = sqlx::query("DELETE FROM auth_mfa_totp WHERE confirmed_at IS NULL AND created_at < $1")
                    .bind(ts(pending_before))
                    .execute(&self.writer)
                    .await
                    .map_err(db_err)?;
                Ok(challenges.rows_affected() + pending.rows_affected())
            }
        }
    };
}

pub(crate) use sql_mfa_store;
