//! # auth-actix
//!
//! The [actix-web] 4 adapter of `auth-core`: the HTTP API as services to mount under a path of
//! the host's choosing, middleware that protects a host's own routes, and extractors for
//! handlers. It is the counterpart of `auth-axum`, and answers every request of the API with the
//! same status, headers and body bytes: everything that is not actix-web — the route table,
//! parsing, rendering, errors, cookies, the client IP — is `auth-http`'s, shared by both.
//!
//! - [`AuthScope`] / [`routes`]: every route of the API (`/register`, `/login`, `/refresh`,
//!   `/logout`, `/me`, `/sessions`, the admin API, second factors, … in any [`Dialect`]), the JWK
//!   Set at `/.well-known/jwks.json`, `/introspect` (RFC 7662) when configured and, with feature
//!   `openapi`, `/openapi.json`; errors rendered in the dialect's envelope — 404 `not_found`,
//!   405 `method_not_allowed`, 400 `invalid_request` for malformed JSON, 413, 415, 429 — never
//!   actix-web's plain-text ones; `Cache-Control: no-store` and `Pragma: no-cache` on every
//!   answer; CORS for `AuthConfig::browser.allowed_origins`.
//! - [`RequireAuth`] (with [`RequireAuth::with_role`]) and [`OptionalAuth`]: middleware
//!   ([`Transform`](actix_web::dev::Transform)) that verifies `Authorization: Bearer` access
//!   tokens (RFC 6750) and their session on every request.
//! - Extractors ([`FromRequest`](actix_web::FromRequest)): [`AuthClaims`] (the verified claims,
//!   free), [`CurrentUser`] (one user lookup), [`OptionalUser`], [`ClientContext`] (the client IP
//!   behind trusted proxies, the `User-Agent`).
//! - [`dialect_errors`] / [`render_errors_with`]: middleware that renders the errors of the host's
//!   protected routes in the API's dialect or an envelope of the host's; [`Cors`]: the API's CORS
//!   policy for the host's own routes; [`jwks_resource`]: the JWK Set at the site root.
//!
//! The client IP of sessions, audit events and rate limits is the connection's peer
//! ([`HttpRequest::peer_addr`](actix_web::HttpRequest::peer_addr)); only when it is one of
//! `AuthConfig::trusted_proxies` is the forwarding header of `AuthConfig::client_ip_header` read
//! ([`client_ip`]). actix-web's `ConnectionInfo::realip_remote_addr`, which believes any
//! client's headers, is never used.
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{test, web, App, HttpResponse};
//! use auth_actix::{AuthScope, CurrentUser, RequireAuth};
//! use auth_core::{Auth, AuthConfig};
//! use auth_storage::MemoryStore;
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = Auth::builder(AuthConfig::new(b"a secret of at least thirty-two bytes!".to_vec())?)
//!     .stores(Arc::new(MemoryStore::new()))
//!     .build()?;
//!
//! let app = App::new()
//!     .service(AuthScope::new(auth.clone()).scope("/api/auth"))
//!     .service(
//!         web::resource("/api/profile")
//!             .wrap(RequireAuth::new(auth.clone()))
//!             .get(|CurrentUser(user): CurrentUser| async move { HttpResponse::Ok().json(user.name()) }),
//!     );
//!
//! let app = test::init_service(app).await;
//! let request = test::TestRequest::get().uri("/api/auth/no-such-route").to_request();
//! let response = test::call_service(&app, request).await;
//! assert_eq!(response.status(), 404);
//! let body: serde_json::Value = test::read_body_json(response).await;
//! assert_eq!(body["error"]["code"], "not_found");
//!
//! let response = test::call_service(&app, test::TestRequest::get().uri("/api/profile").to_request()).await;
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers().get("www-authenticate").unwrap(), "Bearer");
//! # Ok(()) }
//! ```
//!
//! Serving it (actix-web builds the app once per worker thread; build the scope once and clone
//! it into the factory):
//!
//! ```no_run
//! use std::sync::Arc;
//! use actix_web::{web, App, HttpServer};
//! use auth_actix::{AuthScope, CurrentUser, RequireAuth};
//! use auth_core::{Auth, AuthConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let auth = Auth::builder(AuthConfig::new(std::env::var("JWT_SECRET")?)?)
//!         .stores(Arc::new(auth_storage::MemoryStore::new()))
//!         .build()?;
//!     // Built on this runtime, `Auth` runs its background work (audit writes, mail sent after
//!     // the answer) here (`AuthBuilder::runtime`), not on the workers' runtimes, which actix-web
//!     // drops when the server stops.
//!     let api = AuthScope::new(auth.clone());
//!     let server = {
//!         let auth = auth.clone();
//!         HttpServer::new(move || {
//!             App::new().service(api.scope("/api/auth")).service(
//!                 web::resource("/api/profile")
//!                     .wrap(RequireAuth::new(auth.clone()))
//!                     .get(|CurrentUser(user): CurrentUser| async move { user.name().to_owned() }),
//!             )
//!         })
//!     };
//!     server.bind("127.0.0.1:8080")?.run().await?;
//!     auth.flush_audit().await;
//!     Ok(())
//! }
//! ```
//!
//! The example server `examples/actix-server` (`auth-actix-server`) serves the same app as the
//! axum one, on the same `AUTH_*` configuration.
//!
//! [actix-web]: https://actix.rs

#![cfg_attr(docsrs, feature(doc_cfg))]

mod convert;
mod cors;
mod error;
mod extract;
mod middleware;
mod scope;

pub use auth_http::{client_ip, status_of, Canonical, Dialect, ErrorBody};
pub use convert::to_actix;
pub use cors::{cors, Cors, CorsMiddleware};
pub use error::{dialect_errors, render_errors_with, ApiError, ErrorRenderer, RenderErrors, RenderErrorsMiddleware};
pub use extract::{AuthClaims, ClientContext, CurrentUser, OptionalUser};
pub use middleware::{AuthMiddleware, OptionalAuth, RequireAuth};
pub use scope::{jwks_resource, routes, AuthScope, DEFAULT_BODY_LIMIT};
