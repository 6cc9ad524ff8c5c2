//! `AUTH_API_DIALECT=res-err`: seed 001's frontend contract (`../shared/seeds/001_*.txt`) over
//! real HTTP, with codes mailed through a real SMTP server on loopback: the
//! `{"res","err-msg","err-msg-details","err-code"}` envelope at `/api/v1/auth`, registration with
//! a mailed code, `Authorization: Customize`, a refresh that answers only an access token (the
//! refresh token stays valid: rotation is off in this dialect), `GET /logout`.

use auth_e2e_tests::smtp::SmtpSink;
use auth_e2e_tests::{keys, Resp, TestServer, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

async fn server(sink: &SmtpSink, vars: &[(&str, &str)]) -> TestServer {
    let mut all = vec![
        ("AUTH_API_DIALECT", "res-err"),
        ("AUTH_SMTP_URL", sink.url.as_str()),
        ("AUTH_MAIL_FROM", "Acme <auth@acme.test>"),
        ("AUTH_PUBLIC_URL", "https://app.acme.test"),
    ];
    all.extend_from_slice(vars);
    TestServer::start_with(&all).await
}

/// A request to `/api/v1/auth{path}` with `Authorization: Customize <token>` when given.
async fn call(s: &TestServer, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
    let mut req = s.request(method, &format!("/api/v1/auth{path}"));
    if let Some(token) = token {
        req = req.header("authorization", format!("Customize {token}"));
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    Resp::from(req.send().await).await
}

async fn post(s: &TestServer, path: &str, body: Value) -> Resp {
    call(s, Method::POST, path, None, Some(body)).await
}

/// A success in the seed's envelope: empty error fields; its `res`.
fn res(r: &Resp) -> &Value {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(keys(&r.body), ["err-code", "err-msg", "err-msg-details", "res"], "{}", r.body);
    assert_eq!((r.body["err-msg"].as_str(), r.body["err-code"].as_str()), (Some(""), Some("")), "{}", r.body);
    &r.body["res"]
}

/// An error in the seed's envelope: `res` empty, `err-code` the status; its `err-msg`.
fn err(r: &Resp, status: u16) -> &str {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["res"], json!({}), "{}", r.body);
    assert_eq!(r.body["err-code"], status.to_string(), "{}", r.body);
    assert!(r.body["err-msg-details"].as_str().is_some_and(|d| !d.is_empty()), "{}", r.body);
    r.body["err-msg"].as_str().expect("err-msg")
}

/// The 6-digit code of the last mail to `to`, waiting for it (mail goes out after the answer).
async fn mailed_code(sink: &SmtpSink, to: &str) -> String {
    for _ in 0..200 {
        if let Some(mail) = sink.to(to).pop() {
            let text = mail.body("text/plain");
            return text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("a code").to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no mail to {to} within 5 s");
}

/// Registers `email` the seed's way (code request, mail, register); the `res` of the answer.
async fn register(s: &TestServer, sink: &SmtpSink, email: &str) -> Value {
    let r = post(s, "/captcha", json!({"type": "email", "account": email})).await;
    assert_eq!(res(&r), &json!({}));
    let code = mailed_code(sink, email).await;
    let r = post(s, "/register", json!({"type": "email", "account": email, "psw": PASSWORD, "captcha": code})).await;
    res(&r).clone()
}

fn token(res: &Value) -> &str {
    res["token"].as_str().expect("a token")
}

#[tokio::test]
async fn the_seeds_register_login_refresh_and_logout() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;

    let registered = register(&s, &sink, "ana@acme.test").await;
    assert_eq!(keys(&registered), ["refresh-token", "token", "user-id"]);
    assert!(registered["user-id"].is_string() && registered["refresh-token"].is_string());
    let login = post(&s, "/login", json!({"type": "email", "account": "ana@acme.test", "psw": PASSWORD})).await;
    let login = res(&login).clone();
    assert_eq!(keys(&login), ["refresh-token", "token", "user-id"]);
    assert_eq!(login["user-id"], registered["user-id"]);

    // The token works as `Customize` (and `Bearer`) on the auth routes and the host's.
    let me = call(&s, Method::GET, "/me", Some(token(&login)), None).await;
    assert_eq!(res(&me)["email"], "ana@acme.test");
    assert!(res(&me).get("email-verified").is_some(), "kebab-case keys: {}", me.body);
    let host = Resp::from(
        s.request(Method::GET, "/api/protected")
            .header("authorization", format!("Customize {}", token(&login)))
            .send()
            .await,
    )
    .await;
    assert_eq!(host.status, 200, "{}", host.body);
    assert_eq!(s.get("/api/protected", token(&login)).await.status, 200, "Bearer too");

    // Refresh answers an access token only; the refresh token stays valid, and the old access
    // token sent along must be this session's.
    let refresh = json!({"refresh_token": login["refresh-token"]});
    let r = call(&s, Method::POST, "/refresh-token", Some(token(&login)), Some(refresh.clone())).await;
    let fresh = res(&r).clone();
    assert_eq!(keys(&fresh), ["token"]);
    // Long past any reuse grace window (with rotation on this would be reuse), and past the
    // access token's expiry and leeway: an expired access token still binds the refresh.
    s.clock.advance(std::time::Duration::from_secs(3600 + 60));
    let again = call(&s, Method::POST, "/refresh-token", Some(token(&fresh)), Some(refresh.clone())).await;
    let again = res(&again).clone();
    assert_eq!(keys(&again), ["token"], "the same refresh token again");
    let r = call(&s, Method::GET, "/me", Some(token(&fresh)), None).await;
    assert_eq!(err(&r, 401), "token expired", "the one it replaced had expired");
    let r = call(&s, Method::POST, "/refresh-token", None, Some(refresh.clone())).await;
    assert_eq!(keys(res(&r)), ["token"], "the header is optional");
    let other_session = call(&s, Method::POST, "/refresh-token", Some(token(&registered)), Some(refresh.clone())).await;
    assert_eq!(err(&other_session, 401), "invalid refresh token", "another session's access token");
    let forged = call(&s, Method::POST, "/refresh-token", Some("not.a.jwt"), Some(refresh.clone())).await;
    assert_eq!(err(&forged, 401), "unauthorized");

    // GET /logout ends the session at once: its tokens and its refresh token.
    let survivor =
        call(&s, Method::POST, "/refresh-token", None, Some(json!({"refresh_token": login["refresh-token"]}))).await;
    let survivor = res(&survivor).clone();
    let r = call(&s, Method::GET, "/logout", Some(token(&again)), None).await;
    assert_eq!(res(&r), &json!({"message": "logout successful"}));
    let r = call(&s, Method::GET, "/me", Some(token(&survivor)), None).await;
    assert_eq!(err(&r, 401), "session revoked");
    let r = call(&s, Method::POST, "/refresh-token", None, Some(refresh)).await;
    assert_eq!(err(&r, 401), "invalid refresh token");
    // The other session lives on.
    let other = json!({"refresh_token": registered["refresh-token"]});
    let r = call(&s, Method::POST, "/refresh-token", None, Some(other)).await;
    assert_eq!(res(&call(&s, Method::GET, "/me", Some(token(res(&r))), None).await)["email"], "ana@acme.test");
}

#[tokio::test]
async fn errors_are_in_the_seeds_envelope() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[("AUTH_RATE_LIMITS", "default"), ("AUTH_RATE_LIMIT_LOGIN", "2/60")]).await;

    let r = post(&s, "/captcha", json!({"type": "phone", "account": "+15550100"})).await;
    assert_eq!(err(&r, 400), "invalid request");
    assert!(r.body["err-msg-details"].as_str().unwrap().contains("type"), "names the field: {}", r.body);
    assert!(sink.deliveries().is_empty(), "nothing mailed");
    let r = post(&s, "/register", json!({"type": "email", "account": "bo@acme.test", "psw": PASSWORD})).await;
    assert_eq!(err(&r, 400), "invalid request", "a registration without its mailed code");
    let r = post(
        &s,
        "/register",
        json!({"type": "email", "account": "bo@acme.test", "psw": PASSWORD, "captcha": "000000"}),
    )
    .await;
    assert_eq!(err(&r, 400), "invalid or expired captcha");
    let r = Resp::from(
        s.request(Method::POST, "/api/v1/auth/login").header("content-type", "application/json").body("{").send().await,
    )
    .await;
    assert_eq!(err(&r, 400), "invalid request", "malformed JSON");
    let r = call(&s, Method::GET, "/no-such-route", None, None).await;
    assert_eq!(err(&r, 404), "not found");
    let r = call(&s, Method::GET, "/me", None, None).await;
    assert_eq!(err(&r, 401), "unauthorized");
    assert!(r.headers.contains_key("www-authenticate"));
    // The host's routes answer in the envelope too, and refuse a scheme the dialect does not use.
    let r = Resp::from(s.request(Method::GET, "/api/protected").send().await).await;
    assert_eq!(err(&r, 401), "unauthorized");
    let r =
        Resp::from(s.request(Method::GET, "/api/protected").header("authorization", "Basic YTpi").send().await).await;
    assert_eq!(err(&r, 401), "unauthorized");
    let r = Resp::from(
        s.request(Method::POST, "/api/v1/auth/login").header("content-type", "text/plain").body("x").send().await,
    )
    .await;
    assert!(matches!(r.status, 400 | 415), "{}", r.body);
    assert_eq!(r.body["res"], json!({}), "a wrong content type in the envelope: {}", r.body);
    let r = Resp::from(
        s.request(Method::POST, "/api/v1/auth/login")
            .header("content-type", "application/json")
            .body(vec![b' '; 70 * 1024])
            .send()
            .await,
    )
    .await;
    assert_eq!(err(&r, 413), "request body too large");

    // Unknown account and wrong password alike, then the limit: 429 in the envelope.
    register(&s, &sink, "cy@acme.test").await;
    for account in ["nobody@acme.test", "cy@acme.test"] {
        let r = post(&s, "/login", json!({"type": "email", "account": account, "psw": "wrong-password-x"})).await;
        assert_eq!(err(&r, 401), "invalid account or password");
    }
    let r = post(&s, "/login", json!({"type": "email", "account": "cy@acme.test", "psw": PASSWORD})).await;
    assert_eq!(err(&r, 429), "too many requests");
    assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.headers["cache-control"], "no-store");
}
