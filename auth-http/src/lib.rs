//! # auth-http
//!
//! The framework-neutral HTTP layer of `auth-core`: what every web-framework adapter
//! (`auth-axum`, and the planned actix-web one) shares, so that they only extract, route and
//! layer.
//!
//! - [`Dialect`]: one wire contract — its [`Route`] table, how a request becomes a typed
//!   [`Input`], how a [`Reply`] and an [`ErrorBody`] become a response. [`Canonical`] is the API
//!   of `docs/API.md`; other dialects serve other services' contracts over the same flows.
//! - [`execute`] runs an [`Input`] on the [`Auth`](auth_core::Auth) service; [`handle`] is
//!   parse → execute → render for one request.
//! - [`keys`]: the JWK Set and token introspection (RFC 7517, RFC 7662), the same for every
//!   dialect.
//! - [`ErrorBody`] and [`status_of`]: every error as status, stable code, message and details.
//! - [`request_context`] / [`client_ip`]: the client's address, read safely behind trusted
//!   proxies; [`json_body`]: JSON bodies with the API's 400/415 errors.
//!
//! It depends on `http` and `serde_json`, never on a web framework.
//!
//! ```
//! use auth_http::{handle, Canonical, Dialect, Operation, RequestParts};
//! use auth_core::{Auth, AuthConfig, RequestContext};
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = Auth::builder(AuthConfig::new(b"a secret of at least thirty-two bytes!".to_vec())?)
//!     .stores(Arc::new(auth_storage::MemoryStore::new()))
//!     .build()?;
//!
//! // What an adapter does for `POST /login`, once it has routed the request by
//! // `Canonical.routes()` and read its body.
//! let mut headers = http::HeaderMap::new();
//! headers.insert(http::header::CONTENT_TYPE, "application/json".parse()?);
//! let body = br#"{"username":"nobody","password":"wrong-password-123"}"#;
//! let request = RequestParts { headers: &headers, query: None, body, path_params: &[] };
//! let ctx = RequestContext::new(None, None);
//! let response = handle(&auth, &Canonical, Operation::Login, &request, &ctx, None).await;
//! assert_eq!(response.status(), 401);
//! let body: serde_json::Value = serde_json::from_slice(response.body())?;
//! assert_eq!(body["error"]["code"], "invalid_credentials");
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
pub mod browser;
mod client;
mod cors;
mod dialect;
pub mod dialects;
mod dispatch;
mod error;
pub mod keys;
#[cfg(feature = "openapi")]
#[cfg_attr(docsrs, doc(cfg(feature = "openapi")))]
pub mod openapi;
pub mod wire;

pub use body::{is_json, json_body, optional_json_body, parse_json};
pub use client::{access_token, bearer_token, client_ip, request_context, MFA_CODE_HEADER};
pub use cors::{
    AllowedOrigins, CORS_ALLOWED_METHODS, CORS_EXPOSED_HEADERS, CORS_MAX_AGE_SECONDS, CORS_REQUEST_HEADERS,
};
pub use dialect::{
    empty_response, json_response, Canonical, Dialect, HttpResponse, Input, Operation, Reply, RequestParts, Route,
    CANONICAL_ROUTES,
};
pub use dispatch::{error_response, execute, handle, keep_missing_headers, rerender_error};
pub use error::{status_of, ErrorBody};
