//! The second factor over HTTP on the example server (SQLite, a real SMTP server for the
//! notices): TOTP enrollment, login with a code or a recovery code, replay, the challenge's
//! attempt cap and lifetime, the lockout, step-up, enforced enrollment and the admin reset.
//! Codes are computed by `totp-rs` from the `otpauth://` URI the server hands out, at the server's
//! (injected) clock.

use std::time::Duration;

use auth_core::Clock as _;
use auth_e2e_tests::smtp::SmtpSink;
use auth_e2e_tests::{access, claims, Resp, TestServer, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

/// The code of the authenticator app holding `uri`, at the server's time plus `steps` × 30 s.
fn code(s: &TestServer, uri: &str, steps: i64) -> String {
    let totp = totp_rs::TOTP::from_url(uri).expect("an otpauth URI totp-rs reads");
    totp.generate(u64::try_from(s.clock.now().timestamp() + steps * 30).unwrap())
}

/// `s` with its clock moved to 1 s into the next 30 s TOTP step. The test clock flows with real
/// time, so a code computed now and one computed a moment later can belong to two steps when a
/// boundary falls between them; from here a test has 29 s of real time before the step changes
/// (its `advance`s move whole steps, or a second past them).
fn at_a_step_start(s: TestServer) -> TestServer {
    let now = s.clock.now();
    let into_step = f64::from(u32::try_from(now.timestamp().rem_euclid(30)).unwrap())
        + f64::from(now.timestamp_subsec_nanos()) / 1e9;
    s.clock.advance(Duration::from_secs_f64(31.0 - into_step));
    s
}

async fn server(sink: &SmtpSink, extra: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![("AUTH_SMTP_URL", sink.url.as_str()), ("AUTH_PUBLIC_URL", "https://app.acme.test")];
    vars.extend_from_slice(extra);
    at_a_step_start(TestServer::start_with(&vars).await)
}

async fn register(s: &TestServer, username: &str) -> Value {
    let email = format!("{username}@acme.test");
    let r = s.post("/register", json!({"username": username, "email": email, "password": PASSWORD})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn auth(s: &TestServer, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
    s.call(method, &format!("/api/auth{path}"), token, body).await
}

/// Enrolls and confirms a factor for the holder of `token`; returns the URI and recovery codes.
async fn enable(s: &TestServer, token: &str) -> (String, Vec<String>) {
    let e = auth(s, Method::POST, "/mfa/totp/enroll", token, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(e.status, 200, "{}", e.body);
    let uri = e.body["otpauth_uri"].as_str().unwrap().to_owned();
    let c = auth(s, Method::POST, "/mfa/totp/confirm", token, Some(json!({"code": code(s, &uri, 0)}))).await;
    assert_eq!(c.status, 200, "{}", c.body);
    let codes = c.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    (uri, codes)
}

/// A password login that must answer a challenge; returns its `mfa_token`.
async fn challenge(s: &TestServer, username: &str) -> String {
    let r = s.post("/login", json!({"username": username, "password": PASSWORD})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["mfa_required"], true, "{}", r.body);
    r.body["mfa_token"].as_str().unwrap().to_owned()
}

async fn audit_types(s: &TestServer, token: &str) -> Vec<String> {
    s.auth.flush_audit().await;
    let r = auth(s, Method::GET, "/me/audit?limit=200", token, None).await;
    r.body["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_confirmed_factor_turns_login_into_two_steps_and_a_code_works_once() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    let t = register(&s, "tova").await;
    let token = access(&t).to_owned();

    let wrong = auth(&s, Method::POST, "/mfa/totp/enroll", &token, Some(json!({"password": "not-my-password"}))).await;
    assert_eq!((wrong.status, wrong.code()), (403, "invalid_credentials"));
    let e = auth(&s, Method::POST, "/mfa/totp/enroll", &token, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(e.status, 200, "{}", e.body);
    let uri = e.body["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/auth:tova?secret="), "{uri}");
    assert!(uri.contains(e.body["secret"].as_str().unwrap()));
    assert!(e.body["qr_png"].as_str().unwrap().starts_with("data:image/png;base64,iVBORw0KGgo"));
    // Nothing is active yet: the password alone still logs in.
    assert!(s.login("tova").await["access_token"].is_string());

    let bad = auth(&s, Method::POST, "/mfa/totp/confirm", &token, Some(json!({"code": "000000"}))).await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_mfa_code"));
    let garbage = auth(&s, Method::POST, "/mfa/totp/confirm", &token, Some(json!({"code": "'; DROP TABLE"}))).await;
    assert_eq!((garbage.status, garbage.code()), (400, "invalid_mfa_code"));
    let ok = auth(&s, Method::POST, "/mfa/totp/confirm", &token, Some(json!({"code": code(&s, &uri, 0)}))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let codes = ok.body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<&str> = codes.iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(distinct.len(), 10);
    assert!(distinct.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'), "{distinct:?}");
    let notice = &sink.wait_for("tova@acme.test", 1).await[0];
    assert!(notice.body("text/plain").contains("two-step login was turned on"));
    let again = auth(&s, Method::POST, "/mfa/totp/enroll", &token, Some(json!({"password": PASSWORD}))).await;
    assert_eq!((again.status, again.code()), (409, "mfa_already_enabled"));

    // The password is now only the first step.
    let r = s.post("/login", json!({"username": "tova", "password": PASSWORD})).await;
    assert_eq!(r.status, 200);
    assert_eq!(auth_e2e_tests::keys(&r.body), ["expires_in", "methods", "mfa_required", "mfa_token"]);
    assert_eq!(r.body["methods"], json!(["totp", "recovery_code"]));
    assert_eq!(r.body["expires_in"], 300);
    let mfa_token = r.body["mfa_token"].as_str().unwrap();
    assert_eq!(s.get("/api/auth/me", mfa_token).await.status, 401, "the challenge is no access token");
    // The confirming code's step is used: the same code cannot log in.
    let replay = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": code(&s, &uri, 0)})).await;
    assert_eq!((replay.status, replay.code()), (400, "invalid_mfa_code"));
    assert_eq!(replay.body["error"]["details"]["attempts_left"], 4);
    s.clock.advance(Duration::from_secs(30));
    let next = code(&s, &uri, 0);
    let done = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": next})).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let session_token = access(&done.body).to_owned();
    assert_eq!(claims(&session_token)["amr"], json!(["pwd", "otp"]));
    let sessions = s.get("/api/auth/sessions", &session_token).await;
    let current = sessions.body["sessions"].as_array().unwrap().iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(current["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims(access(&t))["amr"], json!(["pwd"]));
    // The token is single use, and the code too, on a fresh challenge.
    let spent = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": next})).await;
    assert_eq!((spent.status, spent.code()), (401, "invalid_mfa_token"));
    let fresh = challenge(&s, "tova").await;
    let replay = s.post("/login/mfa", json!({"mfa_token": fresh, "code": next})).await;
    assert_eq!((replay.status, replay.code()), (400, "invalid_mfa_code"), "a code is accepted once");
    // The next step's code is fine (one step of clock drift); two steps ahead is not.
    let early = s.post("/login/mfa", json!({"mfa_token": fresh, "code": code(&s, &uri, 2)})).await;
    assert_eq!(early.code(), "invalid_mfa_code");
    let late_ok = s.post("/login/mfa", json!({"mfa_token": fresh, "code": code(&s, &uri, 1)})).await;
    assert_eq!(late_ok.status, 200, "{}", late_ok.body);

    let status = s.get("/api/auth/mfa", &session_token).await;
    assert_eq!(status.body["totp_enabled"], true);
    assert_eq!(status.body["recovery_codes_left"], 10);
    let types = audit_types(&s, &session_token).await;
    for kind in ["mfa_enabled", "login_password_ok_mfa_pending", "mfa_failed", "login_succeeded"] {
        assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
    }
}

#[tokio::test]
async fn recovery_codes_log_in_once_and_new_ones_replace_them() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    let t = register(&s, "remy").await;
    let (uri, codes) = enable(&s, access(&t)).await;

    let mfa_token = challenge(&s, "remy").await;
    let typed = codes[0].to_lowercase().replace('-', " ");
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "recovery_code": typed})).await;
    assert_eq!(r.status, 200, "a recovery code, typed loosely: {}", r.body);
    let token = access(&r.body).to_owned();
    assert_eq!(claims(&token)["amr"], json!(["pwd", "otp"]));
    let used = sink.wait_for("remy@acme.test", 2).await;
    assert!(used[1].body("text/plain").contains("a recovery code was used"));
    let again = challenge(&s, "remy").await;
    let r = s.post("/login/mfa", json!({"mfa_token": again, "recovery_code": codes[0]})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_mfa_code"), "single use");
    assert_eq!(s.get("/api/auth/mfa", &token).await.body["recovery_codes_left"], 9);
    let both = s.post("/login/mfa", json!({"mfa_token": again, "code": "123456", "recovery_code": codes[1]})).await;
    assert_eq!((both.status, both.code()), (400, "invalid_request"));

    // New codes need the password and a code; the old ones die.
    let path = "/mfa/recovery-codes";
    let no_code = auth(&s, Method::POST, path, &token, Some(json!({"password": PASSWORD, "code": "000000"}))).await;
    assert_eq!(no_code.code(), "invalid_mfa_code");
    s.clock.advance(Duration::from_secs(30));
    let body = json!({"password": PASSWORD, "code": code(&s, &uri, 0)});
    let fresh = auth(&s, Method::POST, path, &token, Some(body)).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let new_codes = fresh.body["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(new_codes.len(), 10);
    assert!(sink.wait_for("remy@acme.test", 3).await[2].body("text/plain").contains("new recovery codes"));
    let r = s.post("/login/mfa", json!({"mfa_token": again, "recovery_code": codes[1]})).await;
    assert_eq!(r.code(), "invalid_mfa_code", "an old code after regeneration");
    let r = s.post("/login/mfa", json!({"mfa_token": again, "recovery_code": new_codes[0]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_challenge_dies_after_five_wrong_codes_or_five_minutes_even_with_rate_limits_off() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    let t = register(&s, "cato").await;
    let (uri, codes) = enable(&s, access(&t)).await;
    s.clock.advance(Duration::from_secs(30));

    let mfa_token = challenge(&s, "cato").await;
    for left in (0..5).rev() {
        let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": "999999"})).await;
        assert_eq!((r.status, r.code()), (400, "invalid_mfa_code"));
        assert_eq!(r.body["error"]["details"]["attempts_left"], left);
    }
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "recovery_code": codes[0]})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_mfa_token"), "dead after five");
    let mfa_token = challenge(&s, "cato").await;
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "recovery_code": codes[0]})).await;
    assert_eq!(r.status, 200, "the dead challenge did not spend the recovery code: {}", r.body);

    let mfa_token = challenge(&s, "cato").await;
    s.clock.advance(Duration::from_secs(301));
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": code(&s, &uri, 0)})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_mfa_token"), "expired");

    // A password change since the challenge kills it.
    let mfa_token = challenge(&s, "cato").await;
    let new_password = "amber-Lantern-58-river";
    let change = json!({"current_password": PASSWORD, "new_password": new_password, "mfa_code": code(&s, &uri, 0)});
    let changed = auth(&s, Method::POST, "/password/change", access(&t), Some(change)).await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    s.clock.advance(Duration::from_secs(30));
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": code(&s, &uri, 0)})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_mfa_token"), "bound to the verified password");

    for (body, status) in [
        (json!({"mfa_token": "garbage", "code": "123456"}), 401),
        (json!({"mfa_token": "x".repeat(5000), "code": "123456"}), 401),
        (json!({"mfa_token": "", "code": "123456"}), 401),
        (json!({"mfa_token": "garbage"}), 400),
        (json!({"code": "123456"}), 400),
        (json!({"mfa_token": 7, "code": "123456"}), 400),
    ] {
        let r = s.post("/login/mfa", body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lockout_and_the_per_account_second_factor_limit() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[("AUTH_RATE_LIMITS", "default"), ("AUTH_RATE_LIMIT_LOGIN", "100/60")]).await;
    let wrong_code = |mfa_token: &str| json!({"mfa_token": mfa_token, "code": "999999"});
    let t = register(&s, "lock").await;
    let (uri, _) = enable(&s, access(&t)).await;
    s.clock.advance(Duration::from_secs(30));
    for _ in 0..2 {
        let mfa_token = challenge(&s, "lock").await;
        for _ in 0..5 {
            assert_eq!(s.post("/login/mfa", wrong_code(&mfa_token)).await.code(), "invalid_mfa_code");
        }
    }
    // Ten failures in the window: the right code is refused too, from a fresh challenge.
    let mfa_token = challenge(&s, "lock").await;
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": code(&s, &uri, 0)})).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.body);
    assert!(r.headers.get("retry-after").is_some());
    s.clock.advance(Duration::from_secs(901));
    let mfa_token = challenge(&s, "lock").await;
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": code(&s, &uri, 0)})).await;
    assert_eq!(r.status, 200, "after the window: {}", r.body);

    // Wrong codes also fill the account lockout (10 per 15 minutes): five of them and five wrong
    // passwords lock the password out, which five wrong passwords alone would not.
    s.clock.advance(Duration::from_secs(901));
    let mfa_token = challenge(&s, "lock").await;
    for _ in 0..5 {
        assert_eq!(s.post("/login/mfa", wrong_code(&mfa_token)).await.code(), "invalid_mfa_code");
    }
    for _ in 0..5 {
        let r = s.post("/login", json!({"username": "lock", "password": "Wrong-Guess-417"})).await;
        assert_eq!(r.code(), "invalid_credentials");
    }
    let r = s.post("/login", json!({"username": "lock", "password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "{}", r.body);
}

#[tokio::test]
async fn sensitive_actions_need_a_recent_two_factor_session_or_a_code() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    let t = register(&s, "sten").await;
    let password_only = access(&t).to_owned();
    let (uri, _) = enable(&s, &password_only).await;
    s.clock.advance(Duration::from_secs(30));

    // A session made with the password alone (before the factor) needs a code.
    let body = json!({"new_email": "sten@new.test", "password": PASSWORD});
    let r = auth(&s, Method::POST, "/me/email", &password_only, Some(body)).await;
    assert_eq!((r.status, r.code()), (403, "mfa_required"), "{}", r.body);
    let body = json!({"new_email": "sten@new.test", "password": PASSWORD, "mfa_code": "000000"});
    let r = auth(&s, Method::POST, "/me/email", &password_only, Some(body)).await;
    assert_eq!((r.status, r.code()), (400, "invalid_mfa_code"));
    let body = json!({"new_email": "sten@new.test", "password": PASSWORD, "mfa_code": code(&s, &uri, 0)});
    let r = auth(&s, Method::POST, "/me/email", &password_only, Some(body)).await;
    assert_eq!(r.status, 202, "{}", r.body);

    // A two-factor session within the window needs none; past it, it does.
    s.clock.advance(Duration::from_secs(30));
    let mfa_token = challenge(&s, "sten").await;
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": code(&s, &uri, 0)})).await;
    let strong = access(&r.body).to_owned();
    let disable = json!({"password": PASSWORD, "code": "000000"});
    let r = auth(&s, Method::DELETE, "/mfa/totp", &strong, Some(disable)).await;
    assert_eq!(r.code(), "invalid_mfa_code", "disabling always takes a code");
    s.clock.advance(Duration::from_secs(601));
    let r = auth(&s, Method::DELETE, "/me", &strong, Some(json!({"password": PASSWORD}))).await;
    assert_eq!((r.status, r.code()), (403, "mfa_required"), "past the step-up window");

    let disable = json!({"password": PASSWORD, "code": code(&s, &uri, 0)});
    let r = auth(&s, Method::DELETE, "/mfa/totp", &strong, Some(disable)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    // Enabled, the email change asked for, disabled.
    let notices = sink.wait_for("sten@acme.test", 3).await;
    assert!(notices.iter().any(|m| m.body("text/plain").contains("two-step login was turned off")));
    assert!(s.login("sten").await["access_token"].is_string(), "the password alone again");
    let r = auth(&s, Method::DELETE, "/me", &strong, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(r.status, 204, "no factor, no step-up: {}", r.body);
}

#[tokio::test]
async fn a_role_that_requires_a_factor_enrolls_at_login_and_admins_step_up() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[("AUTH_MFA_REQUIRED_FOR_ROLES", "admin")]).await;
    s.auth.create_admin("root", &PASSWORD.into()).await.unwrap();
    let user = register(&s, "ulla").await;

    let r = s.post("/login", json!({"username": "root", "password": PASSWORD})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(auth_e2e_tests::keys(&r.body), ["expires_in", "methods", "mfa_enrollment_required", "mfa_token"]);
    let enroll_token = r.body["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/api/auth/me", &enroll_token).await.status, 401, "it can only enroll");
    let r = s.post("/login/mfa", json!({"mfa_token": enroll_token, "code": "123456"})).await;
    assert_eq!(r.code(), "invalid_mfa_token", "an enrollment token finishes no login by itself");
    let e = s.post("/mfa/totp/enroll", json!({"mfa_token": enroll_token})).await;
    assert_eq!(e.status, 200, "{}", e.body);
    let uri = e.body["otpauth_uri"].as_str().unwrap().to_owned();
    let c = s.post("/mfa/totp/confirm", json!({"mfa_token": enroll_token, "code": code(&s, &uri, 0)})).await;
    assert_eq!(c.status, 200, "{}", c.body);
    assert_eq!(c.body["recovery_codes"].as_array().unwrap().len(), 10);
    let root = access(&c.body).to_owned();
    assert_eq!(claims(&root)["amr"], json!(["pwd", "otp"]));
    let again = s.post("/mfa/totp/confirm", json!({"mfa_token": enroll_token, "code": code(&s, &uri, 0)})).await;
    assert_eq!(again.code(), "invalid_mfa_token", "spent");
    // Users of other roles are not forced.
    assert!(s.login("ulla").await["access_token"].is_string());

    // Admin changes: fine within the window after the two-factor login, then a code.
    let ulla = claims(access(&user))["sub"].as_str().unwrap().to_owned();
    let sessions = format!("/api/auth/admin/users/{ulla}/sessions");
    assert_eq!(s.call(Method::DELETE, &sessions, &root, None).await.status, 200);
    s.clock.advance(Duration::from_secs(601));
    let r = s.call(Method::DELETE, &sessions, &root, None).await;
    assert_eq!((r.status, r.code()), (403, "mfa_required"));
    assert_eq!(s.get(&format!("/api/auth/admin/users/{ulla}"), &root).await.status, 200, "reads need no step-up");
    let r = Resp::from(
        s.request(Method::DELETE, &sessions).bearer_auth(&root).header("X-MFA-Code", code(&s, &uri, 0)).send().await,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // An admin resets a user's factor: the user is told and logs in with the password alone.
    let (_, _) = enable(&s, access(&s.login("ulla").await)).await;
    assert_eq!(s.post("/login", json!({"username": "ulla", "password": PASSWORD})).await.body["mfa_required"], true);
    s.clock.advance(Duration::from_secs(30));
    let reset = format!("/api/auth/admin/users/{ulla}/mfa");
    let r = Resp::from(
        s.request(Method::DELETE, &reset).bearer_auth(&root).header("X-MFA-Code", code(&s, &uri, 0)).send().await,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(s.call(Method::DELETE, &reset, &root, None).await.code(), "mfa_required");
    assert!(s.login("ulla").await["access_token"].is_string());
    let mails = sink.wait_for("ulla@acme.test", 2).await;
    assert!(mails[1].body("text/plain").contains("an administrator turned two-step login off"));
    s.auth.flush_audit().await;
    let log = s.get("/api/auth/admin/audit?type=admin_mfa_reset", &root).await;
    assert_eq!(log.status, 200, "reads need no step-up: {}", log.body);
    assert_eq!(log.body["events"][0]["user_id"], ulla.as_str());
}

/// The sealed TOTP secret in the SQLite file under `dir`.
async fn read_sealed(dir: &std::path::Path) -> Vec<u8> {
    let url = format!("sqlite://{}", dir.join("auth.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (sealed,): (Vec<u8>,) =
        sqlx::query_as("SELECT sealed_secret FROM auth_mfa_totp").fetch_one(&pool).await.unwrap();
    pool.close().await;
    sealed
}

#[tokio::test]
async fn an_encryption_key_can_be_set_and_rotated_without_re_enrolling_anyone() {
    use base64::Engine as _;
    let key = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let (first, second) = (key(1), key(2));
    // Enrolled under the key derived from the JWT secret.
    let s = TestServer::start().await;
    let t = register(&s, "kira").await;
    let (uri, _) = enable(&s, access(&t)).await;
    let before = read_sealed(s.dir.path()).await;
    let dir = s.stop().await;

    // An explicit key: the derived one still opens the secret, which is re-sealed on its use.
    let s = TestServer::start_in(dir, &[("AUTH_MFA_ENCRYPTION_KEY", &first)]).await;
    let mfa_token = challenge(&s, "kira").await;
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": code(&s, &uri, 1)})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let resealed = read_sealed(s.dir.path()).await;
    assert_ne!(before, resealed, "re-sealed with the explicit key");
    let dir = s.stop().await;

    // Rotation: a new key, the old one listed as previous.
    let s = TestServer::start_in(
        dir,
        &[("AUTH_MFA_ENCRYPTION_KEY", &second), ("AUTH_MFA_PREVIOUS_ENCRYPTION_KEYS", &format!("{first},"))],
    )
    .await;
    s.clock.advance(Duration::from_secs(60));
    let mfa_token = challenge(&s, "kira").await;
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": code(&s, &uri, 0)})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dir = s.stop().await;

    // Once re-sealed, the old key can go.
    let s = TestServer::start_in(dir, &[("AUTH_MFA_ENCRYPTION_KEY", &second)]).await;
    s.clock.advance(Duration::from_secs(120));
    let mfa_token = challenge(&s, "kira").await;
    let r = s.post("/login/mfa", json!({"mfa_token": mfa_token, "code": code(&s, &uri, 0)})).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn bad_second_factor_settings_refuse_to_start_naming_the_variable() {
    use auth_example_server::ServerConfig;
    let config = |name: &'static str, value: &'static str| {
        ServerConfig::from_lookup(move |n| (n == name).then(|| value.to_owned()))
    };
    let err = config("AUTH_MFA_ENCRYPTION_KEY", "c2hvcnQta2V5").unwrap_err().to_string();
    assert!(err.contains("AUTH_MFA_ENCRYPTION_KEY must decode to 32 bytes"), "{err}");
    assert!(!err.contains("c2hvcnQta2V5"), "never the key: {err}");
    let err = config("AUTH_MFA_PREVIOUS_ENCRYPTION_KEYS", "%%%").unwrap_err().to_string();
    assert!(err.contains("AUTH_MFA_PREVIOUS_ENCRYPTION_KEYS is not base64"), "{err}");
    let roles = config("AUTH_MFA_REQUIRED_FOR_ROLES", "admin,wizard").unwrap();
    let err = roles.auth_config(vec![7; 32]).unwrap_err().to_string();
    assert!(err.contains("AUTH_MFA_REQUIRED_FOR_ROLES: \"wizard\" is not a role"), "{err}");
    // Registration gives `user` a session at once: requiring a factor of it would be a bypass.
    let roles = config("AUTH_MFA_REQUIRED_FOR_ROLES", "user").unwrap();
    let auth_config = roles.auth_config(vec![7; 32]).unwrap();
    let err = auth_core::Auth::builder(auth_config)
        .stores(std::sync::Arc::new(auth_storage::MemoryStore::new()))
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot name the role registration gives (user)"), "{err}");
}

#[tokio::test]
async fn an_issuer_with_a_colon_refuses_to_start() {
    let config = auth_example_server::ServerConfig::from_lookup(|n| match n {
        "AUTH_MFA_ISSUER" => Some("Acme: Internal".to_owned()),
        "AUTH_DATABASE_URL" => Some("memory".to_owned()),
        _ => None,
    })
    .unwrap();
    let err = auth_example_server::build_auth(&config).await.unwrap_err().to_string();
    assert!(err.contains("must not contain ':' (AUTH_MFA_ISSUER)"), "{err}");
}

#[tokio::test]
async fn a_pending_enrollment_expires_after_ten_minutes_and_a_new_one_replaces_it() {
    let s = at_a_step_start(TestServer::start().await);
    let t = register(&s, "pend").await;
    let token = access(&t).to_owned();
    let enroll = || auth(&s, Method::POST, "/mfa/totp/enroll", &token, Some(json!({"password": PASSWORD})));
    let first = enroll().await.body["otpauth_uri"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/api/auth/mfa", &token).await.body["totp_enabled"], false, "pending is not enabled");
    s.clock.advance(Duration::from_secs(601));
    let r = auth(&s, Method::POST, "/mfa/totp/confirm", &token, Some(json!({"code": code(&s, &first, 0)}))).await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "expired: {}", r.body);
    let second = enroll().await.body["otpauth_uri"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "a new secret");
    let r = auth(&s, Method::POST, "/mfa/totp/confirm", &token, Some(json!({"code": code(&s, &first, 0)}))).await;
    assert_eq!(r.code(), "invalid_mfa_code", "the replaced secret's code");
    let r = auth(&s, Method::POST, "/mfa/totp/confirm", &token, Some(json!({"code": code(&s, &second, 0)}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
}
