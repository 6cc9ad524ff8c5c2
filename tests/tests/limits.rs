//! Rate limits, failed-login lockout and trusted proxies (the client IP read from exactly one
//! configured header), end to end with the in-process limiter.

use std::time::Duration;

use auth_e2e_tests::{access, Resp, TestServer, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

async fn limited(vars: &[(&str, &str)]) -> TestServer {
    let mut all = vec![("AUTH_RATE_LIMITS", "default")];
    all.extend_from_slice(vars);
    TestServer::start_with(&all).await
}

/// `POST /api/auth{path}` with extra request headers (forwarding headers, as a proxy or a client
/// would send them; a name may repeat for several header lines).
async fn post_from(s: &TestServer, path: &str, headers: &[(&str, &str)], body: Value) -> Resp {
    let mut req = s.request(Method::POST, &format!("/api/auth{path}")).json(&body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    Resp::from(req.send().await).await
}

/// Logs `user` in with `headers` and returns the IP the server recorded on the new session.
async fn login_ip(s: &TestServer, user: &str, headers: &[(&str, &str)]) -> String {
    let r = post_from(s, "/login", headers, json!({"username": user, "password": PASSWORD})).await;
    assert_eq!(r.status, 200, "{headers:?}: {}", r.body);
    let sessions = s.get("/api/auth/sessions", access(&r.body)).await;
    let list = sessions.body["sessions"].as_array().expect("sessions").clone();
    let current = list.iter().find(|x| x["current"] == true).expect("the current session");
    current["ip"].as_str().expect("a recorded ip").to_owned()
}

fn assert_limited(r: &Resp) -> u64 {
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
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
        // Without AUTH_TRUSTED_PROXIES no forwarding header is read, whichever it is.
        let ip = format!("198.51.100.{i}");
        let forwarded = format!("for={ip}");
        let headers = [("x-forwarded-for", ip.as_str()), ("forwarded", &forwarded), ("x-real-ip", &ip)];
        let r = post_from(&s, "/login", &headers, json!({"username": "ivan", "password": "wrong-password-x"})).await;
        assert_eq!(r.code(), "invalid_credentials");
    }
    let r = post_from(
        &s,
        "/login",
        &[("x-forwarded-for", "198.51.100.77"), ("x-real-ip", "198.51.100.78")],
        json!({"username": "ivan", "password": PASSWORD}),
    )
    .await;
    let retry = assert_limited(&r);
    assert!((59..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket() {
    let s = limited(&[("AUTH_RATE_LIMIT_LOGIN", "2/60"), ("AUTH_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    s.register("jon").await;
    let s = &s;
    let login = move |xff: &'static str| async move {
        post_from(s, "/login", &[("x-forwarded-for", xff)], json!({"username": "jon", "password": PASSWORD})).await
    };
    assert_eq!(login("203.0.113.1").await.status, 200);
    assert_eq!(login("203.0.113.1").await.status, 200);
    assert_limited(&login("203.0.113.1").await);
    // A forged left-most entry does not move the client to another bucket.
    assert_limited(&login("203.0.113.99, 203.0.113.1").await);
    assert_eq!(login("203.0.113.2").await.status, 200, "another client is unaffected");
}

#[tokio::test]
async fn behind_a_trusted_proxy_a_client_sent_forwarded_header_does_not_pick_the_bucket() {
    // The default header is X-Forwarded-For: a proxy that appends to it passes a `Forwarded`
    // from the client through untouched, so that header must never be read.
    let s = limited(&[("AUTH_RATE_LIMIT_LOGIN", "2/60"), ("AUTH_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    s.register("abe").await;
    let s = &s;
    let login = move |headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_from(s, "/login", &headers, json!({"username": "abe", "password": PASSWORD})).await
    };
    // The proxy's X-Forwarded-For names the client; a new `Forwarded: for=` each time changes nothing.
    for i in 0..2 {
        let r = login(vec![("x-forwarded-for", "203.0.113.1".into()), ("forwarded", format!("for=198.51.100.{i}"))]);
        assert_eq!(r.await.status, 200);
    }
    assert_limited(
        &login(vec![("x-forwarded-for", "203.0.113.1".into()), ("forwarded", "for=198.51.100.99".into())]).await,
    );
    // Without X-Forwarded-For, the proxy itself (the peer) is the client, whatever `Forwarded` says.
    for i in 0..2 {
        assert_eq!(login(vec![("forwarded", format!("for=198.51.100.{}", 10 + i))]).await.status, 200);
    }
    assert_limited(&login(vec![("forwarded", r#"for="[2001:db8::66]:4711""#.into())]).await);
    assert_eq!(
        login(vec![("x-forwarded-for", "203.0.113.2".into())]).await.status,
        200,
        "another client is unaffected"
    );
}

#[tokio::test]
async fn with_x_real_ip_configured_only_x_real_ip_picks_the_bucket() {
    let s = limited(&[
        ("AUTH_RATE_LIMIT_LOGIN", "2/60"),
        ("AUTH_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("AUTH_CLIENT_IP_HEADER", "x-real-ip"),
    ])
    .await;
    s.register("bea").await;
    let s = &s;
    let login = move |headers: Vec<(&'static str, String)>| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_from(s, "/login", &headers, json!({"username": "bea", "password": PASSWORD})).await
    };
    // X-Forwarded-For and Forwarded are ignored: they do not move the client to another bucket.
    for i in 0..2 {
        let r = login(vec![
            ("x-real-ip", "203.0.113.1".into()),
            ("x-forwarded-for", format!("198.51.100.{i}")),
            ("forwarded", format!("for=198.51.100.{i}")),
        ]);
        assert_eq!(r.await.status, 200);
    }
    assert_limited(&login(vec![("x-real-ip", "203.0.113.1".into()), ("x-forwarded-for", "198.51.100.9".into())]).await);
    // The IPv4-mapped form of the same address is the same client.
    assert_limited(&login(vec![("x-real-ip", "::ffff:203.0.113.1".into())]).await);
    assert_eq!(login(vec![("x-real-ip", "203.0.113.2".into())]).await.status, 200, "another client is unaffected");
    // Without X-Real-IP the peer is the client, whatever X-Forwarded-For says.
    for i in 0..2 {
        assert_eq!(login(vec![("x-forwarded-for", format!("198.51.100.{}", 20 + i))]).await.status, 200);
    }
    assert_limited(&login(vec![("x-forwarded-for", "198.51.100.30".into())]).await);
}

#[tokio::test]
async fn the_recorded_client_ip_comes_from_the_configured_header_only() {
    let trusted = ("AUTH_TRUSTED_PROXIES", "127.0.0.1/32");
    let s = TestServer::start_with(&[trusted]).await;
    s.register("cai").await;
    let spoof = ("forwarded", "for=198.51.100.66");
    assert_eq!(login_ip(&s, "cai", &[("x-forwarded-for", "203.0.113.1"), spoof]).await, "203.0.113.1");
    assert_eq!(login_ip(&s, "cai", &[spoof, ("x-real-ip", "198.51.100.67")]).await, "127.0.0.1");
    assert_eq!(login_ip(&s, "cai", &[("x-forwarded-for", "::ffff:203.0.113.8")]).await, "203.0.113.8");
    let s = TestServer::start_with(&[trusted, ("AUTH_CLIENT_IP_HEADER", "forwarded")]).await;
    s.register("cai").await;
    let headers = [("forwarded", r#"for="[2001:db8::7]:4711";proto=https"#), ("x-forwarded-for", "203.0.113.1")];
    assert_eq!(login_ip(&s, "cai", &headers).await, "2001:db8::7");
    assert_eq!(login_ip(&s, "cai", &[("x-forwarded-for", "203.0.113.1")]).await, "127.0.0.1");
    let s = TestServer::start_with(&[trusted, ("AUTH_CLIENT_IP_HEADER", "cf-connecting-ip")]).await;
    s.register("cai").await;
    let headers =
        [("cf-connecting-ip", "203.0.113.9"), ("x-forwarded-for", "198.51.100.1"), ("x-real-ip", "198.51.100.2")];
    assert_eq!(login_ip(&s, "cai", &headers).await, "203.0.113.9");
}

#[tokio::test]
async fn garbage_in_the_client_ip_header_counts_as_the_peer_and_never_gives_a_5xx() {
    let s = limited(&[("AUTH_RATE_LIMIT_LOGIN", "7/60"), ("AUTH_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    s.register("dee").await;
    let body = json!({"username": "dee", "password": PASSWORD});
    let send = |value: reqwest::header::HeaderValue| {
        let req = s.request(Method::POST, "/api/auth/login").json(&body).header("x-forwarded-for", value);
        Resp::from_future(req.send())
    };
    let garbage: [&[u8]; 7] = [
        b"unknown",
        b"for=203.0.113.5",
        b"203.0.113.5, not-an-ip",
        b"203.0.113.5:99999",
        b"[2001:db8::1",
        b"\xff\xfe203.0.113.5",
        b"203.0.113.5,\xc3\x28",
    ];
    // The right-most hop is unreadable, so each lands in the peer's bucket (127.0.0.1), and the
    // eighth is refused.
    for value in garbage {
        let r = send(reqwest::header::HeaderValue::from_bytes(value).unwrap()).await;
        assert_eq!(r.status, 200, "{value:?}: {}", r.body);
    }
    let r = send(reqwest::header::HeaderValue::from_static("garbage")).await;
    assert!(r.status < 500, "{}", r.body);
    assert_limited(&r);
    let r = send(reqwest::header::HeaderValue::from_static("203.0.113.5")).await;
    assert_eq!(r.status, 200, "a well-formed client address has its own bucket: {}", r.body);
    // Garbage on a route without a rule of its own is no 5xx either.
    let r = Resp::from(
        s.request(Method::GET, "/api/auth/captcha/status")
            .header("x-forwarded-for", reqwest::header::HeaderValue::from_bytes(b"\xff").unwrap())
            .send()
            .await,
    )
    .await;
    assert_eq!(r.status, 200);

    // A single-value header: garbage, or the header twice, means the peer too.
    let s = limited(&[
        ("AUTH_RATE_LIMIT_LOGIN", "3/60"),
        ("AUTH_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("AUTH_CLIENT_IP_HEADER", "x-real-ip"),
    ])
    .await;
    s.register("dee").await;
    let login = |headers: &'static [(&'static str, &'static str)]| {
        post_from(&s, "/login", headers, json!({"username": "dee", "password": PASSWORD}))
    };
    assert_eq!(login(&[("x-real-ip", "unknown")]).await.status, 200);
    assert_eq!(login(&[("x-real-ip", "203.0.113.5, 203.0.113.6")]).await.status, 200);
    assert_eq!(login(&[("x-real-ip", "203.0.113.5"), ("x-real-ip", "203.0.113.6")]).await.status, 200);
    assert_limited(&login(&[("x-real-ip", "not-an-ip")]).await);
    assert_eq!(login(&[("x-real-ip", "203.0.113.5")]).await.status, 200);
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
    s.clock.advance(Duration::from_secs(2));
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
    let s = &s;
    let attempt = move |user: &'static str, password: &'static str, ip: &'static str| async move {
        post_from(s, "/login", &[("x-forwarded-for", ip)], json!({"username": user, "password": password})).await
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
async fn registration_counts_every_attempt_per_ip() {
    let s = limited(&[("AUTH_RATE_LIMIT_REGISTER", "3/86400")]).await;
    let r = s.post("/register", json!({"username": "weak", "password": "short"})).await;
    assert_eq!(r.code(), "weak_password", "refused, and counted all the same");
    s.register("nia").await;
    let r = s.post("/register", json!({"username": "NIA", "password": PASSWORD})).await;
    assert_eq!(r.code(), "username_taken", "refused, and counted all the same");
    let r = s.post("/register", json!({"username": "pam", "password": PASSWORD})).await;
    let retry = assert_limited(&r);
    assert!(retry > 86_000, "{retry}");
}

#[tokio::test]
async fn email_codes_and_password_resets_are_limited_per_address_known_or_not() {
    let s = limited(&[
        ("AUTH_SMTP_URL", "log"),
        ("AUTH_RATE_LIMIT_EMAIL_CODE", "2/3600"),
        ("AUTH_RATE_LIMIT_PASSWORD_RESET", "2/86400"),
    ])
    .await;
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
async fn code_and_reset_mails_are_limited_per_ip_across_addresses() {
    let s = limited(&[("AUTH_SMTP_URL", "log"), ("AUTH_RATE_LIMIT_MAIL", "3/3600")]).await;
    assert_eq!(s.post("/email/code", json!({"email": "a1@acme.test", "purpose": "register"})).await.status, 202);
    assert_eq!(s.post("/email/code", json!({"email": "a2@acme.test", "purpose": "reset_password"})).await.status, 202);
    assert_eq!(s.post("/password/forgot", json!({"email": "a3@acme.test"})).await.status, 202);
    assert_limited(&s.post("/password/forgot", json!({"email": "a4@acme.test"})).await);
    assert_limited(&s.post("/email/code", json!({"email": "a5@acme.test", "purpose": "register"})).await);
    // Malformed addresses are refused before anything is counted or sent.
    let r = s.post("/email/code", json!({"email": "Someone<a6@acme.test>", "purpose": "register"})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
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
    assert_limited(&s.post("/password/reset", json!({"token": "x", "new_password": PASSWORD})).await);
    // Routes with their own rule are not in this bucket.
    assert_eq!(
        s.post("/login", json!({"username": "u", "password": "wrong-password-x"})).await.code(),
        "invalid_credentials"
    );
}
