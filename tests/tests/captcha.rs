//! Captcha end to end: the token providers (Turnstile, reCAPTCHA, hCaptcha) against a local
//! siteverify server, and the image captcha with its one-time answers in the secret store.

use std::sync::Arc;
use std::time::Duration;

use auth_core::captcha::{ImageCaptcha, ImageCaptchaOptions, CAPTCHA_PURPOSE};
use auth_core::{Auth, AuthConfig, ManualClock, SecretStore};
use auth_e2e_tests::recording::RecordingSecretStore;
use auth_e2e_tests::siteverify::Siteverify;
use auth_e2e_tests::{Resp, TestServer, JWT_SECRET, PASSWORD};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

const PROVIDERS: [&str; 3] = ["turnstile", "recaptcha", "hcaptcha"];

async fn token_server(provider: &str, siteverify: &Siteverify, extra: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![
        ("AUTH_CAPTCHA", provider),
        ("AUTH_CAPTCHA_SECRET", "s3cret-key"),
        ("AUTH_CAPTCHA_SITE_KEY", "public-site-key"),
        ("AUTH_CAPTCHA_VERIFY_URL", siteverify.url.as_str()),
        ("AUTH_CAPTCHA_ALLOWED_HOSTNAME", "app.example.com"),
        ("AUTH_CAPTCHA_TIMEOUT", "1"),
    ];
    vars.extend_from_slice(extra);
    TestServer::start_with(&vars).await
}

fn login(token: Option<&str>) -> Value {
    let mut body = json!({"username": "user1", "password": PASSWORD});
    if let Some(t) = token {
        body["captcha_token"] = json!(t);
    }
    body
}

#[tokio::test]
async fn every_token_provider_applies_the_siteverify_verdict() {
    let siteverify = Siteverify::start().await;
    for provider in PROVIDERS {
        let s = token_server(provider, &siteverify, &[]).await;
        let status = Resp::from(s.request(Method::GET, "/api/auth/captcha/status").send().await).await.body;
        assert_eq!((status["captcha_enabled"].clone(), status["provider"].clone()), (json!(true), json!(provider)));
        assert_eq!(status["site_key"], "public-site-key");
        let r = s.post("/register", json!({"username": "user1", "password": PASSWORD, "captcha_token": "ok"})).await;
        assert_eq!(r.status, 201, "{provider}: {}", r.body);

        let cases: [(Option<&str>, u16, &str); 11] = [
            (None, 400, "captcha_required"),
            (Some(""), 400, "captcha_required"),
            (Some("ok"), 200, ""),
            (Some("fail"), 400, "captcha_invalid"),
            (Some("dup"), 400, "captcha_invalid"),
            (Some("other-host"), 400, "captcha_invalid"),
            (Some("ok-action-register"), 400, "captcha_invalid"),
            (Some("ok-action-login"), 200, ""),
            (Some("http500"), 502, "captcha_unavailable"),
            (Some("slow"), 502, "captcha_unavailable"),
            (Some("bad-secret"), 502, "captcha_unavailable"),
        ];
        for (token, status, code) in cases {
            let r = s.post("/login", login(token)).await;
            assert_eq!((r.status, r.code()), (status, code), "{provider} token {token:?}: {}", r.body);
        }
        // reCAPTCHA v3 scores (any provider that reports one) against the 0.5 minimum.
        assert_eq!(s.post("/login", login(Some("score-0.3"))).await.code(), "captcha_invalid", "{provider}");
        assert_eq!(s.post("/login", login(Some("score-0.9"))).await.status, 200, "{provider}");
    }
    // What reached siteverify: form-encoded secret, response and the client's IP.
    let received = siteverify.received();
    assert!(!received.is_empty());
    for r in &received {
        assert_eq!(r.content_type, "application/x-www-form-urlencoded");
        assert_eq!(r.fields["secret"], "s3cret-key");
        assert_eq!(r.fields["remoteip"], "127.0.0.1");
    }
    assert!(
        received.iter().any(|r| r.fields.get("sitekey").is_some_and(|k| k == "public-site-key")),
        "hCaptcha sends its sitekey"
    );
}

#[tokio::test]
async fn the_captcha_is_checked_first_and_a_refused_one_changes_nothing() {
    let siteverify = Siteverify::start().await;
    let s = token_server("turnstile", &siteverify, &[]).await;
    let r = s.post("/register", json!({"username": "first", "password": PASSWORD, "captcha_token": "fail"})).await;
    assert_eq!(r.code(), "captcha_invalid");
    // Even a malformed registration is refused for its captcha first.
    let r = s.post("/register", json!({"username": "x", "password": "short"})).await;
    assert_eq!(r.code(), "captcha_required");
    let r = s.post("/register", json!({"username": "first", "password": PASSWORD, "captcha_token": "ok"})).await;
    assert_eq!(r.status, 201, "the refused attempt created nothing: {}", r.body);
    // Refresh and logout never need a captcha.
    let r = s.post("/refresh", json!({"refresh_token": r.body["refresh_token"]})).await;
    assert_eq!(r.status, 200);
    let r = s.call(Method::POST, "/api/auth/logout", r.body["access_token"].as_str().unwrap(), None).await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn the_routes_that_need_a_captcha_are_configuration() {
    let siteverify = Siteverify::start().await;
    let s = token_server("recaptcha", &siteverify, &[("AUTH_CAPTCHA_ROUTES", "register")]).await;
    assert_eq!(
        s.post("/register", json!({"username": "user1", "password": PASSWORD})).await.code(),
        "captcha_required"
    );
    s.post("/register", json!({"username": "user1", "password": PASSWORD, "captcha_token": "ok"})).await;
    assert_eq!(s.post("/login", login(None)).await.status, 200, "login is not guarded");
}

#[tokio::test]
async fn seed_002_turnstile_variables_enable_turnstile_with_a_hostname() {
    let siteverify = Siteverify::start().await;
    let s = TestServer::start_with(&[
        ("TURNSTILE_ENABLED", "true"),
        ("TURNSTILE_ALLOWED_HOSTNAME", "app.example.com"),
        ("AUTH_CAPTCHA_SECRET", "s3cret-key"),
        ("AUTH_CAPTCHA_VERIFY_URL", siteverify.url.as_str()),
    ])
    .await;
    let r =
        s.post("/register", json!({"username": "user1", "password": PASSWORD, "captcha_token": "other-host"})).await;
    assert_eq!(r.code(), "captcha_invalid");
    let r = s.post("/register", json!({"username": "user1", "password": PASSWORD, "captcha_token": "ok"})).await;
    assert_eq!(r.status, 201);
}

/// The example app over SQLite with an image captcha of 4 characters from `ab` (16 possible
/// answers), whose stored hashes the test can see.
/// The image-captcha server, its recording secret store, a twin provider to recover answers with,
/// its data directory and its clock.
struct ImageServer {
    base: String,
    tokens: Arc<RecordingSecretStore>,
    captcha: ImageCaptcha,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn image_server(ttl: Duration) -> ImageServer {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(
        auth_storage::SqliteStore::connect(&format!("sqlite://{}", dir.path().join("auth.db").display()))
            .await
            .unwrap(),
    );
    let tokens = Arc::new(RecordingSecretStore::new(sqlite.clone()));
    let mut options = ImageCaptchaOptions::default();
    options.length = 4;
    options.alphabet = vec!['a', 'b'];
    options.ttl = ttl;
    let clock = Arc::new(ManualClock::new());
    options.clock = clock.clone();
    let captcha = ImageCaptcha::new(tokens.clone(), JWT_SECRET.as_bytes(), options.clone());
    let auth = Auth::builder(AuthConfig::new(JWT_SECRET).unwrap())
        .clock(clock.clone())
        .user_store(sqlite.clone())
        .session_store(sqlite)
        .secret_store(tokens.clone() as Arc<dyn SecretStore>)
        .captcha(Arc::new(ImageCaptcha::new(tokens.clone(), JWT_SECRET.as_bytes(), options)))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    auth_e2e_tests::spawn_canonical_app(listener, auth);
    ImageServer { base, tokens, captcha, clock, _dir: dir }
}

/// Fetches a challenge and recovers its answer from the stored keyed hash (16 candidates).
async fn challenge(base: &str, tokens: &RecordingSecretStore, captcha: &ImageCaptcha) -> (String, String) {
    let r: Value = reqwest::get(format!("{base}/api/auth/captcha")).await.unwrap().json().await.unwrap();
    assert_eq!((r["enabled"].clone(), r["expires_in"].clone()), (json!(true), json!(300)));
    let image = r["image"].as_str().unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(image.strip_prefix("data:image/png;base64,").unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG image");
    let id = r["captcha_id"].as_str().unwrap().to_owned();
    let answer = recover_answer(tokens, captcha, &id);
    (id, answer)
}

/// The answer whose keyed hash the store holds for `id`, out of the 16 possible ones.
fn recover_answer(tokens: &RecordingSecretStore, captcha: &ImageCaptcha, id: &str) -> String {
    let stored = tokens.secret(CAPTCHA_PURPOSE, id).expect("the answer is kept in the secret store");
    assert_eq!(stored.max_attempts, 1, "spent by the first attempt");
    (0..16)
        .map(|n: u32| (0..4).map(|bit| if n >> bit & 1 == 1 { 'b' } else { 'a' }).collect::<String>())
        .find(|candidate| captcha.answer_hash(id, candidate) == stored.hash)
        .expect("the stored hash is of one of the 16 answers")
}

async fn post(base: &str, path: &str, body: Value) -> Resp {
    Resp::from(reqwest::Client::new().post(format!("{base}/api/auth{path}")).json(&body).send().await).await
}

#[tokio::test]
async fn the_image_captcha_is_single_use_case_insensitive_and_guards_register_and_login() {
    let ImageServer { base, tokens, captcha, _dir, .. } = image_server(Duration::from_secs(300)).await;
    let status: Value = reqwest::get(format!("{base}/api/auth/captcha/status")).await.unwrap().json().await.unwrap();
    assert_eq!((status["provider"].clone(), status["captcha_enabled"].clone()), (json!("image"), json!(true)));

    let r = post(&base, "/register", json!({"username": "imgu", "password": PASSWORD})).await;
    assert_eq!(r.code(), "captcha_required");
    let (id, answer) = challenge(&base, &tokens, &captcha).await;
    let r = post(
        &base,
        "/register",
        json!({"username": "imgu", "password": PASSWORD, "captcha_id": id, "captcha": answer.to_uppercase()}),
    )
    .await;
    assert_eq!(r.status, 201, "right answer, any case: {}", r.body);
    // Reusing a solved captcha fails.
    let r =
        post(&base, "/login", json!({"username": "imgu", "password": PASSWORD, "captcha_id": id, "captcha": answer}))
            .await;
    assert_eq!(r.code(), "captcha_invalid");
    // A wrong answer spends the challenge: the right one afterwards fails too.
    let (id, answer) = challenge(&base, &tokens, &captcha).await;
    let wrong: String = answer.chars().map(|c| if c == 'a' { 'b' } else { 'a' }).collect();
    let r =
        post(&base, "/login", json!({"username": "imgu", "password": PASSWORD, "captcha_id": id, "captcha": wrong}))
            .await;
    assert_eq!(r.code(), "captcha_invalid");
    let r =
        post(&base, "/login", json!({"username": "imgu", "password": PASSWORD, "captcha_id": id, "captcha": answer}))
            .await;
    assert_eq!(r.code(), "captcha_invalid");
    // Unknown id.
    let r = post(
        &base,
        "/login",
        json!({"username": "imgu", "password": PASSWORD, "captcha_id": "no-such-id", "captcha": "abab"}),
    )
    .await;
    assert_eq!(r.code(), "captcha_invalid");
    // A fresh one logs in.
    let (id, answer) = challenge(&base, &tokens, &captcha).await;
    let r =
        post(&base, "/login", json!({"username": "imgu", "password": PASSWORD, "captcha_id": id, "captcha": answer}))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn an_image_captcha_expires() {
    let ImageServer { base, tokens, captcha, clock, _dir } = image_server(Duration::from_secs(1)).await;
    let r: Value = reqwest::get(format!("{base}/api/auth/captcha")).await.unwrap().json().await.unwrap();
    assert_eq!(r["expires_in"], 1);
    let id = r["captcha_id"].as_str().unwrap().to_owned();
    let answer = recover_answer(&tokens, &captcha, &id);
    clock.advance(Duration::from_secs(2));
    let r = post(
        &base,
        "/register",
        json!({"username": "late", "password": PASSWORD, "captcha_id": id, "captcha": answer}),
    )
    .await;
    assert_eq!(r.code(), "captcha_invalid");
}

#[tokio::test]
async fn the_example_server_serves_image_captchas_from_configuration() {
    let s = TestServer::start_with(&[("AUTH_CAPTCHA", "image")]).await;
    let r = Resp::from(s.request(Method::GET, "/api/auth/captcha").send().await).await;
    assert_eq!(r.status, 200);
    assert!(r.body["image"].as_str().unwrap().starts_with("data:image/png;base64,"));
    assert_eq!(r.body["captcha_id"].as_str().unwrap().len(), 43);
    let r = s
        .post(
            "/login",
            json!({"username": "u", "password": PASSWORD, "captcha_id": r.body["captcha_id"], "captcha": "zzzzz"}),
        )
        .await;
    assert_eq!(r.code(), "captcha_invalid");
}
