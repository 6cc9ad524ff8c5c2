//! The account's lifecycle over HTTP with a real SMTP server: changing the email address with a
//! code mailed to the new one, deleting the account, and exporting its data.

use auth_e2e_tests::smtp::{Delivery, SmtpSink};
use auth_e2e_tests::{access, refresh, Resp, TestServer, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

async fn server(sink: &SmtpSink, extra: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![("AUTH_SMTP_URL", sink.url.as_str()), ("AUTH_PUBLIC_URL", "https://app.acme.test")];
    vars.extend_from_slice(extra);
    TestServer::start_with(&vars).await
}

fn code_in(mail: &Delivery) -> String {
    let text = mail.body("text/plain");
    text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("a 6-digit code").to_owned()
}

async fn register(s: &TestServer, username: &str, email: &str) -> Value {
    let r = s.post("/register", json!({"username": username, "email": email, "password": PASSWORD})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn me(s: &TestServer, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
    s.call(method, &format!("/api/auth/me{path}"), token, body).await
}

#[tokio::test]
async fn an_email_change_is_confirmed_by_a_code_mailed_to_the_new_address() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    let t = register(&s, "lena", "lena@old.test").await;
    let token = access(&t).to_owned();
    let other = s.login("lena").await;
    // A reset link mailed to the old address before the change, to be useless after it.
    assert_eq!(s.post("/password/forgot", json!({"email": "lena@old.test"})).await.status, 202);
    let link = sink.wait_for("lena@old.test", 1).await[0].body("text/plain");
    let old_link = link.split("token=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();

    let wrong = me(
        &s,
        Method::POST,
        "/email",
        &token,
        Some(json!({"new_email": "lena@new.test", "password": "nope-nope-nope"})),
    )
    .await;
    assert_eq!((wrong.status, wrong.code()), (403, "invalid_credentials"));
    let bad =
        me(&s, Method::POST, "/email", &token, Some(json!({"new_email": "not an address", "password": PASSWORD})))
            .await;
    assert!(bad.body["error"]["details"]["fields"]["new_email"].is_string(), "{}", bad.body);

    let r =
        me(&s, Method::POST, "/email", &token, Some(json!({"new_email": "Lena@NEW.test", "password": PASSWORD}))).await;
    assert_eq!((r.status, &r.body), (202, &json!({"sent": true})));
    let code = code_in(&sink.wait_for("Lena@new.test", 1).await[0]);
    let notice = &sink.wait_for("lena@old.test", 2).await[1];
    assert!(notice.body("text/plain").contains("Lena@new.test"), "the old address hears of the request");
    // Until confirmed, the old address stays the login and recovery address.
    let r = s.post("/login", json!({"email": "lena@old.test", "password": PASSWORD})).await;
    assert_eq!(r.status, 200);
    assert_eq!(s.get("/api/auth/me", &token).await.body["email"], "lena@old.test");

    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    let r = me(&s, Method::POST, "/email/confirm", &token, Some(json!({"code": wrong_code}))).await;
    assert_eq!((r.status, r.code()), (400, "invalid_code"));
    let r = me(&s, Method::POST, "/email/confirm", &token, Some(json!({"code": code}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["email"].as_str(), &r.body["email_verified"]), (Some("Lena@new.test"), &json!(true)));
    let r = me(&s, Method::POST, "/email/confirm", &token, Some(json!({"code": code}))).await;
    assert_eq!(r.code(), "invalid_code", "a code works once");
    let changed = sink.wait_for("lena@old.test", 3).await;
    let text = changed[2].body("text/plain");
    assert!(text.contains("was changed") && text.contains("127.0.0.1"), "{text}");
    assert_eq!(s.post("/login", json!({"email": "lena@new.test", "password": PASSWORD})).await.status, 200);
    assert_eq!(s.post("/login", json!({"email": "lena@old.test", "password": PASSWORD})).await.status, 401);
    assert_eq!(s.get("/api/protected", access(&other)).await.status, 200, "other sessions stay by default");
    let r = s.post("/password/reset", json!({"token": old_link, "new_password": "amber-Lantern-58-river"})).await;
    assert_eq!(r.code(), "invalid_code", "links mailed to the old address die with it");
}

#[tokio::test]
async fn a_taken_address_gets_the_same_answer_and_never_confirms() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[("AUTH_EMAIL_CHANGE_REVOKES_SESSIONS", "true")]).await;
    register(&s, "owner", "taken@acme.test").await;
    let t = register(&s, "mona", "mona@acme.test").await;
    let token = access(&t).to_owned();
    let r = me(&s, Method::POST, "/email", &token, Some(json!({"new_email": "taken@acme.test", "password": PASSWORD})))
        .await;
    assert_eq!((r.status, &r.body), (202, &json!({"sent": true})), "no enumeration");
    sink.wait_for("mona@acme.test", 1).await;
    s.auth.flush_audit().await;
    assert!(sink.to("taken@acme.test").is_empty(), "the owner of the taken address gets no code");
    for guess in ["000000", "123456"] {
        let r = me(&s, Method::POST, "/email/confirm", &token, Some(json!({"code": guess}))).await;
        assert_eq!(r.code(), "invalid_code");
    }
    // A free address, with sessions ending on confirmation as configured.
    let other = s.login("mona").await;
    me(&s, Method::POST, "/email", &token, Some(json!({"new_email": "mona@new.test", "password": PASSWORD}))).await;
    let code = code_in(&sink.wait_for("mona@new.test", 1).await[0]);
    let r = me(&s, Method::POST, "/email/confirm", &token, Some(json!({"code": code}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get("/api/protected", access(&other)).await.code(), "session_revoked");
    assert_eq!(s.get("/api/protected", &token).await.status, 200, "the confirming session stays");
}

#[tokio::test]
async fn deleting_an_account_removes_everything_and_frees_its_names() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    s.auth.create_admin("root", &PASSWORD.into()).await.unwrap();
    let root = access(&s.login("root").await).to_owned();
    let t = register(&s, "nora", "nora@acme.test").await;
    let id = t["user"]["id"].as_str().unwrap().to_owned();
    let token = access(&t).to_owned();
    let second = s.login("nora").await;
    // A pending reset code, to be deleted with the account.
    let r = s.post("/email/code", json!({"email": "nora@acme.test", "purpose": "reset_password"})).await;
    assert_eq!(r.status, 202);
    let code = code_in(&sink.wait_for("nora@acme.test", 1).await[0]);

    let r = me(&s, Method::DELETE, "", &token, Some(json!({"password": "not the password"}))).await;
    assert_eq!((r.status, r.code()), (403, "invalid_credentials"));
    assert_eq!(s.get("/api/protected", &token).await.status, 200, "a refused deletion changes nothing");
    let r = me(&s, Method::DELETE, "", &token, Some(json!({"password": PASSWORD}))).await;
    assert_eq!(r.status, 204, "{}", r.body);

    for access_token in [token.as_str(), access(&second)] {
        assert_eq!(s.get("/api/protected", access_token).await.code(), "session_revoked", "access tokens die at once");
    }
    let r = s.post("/refresh", json!({"refresh_token": refresh(&second)})).await;
    assert_eq!(r.code(), "invalid_refresh_token");
    assert_eq!(s.post("/login", json!({"username": "nora", "password": PASSWORD})).await.code(), "invalid_credentials");
    let r = s
        .post(
            "/password/reset",
            json!({"email": "nora@acme.test", "code": code, "new_password": "amber-Lantern-58-river"}),
        )
        .await;
    assert_eq!(r.code(), "invalid_code", "pending codes went with the account");

    // No rows are left but one anonymized audit event.
    let pool = sqlx_sqlite(&s).await;
    for (table, column) in [("auth_users", "id"), ("auth_sessions", "user_id"), ("auth_audit_log", "user_id")] {
        let n = scalar(&pool, &format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{id}'")).await;
        let expected = i64::from(table == "auth_audit_log");
        assert_eq!(n, expected, "{table}");
    }
    assert_eq!(scalar(&pool, "SELECT COUNT(*) FROM auth_refresh_tokens").await, 1, "root's token only");
    assert_eq!(scalar(&pool, "SELECT COUNT(*) FROM auth_one_time_secrets").await, 0);
    s.auth.flush_audit().await;
    let r = s.get(&format!("/api/auth/admin/audit?user_id={id}"), &root).await;
    let events = r.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{}", r.body);
    let deleted = &events[0];
    assert_eq!((deleted["type"].as_str(), &deleted["actor_id"]), (Some("account_deleted"), &json!(id)));
    assert_eq!((&deleted["ip"], &deleted["user_agent"], &deleted["details"]), (&Value::Null, &Value::Null, &json!({})));

    // The names are free again.
    register(&s, "NORA", "Nora@acme.test").await;
}

async fn sqlx_sqlite(s: &TestServer) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", s.dir.path().join("auth.db").display());
    sqlx::SqlitePool::connect(&url).await.unwrap()
}

async fn scalar(pool: &sqlx::SqlitePool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn users_download_their_data_as_an_attachment() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[]).await;
    let t = register(&s, "omar", "omar@acme.test").await;
    me(&s, Method::PUT, "/preferences", access(&t), Some(json!({"theme": "dark"}))).await;
    s.auth.flush_audit().await;
    let res = s.request(Method::GET, "/api/auth/me/export").bearer_auth(access(&t)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-disposition"], "attachment; filename=\"account-export.json\"");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let export: Value = res.json().await.unwrap();
    assert_eq!(auth_e2e_tests::keys(&export), ["audit_events", "exported_at", "sessions", "user"]);
    assert_eq!(
        (export["user"]["username"].as_str(), &export["user"]["preferences"]["theme"]),
        (Some("omar"), &json!("dark"))
    );
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    let kinds: Vec<&str> =
        export["audit_events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["registered"]);
}

#[tokio::test]
async fn email_change_requests_count_as_mail_to_the_new_address() {
    let sink = SmtpSink::start().await;
    let s = server(&sink, &[("AUTH_RATE_LIMITS", "default")]).await;
    let t = register(&s, "quinn", "quinn@acme.test").await;
    let body = json!({"new_email": "victim@elsewhere.test", "password": PASSWORD});
    for _ in 0..3 {
        assert_eq!(me(&s, Method::POST, "/email", access(&t), Some(body.clone())).await.status, 202);
    }
    let r = me(&s, Method::POST, "/email", access(&t), Some(body)).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"), "at most 3 codes an hour to one address");
    assert!(r.headers.contains_key("retry-after"));
}
