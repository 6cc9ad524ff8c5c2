//! No password, token or code reaches the database, the audit log or the server log, whatever
//! flow handled it. Alone in its test binary: the log recorder is the process's subscriber.

use auth_e2e_tests::smtp::{Delivery, SmtpSink};
use auth_e2e_tests::{access, refresh, Resp, TestServer, PASSWORD};
use auth_test_support::EventRecorder;
use reqwest::Method;
use serde_json::{json, Value};

fn code_in(mail: &Delivery) -> String {
    let text = mail.body("text/plain");
    text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("a 6-digit code").to_owned()
}

async fn me(s: &TestServer, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
    s.call(method, &format!("/api/auth/me{path}"), token, body).await
}

/// Every flow that handles a secret, then a search of the database file, the audit log and the
/// server log for each password, token and code that went over the wire.
#[tokio::test]
async fn no_password_token_or_code_reaches_the_database_the_audit_log_or_the_log() {
    let recorder = EventRecorder::new(|_| true);
    recorder.set_global_default();
    let sink = SmtpSink::start().await;
    let vars = [("AUTH_SMTP_URL", sink.url.as_str()), ("AUTH_PUBLIC_URL", "https://app.acme.test")];
    let s = TestServer::start_with(&vars).await;
    s.auth.create_admin("root", &PASSWORD.into()).await.unwrap();
    let root = s.login("root").await;
    let t = s.post("/register", json!({"username": "pia", "email": "pia@acme.test", "password": PASSWORD})).await.body;
    let mut secrets: Vec<String> = vec![PASSWORD.into(), access(&t).into(), refresh(&t).into(), access(&root).into()];
    let new_password = "amber-Lantern-58-river";
    secrets.push(new_password.into());
    let r = s.post("/login", json!({"username": "pia", "password": "Wrong-Guess-417"})).await;
    assert_eq!(r.status, 401);
    secrets.push("Wrong-Guess-417".into());
    let rotated = s.post("/refresh", json!({"refresh_token": refresh(&t)})).await;
    secrets.extend([access(&rotated.body).to_owned(), refresh(&rotated.body).to_owned()]);
    me(
        &s,
        Method::POST,
        "/email",
        access(&rotated.body),
        Some(json!({"new_email": "pia@new.test", "password": PASSWORD})),
    )
    .await;
    let code = code_in(&sink.wait_for("pia@new.test", 1).await[0]);
    me(&s, Method::POST, "/email/confirm", access(&rotated.body), Some(json!({"code": code}))).await;
    secrets.push(code);
    s.post("/password/forgot", json!({"email": "pia@new.test"})).await;
    let link = sink.wait_for("pia@new.test", 2).await[1].body("text/plain");
    let token = link.split("token=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let r = s.post("/password/reset", json!({"token": token, "new_password": new_password})).await;
    assert_eq!(r.status, 204);
    secrets.push(token);
    let again = s.post("/login", json!({"username": "pia", "password": new_password})).await;
    secrets.extend([access(&again.body).to_owned(), refresh(&again.body).to_owned()]);
    // The second factor: its secret, codes, recovery codes and challenge tokens.
    let e =
        s.call(Method::POST, "/api/auth/mfa/totp/enroll", access(&again.body), Some(json!({"password": new_password})));
    let e = e.await.body;
    let (base32, uri) = (e["secret"].as_str().unwrap().to_owned(), e["otpauth_uri"].as_str().unwrap().to_owned());
    let totp = totp_rs::TOTP::from_url(&uri).unwrap();
    let raw_secret = totp_rs::Secret::Encoded(base32.clone()).to_bytes().unwrap();
    let code_now = |steps: u64| {
        use auth_core::Clock as _;
        totp.generate(u64::try_from(s.clock.now().timestamp()).unwrap() + steps * 30)
    };
    let first = code_now(0);
    let c = s.call(Method::POST, "/api/auth/mfa/totp/confirm", access(&again.body), Some(json!({"code": first})));
    let recovery: Vec<String> =
        c.await.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    let challenge = s.post("/login", json!({"username": "pia", "password": new_password})).await.body;
    let mfa_token = challenge["mfa_token"].as_str().unwrap().to_owned();
    let second = code_now(1);
    let strong = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": second})).await;
    assert_eq!(strong.status, 200, "{}", strong.body);
    let challenge = s.post("/login", json!({"username": "pia", "password": new_password})).await.body;
    let recovery_token = challenge["mfa_token"].as_str().unwrap().to_owned();
    let r = s.post("/login/mfa", json!({"mfa_token": recovery_token, "recovery_code": recovery[0]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    secrets.extend([base32, uri, first, second, mfa_token, recovery_token]);
    secrets.extend([access(&strong.body).to_owned(), refresh(&strong.body).to_owned()]);
    secrets.extend(recovery.iter().flat_map(|c| [c.clone(), c.replace('-', "")]));
    let again = strong;
    s.auth.flush_audit().await;
    // Read before the deletion, which forgets the user's events.
    let audit = s.get("/api/auth/admin/audit?limit=200", access(&root)).await;
    let kinds: Vec<&str> =
        audit.body["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in [
        "login_failed",
        "email_change_requested",
        "email_changed",
        "password_reset",
        "registered",
        "mfa_enabled",
        "login_password_ok_mfa_pending",
        "mfa_recovery_code_used",
    ] {
        assert!(kinds.contains(&kind), "{kind}: {kinds:?}");
    }
    let mut audit = audit.body.to_string();
    let r = me(&s, Method::DELETE, "", access(&again.body), Some(json!({"password": new_password}))).await;
    assert_eq!(r.status, 204);
    s.auth.flush_audit().await;
    audit.push_str(&s.get("/api/auth/admin/audit?limit=200", access(&root)).await.body.to_string());
    let log = recorder.lines().join("\n");
    let dir = s.stop().await;
    let mut database = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        database.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(!database.windows(raw_secret.len()).any(|w| w == raw_secret), "the TOTP secret is sealed at rest");
    let database = String::from_utf8_lossy(&database);
    for secret in &secrets {
        assert!(!database.contains(secret.as_str()), "the database holds a secret");
        assert!(!audit.contains(secret.as_str()), "the audit log holds a secret");
        assert!(!log.contains(secret.as_str()), "the log holds a secret");
    }
    assert!(log.contains("account deleted"), "the recorder saw the server's events: {log}");
}
