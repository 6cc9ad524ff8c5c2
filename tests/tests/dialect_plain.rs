//! `AUTH_API_DIALECT=plain`: seed 002's frontend contract (`../shared/seeds/002_*.txt`) over
//! real HTTP, with the seed's own `TURNSTILE_*` variables and a local Turnstile siteverify.
//! Every route and every error the seed shows, plus the canonical routes in its style.

use auth_e2e_tests::siteverify::Siteverify;
use auth_e2e_tests::{TestServer, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

async fn server(siteverify: &Siteverify, turnstile: bool) -> TestServer {
    TestServer::start_with(&[
        ("AUTH_API_DIALECT", "plain"),
        ("TURNSTILE_ENABLED", if turnstile { "true" } else { "false" }),
        ("TURNSTILE_ALLOWED_HOSTNAME", "app.example.com"),
        ("AUTH_CAPTCHA_SECRET", "s3cret-key"),
        ("AUTH_CAPTCHA_VERIFY_URL", siteverify.url.as_str()),
        ("AUTH_CAPTCHA_TIMEOUT", "1"),
    ])
    .await
}

fn credentials(username: &str, password: &str, token: Option<&str>) -> Value {
    let mut body = json!({"username": username, "password": password});
    if let Some(token) = token {
        body["turnstile_token"] = json!(token);
    }
    body
}

/// The seed's success body: exactly these keys, these types, `expires_in` 3600.
fn assert_seed_tokens(body: &Value) {
    let keys: Vec<&str> = body.as_object().expect("an object").keys().map(String::as_str).collect();
    assert_eq!(keys, ["access_token", "expires_in", "refresh_token"], "{body}");
    assert!(body["access_token"].as_str().is_some_and(|t| t.split('.').count() == 3), "a JWT: {body}");
    assert!(body["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["expires_in"], 3600);
}

#[tokio::test]
async fn register_and_login_answer_the_seeds_token_body_with_200() {
    let siteverify = Siteverify::start().await;
    let s = server(&siteverify, true).await;
    let r = s.post("/register", credentials("user_123", PASSWORD, Some("ok"))).await;
    assert_eq!(r.status, 200, "the seed answers 200, not 201: {}", r.body);
    assert_seed_tokens(&r.body);
    let r = s.post("/login", credentials("user_123", PASSWORD, Some("ok"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_seed_tokens(&r.body);
    // The access token works on host routes and the other canonical routes, bare JSON.
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    let me = s.get("/api/auth/me", &access).await;
    assert_eq!((me.status, me.body["username"].clone()), (200, json!("user_123")));
    assert_eq!(s.get("/api/protected", &access).await.status, 200);
    // Refresh answers the same three fields.
    let refreshed = s.post("/refresh", json!({"refresh_token": r.body["refresh_token"]})).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_seed_tokens(&refreshed.body);
    // The token was checked against the siteverify with the seed's secret.
    assert!(siteverify
        .received()
        .iter()
        .all(|call| call.fields.get("secret").map(String::as_str) == Some("s3cret-key")));
}

#[tokio::test]
async fn the_seeds_errors_have_its_statuses_and_messages() {
    let siteverify = Siteverify::start().await;
    let s = server(&siteverify, true).await;
    assert_eq!(s.post("/register", credentials("user_123", PASSWORD, Some("ok"))).await.status, 200);
    let cases = [
        // 400 Invalid captcha: missing, empty, refused, or for another hostname.
        ("/login", credentials("user_123", PASSWORD, None), 400, "Invalid captcha"),
        ("/login", credentials("user_123", PASSWORD, Some("")), 400, "Invalid captcha"),
        ("/register", credentials("user_456", PASSWORD, Some("fail")), 400, "Invalid captcha"),
        ("/login", credentials("user_123", PASSWORD, Some("other-host")), 400, "Invalid captcha"),
        // 400 Invalid request body: missing or ill-typed fields.
        ("/register", json!({"username": "user_456", "turnstile_token": "ok"}), 400, "Invalid request body"),
        ("/login", json!({"username": 12, "password": PASSWORD, "turnstile_token": "ok"}), 400, "Invalid request body"),
        // 401 for a wrong password and an unknown account alike.
        ("/login", credentials("user_123", "wrong-password-1", Some("ok")), 401, "Invalid username or password"),
        ("/login", credentials("nobody_here", "wrong-password-1", Some("ok")), 401, "Invalid username or password"),
        // 500 Failed to verify captcha: siteverify failing or too slow.
        ("/login", credentials("user_123", PASSWORD, Some("http500")), 500, "Failed to verify captcha"),
        ("/register", credentials("user_789", PASSWORD, Some("slow")), 500, "Failed to verify captcha"),
        // Not in the seed: the seed's envelope, a sensible status and sentence.
        ("/register", credentials("user_123", PASSWORD, Some("ok")), 409, "Username already exists"),
    ];
    for (path, body, status, message) in cases {
        let r = s.post(path, body.clone()).await;
        assert_eq!((r.status, r.body.clone()), (status, json!({"error": message})), "{path} {body}");
    }
    // Malformed JSON and a body that is not JSON.
    for (content_type, raw) in [("application/json", "{\"username\":"), ("text/plain", "username=x")] {
        let r = s.request(Method::POST, "/api/auth/login").header("content-type", content_type).body(raw).send().await;
        let r = auth_e2e_tests::Resp::from(r).await;
        assert_eq!((r.status, r.body), (400, json!({"error": "Invalid request body"})), "{content_type}");
    }
}

#[tokio::test]
async fn with_turnstile_off_the_token_may_be_absent_or_empty() {
    let siteverify = Siteverify::start().await;
    let s = server(&siteverify, false).await;
    assert_eq!(s.post("/register", credentials("user_123", PASSWORD, None)).await.status, 200);
    assert_eq!(s.post("/login", credentials("user_123", PASSWORD, Some(""))).await.status, 200);
    assert!(siteverify.received().is_empty(), "nothing was verified");
}

#[tokio::test]
async fn host_routes_and_unknown_routes_answer_in_the_seeds_envelope() {
    let siteverify = Siteverify::start().await;
    let s = server(&siteverify, false).await;
    let r = auth_e2e_tests::Resp::from(s.request(Method::GET, "/api/protected").send().await).await;
    assert_eq!((r.status, r.body), (401, json!({"error": "Unauthorized"})));
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = s.post("/no-such-route", json!({})).await;
    assert_eq!((r.status, r.body), (404, json!({"error": "Not found"})));
    assert_eq!(
        (&r.headers["cache-control"], &r.headers["pragma"]),
        (&"no-store".parse().unwrap(), &"no-cache".parse().unwrap())
    );
    let r = auth_e2e_tests::Resp::from(s.request(Method::GET, "/api/auth/login").send().await).await;
    assert_eq!((r.status, r.body), (405, json!({"error": "Method not allowed"})));
    assert_eq!(r.headers["allow"], "POST");
}

#[tokio::test]
async fn rate_limits_answer_429_in_the_seeds_envelope_with_retry_after() {
    let s = TestServer::start_with(&[
        ("AUTH_API_DIALECT", "plain"),
        ("TURNSTILE_ENABLED", "false"),
        ("AUTH_RATE_LIMITS", "default"),
        ("AUTH_RATE_LIMIT_LOGIN", "2/60"),
    ])
    .await;
    for _ in 0..2 {
        let r = s.post("/login", credentials("nobody", "wrong-password-1", None)).await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = s.post("/login", credentials("nobody", "wrong-password-1", None)).await;
    assert_eq!((r.status, r.body), (429, json!({"error": "Too many requests"})));
    assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.headers["cache-control"], "no-store");
}
