//! A resource server: a second service of a user's system that trusts the auth server's access
//! tokens without holding any secret. It verifies them with the auth server's published keys
//! (`GET /.well-known/jwks.json`, through `auth_axum::JwksAuth`) and, on the one route where a
//! revoked session must be refused at once, asks the auth server (`POST /api/auth/introspect`,
//! RFC 7662).
//!
//! Routes:
//! - `GET /health`: open.
//! - `GET /api/orders`: any valid access token (signature, `kid`, `typ`, `iss`, `aud`, `exp`,
//!   `nbf` checked locally; a session revoked at the auth server stays accepted until `exp`).
//! - `POST /api/orders`: also introspected, so a logged-out session is refused at once (401
//!   `session_revoked`); only served when an introspection client is configured (405 otherwise).
//!
//! ```no_run
//! use auth_example_resource_server::{app, Introspection};
//! use auth_axum::JwksAuth;
//!
//! # async fn run() -> anyhow::Result<()> {
//! let jwks = JwksAuth::new("http://127.0.0.1:8080/.well-known/jwks.json", "auth", "api");
//! let introspection = Introspection::new("http://127.0.0.1:8080/api/auth/introspect", "orders", "a-secret-of-at-least-32-bytes-xxxxx")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! axum::serve(listener, app(jwks, Some(introspection))).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use auth_axum::{AuthClaims, JwksAuth};
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// A token-introspection client (RFC 7662) of the auth server.
#[derive(Clone)]
pub struct Introspection {
    url: String,
    client_id: String,
    secret: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection").field("url", &self.url).field("client_id", &self.client_id).finish()
    }
}

impl Introspection {
    /// A client of `url` (`http://auth:8080/api/auth/introspect`) authenticating with HTTP Basic
    /// as `client_id` / `secret` (the auth server's `AUTH_INTROSPECTION_CLIENT_ID` /
    /// `AUTH_INTROSPECTION_SECRET`).
    ///
    /// # Errors
    /// The HTTP client cannot be built (no TLS backend).
    pub fn new(
        url: impl Into<String>,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> anyhow::Result<Self> {
        // No redirects: a redirect would send the token to wherever it points.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { url: url.into(), client_id: client_id.into(), secret: secret.into(), http })
    }

    /// Whether the auth server says `token` is active now.
    ///
    /// # Errors
    /// The auth server cannot be reached or does not answer 200 with `active`.
    pub async fn is_active(&self, token: &str) -> anyhow::Result<bool> {
        let response = self
            .http
            .post(&self.url)
            .basic_auth(&self.client_id, Some(&self.secret))
            .form(&[("token", token)])
            .send()
            .await?;
        anyhow::ensure!(response.status() == reqwest::StatusCode::OK, "introspection answered {}", response.status());
        let body: Value = response.json().await?;
        body["active"].as_bool().ok_or_else(|| anyhow::anyhow!("introspection answered no `active`"))
    }
}

/// An error in the auth API's body shape.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// Refuses the request unless introspection says its token is active.
async fn require_active(introspection: Arc<Introspection>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = token else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "an access token is required");
    };
    match introspection.is_active(&token).await {
        Ok(true) => next.run(request).await,
        Ok(false) => error(StatusCode::UNAUTHORIZED, "session_revoked", "the session has ended"),
        Err(err) => {
            tracing::warn!(error = %err, "token introspection failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "introspection_unavailable", "the auth server cannot be asked")
        }
    }
}

/// The app: `jwks` protects `/api/orders`; with `introspection`, `POST /api/orders` is also
/// checked against the auth server's sessions.
pub fn app(jwks: JwksAuth, introspection: Option<Introspection>) -> Router {
    let mut orders = Router::new().route("/api/orders", get(list_orders));
    if let Some(introspection) = introspection {
        let introspection = Arc::new(introspection);
        orders = orders.merge(Router::new().route("/api/orders", axum::routing::post(place_order)).route_layer(
            middleware::from_fn(move |request: Request, next: Next| {
                require_active(introspection.clone(), request, next)
            }),
        ));
    }
    // The JWKS layer runs first (outermost), then introspection for the routes that have it.
    Router::new().merge(orders.route_layer(jwks)).route("/health", get(|| async { "ok" }))
}

async fn list_orders(AuthClaims(claims): AuthClaims) -> Json<Value> {
    Json(json!({ "user_id": claims.sub, "role": claims.role, "orders": [] }))
}

async fn place_order(AuthClaims(claims): AuthClaims) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(json!({ "user_id": claims.sub, "placed": true })))
}
