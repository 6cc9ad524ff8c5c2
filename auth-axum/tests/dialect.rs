//! `AuthRouter::dialect`: a dialect's routes, request shapes, successes and errors are what the
//! router serves — including the errors of the router's own layers (the access-token check, the
//! body limit) and fallbacks.

use std::sync::Arc;

use auth_axum::AuthRouter;
use auth_core::{Auth, AuthConfig, LoginOutcome};
use auth_http::{Canonical, Dialect, ErrorBody, HttpResponse, Input, Operation, Reply, RequestParts, Route};
use auth_storage::MemoryStore;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// Canonical flows at other paths, with `{"ok":…,"data"|"err":…}` envelopes and a login body
/// that names the user `account`.
#[derive(Debug)]
struct Envelope;

static ROUTES: &[Route] = &[
    Route::new(Method::POST, "/signup", Operation::Register),
    Route::new(Method::POST, "/signin", Operation::Login),
    Route::new(Method::GET, "/whoami", Operation::Me),
];

impl Dialect for Envelope {
    fn name(&self) -> &'static str {
        "envelope"
    }

    fn routes(&self) -> &[Route] {
        ROUTES
    }

    fn parse(&self, op: Operation, request: &RequestParts<'_>) -> Result<Input, ErrorBody> {
        if op == Operation::Login {
            let body: Value = auth_http::json_body(request.headers, request.body)?;
            let login = json!({"username": body["account"], "password": body["secret"]});
            return Ok(Input::Login(serde_json::from_value(login).map_err(|_| ErrorBody::unsupported_media_type())?));
        }
        Canonical.parse(op, request)
    }

    fn render(&self, reply: Reply) -> HttpResponse {
        let data = match reply {
            Reply::Registered(tokens) => json!({"token": tokens.access_token, "name": tokens.user.username}),
            Reply::LoggedIn(LoginOutcome::Authenticated(tokens)) => json!({"token": tokens.access_token}),
            Reply::Me(user) => json!({"name": user.username}),
            other => json!({"other": format!("{other:?}")}),
        };
        auth_http::json_response(StatusCode::OK, &json!({"ok": true, "data": data}))
    }

    fn render_error(&self, error: &ErrorBody) -> HttpResponse {
        let mut response =
            auth_http::json_response(error.status, &json!({"ok": false, "err": error.code, "msg": error.message}));
        error.add_headers(response.headers_mut());
        response
    }
}

/// A service over a fresh memory store, with a cheap Argon2 for tests.
fn new_auth() -> Auth {
    let mut config = AuthConfig::new(vec![3u8; 32]).unwrap();
    config.argon2 = auth_core::Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    Auth::builder(config).stores(Arc::new(MemoryStore::new())).build().unwrap()
}

fn app() -> Router {
    let auth = new_auth();
    Router::new().nest("/api/auth", AuthRouter::new(auth).dialect(Arc::new(Envelope)).body_limit(1024).build())
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn the_dialect_routes_parses_and_renders_successes() {
    let app = app();
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/auth/signup",
        Some(json!({"username": "dee", "password": "violet-Kettle-93"})),
        None,
    )
    .await;
    assert_eq!((status, body["ok"].clone(), body["data"]["name"].clone()), (StatusCode::OK, json!(true), json!("dee")));

    let (status, body) = call(
        &app,
        Method::POST,
        "/api/auth/signin",
        Some(json!({"account": "dee", "secret": "violet-Kettle-93"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["data"]["token"].as_str().unwrap().to_owned();

    let (status, body) = call(&app, Method::GET, "/api/auth/whoami", None, Some(&token)).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ok": true, "data": {"name": "dee"}})));
}

#[tokio::test]
async fn every_error_is_in_the_dialects_envelope() {
    let app = app();
    // The core's error.
    let wrong = json!({"account": "nobody", "secret": "wrong-password-1"});
    let (status, body) = call(&app, Method::POST, "/api/auth/signin", Some(wrong), None).await;
    assert_eq!((status, body["err"].clone()), (StatusCode::UNAUTHORIZED, json!("invalid_credentials")));
    // The access-token layer's.
    let (status, body) = call(&app, Method::GET, "/api/auth/whoami", None, None).await;
    assert_eq!(
        (status, body["ok"].clone(), body["err"].clone()),
        (StatusCode::UNAUTHORIZED, json!(false), json!("unauthorized"))
    );
    // The body limit's.
    let big = json!({"account": "x".repeat(2048), "secret": "y"});
    let (status, body) = call(&app, Method::POST, "/api/auth/signin", Some(big), None).await;
    assert_eq!((status, body["err"].clone()), (StatusCode::PAYLOAD_TOO_LARGE, json!("payload_too_large")));
    // The fallbacks'. Canonical paths the dialect does not list are not served.
    let (status, body) = call(&app, Method::POST, "/api/auth/login", Some(json!({})), None).await;
    assert_eq!((status, body["err"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));
    let (status, body) = call(&app, Method::DELETE, "/api/auth/signin", None, None).await;
    assert_eq!((status, body["err"].clone()), (StatusCode::METHOD_NOT_ALLOWED, json!("method_not_allowed")));
}

#[tokio::test]
async fn two_routers_in_two_dialects_share_one_user_base() {
    let auth = new_auth();
    let app = Router::new()
        .nest("/api/auth", AuthRouter::new(auth.clone()).build())
        .nest("/api/plain", AuthRouter::new(auth).dialect(Arc::new(auth_http::dialects::Plain)).build());
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/auth/register",
        Some(json!({"username": "mia", "password": "violet-Kettle-93"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/plain/login",
        Some(json!({"username": "mia", "password": "violet-Kettle-93"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string() && body.get("user").is_none(), "the plain body: {body}");
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/plain/login",
        Some(json!({"username": "mia", "password": "wrong-one-123"})),
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, json!({"error": "Invalid username or password"})));
}

#[tokio::test]
async fn canonical_and_res_err_over_one_auth_while_clients_migrate() {
    let auth = new_auth();
    let res_err = auth_http::dialects::ResErr;
    let app = Router::new()
        .nest("/api/auth", AuthRouter::new(auth.clone()).build())
        .nest(res_err.mount(), AuthRouter::new(auth).dialect(Arc::new(res_err)).build());
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/auth/register",
        Some(json!({"email": "mia@example.com", "password": "violet-Kettle-93"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/auth/login",
        Some(json!({"type": "email", "account": "mia@example.com", "psw": "violet-Kettle-93"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["res"]["token"].as_str().expect("the seed's token").to_owned();
    // A token from either router works on the other's routes.
    let (status, body) = call(&app, Method::GET, "/api/auth/me", None, Some(&token)).await;
    assert_eq!((status, body["email"].as_str()), (StatusCode::OK, Some("mia@example.com")));
}

#[test]
#[should_panic(expected = "dialect envelope cannot carry tokens in cookies")]
fn cookie_transport_with_a_dialect_that_cannot_carry_cookies_fails_at_startup() {
    let mut config = AuthConfig::new(b"a secret of at least thirty-two bytes!".to_vec()).unwrap();
    config.browser.token_transport = auth_core::TokenTransport::Cookie;
    let auth = Auth::builder(config).stores(Arc::new(MemoryStore::new())).build().unwrap();
    let _: Router = AuthRouter::new(auth).dialect(Arc::new(Envelope)).build();
}
