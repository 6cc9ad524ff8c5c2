//! # auth-storage
//!
//! Store backends for [`auth_core`]: each implements [`UserStore`](auth_core::UserStore),
//! [`SessionStore`](auth_core::SessionStore), [`SecretStore`](auth_core::SecretStore) and/or [`RateLimiter`](auth_core::RateLimiter).
//!
//! | feature | type | users | sessions, secrets | limits | for |
//! |---|---|---|---|---|---|
//! | `memory` (default) | [`MemoryStore`] | ✓ | ✓ | ✓ | tests, development, one process |
//! | `sqlite` | `SqliteStore` | ✓ | ✓ | | the embedded default: one file, nothing to install |
//! | `postgres` | `PostgresStore` | ✓ | ✓ | | several instances: users and sessions in one database |
//! | `redis` | `RedisStore` | | ✓ | ✓ | several instances: sessions, codes and limits shared in Redis ([key layout](crate::redis)) |
//!
//! [`CachedSessionStore`] wraps any session store and answers repeat session checks from memory,
//! kept exact by the backend's revocation feed (Redis pub/sub, PostgreSQL `LISTEN`/`NOTIFY`,
//! SQLite's change log read every 20 ms); [`CachedUserStore`] does the same for the user behind
//! `CurrentUser`, following the same feeds (they announce changed users too); see [`cache`].
//! `SqliteStore` writes on a connection of its own and reads on a pool.
//!
//! SQL backends embed their migrations (`sqlx::migrate!`) and run them on `connect`; every query
//! uses bind parameters. Only SHA-256 hashes of refresh tokens and one-time secrets are stored.
//! `tests/conformance.rs` runs one suite of store tests against every backend.
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::{Auth, AuthConfig, LoginRequest, RegisterRequest, RequestContext};
//! use auth_storage::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AuthConfig::new(b"a secret of at least thirty-two bytes!".to_vec())?;
//! let store = Arc::new(MemoryStore::new());
//! // The store as users, sessions and secrets, and as the rate limiter (shared with every
//! // instance when it is a `RedisStore`).
//! let auth = Auth::builder(config).stores(store.clone()).rate_limiter(store).build()?;
//! let ctx = RequestContext::default();
//!
//! let register: RegisterRequest =
//!     serde_json::from_value(serde_json::json!({"username": "alice", "password": "violet-Kettle-93"}))?;
//! let tokens = auth.register(register, &ctx).await?;
//!
//! // What a middleware does with `Authorization: Bearer …`:
//! let claims = auth.authenticate(&tokens.access_token).await?;
//! assert_eq!(claims.sub, tokens.user.id);
//!
//! let login: LoginRequest =
//!     serde_json::from_value(serde_json::json!({"username": "ALICE", "password": "wrong password"}))?;
//! let err = auth.login(login, &ctx).await.unwrap_err();
//! assert_eq!(err.code(), "invalid_credentials");
//!
//! // Rotation: the refresh token is spent and its successor returned.
//! let next = auth.refresh(&tokens.refresh_token.as_str().into(), &ctx).await?;
//! assert_ne!(next.refresh_token, tokens.refresh_token);
//! # Ok(()) }
//! ```
//!
//! With the `sqlite` feature, `SqliteStore::connect("sqlite://auth.db")` opens (and creates)
//! the database; see its docs.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cache;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod detached;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
mod secret;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql_mfa;
#[cfg(feature = "sqlite")]
mod sqlite;

/// The [`AuthMethod`](auth_core::AuthMethod) of a stored name; an unknown name is
/// [`StoreError::Corrupt`](auth_core::StoreError::Corrupt).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "redis"))]
fn auth_method(name: &str) -> Result<auth_core::AuthMethod, auth_core::StoreError> {
    auth_core::AuthMethod::parse(name)
        .ok_or_else(|| auth_core::StoreError::Corrupt(format!("unknown session auth_method {name:?}")))
}

pub use cache::{
    CachedSessionStore, CachedUserStore, SessionCacheOptions, SessionCacheStatistics, SingleProcess, UserCacheOptions,
};
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresOptions, PostgresRevocations, PostgresStore};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisOptions, RedisRevocations, RedisStore};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteChanges, SqliteOptions, SqliteStore, CHANGE_POLL_INTERVAL};
