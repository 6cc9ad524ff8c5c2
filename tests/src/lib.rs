//! Test harness: starts the example server in-process on `127.0.0.1:0` over a SQLite file in a
//! temporary directory, and a small JSON client for it.
//!
//! The server under test is the axum example (`auth-example-server`) or, with
//! `AUTH_E2E_ADAPTER=actix`, the actix-web one (`auth-actix-server`): the same configuration and
//! routes on the other adapter. `scripts/test.sh` runs this suite once for each, so a difference
//! between the adapters is a failing test.

use std::net::SocketAddr;

pub use auth_test_support::{recording, siteverify, smtp};

use std::sync::Arc;

use auth_core::{Auth, ManualClock};
use auth_example_server::{build_auth_with_clock, ServerConfig};
use auth_http::Dialect;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The JWT secret of test servers (tests forge tokens with it).
pub const JWT_SECRET: &str = "e2e-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
/// The `kid` of the HS256 key made from [`JWT_SECRET`]: forged tokens name it, so that what
/// refuses them is what the test is about, not a missing or unknown `kid`.
#[must_use]
pub fn hs256_kid() -> String {
    auth_core::keys::JwtKey::hs256(JWT_SECRET.as_bytes()).expect("a long enough secret").kid().to_owned()
}

/// The framework adapter a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// `auth-axum`, in `auth-example-server`.
    Axum,
    /// `auth-actix`, in `auth-actix-server`.
    Actix,
}

impl Adapter {
    /// The adapter of this run: `AUTH_E2E_ADAPTER` (`axum`, the default, or `actix`).
    ///
    /// # Panics
    /// On another value: a typo must not quietly test the default again.
    #[must_use]
    pub fn under_test() -> Self {
        match std::env::var("AUTH_E2E_ADAPTER").as_deref() {
            Err(_) | Ok("" | "axum") => Self::Axum,
            Ok("actix") => Self::Actix,
            Ok(other) => panic!("AUTH_E2E_ADAPTER={other}: expected axum or actix"),
        }
    }
}

/// Serves the example app of [`Adapter::under_test`] for `auth` in `dialect` on `listener` until
/// `shutdown` completes: `auth_example_server::serve` or `auth_actix_server::serve`.
pub fn spawn_app(
    listener: tokio::net::TcpListener,
    auth: Auth,
    dialect: Arc<dyn Dialect>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<std::io::Result<()>> {
    match Adapter::under_test() {
        Adapter::Axum => tokio::spawn(auth_example_server::serve(
            listener,
            auth_example_server::app_with_dialect(auth, dialect),
            shutdown,
        )),
        Adapter::Actix => tokio::spawn(auth_actix_server::serve(listener, auth, dialect, shutdown)),
    }
}

/// [`spawn_app`] in the canonical dialect, until the test ends.
pub fn spawn_canonical_app(listener: tokio::net::TcpListener, auth: Auth) -> JoinHandle<std::io::Result<()>> {
    spawn_app(listener, auth, Arc::new(auth_http::Canonical), std::future::pending())
}

/// A password that passes the default policy.
pub const PASSWORD: &str = "violet-Kettle-93-orbit";

/// A running example server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's service, for setup that has no HTTP route (disable a user, create an admin).
    pub auth: Auth,
    /// The data directory (SQLite file `auth.db`).
    pub dir: TempDir,
    /// The server's clock: move it with `advance` instead of sleeping through a window.
    pub clock: Arc<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    client: reqwest::Client,
}

impl TestServer {
    /// A server on a fresh SQLite file with default settings.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server on a fresh SQLite file with extra `AUTH_*` variables. Rate limits are off unless
    /// `vars` turn them on (`AUTH_RATE_LIMITS=default`): tests of other behaviour make more
    /// requests from 127.0.0.1 than the default limits allow.
    pub async fn start_with(vars: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"), vars).await
    }

    /// A server on the SQLite file in `dir` (for restarts).
    pub async fn start_in(dir: TempDir, vars: &[(&str, &str)]) -> Self {
        let db = format!("sqlite://{}", dir.path().join("auth.db").display());
        let mut all: Vec<(String, String)> = vec![
            ("AUTH_JWT_SECRET".into(), JWT_SECRET.into()),
            ("AUTH_DATABASE_URL".into(), db),
            ("AUTH_BIND".into(), "127.0.0.1:0".into()),
            ("AUTH_RATE_LIMITS".into(), "off".into()),
            // Generated signing keys go with the database, never into the working directory.
            ("AUTH_DATA_DIR".into(), dir.path().display().to_string()),
        ];
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config =
            ServerConfig::from_lookup(|name| all.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
                .expect("test configuration");
        let clock = Arc::new(ManualClock::new());
        let auth = build_auth_with_clock(&config, clock.clone()).await.expect("build auth");
        let listener = tokio::net::TcpListener::bind(config.bind).await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = spawn_app(listener, auth.clone(), config.api_dialect.clone(), async {
            let _ = stopped.await;
        });
        Self {
            base: format!("http://{addr}"),
            auth,
            dir,
            clock,
            stop: Some(stop),
            task: Some(task),
            client: reqwest::Client::builder().user_agent("e2e-tests/1.0").build().expect("client"),
        }
    }

    /// Stops the server gracefully and returns its data directory.
    pub async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server io");
        }
        self.dir
    }

    /// A request to `path` under the server root (`/api/auth/login`, `/api/protected`).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// `POST /api/auth{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        Resp::from(self.request(reqwest::Method::POST, &format!("/api/auth{path}")).json(&body).send().await).await
    }

    /// An authenticated request to any path, with an optional JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> Resp {
        let mut req = self.request(method, path).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        Resp::from(req.send().await).await
    }

    /// `GET path` with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    /// Registers `username` with [`PASSWORD`] and returns the Tokens body (asserting 201).
    pub async fn register(&self, username: &str) -> Value {
        let r = self.post("/register", serde_json::json!({"username": username, "password": PASSWORD})).await;
        assert_eq!(r.status, 201, "register {username}: {}", r.body);
        r.body
    }

    /// Logs `username` in with [`PASSWORD`] and returns the Tokens body (asserting 200).
    pub async fn login(&self, username: &str) -> Value {
        let r = self.post("/login", serde_json::json!({"username": username, "password": PASSWORD})).await;
        assert_eq!(r.status, 200, "login {username}: {}", r.body);
        r.body
    }
}

/// A response: status, JSON body (`Null` when empty) and headers.
#[derive(Debug)]
pub struct Resp {
    /// HTTP status code.
    pub status: u16,
    /// The parsed body.
    pub body: Value,
    /// Response headers.
    pub headers: HeaderMap,
}

impl Resp {
    /// Reads a response; panics on transport errors or a non-JSON, non-empty body.
    pub async fn from(res: reqwest::Result<reqwest::Response>) -> Self {
        let res = res.expect("request failed");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("status {status}: body is not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        Self { status, body, headers }
    }

    /// [`Resp::from`] for a request future.
    pub async fn from_future(res: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>) -> Self {
        Self::from(res.await).await
    }

    /// The API error code (`error.code`), or "" for a success.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// The access token of a Tokens body.
pub fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().expect("access_token")
}

/// The refresh token of a Tokens body.
pub fn refresh(tokens: &Value) -> &str {
    tokens["refresh_token"].as_str().expect("refresh_token")
}

/// The keys of a JSON object, sorted; panics on anything else.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> =
        value.as_object().unwrap_or_else(|| panic!("an object: {value}")).keys().cloned().collect();
    keys.sort();
    keys
}

/// The payload (claims) of a JWT, decoded without checking anything.
pub fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON payload")
}
