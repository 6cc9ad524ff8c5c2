//! Email flows end to end through a real SMTP server on loopback: mailed codes, registration
//! with a verified address, email verification, password reset by link and by code, and what
//! happens when the mail server fails.

use auth_e2e_tests::smtp::{Delivery, SmtpSink};
use auth_e2e_tests::{access, TestServer, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "amber-Lantern-58-river";

async fn server(sink: &SmtpSink, extra: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![
        ("AUTH_SMTP_URL", sink.url.as_str()),
        ("AUTH_MAIL_FROM", "Acme Auth <auth@acme.test>"),
        ("AUTH_PUBLIC_URL", "https://app.acme.test"),
    ];
    vars.extend_from_slice(extra);
    TestServer::start_with(&vars).await
}

/// The 6-digit code in the plain-text part of the last message to `to`.
fn last_code(sink: &SmtpSink, to: &str) -> String {
    let mail = sink.to(to).pop().unwrap_or_else(|| panic!("no mail to {to}"));
    code_in(&mail)
}

fn code_in(mail: &Delivery) -> String {
    let text = mail.body("text/plain");
    text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("a 6-digit code").to_owned()
}

async fn request_code(s: &TestServer, email: &str, purpose: &str) -> (u16, Value) {
    let r = s.post("/email/code", json!({"email": email, "purpose": purpose})).await;
    (r.status, r.body)
}

#[tokio::test]
async fn registration_with_required_verification_uses_the_mailed_code_once() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[("AUTH_REQUIRE_EMAIL_VERIFICATION", "true")]).await;
    let status = auth_e2e_tests::Resp::from(s.request(Method::GET, "/api/auth/captcha/status").send().await).await;
    assert_eq!(status.body["email_verification_required"], true);
    let r = s.post("/register", json!({"email": "ann@acme.test", "password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    assert!(r.body["error"]["details"]["fields"]["email_code"].is_string(), "{}", r.body);

    assert_eq!(request_code(&s, "Ann@ACME.test", "register").await, (202, json!({"sent": true})));
    let mails = sink.to("Ann@acme.test");
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(mail.accepted);
    assert_eq!(mail.mail_from, "auth@acme.test");
    assert_eq!(mail.header("From"), "\"Acme Auth\" <auth@acme.test>");
    assert_eq!(mail.header("To"), "Ann@acme.test");
    assert_eq!(mail.header("Subject"), "Your code to create your account");
    let code = code_in(mail);
    assert!(mail.body("text/html").contains(&code), "the HTML part carries the code too");

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = s.post("/register", json!({"email": "ann@acme.test", "password": PASSWORD, "email_code": wrong})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_code"));
    let r = s.post("/register", json!({"email": "ann@acme.test", "password": "short", "email_code": code})).await;
    assert_eq!(r.code(), "weak_password", "a refused password does not spend the code");
    let r = s
        .post(
            "/register",
            json!({"username": "ann", "email": "ann@acme.test", "password": PASSWORD, "email_code": code}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["user"]["email_verified"], true);
    let r = s
        .post(
            "/register",
            json!({"username": "ann2", "email": "ann@acme.test", "password": PASSWORD, "email_code": code}),
        )
        .await;
    assert_eq!(r.code(), "email_taken", "the address is now taken, whatever the code");
}

#[tokio::test]
async fn a_code_dies_after_five_wrong_tries_and_a_resend_keeps_the_count() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[("AUTH_REQUIRE_EMAIL_VERIFICATION", "true")]).await;
    let register =
        |code: &str| s.post("/register", json!({"email": "bo@acme.test", "password": PASSWORD, "email_code": code}));
    request_code(&s, "bo@acme.test", "register").await;
    let first = last_code(&sink, "bo@acme.test");
    let wrong = if first == "999999" { "999998" } else { "999999" };
    for _ in 0..3 {
        assert_eq!(register(wrong).await.code(), "invalid_code");
    }
    request_code(&s, "bo@acme.test", "register").await;
    let second = last_code(&sink, "bo@acme.test");
    assert_eq!(register(&first).await.code(), "invalid_code", "the old code was replaced");
    assert_eq!(register(wrong).await.code(), "invalid_code");
    // Five failures in all: the new code is dead too.
    assert_eq!(register(&second).await.code(), "invalid_code");
}

#[tokio::test]
async fn codes_expire() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[("AUTH_REQUIRE_EMAIL_VERIFICATION", "true"), ("AUTH_EMAIL_CODE_TTL", "1")]).await;
    request_code(&s, "cy@acme.test", "register").await;
    let code = last_code(&sink, "cy@acme.test");
    assert!(sink.to("cy@acme.test")[0].body("text/plain").contains("expires in 1 minute."));
    s.clock.advance(std::time::Duration::from_secs(2));
    let r = s.post("/register", json!({"email": "cy@acme.test", "password": PASSWORD, "email_code": code})).await;
    assert_eq!(r.code(), "invalid_code");
}

#[tokio::test]
async fn a_logged_in_user_verifies_their_address_and_unknown_addresses_get_no_mail() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    let r = s.post("/register", json!({"username": "dee", "email": "dee@acme.test", "password": PASSWORD})).await;
    assert_eq!(r.body["user"]["email_verified"], false);
    let token = access(&r.body).to_owned();
    assert_eq!(request_code(&s, "nobody@acme.test", "verify_email").await, (202, json!({"sent": true})));
    request_code(&s, "dee@acme.test", "verify_email").await;
    let mails = sink.wait_for("dee@acme.test", 1).await;
    assert_eq!(mails[0].header("Subject"), "Your code to verify the email address of your account");
    assert_eq!(sink.deliveries().len(), 1, "nothing is mailed to an unknown address");
    let code = last_code(&sink, "dee@acme.test");
    let r = s.call(Method::POST, "/api/auth/email/verify", &token, Some(json!({"code": "123"}))).await;
    assert_eq!((r.status, r.code()), (400, "invalid_code"));
    let r = s.call(Method::POST, "/api/auth/email/verify", &token, Some(json!({"code": code}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["email_verified"], true);
    assert_eq!(s.get("/api/auth/me", &token).await.body["email_verified"], true);
    let r = auth_e2e_tests::Resp::from(
        s.request(Method::POST, "/api/auth/email/verify").json(&json!({"code": code})).send().await,
    )
    .await;
    assert_eq!(r.code(), "unauthorized");
}

/// The token of the reset link in the last message to `to`, checking the link's base.
async fn reset_token(sink: &SmtpSink, to: &str) -> String {
    let mail = sink.wait_for(to, 1).await.pop().expect("a reset mail");
    assert_eq!(mail.header("Subject"), "Reset the password of your account");
    let text = mail.body("text/plain");
    let link = text.split_whitespace().find(|w| w.starts_with("http")).expect("a link");
    let token = link
        .strip_prefix("https://app.acme.test/reset-password?token=")
        .unwrap_or_else(|| panic!("link built from AUTH_PUBLIC_URL: {link}"));
    assert!(mail.body("text/html").contains(token));
    token.to_owned()
}

#[tokio::test]
async fn a_reset_link_resets_once_revokes_every_session_and_ignores_a_hostile_host_header() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    let session =
        s.post("/register", json!({"username": "eve", "email": "eve@acme.test", "password": PASSWORD})).await.body;
    let forgot = |email: &'static str| {
        s.request(Method::POST, "/api/auth/password/forgot")
            .header("host", "evil.example.net")
            .header("x-forwarded-host", "evil.example.net")
            .json(&json!({"email": email}))
            .send()
    };
    let r = auth_e2e_tests::Resp::from(forgot("ghost@acme.test").await).await;
    assert_eq!((r.status, r.body.clone()), (202, json!({"sent": true})));
    let r = auth_e2e_tests::Resp::from(forgot("EVE@acme.test").await).await;
    assert_eq!((r.status, r.body.clone()), (202, json!({"sent": true})));
    let token = reset_token(&sink, "eve@acme.test").await;
    assert_eq!(sink.deliveries().len(), 1, "nothing is mailed to an unknown address");
    assert!(!sink.to("eve@acme.test")[0].data.contains("evil.example.net"));

    let r = s.post("/password/reset", json!({"token": token, "new_password": "password"})).await;
    assert_eq!(r.code(), "weak_password");
    let r = s.post("/password/reset", json!({"token": format!("{token}x"), "new_password": NEW_PASSWORD})).await;
    assert_eq!(r.code(), "invalid_code");
    let r = s.post("/password/reset", json!({"token": token, "new_password": NEW_PASSWORD})).await;
    assert_eq!(r.status, 204, "the weak attempt did not spend the token: {}", r.body);
    assert!(r.body.is_null(), "no tokens are returned");
    assert_eq!(s.get("/api/auth/me", access(&session)).await.code(), "session_revoked");
    let r = s.post("/password/reset", json!({"token": token, "new_password": "another-Mellow-77-canyon"})).await;
    assert_eq!(r.code(), "invalid_code", "single use");
    assert_eq!(s.post("/login", json!({"username": "eve", "password": PASSWORD})).await.code(), "invalid_credentials");
    assert_eq!(s.post("/login", json!({"username": "eve", "password": NEW_PASSWORD})).await.status, 200);
    let notice = sink.wait_for("eve@acme.test", 2).await.pop().unwrap();
    assert_eq!(notice.header("Subject"), "The password of your account was reset");
    for bad in ["", "not-a-token", "AAAA.BBBB"] {
        let r = s.post("/password/reset", json!({"token": bad, "new_password": NEW_PASSWORD})).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
    }
}

#[tokio::test]
async fn a_password_can_be_reset_with_email_and_code() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    s.post("/register", json!({"username": "fay", "email": "fay@acme.test", "password": PASSWORD})).await;
    request_code(&s, "fay@acme.test", "reset_password").await;
    let mails = sink.wait_for("fay@acme.test", 1).await;
    assert_eq!(mails[0].header("Subject"), "Your code to reset the password of your account");
    let code = code_in(&mails[0]);
    let r =
        s.post("/password/reset", json!({"email": "fay@acme.test", "code": code, "new_password": NEW_PASSWORD})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(s.post("/login", json!({"username": "fay", "password": NEW_PASSWORD})).await.status, 200);
    let r = s.post("/password/reset", json!({"email": "fay@acme.test", "code": code, "new_password": PASSWORD})).await;
    assert_eq!(r.code(), "invalid_code");
    let r = s.post("/password/reset", json!({"new_password": NEW_PASSWORD})).await;
    assert_eq!(r.code(), "invalid_request");
}

#[tokio::test]
async fn a_refused_message_leaves_no_valid_code_and_keeps_the_old_one() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[("AUTH_REQUIRE_EMAIL_VERIFICATION", "true")]).await;
    request_code(&s, "gus@acme.test", "register").await;
    let mailed = last_code(&sink, "gus@acme.test");
    sink.refuse_messages(true);
    let (status, body) = request_code(&s, "gus@acme.test", "register").await;
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("mail_unavailable")));
    let refused = sink.to("gus@acme.test").pop().unwrap();
    assert!(!refused.accepted);
    let never_mailed = code_in(&refused);
    sink.refuse_messages(false);
    if never_mailed != mailed {
        let r = s
            .post("/register", json!({"email": "gus@acme.test", "password": PASSWORD, "email_code": never_mailed}))
            .await;
        assert_eq!(r.code(), "invalid_code", "the refused message's code was never stored");
    }
    let r = s.post("/register", json!({"email": "gus@acme.test", "password": PASSWORD, "email_code": mailed})).await;
    assert_eq!(r.status, 201, "the delivered code still works: {}", r.body);
}

/// A failing mail server is a 502 where nothing about an account is at stake (register codes go
/// to whatever address was typed), and invisible where it would tell that an account exists
/// (codes and links for accounts are mailed in the background).
#[tokio::test]
async fn smtp_down_gives_502_for_register_codes_and_202_for_accounts() {
    // A port nothing listens on.
    let closed = { std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap() };
    let url = format!("smtp://{closed}");
    let s =
        TestServer::start_with(&[("AUTH_SMTP_URL", url.as_str()), ("AUTH_PUBLIC_URL", "https://app.acme.test")]).await;
    s.post("/register", json!({"username": "hal", "email": "hal@acme.test", "password": PASSWORD})).await;
    let r = s.post("/email/code", json!({"email": "new@acme.test", "purpose": "register"})).await;
    assert_eq!((r.status, r.code()), (502, "mail_unavailable"));
    assert!(!r.body.to_string().contains(&closed.port().to_string()), "no connection details leak");
    for email in ["hal@acme.test", "nobody@acme.test"] {
        let r = s.post("/password/forgot", json!({"email": email})).await;
        assert_eq!((r.status, r.body), (202, json!({"sent": true})), "{email}");
        let r = s.post("/email/code", json!({"email": email, "purpose": "reset_password"})).await;
        assert_eq!((r.status, r.body), (202, json!({"sent": true})), "{email}");
    }
    let r = s.post("/email/code", json!({"email": "not-an-email", "purpose": "register"})).await;
    assert_eq!(r.code(), "invalid_request");
    let r = s.post("/email/code", json!({"email": "x@acme.test", "purpose": "party"})).await;
    assert_eq!(r.code(), "invalid_request");
}
