//! End-to-end tests of the HTTP API (`../shared/API.md`) over real HTTP against the example
//! server on a SQLite file.

use auth_core::UserStatus;
use auth_e2e_tests::{access, hs256_kid, refresh, TestServer, JWT_SECRET, PASSWORD};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

fn is_rfc3339_utc_seconds(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z') && s.len() == 20
}

#[tokio::test]
async fn register_returns_201_with_tokens_and_the_user_without_secrets() {
    let s = TestServer::start().await;
    let r =
        s.post("/register", json!({"username": "alice", "email": " Alice@Example.COM ", "password": PASSWORD})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let b = &r.body;
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 3600);
    assert_eq!(b["refresh_expires_in"], 2_592_000);
    assert_eq!(access(b).split('.').count(), 3);
    assert_eq!(refresh(b).len(), 43, "256 bits, base64url");
    let u = &b["user"];
    assert_eq!(u["username"], "alice");
    assert_eq!(u["email"], "Alice@example.com", "trimmed, domain lower-cased");
    assert_eq!(u["email_verified"], false);
    assert_eq!(u["role"], "user");
    assert_eq!(u["status"], "active");
    assert_eq!(u["preferences"], json!({"theme": "light", "language": "en"}));
    assert_eq!(u["metadata"], json!({}));
    assert!(is_rfc3339_utc_seconds(&u["created_at"]), "{}", u["created_at"]);
    assert!(u["last_login_at"].is_null());
    uuid::Uuid::parse_str(u["id"].as_str().unwrap()).unwrap();
    let text = b.to_string();
    assert!(!text.contains("argon2") && !text.contains("password"), "no hash or password in {text}");
}

#[tokio::test]
async fn taken_usernames_and_emails_are_refused_case_insensitively() {
    let s = TestServer::start().await;
    s.post("/register", json!({"username": "bob", "email": "bob@example.com", "password": PASSWORD})).await;
    let r = s.post("/register", json!({"username": "BOB", "password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (409, "username_taken"));
    let r = s.post("/register", json!({"username": "bob2", "email": "BOB@example.com", "password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (409, "email_taken"));
}

#[tokio::test]
async fn registration_input_is_validated_with_field_names_and_policy_reasons() {
    let s = TestServer::start().await;
    let r = s.post("/register", json!({"username": "a b", "password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    assert!(r.body["error"]["details"]["fields"]["username"].is_string(), "{}", r.body);
    let r = s.post("/register", json!({"email": "not-an-email", "password": PASSWORD})).await;
    assert!(r.body["error"]["details"]["fields"]["email"].is_string(), "{}", r.body);
    let r = s.post("/register", json!({"password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    let r = s.post("/register", json!({"username": "carol", "password": "short"})).await;
    assert_eq!((r.status, r.code()), (400, "weak_password"));
    assert!(r.body["error"]["details"]["reasons"].as_array().unwrap().contains(&json!("too_short")), "{}", r.body);
    let r = s.post("/register", json!({"username": "carol", "password": "password123"})).await;
    assert_eq!(r.body["error"]["details"]["reasons"], json!(["too_common"]));
    // Accepted for another name (auth-core's policy tests), refused as its own username's password.
    let r = s.post("/register", json!({"username": "zanzibarcat", "password": "zanzibarcat"})).await;
    assert_eq!(r.body["error"]["details"]["reasons"], json!(["too_common"]), "the username counts as a known word");
    assert!(!r.body.to_string().contains("zanzibarcat"), "the password is never echoed");
    // Nothing was created by any of these.
    let r = s.post("/login", json!({"username": "carol", "password": "password123"})).await;
    assert_eq!(r.code(), "invalid_credentials");
}

#[tokio::test]
async fn malformed_requests_get_400_413_415_and_json_404_405_never_500() {
    let s = TestServer::start().await;
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut req = s.request(Method::POST, "/api/auth/login").body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        auth_e2e_tests::Resp::from_future(req.send())
    };
    let r = raw("{\"username\": \"x\",", Some("application/json")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    assert_eq!(r.body["error"]["details"]["fields"]["body"], "is not valid JSON");
    let r = raw("{\"username\": \"x\"}", Some("application/json")).await;
    assert_eq!(r.body["error"]["details"]["fields"]["password"], "is required");
    let r = raw("{\"username\": 5, \"password\": \"x\"}", Some("application/json")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    let r = raw("[]", Some("application/json")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    let r = raw("username=x&password=y", Some("application/x-www-form-urlencoded")).await;
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let r = raw("{}", None).await;
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let big = format!("{{\"username\":\"x\",\"password\":\"{}\"}}", "a".repeat(70 * 1024));
    let r = auth_e2e_tests::Resp::from(
        s.request(Method::POST, "/api/auth/login").header("content-type", "application/json").body(big).send().await,
    )
    .await;
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    let r = s.get("/api/auth/nope", "x").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = auth_e2e_tests::Resp::from(s.request(Method::GET, "/api/auth/login").send().await).await;
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
}

#[tokio::test]
async fn login_works_by_username_any_case_or_by_email() {
    let s = TestServer::start().await;
    s.post("/register", json!({"username": "dora", "email": "dora@example.com", "password": PASSWORD})).await;
    for body in [
        json!({"username": "DORA", "password": PASSWORD}),
        json!({"email": "Dora@EXAMPLE.com", "password": PASSWORD}),
        json!({"username": "dora@example.com", "password": PASSWORD}),
    ] {
        let r = s.post("/login", body.clone()).await;
        assert_eq!(r.status, 200, "{body}: {}", r.body);
        assert_eq!(r.body["user"]["username"], "dora");
        assert!(is_rfc3339_utc_seconds(&r.body["user"]["last_login_at"]));
    }
    let r = s.post("/login", json!({"password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
}

#[tokio::test]
async fn unknown_account_and_wrong_password_answer_identically() {
    let s = TestServer::start().await;
    s.register("erin").await;
    let wrong = s.post("/login", json!({"username": "erin", "password": "not-the-password"})).await;
    let unknown = s.post("/login", json!({"username": "nobody-here", "password": "not-the-password"})).await;
    assert_eq!((wrong.status, wrong.code()), (401, "invalid_credentials"));
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn a_disabled_account_is_refused_and_its_sessions_die_at_once() {
    let s = TestServer::start().await;
    let tokens = s.register("frank").await;
    let id = uuid::Uuid::parse_str(tokens["user"]["id"].as_str().unwrap()).unwrap();
    s.auth.admin().set_status(id, UserStatus::Disabled).await.unwrap();
    let r = s.get("/api/auth/me", access(&tokens)).await;
    assert_eq!((r.status, r.code()), (401, "session_revoked"));
    let r = s.post("/login", json!({"username": "frank", "password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (403, "account_disabled"));
    let r = s.post("/login", json!({"username": "frank", "password": "wrong-password-here"})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_credentials"), "a wrong password does not reveal the status");
    let r = s.post("/refresh", json!({"refresh_token": refresh(&tokens)})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
}

#[tokio::test]
async fn refresh_rotates_and_a_retry_within_the_grace_window_gets_the_same_successor() {
    let s = TestServer::start().await;
    let first = s.register("gina").await;
    let r1 = s.post("/refresh", json!({"refresh_token": refresh(&first)})).await;
    assert_eq!(r1.status, 200, "{}", r1.body);
    assert_ne!(refresh(&r1.body), refresh(&first), "rotated");
    assert_eq!(r1.body["user"]["username"], "gina");
    // A second tab presenting the spent token within 10 s gets the same successor.
    let r2 = s.post("/refresh", json!({"refresh_token": refresh(&first)})).await;
    assert_eq!(r2.status, 200, "{}", r2.body);
    assert_eq!(refresh(&r2.body), refresh(&r1.body));
    for tokens in [&r1.body, &r2.body] {
        assert_eq!(s.get("/api/auth/me", access(tokens)).await.status, 200);
    }
    // The successor rotates on as usual.
    let r3 = s.post("/refresh", json!({"refresh_token": refresh(&r1.body)})).await;
    assert_eq!(r3.status, 200);
    let r = s.post("/refresh", json!({"refresh_token": "never-issued-token"})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
    let r = s.post("/refresh", json!({})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
}

#[tokio::test]
async fn a_spent_refresh_token_after_the_grace_window_revokes_the_whole_session() {
    let s = TestServer::start_with(&[("AUTH_REFRESH_REUSE_GRACE", "1")]).await;
    let first = s.register("hank").await;
    let other_session = s.login("hank").await;
    let next = s.post("/refresh", json!({"refresh_token": refresh(&first)})).await.body;
    s.clock.advance(std::time::Duration::from_secs(2));
    let r = s.post("/refresh", json!({"refresh_token": refresh(&first)})).await;
    assert_eq!((r.status, r.code()), (401, "refresh_token_reused"));
    for token in [access(&first), access(&next)] {
        let r = s.get("/api/auth/me", token).await;
        assert_eq!((r.status, r.code()), (401, "session_revoked"));
    }
    let r = s.post("/refresh", json!({"refresh_token": refresh(&next)})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"), "the successor died with its session");
    assert_eq!(s.get("/api/auth/me", access(&other_session)).await.status, 200, "other sessions live on");
}

#[tokio::test]
async fn with_rotation_off_refresh_hands_back_the_same_token_until_the_session_ends() {
    let s = TestServer::start_with(&[("AUTH_REFRESH_ROTATION", "off")]).await;
    let first = s.register("ivy").await;
    let mut previous_access = access(&first).to_owned();
    for day in 1..=3 {
        s.clock.advance(std::time::Duration::from_secs(24 * 3600));
        let r = s.post("/refresh", json!({"refresh_token": refresh(&first)})).await;
        assert_eq!(r.status, 200, "day {day}: {}", r.body);
        assert_eq!(refresh(&r.body), refresh(&first), "not rotated");
        assert_ne!(access(&r.body), previous_access, "a new access token");
        assert_eq!(s.get("/api/auth/me", access(&r.body)).await.status, 200);
        previous_access = access(&r.body).to_owned();
    }
    // No reuse detection: the same token again, long after any grace window, is no reuse.
    s.clock.advance(std::time::Duration::from_secs(60));
    assert_eq!(s.post("/refresh", json!({"refresh_token": refresh(&first)})).await.status, 200);
    // Logout ends it.
    let r = s.call(reqwest::Method::POST, "/api/auth/logout", &previous_access, None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s.post("/refresh", json!({"refresh_token": refresh(&first)})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
}

#[tokio::test]
async fn with_rotation_off_a_password_change_ends_the_callers_session_too() {
    let s = TestServer::start_with(&[("AUTH_REFRESH_ROTATION", "off")]).await;
    let first = s.register("kai").await;
    let change = json!({"current_password": PASSWORD, "new_password": "amber-Lantern-58-river"});
    let r = s.call(reqwest::Method::POST, "/api/auth/password/change", access(&first), Some(change)).await;
    assert_eq!(r.status, 204, "{}", r.body);
    // Its refresh token may be the stolen one, and without rotation nothing would catch it.
    let r = s.post("/refresh", json!({"refresh_token": refresh(&first)})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
    assert_eq!(s.get("/api/auth/me", access(&first)).await.code(), "session_revoked");
}

#[tokio::test]
async fn with_rotation_off_an_unused_refresh_token_still_dies_idle() {
    let s = TestServer::start_with(&[("AUTH_REFRESH_ROTATION", "off")]).await;
    let first = s.register("jude").await;
    s.clock.advance(std::time::Duration::from_secs(6 * 24 * 3600));
    assert_eq!(s.post("/refresh", json!({"refresh_token": refresh(&first)})).await.status, 200, "used on day 6");
    s.clock.advance(std::time::Duration::from_secs(7 * 24 * 3600 + 1));
    let r = s.post("/refresh", json!({"refresh_token": refresh(&first)})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"), "unused for 7 days");
}

#[tokio::test]
async fn logout_revokes_the_session_at_once_and_all_revokes_every_session() {
    let s = TestServer::start().await;
    let a = s.register("ivy").await;
    let b = s.login("ivy").await;
    let c = s.login("ivy").await;
    let r = s.call(Method::POST, "/api/auth/logout", access(&a), None).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s.get("/api/auth/me", access(&a)).await;
    assert_eq!((r.status, r.code()), (401, "session_revoked"));
    let r = s.post("/refresh", json!({"refresh_token": refresh(&a)})).await;
    assert_eq!((r.status, r.code()), (401, "invalid_refresh_token"));
    assert_eq!(s.get("/api/auth/me", access(&b)).await.status, 200);
    let r = s.call(Method::POST, "/api/auth/logout", access(&b), Some(json!({"all": true}))).await;
    assert_eq!(r.status, 204);
    for t in [&b, &c] {
        assert_eq!(s.get("/api/auth/me", access(t)).await.code(), "session_revoked");
    }
    let r = auth_e2e_tests::Resp::from(s.request(Method::POST, "/api/auth/logout").send().await).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    assert_eq!(r.headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn me_and_preferences_round_trip_and_bad_preferences_are_refused() {
    let s = TestServer::start().await;
    let t = s.register("jade").await;
    let me = s.get("/api/auth/me", access(&t)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body, t["user"]);
    let r = s
        .call(Method::PUT, "/api/auth/me/preferences", access(&t), Some(json!({"theme": "dark", "language": "zh-CN"})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"preferences": {"theme": "dark", "language": "zh-CN"}}));
    let r = s.call(Method::PUT, "/api/auth/me/preferences", access(&t), Some(json!({"theme": "system"}))).await;
    assert_eq!(r.body["preferences"], json!({"theme": "system", "language": "zh-CN"}), "unnamed fields are kept");
    assert_eq!(s.get("/api/auth/me", access(&t)).await.body["preferences"]["theme"], "system");
    let r = s.call(Method::PUT, "/api/auth/me/preferences", access(&t), Some(json!({"theme": "neon"}))).await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"));
    assert!(r.body["error"]["details"]["fields"]["theme"].is_string(), "{}", r.body);
    let r = s.call(Method::PUT, "/api/auth/me/preferences", access(&t), Some(json!({"language": "<script>"}))).await;
    assert!(r.body["error"]["details"]["fields"]["language"].is_string(), "{}", r.body);
}

#[tokio::test]
async fn password_change_checks_the_current_password_and_revokes_the_other_sessions() {
    let s = TestServer::start().await;
    let here = s.register("kai").await;
    let elsewhere = s.login("kai").await;
    let change = |current: &str, new: &str| {
        s.call(
            Method::POST,
            "/api/auth/password/change",
            access(&here),
            Some(json!({"current_password": current, "new_password": new})),
        )
    };
    let r = change("wrong-current-password", "amber-Lantern-58-river").await;
    assert_eq!((r.status, r.code()), (403, "invalid_credentials"));
    let r = change(PASSWORD, "password1").await;
    assert_eq!((r.status, r.code()), (400, "weak_password"));
    assert_eq!(s.get("/api/auth/me", access(&elsewhere)).await.status, 200, "failed changes revoke nothing");
    let r = change(PASSWORD, "amber-Lantern-58-river").await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(s.get("/api/auth/me", access(&elsewhere)).await.code(), "session_revoked");
    assert_eq!(s.post("/refresh", json!({"refresh_token": refresh(&elsewhere)})).await.code(), "invalid_refresh_token");
    assert_eq!(s.get("/api/auth/me", access(&here)).await.status, 200, "the current session stays");
    assert_eq!(s.post("/login", json!({"username": "kai", "password": PASSWORD})).await.code(), "invalid_credentials");
    assert_eq!(s.post("/login", json!({"username": "kai", "password": "amber-Lantern-58-river"})).await.status, 200);
}

#[tokio::test]
async fn sessions_are_listed_with_the_current_one_marked_and_can_be_revoked() {
    let s = TestServer::start().await;
    let mine = s.register("lena").await;
    let other = s.login("lena").await;
    let stranger = s.register("mark").await;
    let r = s.get("/api/auth/sessions", access(&mine)).await;
    assert_eq!(r.status, 200);
    let list = r.body["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let current: Vec<_> = list.iter().filter(|x| x["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["ip"], "127.0.0.1");
    assert_eq!(current[0]["user_agent"], "e2e-tests/1.0");
    for key in ["created_at", "last_used_at", "expires_at"] {
        assert!(is_rfc3339_utc_seconds(&current[0][key]), "{key}");
    }
    let other_id = list.iter().find(|x| x["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let stranger_id =
        s.get("/api/auth/sessions", access(&stranger)).await.body["sessions"][0]["id"].as_str().unwrap().to_owned();
    let r = s.call(Method::DELETE, &format!("/api/auth/sessions/{stranger_id}"), access(&mine), None).await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "another user's session");
    assert_eq!(s.get("/api/auth/me", access(&stranger)).await.status, 200);
    for bad in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let r = s.call(Method::DELETE, &format!("/api/auth/sessions/{bad}"), access(&mine), None).await;
        assert_eq!((r.status, r.code()), (404, "not_found"));
    }
    let r = s.call(Method::DELETE, &format!("/api/auth/sessions/{other_id}"), access(&mine), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(s.get("/api/auth/me", access(&other)).await.code(), "session_revoked");
    assert_eq!(s.get("/api/auth/sessions", access(&mine)).await.body["sessions"].as_array().unwrap().len(), 1);
}

fn forge(header: &Value, claims: &Value, key: Option<&[u8]>) -> String {
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let signature = match key {
        None => String::new(),
        Some(key) => {
            let key = jsonwebtoken::EncodingKey::from_secret(key);
            jsonwebtoken::crypto::sign(format!("{h}.{c}").as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap()
        }
    };
    format!("{h}.{c}.{signature}")
}

use auth_e2e_tests::claims as claims_of;

#[tokio::test]
async fn tampered_unsigned_expired_and_misused_tokens_are_refused() {
    let s = TestServer::start().await;
    let t = s.register("nina").await;
    let claims = claims_of(access(&t));
    assert_eq!(claims["role"], "user");
    for key in ["sub", "sid", "iat", "nbf", "exp", "iss", "aud", "jti"] {
        assert!(!claims[key].is_null(), "claim {key}");
    }
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": hs256_kid()});
    // Same session, role raised to admin, signed with another key.
    let mut admin = claims.clone();
    admin["role"] = json!("admin");
    let tampered = {
        let real = access(&t);
        let parts: Vec<&str> = real.split('.').collect();
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).unwrap()), parts[2])
    };
    let none = forge(&json!({"alg": "none", "typ": "at+jwt", "kid": hs256_kid()}), &admin, None);
    let wrong_key = forge(&header, &admin, Some(b"another-secret-another-secret-0123456789"));
    for token in [tampered.as_str(), none.as_str(), wrong_key.as_str(), refresh(&t), "garbage", "a.b.c"] {
        let r = s.get("/api/admin/ping", token).await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "{token}");
        assert_eq!(s.get("/api/auth/me", token).await.code(), "unauthorized");
    }
    // Correctly signed, but expired two minutes ago (beyond the 30 s leeway).
    let mut expired = claims.clone();
    let now = chrono::Utc::now().timestamp();
    expired["iat"] = json!(now - 3720);
    expired["nbf"] = json!(now - 3720);
    expired["exp"] = json!(now - 120);
    let r = s.get("/api/auth/me", &forge(&header, &expired, Some(JWT_SECRET.as_bytes()))).await;
    assert_eq!((r.status, r.code()), (401, "token_expired"));
    assert_eq!(r.headers["www-authenticate"], "Bearer error=\"invalid_token\"");
    // Correctly signed with typ JWT (not an access token) is refused too.
    let r = s
        .get(
            "/api/auth/me",
            &forge(&json!({"alg": "HS256", "typ": "JWT", "kid": hs256_kid()}), &claims, Some(JWT_SECRET.as_bytes())),
        )
        .await;
    assert_eq!(r.code(), "unauthorized");
    // The genuine token still works.
    assert_eq!(s.get("/api/auth/me", access(&t)).await.status, 200);
}

#[tokio::test]
async fn host_routes_are_protected_by_login_and_by_role() {
    let s = TestServer::start().await;
    let r = auth_e2e_tests::Resp::from(s.request(Method::GET, "/api/protected").send().await).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let user = s.register("olga").await;
    let r = s.get("/api/protected", access(&user)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["user_id"], user["user"]["id"]);
    assert_eq!(r.body["username"], "olga");
    let r = s.get("/api/admin/ping", access(&user)).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    s.auth.create_admin("root", &PASSWORD.into()).await.unwrap();
    let admin = s.login("root").await;
    assert_eq!(admin["user"]["role"], "admin");
    let r = s.get("/api/admin/ping", access(&admin)).await;
    assert_eq!((r.status, r.body["pong"].clone()), (200, json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registration_of_one_username_yields_exactly_one_201() {
    let s = TestServer::start().await;
    let names = ["race", "RACE", "Race", "rAce", "raCe", "racE", "RAce", "raCE"];
    let mut set = tokio::task::JoinSet::new();
    for name in names {
        let req = s.request(Method::POST, "/api/auth/register").json(&json!({"username": name, "password": PASSWORD}));
        set.spawn(auth_e2e_tests::Resp::from_future(req.send()));
    }
    let results = set.join_all().await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let taken = results.iter().filter(|r| r.status == 409 && r.code() == "username_taken").count();
    assert_eq!((created, taken), (1, names.len() - 1), "{results:?}");
}

#[tokio::test]
async fn captcha_status_and_challenge_report_no_provider() {
    let s = TestServer::start().await;
    let r = auth_e2e_tests::Resp::from(s.request(Method::GET, "/api/auth/captcha/status").send().await).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"captcha_enabled": false, "provider": "none", "site_key": null, "login_rate_limit_enabled": false,
               "email_verification_required": false})
    );
    let r = auth_e2e_tests::Resp::from(s.request(Method::GET, "/api/auth/captcha").send().await).await;
    assert_eq!(r.body, json!({"enabled": false, "captcha_id": "", "image": ""}));
}

#[tokio::test]
async fn users_and_sessions_survive_a_restart_on_the_same_sqlite_file() {
    let s = TestServer::start().await;
    let tokens = s.register("pia").await;
    s.call(Method::PUT, "/api/auth/me/preferences", access(&tokens), Some(json!({"theme": "dark"}))).await;
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, &[]).await;
    let me = s.get("/api/auth/me", access(&tokens)).await;
    assert_eq!(me.status, 200, "the access token's session survived: {}", me.body);
    assert_eq!(me.body["preferences"]["theme"], "dark");
    let r = s.post("/refresh", json!({"refresh_token": refresh(&tokens)})).await;
    assert_eq!(r.status, 200, "the refresh token survived: {}", r.body);
    s.login("pia").await;
    assert_eq!(s.post("/register", json!({"username": "PIA", "password": PASSWORD})).await.code(), "username_taken");
}

#[tokio::test]
async fn a_failing_database_gives_503_store_unavailable_and_never_skips_the_session_check() {
    // The example app over a SQLite store whose pool we can close under it.
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        auth_storage::SqliteStore::connect(&format!("sqlite://{}", dir.path().join("auth.db").display()))
            .await
            .unwrap(),
    );
    let config = auth_core::AuthConfig::new(JWT_SECRET).unwrap();
    let auth = auth_core::Auth::builder(config).stores(store.clone()).build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    auth_e2e_tests::spawn_canonical_app(listener, auth);
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        auth_e2e_tests::Resp::from_future(client.post(format!("{base}/api/auth{path}")).json(&body).send())
    };
    let tokens = post("/register", json!({"username": "quinn", "password": PASSWORD})).await.body;

    store.pool().close().await;

    let r = post("/login", json!({"username": "quinn", "password": PASSWORD})).await;
    assert_eq!((r.status, r.code()), (503, "store_unavailable"));
    assert_eq!(r.body["error"]["message"], "the store is unavailable", "no driver details leak: {}", r.body);
    let r = post("/refresh", json!({"refresh_token": refresh(&tokens)})).await;
    assert_eq!((r.status, r.code()), (503, "store_unavailable"));
    let r = auth_e2e_tests::Resp::from_future(
        client.get(format!("{base}/api/protected")).bearer_auth(access(&tokens)).send(),
    )
    .await;
    assert_eq!((r.status, r.code()), (503, "store_unavailable"), "a valid JWT alone is not enough");
}

#[tokio::test]
async fn every_auth_response_forbids_caching_tokens_and_errors_alike() {
    // RFC 6749 §5.1: responses carrying tokens (and, here, every auth response) are `no-store`.
    let s = TestServer::start().await;
    let no_store = |r: &auth_e2e_tests::Resp, what: &str| {
        assert_eq!(r.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{what}");
        assert_eq!(r.headers.get("pragma").map(|v| v.to_str().unwrap()), Some("no-cache"), "{what}");
    };
    let r = s.post("/register", json!({"username": "nora", "password": PASSWORD})).await;
    assert_eq!(r.status, 201);
    no_store(&r, "register");
    let r = s.post("/login", json!({"username": "nora", "password": PASSWORD})).await;
    assert_eq!(r.status, 200);
    no_store(&r, "login");
    let r = s.post("/refresh", json!({"refresh_token": refresh(&r.body)})).await;
    assert_eq!(r.status, 200);
    no_store(&r, "refresh");
    let r = s.get("/api/auth/me", access(&r.body)).await;
    assert_eq!(r.status, 200);
    no_store(&r, "me");
    // Errors from handlers, extractors, the auth layer and the fallbacks.
    let r = s.post("/login", json!({"username": "nora", "password": "wrong-password-x"})).await;
    assert_eq!(r.code(), "invalid_credentials");
    no_store(&r, "invalid_credentials");
    let r = s.post("/refresh", json!({"refresh_token": "never-issued-token"})).await;
    assert_eq!(r.code(), "invalid_refresh_token");
    no_store(&r, "invalid_refresh_token");
    let r = s.post("/login", json!({})).await;
    assert_eq!(r.code(), "invalid_request");
    no_store(&r, "invalid_request");
    let r = s.get("/api/auth/me", "not-a-token").await;
    assert_eq!(r.status, 401);
    no_store(&r, "unauthorized");
    let r = s.get("/api/auth/nope", "x").await;
    assert_eq!(r.code(), "not_found");
    no_store(&r, "not_found");
    let r = auth_e2e_tests::Resp::from(s.request(Method::GET, "/api/auth/login").send().await).await;
    assert_eq!(r.code(), "method_not_allowed");
    no_store(&r, "method_not_allowed");
}

#[tokio::test]
async fn the_openapi_document_and_its_docs_ui_are_served() {
    let s = TestServer::start().await;
    let doc = s.request(reqwest::Method::GET, "/api/auth/openapi.json").send().await.unwrap();
    assert_eq!(doc.status(), 200);
    assert_eq!(doc.headers()["content-type"], "application/json");
    let doc: Value = doc.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/api/auth");
    assert!(doc["paths"]["/login"]["post"]["responses"]["200"].is_object(), "{}", doc["paths"]["/login"]);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let ui = s.request(reqwest::Method::GET, "/docs/").send().await.unwrap();
    assert_eq!(ui.status(), 200);
    let html = ui.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js") && !html.contains("https://"), "assets are served locally");
    let config = s.request(reqwest::Method::GET, "/docs/swagger-initializer.js").send().await.unwrap();
    assert!(config.text().await.unwrap().contains("/api/auth/openapi.json"));
}
