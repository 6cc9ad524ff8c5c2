//! The resource server over real HTTP, next to a real auth server: it accepts the auth server's
//! live tokens holding no secret, refuses them after `exp`, sees a logout only where it asks
//! token introspection, fetches a new key when a token names an unknown `kid` (at most once per
//! interval), keeps its keys through an outage of the auth server, and answers 503 when it has
//! never had any.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_axum::JwksAuth;
use auth_core::keys::{JwtAlgorithm, JwtKey, KeySet};
use auth_core::ManualClock;
use auth_e2e_tests::{access, Resp, TestServer};
use auth_example_resource_server::{app, Introspection};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{json, Value};

const CLIENT_ID: &str = "orders-service";
const CLIENT_SECRET: &str = "introspection-secret-0123456789-abcdefgh";

/// Serves `router` on a free port; returns `http://127.0.0.1:PORT`.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

async fn call(method: reqwest::Method, url: &str, token: Option<&str>) -> Resp {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    Resp::from(req.send().await).await
}

#[tokio::test]
async fn live_tokens_are_accepted_without_a_secret_and_refused_after_expiry_or_when_introspection_says_revoked() {
    let auth = TestServer::start_with(&[
        ("AUTH_JWT_ALGORITHM", "EdDSA"),
        ("AUTH_INTROSPECTION_CLIENT_ID", CLIENT_ID),
        ("AUTH_INTROSPECTION_SECRET", CLIENT_SECRET),
    ])
    .await;
    let jwks = JwksAuth::new(format!("{}/.well-known/jwks.json", auth.base), "auth", "api").clock(auth.clock.clone());
    jwks.refresh().await.unwrap();
    let introspection =
        Introspection::new(format!("{}/api/auth/introspect", auth.base), CLIENT_ID, CLIENT_SECRET).unwrap();
    let orders = format!("{}/api/orders", serve(app(jwks, Some(introspection))).await);

    let tokens = auth.register("paula").await;
    let token = access(&tokens);
    let r = call(reqwest::Method::GET, &orders, Some(token)).await;
    assert_eq!((r.status, &r.body["user_id"]), (200, &tokens["user"]["id"]));
    assert_eq!(call(reqwest::Method::POST, &orders, Some(token)).await.status, 201);
    for bad in [None, Some("garbage"), Some(tokens["refresh_token"].as_str().unwrap())] {
        let r = call(reqwest::Method::GET, &orders, bad).await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "{bad:?}");
    }

    // Logged out at the auth server: the signature still holds, so the local check cannot know
    // until `exp` (the documented limit); the introspected route refuses at once.
    assert_eq!(auth.call(reqwest::Method::POST, "/api/auth/logout", token, None).await.status, 204);
    assert_eq!(call(reqwest::Method::GET, &orders, Some(token)).await.status, 200);
    let r = call(reqwest::Method::POST, &orders, Some(token)).await;
    assert_eq!((r.status, r.code()), (401, "session_revoked"));

    // Past `exp` plus the 30 s leeway: refused everywhere.
    let again = auth.login("paula").await;
    auth.clock.advance(Duration::from_secs(3600 + 31));
    let r = call(reqwest::Method::GET, &orders, Some(access(&again))).await;
    assert_eq!((r.status, r.code()), (401, "token_expired"));
}

/// A JWK Set server that counts its requests; its answer can be changed, or made a 500.
#[derive(Clone, Default)]
struct KeyServer {
    state: Arc<Mutex<(Option<Value>, usize)>>,
}

impl KeyServer {
    fn publish(&self, set: &KeySet) {
        self.state.lock().unwrap().0 = Some(serde_json::to_value(set.jwks()).unwrap());
    }
    fn fail(&self) {
        self.state.lock().unwrap().0 = None;
    }
    fn fetches(&self) -> usize {
        self.state.lock().unwrap().1
    }
    async fn start(&self) -> String {
        let router = axum::Router::new()
            .route(
                "/jwks.json",
                axum::routing::get(|State(server): State<KeyServer>| async move {
                    let mut state = server.state.lock().unwrap();
                    state.1 += 1;
                    match &state.0 {
                        Some(body) => axum::Json(body.clone()).into_response(),
                        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                    }
                }),
            )
            .with_state(self.clone());
        format!("{}/jwks.json", serve(router).await)
    }
}

/// A key of `alg` with its private PEM, for signing test tokens.
fn key(alg: JwtAlgorithm) -> (JwtKey, jsonwebtoken::EncodingKey) {
    let (key, pem) = JwtKey::generate(alg).unwrap();
    let encoding = match alg {
        JwtAlgorithm::EdDsa => jsonwebtoken::EncodingKey::from_ed_pem(pem.expose().as_bytes()),
        JwtAlgorithm::Es256 => jsonwebtoken::EncodingKey::from_ec_pem(pem.expose().as_bytes()),
        _ => jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes()),
    };
    (key, encoding.unwrap())
}

/// An access token as the auth server makes them, signed by `key` at `clock`'s time.
fn token(key: &(JwtKey, jsonwebtoken::EncodingKey), clock: &ManualClock) -> String {
    use auth_core::Clock as _;
    let now = clock.now().timestamp();
    let alg = match key.0.algorithm() {
        JwtAlgorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        JwtAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        _ => jsonwebtoken::Algorithm::RS256,
    };
    let mut header = jsonwebtoken::Header::new(alg);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.0.kid().into());
    let claims = json!({"sub": uuid::Uuid::new_v4(), "sid": uuid::Uuid::new_v4(), "role": "user", "iat": now,
        "nbf": now, "exp": now + 900, "iss": "auth", "aud": "api", "jti": uuid::Uuid::new_v4()});
    jsonwebtoken::encode(&header, &claims, &key.1).unwrap()
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_keys_again_but_at_most_once_per_interval() {
    let server = KeyServer::default();
    let clock = Arc::new(ManualClock::new());
    let (first, second) = (key(JwtAlgorithm::EdDsa), key(JwtAlgorithm::Es256));
    server.publish(&KeySet::new(first.0.clone()).unwrap());
    let jwks = JwksAuth::new(server.start().await, "auth", "api").clock(clock.clone());
    let orders = format!("{}/api/orders", serve(app(jwks, None)).await);
    let get = |token: String| {
        let orders = orders.clone();
        async move { call(reqwest::Method::GET, &orders, Some(&token)).await.status }
    };

    assert_eq!(get(token(&first, &clock)).await, 200);
    assert_eq!(server.fetches(), 1, "fetched on first use");
    assert_eq!(get(token(&first, &clock)).await, 200);
    assert_eq!(server.fetches(), 1, "then held");

    // The auth server starts publishing its next key; a token already signed with it arrives.
    server.publish(&KeySet::new(second.0.clone()).unwrap().with_verify_only(first.0.clone()).unwrap());
    assert_eq!(get(token(&second, &clock)).await, 200, "an unknown kid fetches the set again");
    assert_eq!(server.fetches(), 2);

    // Made-up kids cannot make it hammer the auth server: unknown kids fetch once per 30 s.
    let made_up = key(JwtAlgorithm::EdDsa);
    for _ in 0..5 {
        assert_eq!(get(token(&made_up, &clock)).await, 401);
    }
    assert_eq!(server.fetches(), 2, "the last unknown-kid fetch was under 30 s ago");
    clock.advance(Duration::from_secs(31));
    for _ in 0..5 {
        assert_eq!(get(token(&made_up, &clock)).await, 401);
    }
    assert_eq!(server.fetches(), 3, "one more after 30 s");

    // Past max-age (600 s) the set is fetched again on the next request; when that fails, the
    // held keys stay in use (an auth-server outage does not stop the resource server), and the
    // failed fetch is retried once per 30 s, not on every request.
    server.fail();
    clock.advance(Duration::from_secs(601));
    for _ in 0..3 {
        assert_eq!(get(token(&second, &clock)).await, 200);
    }
    assert_eq!(server.fetches(), 4);
    clock.advance(Duration::from_secs(31));
    assert_eq!(get(token(&first, &clock)).await, 200);
    assert_eq!(server.fetches(), 5);
}

#[tokio::test]
async fn without_any_key_requests_get_503_and_tokens_with_another_algorithm_get_401() {
    // Nothing listens on the JWKS URL.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let clock = Arc::new(ManualClock::new());
    let jwks = JwksAuth::new(format!("http://{closed}/jwks.json"), "auth", "api").clock(clock.clone());
    assert!(jwks.refresh().await.is_err());
    let orders = format!("{}/api/orders", serve(app(jwks, None)).await);
    let r = call(reqwest::Method::GET, &orders, Some(&token(&key(JwtAlgorithm::EdDsa), &clock))).await;
    assert_eq!((r.status, r.code()), (503, "keys_unavailable"));

    // An auth server that answers 500, then a set with no usable key: neither is asked again on
    // every request (once per 30 s), and neither gives keys.
    let server = KeyServer::default();
    server.fail();
    let jwks = JwksAuth::new(server.start().await, "auth", "api").clock(clock.clone());
    let orders = format!("{}/api/orders", serve(app(jwks, None)).await);
    let eddsa = key(JwtAlgorithm::EdDsa);
    for _ in 0..5 {
        let r = call(reqwest::Method::GET, &orders, Some(&token(&eddsa, &clock))).await;
        assert_eq!((r.status, r.code()), (503, "keys_unavailable"));
    }
    assert_eq!(server.fetches(), 1, "one fetch, not one per request");
    *server.state.lock().unwrap() =
        (Some(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x", "alg": "HS256"}]})), 1);
    clock.advance(Duration::from_secs(31));
    let r = call(reqwest::Method::GET, &orders, Some(&token(&eddsa, &clock))).await;
    assert_eq!((r.status, r.code(), server.fetches()), (503, "keys_unavailable", 2), "a symmetric key is no key");
    server.publish(&KeySet::new(eddsa.0.clone()).unwrap());
    clock.advance(Duration::from_secs(31));
    assert_eq!(call(reqwest::Method::GET, &orders, Some(&token(&eddsa, &clock))).await.status, 200);
    // The auth server goes down for good: the held keys serve for max-age plus 24 h, no longer.
    server.fail();
    clock.advance(Duration::from_secs(600 + 23 * 3600));
    assert_eq!(call(reqwest::Method::GET, &orders, Some(&token(&eddsa, &clock))).await.status, 200);
    clock.advance(Duration::from_secs(3600 + 1));
    let r = call(reqwest::Method::GET, &orders, Some(&token(&eddsa, &clock))).await;
    assert_eq!((r.status, r.code()), (503, "keys_unavailable"), "a key is not trusted forever without its set");

    // A published RSA key; a token under its kid signed HS256 with its modulus as secret.
    let server = KeyServer::default();
    let rsa = key(JwtAlgorithm::Rs256);
    server.publish(&KeySet::new(rsa.0.clone()).unwrap());
    let jwks = JwksAuth::new(server.start().await, "auth", "api").clock(clock.clone());
    let orders = format!("{}/api/orders", serve(app(jwks, None)).await);
    assert_eq!(call(reqwest::Method::GET, &orders, Some(&token(&rsa, &clock))).await.status, 200);
    let n = serde_json::to_value(rsa.0.public_jwk().unwrap()).unwrap()["n"].as_str().unwrap().to_owned();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(rsa.0.kid().into());
    let claims = auth_e2e_tests::claims(&token(&rsa, &clock));
    let forged = jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(n.as_bytes())).unwrap();
    let r = call(reqwest::Method::GET, &orders, Some(&forged)).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
}
