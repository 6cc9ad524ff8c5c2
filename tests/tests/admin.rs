//! The admin API over HTTP (`/api/auth/admin/…`): listing and searching users with keyset
//! pages, changing and deleting them, their sessions, the last-admin guard, reset links, and the
//! audit log every action writes.

use auth_e2e_tests::smtp::SmtpSink;
use auth_e2e_tests::{access, claims, Resp, TestServer, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

/// A server with an admin `root` logged in; returns the admin's access token.
async fn with_admin(s: &TestServer) -> String {
    s.auth.create_admin("root", &PASSWORD.into()).await.unwrap();
    access(&s.login("root").await).to_owned()
}

async fn admin(s: &TestServer, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
    s.call(method, &format!("/api/auth/admin{path}"), token, body).await
}

fn field<'a>(r: &'a Resp, name: &str) -> &'a Value {
    &r.body["error"]["details"]["fields"][name]
}

fn names(r: &Resp) -> Vec<&str> {
    r.body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect()
}

/// The audit events of `user_id` (after every pending write), newest first.
async fn audit_of(s: &TestServer, token: &str, user_id: &str) -> Vec<Value> {
    s.auth.flush_audit().await;
    let r = admin(s, Method::GET, &format!("/audit?user_id={user_id}&limit=200"), token, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["events"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn admins_list_search_and_page_users_and_nobody_else_can() {
    let s = TestServer::start().await;
    let root = with_admin(&s).await;
    for name in ["alice", "Alicia", "bob", "carol"] {
        s.register(name).await;
    }
    // Keyset pages in creation order, with an opaque cursor.
    let first = admin(&s, Method::GET, "/users?limit=2", &root, None).await;
    assert_eq!((first.status, names(&first)), (200, vec!["root", "alice"]));
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = admin(&s, Method::GET, &format!("/users?limit=2&cursor={cursor}"), &root, None).await;
    assert_eq!(names(&second), ["Alicia", "bob"]);
    let cursor = second.body["next_cursor"].as_str().unwrap().to_owned();
    let last = admin(&s, Method::GET, &format!("/users?limit=2&cursor={cursor}"), &root, None).await;
    assert_eq!((names(&last), &last.body["next_cursor"]), (vec!["carol"], &Value::Null));
    // Search by prefix, case-insensitively; filters by role and status.
    let found = admin(&s, Method::GET, "/users?query=ALI", &root, None).await;
    assert_eq!(names(&found), ["alice", "Alicia"]);
    let admins = admin(&s, Method::GET, "/users?role=admin&status=active", &root, None).await;
    assert_eq!(names(&admins), ["root"]);
    assert!(admins.body["users"][0].get("password_hash").is_none(), "users never carry their hash");

    // Bad parameters: 400 naming each field, nothing else.
    let bad = admin(&s, Method::GET, "/users?limit=500&cursor=nope&status=asleep&role=wizard", &root, None).await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_request"));
    for name in ["limit", "cursor", "status", "role"] {
        assert!(field(&bad, name).is_string(), "{name}: {}", bad.body);
    }
    // A user is refused (403), no token is 401.
    let alice = access(&s.login("alice").await).to_owned();
    let r = admin(&s, Method::GET, "/users", &alice, None).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = Resp::from(s.request(Method::GET, "/api/auth/admin/users").send().await).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
}

#[tokio::test]
async fn disabling_or_changing_the_role_of_a_user_ends_their_sessions_at_once() {
    let s = TestServer::start().await;
    let root = with_admin(&s).await;
    let dave = s.register("dave").await;
    let id = dave["user"]["id"].as_str().unwrap().to_owned();
    let token = access(&dave).to_owned();
    assert_eq!(s.get("/api/protected", &token).await.status, 200);

    let r = admin(&s, Method::PATCH, &format!("/users/{id}"), &root, Some(json!({"status": "disabled"}))).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("disabled")), "{}", r.body);
    let r = s.get("/api/protected", &token).await;
    assert_eq!((r.status, r.code()), (401, "session_revoked"), "refused on the next request, not at expiry");
    let r = s.post("/login", json!({"username": "dave", "password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (403, "account_disabled"));

    let r = admin(&s, Method::PATCH, &format!("/users/{id}"), &root, Some(json!({"status": "active"}))).await;
    assert_eq!(r.status, 200);
    let token = access(&s.login("dave").await).to_owned();
    let r = admin(&s, Method::PATCH, &format!("/users/{id}"), &root, Some(json!({"role": "admin"}))).await;
    assert_eq!(r.body["role"], "admin");
    assert_eq!(s.get("/api/protected", &token).await.code(), "session_revoked", "a role change ends sessions too");
    let promoted = access(&s.login("dave").await).to_owned();
    assert_eq!(s.get("/api/admin/ping", &promoted).await.status, 200, "the new role is in the next token");

    let root_id = s.auth.user_store().user_by_username("root").await.unwrap().unwrap().user.id.to_string();
    let events = audit_of(&s, &root, &id).await;
    let changes: Vec<(&str, &Value, &Value)> = events
        .iter()
        .filter(|e| ["status_changed", "role_changed"].contains(&e["type"].as_str().unwrap()))
        .map(|e| (e["type"].as_str().unwrap(), &e["details"], &e["actor_id"]))
        .collect();
    let root_actor = Value::from(root_id);
    assert_eq!(
        changes,
        [
            ("role_changed", &json!({"role": "admin"}), &root_actor),
            ("status_changed", &json!({"status": "active"}), &root_actor),
            ("status_changed", &json!({"status": "disabled"}), &root_actor),
        ]
    );
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_disabled_demoted_or_deleted() {
    let s = TestServer::start().await;
    let root = with_admin(&s).await;
    let me = s.get("/api/auth/me", &root).await.body;
    let root_id = me["id"].as_str().unwrap().to_owned();
    for (method, body) in [
        (Method::PATCH, Some(json!({"status": "disabled"}))),
        (Method::PATCH, Some(json!({"role": "user"}))),
        (Method::DELETE, None),
    ] {
        let r = admin(&s, method.clone(), &format!("/users/{root_id}"), &root, body).await;
        assert_eq!((r.status, r.code()), (409, "last_admin"), "{method}: {}", r.body);
    }
    let r = s.call(Method::DELETE, "/api/auth/me", &root, Some(json!({"password": PASSWORD}))).await;
    assert_eq!((r.status, r.code()), (409, "last_admin"), "nor may it delete itself");
    assert_eq!(admin(&s, Method::GET, &format!("/users/{root_id}"), &root, None).await.body["role"], "admin");

    // With a second admin, the first may step down.
    let body = json!({"username": "second", "password": PASSWORD, "role": "admin"});
    let r = admin(&s, Method::POST, "/users", &root, Some(body)).await;
    assert_eq!((r.status, r.body["role"].as_str()), (201, Some("admin")), "{}", r.body);
    let r = admin(&s, Method::PATCH, &format!("/users/{root_id}"), &root, Some(json!({"role": "user"}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get("/api/auth/me", &root).await.code(), "session_revoked");
}

#[tokio::test]
async fn admins_change_fields_merge_metadata_and_get_clear_errors() {
    let s = TestServer::start().await;
    let root = with_admin(&s).await;
    let erin = s.register("erin").await;
    let id = erin["user"]["id"].as_str().unwrap().to_owned();
    s.register("frank").await;
    let path = format!("/users/{id}");

    let body =
        json!({"email": "Erin@Example.COM", "email_verified": true, "metadata": {"plan": "pro", "quota": {"a": 1}}});
    let r = admin(&s, Method::PATCH, &path, &root, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["email"].as_str(), &r.body["email_verified"]), (Some("Erin@example.com"), &json!(true)));
    let body = json!({"username": "erin2", "metadata": {"quota": {"a": null, "b": 2}}});
    let r = admin(&s, Method::PATCH, &path, &root, Some(body)).await;
    assert_eq!(r.body["metadata"], json!({"plan": "pro", "quota": {"b": 2}}), "RFC 7396 merge");
    assert_eq!(r.body["username"], "erin2");
    let r = s.post("/login", json!({"username": "erin2", "password": PASSWORD})).await;
    assert_eq!(r.status, 200, "the new username logs in");

    let r = admin(&s, Method::PATCH, &path, &root, Some(json!({"username": "FRANK"}))).await;
    assert_eq!((r.status, r.code()), (409, "username_taken"));
    let r = admin(&s, Method::PATCH, &path, &root, Some(json!({"username": "Erin2"}))).await;
    assert_eq!((r.status, r.body["username"].as_str()), (200, Some("Erin2")), "a new capitalization is a change");
    let r = admin(&s, Method::PATCH, &path, &root, Some(json!({"email": "not-an-address", "role": "wizard"}))).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    assert!(field(&r, "email").is_string() && field(&r, "role").is_string(), "{}", r.body);
    let r = admin(&s, Method::PATCH, &path, &root, Some(json!({"status": "sleeping"}))).await;
    assert!(field(&r, "status").is_string(), "{}", r.body);

    // Ids that are not ours: 404, whatever the route.
    for path in ["/users/00000000-0000-7000-8000-000000000000", "/users/not-a-uuid"] {
        let r = admin(&s, Method::GET, path, &root, None).await;
        assert_eq!((r.status, r.code()), (404, "not_found"), "{path}");
        let r = admin(&s, Method::DELETE, &format!("{path}/sessions"), &root, None).await;
        assert_eq!(r.status, 404, "{path}/sessions");
    }
}

#[tokio::test]
async fn admins_see_and_end_a_users_sessions() {
    let s = TestServer::start().await;
    let root = with_admin(&s).await;
    let gail = s.register("gail").await;
    let id = gail["user"]["id"].as_str().unwrap().to_owned();
    let second = s.login("gail").await;
    let listed = admin(&s, Method::GET, &format!("/users/{id}/sessions"), &root, None).await;
    assert_eq!(listed.status, 200);
    let sessions = listed.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["user_agent"], "e2e-tests/1.0");

    let sid = claims(access(&second))["sid"].as_str().unwrap().to_owned();
    let r = admin(&s, Method::DELETE, &format!("/users/{id}/sessions/{sid}"), &root, None).await;
    assert_eq!((r.status, &r.body), (200, &json!({"revoked": 1})));
    assert_eq!(s.get("/api/protected", access(&second)).await.code(), "session_revoked");
    assert_eq!(s.get("/api/protected", access(&gail)).await.status, 200, "the other session stays");
    let r = admin(&s, Method::DELETE, &format!("/users/{id}/sessions/{sid}"), &root, None).await;
    assert_eq!(r.status, 404, "no longer a live session of hers");

    let r = admin(&s, Method::DELETE, &format!("/users/{id}/sessions"), &root, None).await;
    assert_eq!((r.status, &r.body), (200, &json!({"revoked": 1})));
    assert_eq!(s.get("/api/protected", access(&gail)).await.code(), "session_revoked");
    let events = audit_of(&s, &root, &id).await;
    assert_eq!(types(&events)[..2], ["admin_sessions_revoked", "admin_sessions_revoked"]);
}

#[tokio::test]
async fn admins_create_users_with_a_password_or_a_mailed_link_and_send_reset_links() {
    let sink = SmtpSink::start().await;
    let s =
        TestServer::start_with(&[("AUTH_SMTP_URL", sink.url.as_str()), ("AUTH_PUBLIC_URL", "https://app.acme.test")])
            .await;
    let root = with_admin(&s).await;

    let body = json!({"username": "hana", "email": "hana@acme.test", "password": PASSWORD, "email_verified": true});
    let r = admin(&s, Method::POST, "/users", &root, Some(body)).await;
    assert_eq!((r.status, r.body["role"].as_str(), &r.body["email_verified"]), (201, Some("user"), &json!(true)));
    assert_eq!(s.post("/login", json!({"username": "hana", "password": PASSWORD})).await.status, 200);
    let r = admin(&s, Method::POST, "/users", &root, Some(json!({"username": "weak", "password": "password"}))).await;
    assert_eq!(r.code(), "weak_password", "the policy applies to admins too");

    // No password: a set-password link goes to the address; the account cannot log in before.
    let r = admin(&s, Method::POST, "/users", &root, Some(json!({"email": "ivo@acme.test"}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let mails = sink.wait_for("ivo@acme.test", 1).await;
    let link = mails[0].body("text/plain");
    let token = link.split("token=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    let r = s.post("/password/reset", json!({"token": token, "new_password": "amber-Lantern-58-river"})).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s.post("/login", json!({"email": "ivo@acme.test", "password": "amber-Lantern-58-river"})).await;
    assert_eq!(r.status, 200);

    let r = admin(&s, Method::POST, &format!("/users/{id}/password-reset"), &root, None).await;
    assert_eq!((r.status, &r.body), (202, &json!({"sent": true})));
    // The link, the notice of the reset, and now the admin's link.
    let mails = sink.wait_for("ivo@acme.test", 3).await;
    let text = mails[2].body("text/plain");
    assert!(text.contains("https://app.acme.test/reset-password?token="), "{text}");
    let events = audit_of(&s, &root, &id).await;
    let kinds = types(&events);
    assert!(kinds.contains(&"admin_password_reset_sent") && kinds.contains(&"admin_user_created"), "{kinds:?}");
    // A refused mail is the admin's to know: 502, and nothing audited as sent.
    sink.refuse_messages(true);
    let r = admin(&s, Method::POST, &format!("/users/{id}/password-reset"), &root, None).await;
    assert_eq!((r.status, r.code()), (502, "mail_unavailable"), "{}", r.body);
    sink.refuse_messages(false);
    let sent = types(&audit_of(&s, &root, &id).await).iter().filter(|k| **k == "admin_password_reset_sent").count();
    assert_eq!(sent, 1);
    let no_email = admin(&s, Method::POST, "/users", &root, Some(json!({"username": "jo"}))).await;
    assert!(field(&no_email, "password").is_string(), "{}", no_email.body);
}

#[tokio::test]
async fn the_audit_log_pages_filters_and_shows_users_their_own_events() {
    let s = TestServer::start().await;
    let root = with_admin(&s).await;
    let kim = s.register("kim").await;
    let kim_id = kim["user"]["id"].as_str().unwrap().to_owned();
    let r = s.post("/login", json!({"username": "kim", "password": "wrong password here"})).await;
    assert_eq!(r.status, 401);
    let r = s.post("/login", json!({"username": "nobody", "password": "wrong password here"})).await;
    assert_eq!(r.status, 401);
    s.login("kim").await;
    s.auth.flush_audit().await;

    let mine = s.get("/api/auth/me/audit", access(&kim)).await;
    assert_eq!(mine.status, 200);
    let events = mine.body["events"].as_array().unwrap();
    assert_eq!(types(events), ["login_succeeded", "login_failed", "registered"]);
    assert_eq!(events[1]["details"], json!({"reason": "wrong_password"}));
    assert_eq!((events[1]["outcome"].as_str(), events[1]["ip"].as_str()), (Some("failure"), Some("127.0.0.1")));
    assert_eq!(events[0]["user_agent"], "e2e-tests/1.0");
    assert!(events.iter().all(|e| e["user_id"] == kim_id.as_str()));

    let failed = admin(&s, Method::GET, "/audit?type=login_failed", &root, None).await;
    let failures: Vec<(&Value, &Value)> =
        failed.body["events"].as_array().unwrap().iter().map(|e| (&e["user_id"], &e["details"]["reason"])).collect();
    assert_eq!(failures, [(&Value::Null, &json!("unknown_account")), (&json!(kim_id), &json!("wrong_password"))]);
    let page = admin(&s, Method::GET, "/audit?limit=1", &root, None).await;
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = admin(&s, Method::GET, &format!("/audit?limit=1&cursor={cursor}"), &root, None).await;
    assert_ne!(next.body["events"][0]["id"], page.body["events"][0]["id"]);
    let since = admin(&s, Method::GET, "/audit?since=2999-01-01T00:00:00Z", &root, None).await;
    assert_eq!(since.body["events"], json!([]));
    let bad = admin(&s, Method::GET, "/audit?type=nope&since=yesterday&user_id=42", &root, None).await;
    assert_eq!(bad.status, 400);
    for name in ["type", "since", "user_id"] {
        assert!(field(&bad, name).is_string(), "{name}: {}", bad.body);
    }
    let r = s.get("/api/auth/admin/audit", access(&kim)).await;
    assert_eq!(r.status, 403, "users read only their own events");
}

/// The audit events of `user_id` (or of nobody, for `None`), oldest first, as (type, outcome,
/// reason) read through the host's admin API.
async fn trail(s: &TestServer, user_id: Option<&str>) -> Vec<(String, String, String)> {
    s.auth.flush_audit().await;
    let req = auth_core::ListAuditRequest {
        user_id: user_id.map(str::to_owned),
        limit: Some("200".into()),
        ..Default::default()
    };
    let page = s.auth.admin().audit_log(&req).await.unwrap();
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let mut events: Vec<(String, String, String)> = page
        .items
        .iter()
        .filter(|e| user_id.is_some() || e.user_id.is_none())
        .map(|e| {
            let e = serde_json::to_value(e).unwrap();
            (text(&e["type"]), text(&e["outcome"]), text(&e["details"]["reason"]))
        })
        .collect();
    events.reverse();
    events
}

fn event(kind: &str, outcome: &str, reason: &str) -> (String, String, String) {
    (kind.to_owned(), outcome.to_owned(), reason.to_owned())
}

#[tokio::test]
async fn every_security_event_of_a_users_flows_is_in_the_audit_log() {
    let sink = SmtpSink::start().await;
    let s = TestServer::start_with(&[
        ("AUTH_SMTP_URL", sink.url.as_str()),
        ("AUTH_PUBLIC_URL", "https://app.acme.test"),
        // Only the account lockout, at 3 failures.
        ("AUTH_RATE_LIMITS", "default"),
        ("AUTH_RATE_LIMIT_LOGIN_FAILURES", "3/900"),
        ("AUTH_RATE_LIMIT_LOGIN", "off"),
        ("AUTH_RATE_LIMIT_REGISTER", "off"),
        ("AUTH_RATE_LIMIT_EMAIL_CODE", "off"),
        ("AUTH_RATE_LIMIT_MAIL", "off"),
        ("AUTH_RATE_LIMIT_OTHER", "off"),
        ("AUTH_REFRESH_REUSE_GRACE", "1"),
    ])
    .await;
    let r = s.post("/register", json!({"username": "ursa", "email": "ursa@acme.test", "password": PASSWORD})).await;
    let id = r.body["user"]["id"].as_str().unwrap().to_owned();
    let first = r.body.clone();
    let second = s.login("ursa").await;
    s.call(
        Method::DELETE,
        &format!("/api/auth/sessions/{}", claims(access(&second))["sid"].as_str().unwrap()),
        access(&first),
        None,
    )
    .await;
    let rotated = s.post("/refresh", json!({"refresh_token": auth_e2e_tests::refresh(&first)})).await.body;
    s.clock.advance(std::time::Duration::from_secs(2));
    let r = s.post("/refresh", json!({"refresh_token": auth_e2e_tests::refresh(&first)})).await;
    assert_eq!(r.code(), "refresh_token_reused");
    let t = s.login("ursa").await;
    let wrong = json!({"current_password": "not-the-password", "new_password": "amber-Lantern-58-river"});
    assert_eq!(s.call(Method::POST, "/api/auth/password/change", access(&t), Some(wrong)).await.status, 403);
    let change = json!({"current_password": PASSWORD, "new_password": "amber-Lantern-58-river"});
    assert_eq!(s.call(Method::POST, "/api/auth/password/change", access(&t), Some(change)).await.status, 204);
    assert_eq!(s.post("/email/code", json!({"email": "ursa@acme.test", "purpose": "verify_email"})).await.status, 202);
    // The code, and the notice of the password change, in whatever order they were sent.
    let mails = sink.wait_for("ursa@acme.test", 2).await;
    let mail = mails.iter().find(|m| m.header("Subject").contains("code")).unwrap().body("text/plain");
    let code = mail.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned();
    s.call(Method::POST, "/api/auth/email/verify", access(&t), Some(json!({"code": code}))).await;
    let res = s.request(Method::GET, "/api/auth/me/export").bearer_auth(access(&t)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    s.call(Method::POST, "/api/auth/logout", access(&t), None).await;
    let _ = rotated;
    // Failed logins: a wrong password until the account locks, then a disabled account.
    for _ in 0..3 {
        assert_eq!(s.post("/login", json!({"username": "ursa", "password": "wrong-guess-000"})).await.status, 401);
    }
    assert_eq!(s.post("/login", json!({"username": "ursa", "password": "wrong-guess-000"})).await.status, 429);
    s.auth.admin().set_status(uuid::Uuid::parse_str(&id).unwrap(), auth_core::UserStatus::Disabled).await.unwrap();
    s.clock.advance(std::time::Duration::from_secs(901));
    let r = s.post("/login", json!({"username": "ursa", "password": "amber-Lantern-58-river"})).await;
    assert_eq!(r.code(), "account_disabled");

    let ok = |kind: &str| event(kind, "success", "");
    let failed = |kind: &str, reason: &str| event(kind, "failure", reason);
    assert_eq!(
        trail(&s, Some(&id)).await,
        [
            ok("registered"),
            ok("login_succeeded"),
            ok("session_revoked"),
            failed("refresh_token_reused", ""),
            ok("login_succeeded"),
            failed("password_changed", "wrong_password"),
            ok("password_changed"),
            ok("email_code_sent"),
            ok("email_verified"),
            ok("data_exported"),
            ok("logged_out"),
            failed("login_failed", "wrong_password"),
            failed("login_failed", "wrong_password"),
            failed("login_failed", "wrong_password"),
            failed("login_failed", "locked"),
            ok("status_changed"),
            failed("login_failed", "disabled"),
        ]
    );

    // An unknown account and a missing captcha are failed logins of nobody.
    assert_eq!(s.post("/login", json!({"username": "nobody", "password": "wrong-guess-000"})).await.status, 401);
    assert_eq!(trail(&s, None).await, [failed("login_failed", "unknown_account")]);
    let c = TestServer::start_with(&[("AUTH_CAPTCHA", "image"), ("AUTH_CAPTCHA_ROUTES", "login")]).await;
    c.register("vic").await;
    let r = c.post("/login", json!({"username": "vic", "password": PASSWORD})).await;
    assert_eq!(r.code(), "captcha_required");
    assert_eq!(trail(&c, None).await, [failed("login_failed", "captcha")]);
}
