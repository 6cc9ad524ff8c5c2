//! Rate limits, failed-login lockout and trusted proxies, end to end with the in-process limiter.

use std::time::Duration;

use auth_e2e_tests::{Resp, TestServer, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

async fn limited(vars: &[(&str, &str)]) -> TestServer {
    let mut all = vec![("AUTH_RATE_LIMITS", "default")];
    all.extend_from_slice(vars);
    TestServer::start_with(&all).await
}

async fn post_from(s: &TestServer, path: &str, forwarded_for: Option<&str>, body: Value) -> Resp {
    let mut req = s.request(Method::POST, &format!("/api/auth{path}")).json(&body);
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    Resp::from(req.send().await).await
}

fn assert_limited(r: &Resp) -> u64 {
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.body);
    let header: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(r.body["error"]["details"]["retry_after_seconds"], header);
    assert!(header >= 1);
    header
}

#[tokio::test]
async fn login_is_limited_per_ip_and_forged_forwarding_headers_do_not_help() {
    let s = limited(&[("AUTH_RATE_LIMIT_LOGIN", "3/60")]).await;
    let status = Resp::from(s.request(Method::GET, "/api/auth/captcha/status").send().await).await;
    assert_eq!(status.body["login_rate_limit_enabled"], true);
    s.register("ivan").await;
    for i in 0..3 {
        let r = post_from(
            &s,
            "/login",
            Some(&format!("198.51.100.{i}")),
            json!({"username": "ivan", "password": "wrong-password-x"}),
        )
        .await;
        assert_eq!(r.code(), "invalid_credentials");
    }
    let r = post_from(&s, "/login", Some("198.51.100.77"), json!({"username": "ivan", "password": PASSWORD})).await;
    let retry = assert_limited(&r);
    assert!((59..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket() {
    let s = limited(&[("AUTH_RATE_LIMIT_LOGIN", "2/60"), ("AUTH_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    s.register("jon").await;
    let login =
        |xff: &'static str| post_from(&s, "/login", Some(xff), json!({"username": "jon", "password": PASSWORD}));
    assert_eq!(login("203.0.113.1").await.status, 200);
    assert_eq!(login("203.0.113.1").await.status, 200);
    assert_limited(&login("203.0.113.1").await);
    // A forged left-most entry does not move the client to another bucket.
    assert_limited(&login("203.0.113.99, 203.0.113.1").await);
    assert_eq!(login("203.0.113.2").await.status, 200, "another client is unaffected");
}

#[tokio::test]
async fn a_limit_lifts_when_its_window_passes() {
    let s = limited(&[("AUTH_RATE_LIMIT_LOGIN", "2/2")]).await;
    s.register("kim").await;
    for _ in 0..2 {
        s.login("kim").await;
    }
    let retry = assert_limited(&s.post("/login", json!({"username": "kim", "password": PASSWORD})).await);
    assert!(retry <= 2);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    s.login("kim").await;
}

#[tokio::test]
async fn failed_logins_lock_the_account_from_any_ip_and_a_success_clears_the_count() {
    let s = limited(&[
        ("AUTH_RATE_LIMIT_LOGIN", "off"),
        ("AUTH_RATE_LIMIT_LOGIN_FAILURES", "3/60"),
        ("AUTH_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    s.register("lou").await;
    s.register("max").await;
    let attempt = |user: &'static str, password: &'static str, ip: &'static str| {
        post_from(&s, "/login", Some(ip), json!({"username": user, "password": password}))
    };
    // Two failures, a success, two failures, a success: never locked.
    for _ in 0..2 {
        assert_eq!(attempt("lou", "wrong-password-x", "203.0.113.1").await.code(), "invalid_credentials");
        assert_eq!(attempt("lou", "wrong-password-x", "203.0.113.1").await.code(), "invalid_credentials");
        assert_eq!(attempt("lou", PASSWORD, "203.0.113.1").await.status, 200);
    }
    for i in 0..3 {
        let ip = ["203.0.113.1", "203.0.113.2", "203.0.113.3"][i];
        assert_eq!(attempt("LOU", "wrong-password-x", ip).await.code(), "invalid_credentials");
    }
    // Locked: even the right password from a new IP waits for the window.
    assert_limited(&attempt("lou", PASSWORD, "203.0.113.200").await);
    assert_eq!(attempt("max", PASSWORD, "203.0.113.1").await.status, 200, "another account is unaffected");
    // An unknown account locks the same way, so a lockout reveals nothing.
    for _ in 0..3 {
        assert_eq!(attempt("nobody-here", "wrong-password-x", "203.0.113.5").await.code(), "invalid_credentials");
    }
    assert_limited(&attempt("nobody-here", "wrong-password-x", "203.0.113.6").await);
}

#[tokio::test]
async fn registration_counts_accounts_created_per_ip() {
    let s = limited(&[("AUTH_RATE_LIMIT_REGISTER", "2/86400")]).await;
    let r = s.post("/register", json!({"username": "weak", "password": "short"})).await;
    assert_eq!(r.code(), "weak_password", "a refused registration is not counted");
    s.register("nia").await;
    s.register("oto").await;
    let r = s.post("/register", json!({"username": "pam", "password": PASSWORD})).await;
    let retry = assert_limited(&r);
    assert!(retry > 86_000, "{retry}");
}

#[tokio::test]
async fn email_codes_and_password_resets_are_limited_per_address_known_or_not() {
    let s = limited(&[("AUTH_RATE_LIMIT_EMAIL_CODE", "2/3600"), ("AUTH_RATE_LIMIT_PASSWORD_RESET", "2/86400")]).await;
    for _ in 0..2 {
        assert_eq!(s.post("/email/code", json!({"email": "q@acme.test", "purpose": "register"})).await.status, 202);
    }
    assert_limited(&s.post("/email/code", json!({"email": "Q@ACME.test", "purpose": "verify_email"})).await);
    assert_eq!(s.post("/email/code", json!({"email": "r@acme.test", "purpose": "register"})).await.status, 202);
    for _ in 0..2 {
        assert_eq!(s.post("/password/forgot", json!({"email": "ghost@acme.test"})).await.status, 202);
    }
    assert_limited(&s.post("/password/forgot", json!({"email": "ghost@acme.test"})).await);
}

#[tokio::test]
async fn every_other_route_shares_a_per_ip_limit_checked_before_authentication() {
    let s = limited(&[("AUTH_RATE_LIMIT_OTHER", "3/60")]).await;
    for _ in 0..3 {
        assert_eq!(Resp::from(s.request(Method::GET, "/api/auth/captcha/status").send().await).await.status, 200);
    }
    assert_limited(&Resp::from(s.request(Method::GET, "/api/auth/captcha/status").send().await).await);
    assert_limited(&s.get("/api/auth/me", "not-even-a-token").await);
    assert_limited(&s.post("/refresh", json!({"refresh_token": "x"})).await);
    // Routes with their own rule are not in this bucket.
    assert_eq!(
        s.post("/login", json!({"username": "u", "password": "wrong-password-x"})).await.code(),
        "invalid_credentials"
    );
}
