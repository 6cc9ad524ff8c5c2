//! `AUTH_API_DIALECT=code-data`: seed 000's frontend contract (`../shared/seeds/000_*.txt`) over
//! real HTTP: the `{"code","message","data"}` envelope, the captcha endpoints, registration
//! without a token, the seed's user object and its 24 h token, errors with the HTTP status as
//! `code`.

use auth_core::UserUpdate;
use auth_e2e_tests::{keys, Resp, TestServer, PASSWORD};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

async fn server(vars: &[(&str, &str)]) -> TestServer {
    let mut all = vec![("AUTH_API_DIALECT", "code-data")];
    all.extend_from_slice(vars);
    TestServer::start_with(&all).await
}

/// The seed's user object: these keys, with the seed's types (`id` a string: our one documented
/// difference from the seed's integer).
fn assert_seed_user(user: &Value) {
    assert_eq!(
        keys(user),
        [
            "balance",
            "created_at",
            "email",
            "id",
            "max_concurrency",
            "price_rate",
            "role",
            "status",
            "updated_at",
            "username"
        ],
        "{user}"
    );
    assert!(user["id"].is_string() && user["username"].is_string() && user["role"].is_string());
    assert!(user["balance"].is_number() && user["price_rate"].is_number() && user["max_concurrency"].is_u64());
    assert!(user["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339 UTC: {user}");
}

async fn get(s: &TestServer, path: &str) -> Resp {
    Resp::from(s.request(Method::GET, path).send().await).await
}

#[tokio::test]
async fn the_captcha_endpoints_answer_in_the_envelope() {
    let s = server(&[]).await;
    let r = get(&s, "/api/auth/captcha/status").await;
    assert_eq!(r.status, 200);
    assert_eq!((r.body["code"].clone(), r.body["message"].clone()), (json!(0), json!("success")));
    assert_eq!(keys(&r.body["data"]), ["captcha_enabled", "login_rate_limit_enabled"]);
    assert_eq!(r.body["data"]["captcha_enabled"], false);
    let r = get(&s, "/api/auth/captcha").await;
    assert_eq!(r.body["data"], json!({"captcha_id": "", "image": "", "enabled": false}));

    let s = server(&[("AUTH_CAPTCHA", "image")]).await;
    assert_eq!(get(&s, "/api/auth/captcha/status").await.body["data"]["captcha_enabled"], true);
    let r = get(&s, "/api/auth/captcha").await;
    assert_eq!(keys(&r.body["data"]), ["captcha_id", "enabled", "image"]);
    assert!(r.body["data"]["image"].as_str().unwrap().starts_with("data:image/png;base64,"));
    // Captcha on, none sent: the envelope, with the HTTP status as `code`.
    let r = s.post("/login", json!({"username": "admin", "password": PASSWORD})).await;
    assert_eq!((r.status, r.body), (400, json!({"code": 400, "message": "captcha required"})));
}

#[tokio::test]
async fn register_login_and_me_speak_the_seed() {
    let s = server(&[]).await;
    let r =
        s.post("/register", json!({"username": "newuser", "password": PASSWORD, "email": "user@example.com"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["code"].clone(), r.body["message"].clone()), (json!(0), json!("created")));
    assert_seed_user(&r.body["data"]);
    let user = &r.body["data"];
    assert_eq!((user["username"].clone(), user["email"].clone()), (json!("newuser"), json!("user@example.com")));
    assert_eq!((user["role"].clone(), user["status"].clone()), (json!("user"), json!("active")));
    assert_eq!(
        (user["balance"].clone(), user["price_rate"].clone(), user["max_concurrency"].clone()),
        (json!(0.0), json!(1.0), json!(10))
    );
    assert!(r.body["data"].get("token").is_none(), "registration returns no token");

    let r = s.post("/login", json!({"username": "newuser", "password": PASSWORD})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(keys(&r.body["data"]), ["token", "user"]);
    assert_seed_user(&r.body["data"]["user"]);
    let token = r.body["data"]["token"].as_str().unwrap().to_owned();
    // The seed's tokens live 24 h, this dialect's default.
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 24 * 3600);

    // The host sets the billing fields in the user's metadata; the seed's user object shows them.
    let id = uuid::Uuid::parse_str(r.body["data"]["user"]["id"].as_str().unwrap()).unwrap();
    let metadata = json!({"balance": 100.0, "price_rate": 0.5, "max_concurrency": 3});
    let update = UserUpdate::new().metadata(metadata.as_object().unwrap().clone());
    s.auth.user_store().update_user(id, update, chrono::Utc::now()).await.unwrap().unwrap();
    let me = s.get("/api/auth/me", &token).await;
    assert_eq!(me.status, 200);
    assert_seed_user(&me.body["data"]);
    assert_eq!((me.body["data"]["balance"].clone(), me.body["data"]["price_rate"].clone()), (json!(100.0), json!(0.5)));
    assert_eq!(me.body["data"]["max_concurrency"], 3);
    // A body-less canonical route: 200 and `data: null`.
    let r = s.call(Method::POST, "/api/auth/logout", &token, None).await;
    assert_eq!((r.status, r.body), (200, json!({"code": 0, "message": "success", "data": null})));
}

#[tokio::test]
async fn the_seeds_errors_carry_the_http_status_as_code() {
    let s = server(&[]).await;
    assert_eq!(s.post("/register", json!({"username": "admin", "password": PASSWORD})).await.status, 201);
    let cases = [
        ("/register", json!({"username": "admin", "password": PASSWORD}), 400, "username already exists"),
        ("/login", json!({"username": "admin", "password": "wrong-password-1"}), 401, "invalid username or password"),
        ("/login", json!({"username": "nobody", "password": "wrong-password-1"}), 401, "invalid username or password"),
        ("/login", json!({"username": "admin"}), 400, "invalid request"),
    ];
    for (path, body, status, message) in cases {
        let r = s.post(path, body.clone()).await;
        assert_eq!((r.status, r.body.clone()), (status, json!({"code": status, "message": message})), "{path} {body}");
    }
    // Host routes and unknown routes too.
    let r = get(&s, "/api/protected").await;
    assert_eq!((r.status, r.body), (401, json!({"code": 401, "message": "unauthorized"})));
    let r = get(&s, "/api/auth/nope").await;
    assert_eq!((r.status, r.body), (404, json!({"code": 404, "message": "not found"})));
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn rate_limits_answer_429_in_the_seeds_envelope_with_retry_after() {
    let s = server(&[("AUTH_RATE_LIMITS", "default"), ("AUTH_RATE_LIMIT_LOGIN", "2/60")]).await;
    for _ in 0..2 {
        let r = s.post("/login", json!({"username": "nobody", "password": "wrong-password-1"})).await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = s.post("/login", json!({"username": "nobody", "password": "wrong-password-1"})).await;
    assert_eq!((r.status, r.body), (429, json!({"code": 429, "message": "too many requests"})));
    assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn the_admin_and_lifecycle_routes_answer_in_the_envelope_and_the_export_stays_a_download() {
    let s = server(&[]).await;
    s.auth.create_admin("root", &PASSWORD.into()).await.unwrap();
    let r = s.post("/login", json!({"username": "root", "password": PASSWORD})).await;
    let token = r.body["data"]["token"].as_str().unwrap().to_owned();
    let users = s.get("/api/auth/admin/users?limit=1", &token).await;
    assert_eq!((users.status, &users.body["code"]), (200, &json!(0)), "{}", users.body);
    assert_eq!(users.body["data"]["users"][0]["username"], "root");
    assert_eq!(users.body["data"]["next_cursor"], Value::Null);
    let bad = s.get("/api/auth/admin/users?limit=0", &token).await;
    assert_eq!((bad.status, &bad.body["code"]), (400, &json!(400)), "{}", bad.body);
    let res = s.request(Method::GET, "/api/auth/me/export").bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.headers()["content-disposition"], "attachment; filename=\"account-export.json\"");
    let export: Value = res.json().await.unwrap();
    assert_eq!(export["data"]["user"]["username"], "root");
}
