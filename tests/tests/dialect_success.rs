//! `AUTH_API_DIALECT=success`: seed 003's frontend contract (`../shared/seeds/003_*.txt`) over
//! real HTTP, with mail through a real SMTP server on loopback and reCAPTCHA through a local
//! siteverify: `/v1/auth`, camelCase, `{"success":…}` bodies, codes by `POST /email/verify`,
//! reset by code then link, the seed's password rules and 24 h tokens.

use auth_e2e_tests::siteverify::Siteverify;
use auth_e2e_tests::smtp::SmtpSink;
use auth_e2e_tests::{keys, Resp, TestServer, PASSWORD};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

/// reCAPTCHA v3 answers: a human's score on login; v2-style tokens for the other routes, whose
/// `action` must be the route's.
const HUMAN: &str = "score-0.9";
const REGISTER: &str = "ok-action-register";
const RESET: &str = "ok-action-password_forgot";

async fn server(sink: &SmtpSink, siteverify: &Siteverify, vars: &[(&str, &str)]) -> TestServer {
    let mut all = vec![
        ("AUTH_API_DIALECT", "success"),
        ("AUTH_SMTP_URL", sink.url.as_str()),
        ("AUTH_MAIL_FROM", "Acme <auth@acme.test>"),
        ("AUTH_PUBLIC_URL", "https://app.acme.test"),
        ("AUTH_CAPTCHA", "recaptcha"),
        ("AUTH_CAPTCHA_SECRET", "s3cret-key"),
        ("AUTH_CAPTCHA_VERIFY_URL", siteverify.url.as_str()),
        ("AUTH_CAPTCHA_MIN_SCORE", "0.5"),
    ];
    all.extend_from_slice(vars);
    TestServer::start_with(&all).await
}

async fn call(s: &TestServer, method: Method, path: &str, token: Option<&str>, body: Value) -> Resp {
    let mut req = s.request(method, &format!("/v1/auth{path}")).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    Resp::from(req.send().await).await
}

async fn post(s: &TestServer, path: &str, body: Value) -> Resp {
    call(s, Method::POST, path, None, body).await
}

/// A success: 200 and `"success": true`.
fn ok(r: &Resp) -> &Value {
    assert_eq!((r.status, &r.body["success"]), (200, &json!(true)), "{}", r.body);
    &r.body
}

/// An error in the seed's envelope; its `error.code`.
fn err(r: &Resp, status: u16) -> &str {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(keys(&r.body), ["error", "success"], "{}", r.body);
    assert_eq!(r.body["success"], false);
    assert!(r.body["error"]["message"].is_string());
    r.body["error"]["code"].as_str().expect("a code")
}

/// The text part of the newest mail to `to` once it has `count` mails (mail goes out after the
/// answer).
async fn mail_text(sink: &SmtpSink, to: &str, count: usize) -> String {
    for _ in 0..200 {
        let mails = sink.to(to);
        if mails.len() >= count {
            return mails[count - 1].body("text/plain");
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no mail {count} to {to} within 5 s");
}

fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("a 6-digit code").to_owned()
}

#[tokio::test]
async fn register_login_preferences_and_reset_speak_the_seed() {
    let (sink, siteverify) = (SmtpSink::start().await, Siteverify::start().await);
    let s = server(&sink, &siteverify, &[]).await;
    let email = "lin@acme.test";

    let r = post(&s, "/email/verify", json!({"email": email, "type": "register"})).await;
    assert_eq!(ok(&r), &json!({"success": true, "message": "success"}));
    let code = code_in(&mail_text(&sink, email, 1).await);

    // A password the seed's rules refuse (no capital, no symbol) does not use up the code.
    let weak =
        json!({"email": email, "password": "violetkettle93x", "verificationCode": code, "recaptchaToken": REGISTER});
    assert_eq!(err(&post(&s, "/register", weak).await, 400), "weak_password");
    let body = json!({"email": email, "password": PASSWORD, "verificationCode": code, "recaptchaToken": REGISTER});
    let r = post(&s, "/register", body).await;
    assert_eq!(keys(ok(&r)), ["message", "success", "userId"]);
    let user_id = r.body["userId"].as_str().unwrap().to_owned();

    // A low reCAPTCHA score is refused; a human logs in with the seed's body and a 24 h token.
    let bot = post(&s, "/login", json!({"email": email, "password": PASSWORD, "recaptchaToken": "score-0.1"})).await;
    assert_eq!(err(&bot, 400), "captcha_invalid");
    let r = post(&s, "/login", json!({"email": email, "password": PASSWORD, "recaptchaToken": HUMAN})).await;
    assert_eq!(keys(ok(&r)), ["success", "token", "user"]);
    assert_eq!(
        r.body["user"],
        json!({"id": user_id, "email": email, "preferences": {"theme": "light", "language": "en"}})
    );
    let token = r.body["token"].as_str().unwrap().to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 24 * 3600);

    let r = call(&s, Method::PUT, "/preferences", Some(&token), json!({"theme": "dark", "language": "zh"})).await;
    assert_eq!(ok(&r), &json!({"success": true, "preferences": {"theme": "dark", "language": "zh"}}));
    let r = call(&s, Method::PUT, "/preferences", Some(&token), json!({"language": "fr"})).await;
    assert_eq!(err(&r, 400), "invalid_request");
    // Another canonical route, camelCased.
    let me = call(&s, Method::GET, "/me", Some(&token), Value::Null).await;
    assert_eq!(ok(&me)["emailVerified"], true, "{}", me.body);
    assert_eq!(me.body["preferences"], json!({"theme": "dark", "language": "zh"}), "the seed's values");

    // Reset: a code, then the code buys a link, then the link's token resets once.
    let r = post(&s, "/email/verify", json!({"email": email, "type": "reset-password"})).await;
    ok(&r);
    let code = code_in(&mail_text(&sink, email, 2).await);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = post(
        &s,
        "/password/reset-request",
        json!({"email": email, "verificationCode": wrong, "recaptchaToken": RESET}),
    )
    .await;
    assert_eq!(err(&r, 400), "invalid_code");
    let wrong_code = r.body.clone();
    // An unknown address answers exactly like a known one with a wrong code.
    let unknown = json!({"email": "nobody@acme.test", "verificationCode": wrong, "recaptchaToken": RESET});
    let r = post(&s, "/password/reset-request", unknown).await;
    assert_eq!((r.status, &r.body), (400, &wrong_code));
    let r =
        post(&s, "/password/reset-request", json!({"email": email, "verificationCode": code, "recaptchaToken": RESET}))
            .await;
    assert_eq!(ok(&r)["message"], "密码重置链接已发送");
    let text = mail_text(&sink, email, 3).await;
    let link_token = text.split("token=").nth(1).expect("a reset link").split_whitespace().next().unwrap().to_owned();
    // A new password the rules refuse does not use up the link.
    let weak = post(&s, "/password/reset", json!({"token": link_token, "newPassword": "amberlantern58"})).await;
    assert_eq!(err(&weak, 400), "weak_password");
    let reset = json!({"token": link_token, "newPassword": "Amber-Lantern-58!"});
    let r = post(&s, "/password/reset", reset.clone()).await;
    assert_eq!(ok(&r)["message"], "密码重置成功");
    assert_eq!(err(&post(&s, "/password/reset", reset).await, 400), "invalid_code", "single use");
    let r = call(&s, Method::GET, "/me", Some(&token), Value::Null).await;
    assert_eq!(err(&r, 401), "session_revoked", "every session ended");
    let r = post(&s, "/login", json!({"email": email, "password": "Amber-Lantern-58!", "recaptchaToken": HUMAN})).await;
    ok(&r);
}

#[tokio::test]
async fn errors_have_the_seeds_envelope_and_statuses() {
    let (sink, siteverify) = (SmtpSink::start().await, Siteverify::start().await);
    let s = server(&sink, &siteverify, &[("AUTH_RATE_LIMITS", "default"), ("AUTH_RATE_LIMIT_LOGIN", "3/60")]).await;

    let r = post(&s, "/email/verify", json!({"email": "x@acme.test", "type": "phone"})).await;
    assert_eq!(err(&r, 400), "invalid_request");
    let r = post(&s, "/login", json!({"email": "x@acme.test", "password": PASSWORD})).await;
    assert_eq!(err(&r, 400), "captcha_required", "reCAPTCHA guards login (the attempt counts)");
    for _ in 0..2 {
        let r =
            post(&s, "/login", json!({"email": "x@acme.test", "password": "Wrong-pass-1!", "recaptchaToken": HUMAN}))
                .await;
        assert_eq!(err(&r, 401), "invalid_credentials");
    }
    let r =
        post(&s, "/login", json!({"email": "x@acme.test", "password": "Wrong-pass-1!", "recaptchaToken": HUMAN})).await;
    assert_eq!(err(&r, 429), "rate_limited");
    assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let r = Resp::from(
        s.request(Method::POST, "/v1/auth/login").header("content-type", "application/json").body("{").send().await,
    )
    .await;
    assert_eq!(err(&r, 400), "invalid_request", "malformed JSON");
    let r = Resp::from(
        s.request(Method::POST, "/v1/auth/login").header("content-type", "text/plain").body("x").send().await,
    )
    .await;
    assert_eq!(err(&r, 400), "unsupported_media_type", "415 is not a status of the seed");
    let r = post(&s, "/password/reset", json!({"token": "t"})).await;
    assert_eq!(err(&r, 400), "invalid_request");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("newPassword"), "names the field: {}", r.body);
    let r = Resp::from(s.request(Method::GET, "/v1/auth/nope").send().await).await;
    assert_eq!(err(&r, 404), "not_found");
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = Resp::from(s.request(Method::GET, "/v1/auth/login").send().await).await;
    assert_eq!(err(&r, 404), "method_not_allowed", "405 is not a status of the seed");
    let r = call(&s, Method::PUT, "/preferences", None, json!({"theme": "dark"})).await;
    assert_eq!(err(&r, 401), "unauthorized");
    let r = Resp::from(s.request(Method::GET, "/api/protected").send().await).await;
    assert_eq!(err(&r, 401), "unauthorized", "host routes too");
}
