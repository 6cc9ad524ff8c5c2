//! # auth-axum
//!
//! The [axum] adapter of `auth-core`: the HTTP API as a router to nest, a tower layer that
//! protects a host's own routes, and extractors for handlers.
//!
//! - [`AuthRouter`] / [`auth_router`]: every route of the API (`/register`, `/login`,
//!   `/refresh`, `/logout`, `/me`, `/me/preferences`, `/password/change`, `/sessions`,
//!   `/captcha/status`, `/captcha`, `/email/code`, `/email/verify`, `/password/forgot`,
//!   `/password/reset`), errors rendered exactly as the API's error body — 400
//!   `invalid_request` for malformed JSON, 413, 415, JSON 404/405 — never axum's plain-text
//!   rejections.
//! - [`RequireAuth`] (with [`RequireAuth::with_role`]) and [`OptionalAuth`]: tower layers that
//!   verify `Authorization: Bearer` access tokens and their session on every request.
//! - `JwksAuth` (feature `jwks`): the layer for *other* services of a system, which verify
//!   access tokens with the auth server's published keys (`GET /.well-known/jwks.json`) and
//!   hold no secret and no store.
//! - Extractors: [`AuthClaims`] (free), [`CurrentUser`] (one user lookup), [`OptionalUser`],
//!   [`ClientContext`].
//! - [`AuthRouter::dialect`]: serve another wire contract ([`Dialect`], from `auth-http`, which
//!   holds everything here that is not axum: the route table, parsing, rendering, errors, the
//!   client IP); [`render_errors_with`]: swap only the error envelope.
//!
//! ```
//! use std::{net::SocketAddr, sync::Arc};
//! use auth_axum::{auth_router, CurrentUser, RequireAuth};
//! use auth_core::{Auth, AuthConfig};
//! use auth_storage::MemoryStore;
//! use axum::{routing::get, Json, Router};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = Auth::builder(AuthConfig::new(std::env::var("JWT_SECRET")?)?)
//!     .stores(Arc::new(MemoryStore::new()))
//!     .build()?;
//!
//! let app = Router::new()
//!     .route("/api/profile", get(|CurrentUser(user): CurrentUser| async move { Json(user) }))
//!     .route_layer(RequireAuth::new(auth.clone()))
//!     .nest("/api/auth", auth_router(auth));
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```

mod error;
mod extract;
#[cfg(feature = "jwks")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks")))]
mod jwks;
mod middleware;
mod router;

pub use auth_http::{client_ip, status_of, Canonical, Dialect, ErrorBody};
pub use error::{dialect_errors, render_errors_with, ApiError, ErrorRenderer};
pub use extract::{AuthClaims, ClientContext, CurrentUser, JsonBody, OptionalJsonBody, OptionalUser};
#[cfg(feature = "jwks")]
pub use jwks::{JwksAuth, JwksAuthService, JwksError, JwksRejection};
pub use middleware::{AuthMiddleware, OptionalAuth, RequireAuth};
pub use router::{auth_router, cors_layer, jwks_router, AuthRouter, DEFAULT_BODY_LIMIT};
