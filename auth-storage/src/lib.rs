//! # auth-storage
//!
//! Store backends for [`auth_core`]: each implements [`UserStore`](auth_core::UserStore),
//! [`TokenStore`](auth_core::TokenStore) and/or [`RateLimiter`](auth_core::RateLimiter).
//!
//! | feature | type | users | tokens | limits | for |
//! |---|---|---|---|---|---|
//! | `memory` (default) | [`MemoryStore`] | ✓ | ✓ | ✓ | tests, development, one process |
//! | `sqlite` | `SqliteStore` | ✓ | ✓ | | the embedded default: one file, nothing to install |
//! | `postgres` | `PostgresStore` | ✓ | ✓ | | several instances: users and sessions in one database |
//! | `redis` | `RedisStore` | | ✓ | ✓ | several instances: sessions, codes and limits shared in Redis ([key layout](crate::redis)), with a per-instance [session cache](crate::redis#session-cache) kept exact by pub/sub |
//!
//! SQL backends embed their migrations (`sqlx::migrate!`) and run them on `connect`; every query
//! uses bind parameters. Only SHA-256 hashes of refresh tokens and one-time secrets are stored.
//! `tests/conformance.rs` runs one suite of store tests against every backend.
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::{Auth, AuthConfig};
//! use auth_storage::MemoryStore;
//!
//! let store = Arc::new(MemoryStore::new());
//! let auth = Auth::builder(AuthConfig::new(vec![7u8; 32]).unwrap())
//!     .stores(store.clone())
//!     .rate_limiter(store)
//!     .build()
//!     .unwrap();
//! # let _ = auth;
//! ```
//!
//! With the `sqlite` feature, `SqliteStore::connect("sqlite://auth.db")` opens (and creates)
//! the database; see its docs.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod detached;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
mod secret;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "memory")]
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "redis")]
pub use redis::{RedisOptions, RedisStore, SessionCacheStatistics};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore};
