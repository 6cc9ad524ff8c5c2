//! The actix-web scope answers exactly as `auth-axum`'s router: the same requests, sent to both
//! over one `Auth`, get the same status, headers and body bytes — for every dialect, with CORS,
//! with cookie transport, for errors of every layer and for authenticated successes.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, App};
use auth_actix::AuthScope;
use auth_axum::AuthRouter;
use auth_core::{Auth, AuthConfig, RateLimits, SecretString, TokenTransport};
use auth_http::{dialects, AllowedOrigins, Dialect, Operation};
use auth_storage::MemoryStore;
use axum::body::Body;
use axum::extract::ConnectInfo;
use serde_json::{json, Value};
use tower::ServiceExt as _;

const PASSWORD: &str = "violet-Kettle-93-orbit";
const ORIGIN: &str = "https://app.example.com";

/// A response as compared: status, headers sorted (without `Content-Length`, which axum sets at
/// the route and actix-web on the wire), body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A request to send to both.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn req(method: &'static str, path: impl Into<String>) -> Req {
    Req { method, path: path.into(), headers: Vec::new(), body: Vec::new() }
}

impl Req {
    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
    fn json(self, body: &Value) -> Self {
        self.raw("application/json", serde_json::to_vec(body).unwrap())
    }
    fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("content-type", content_type)
    }
    fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
}

fn peer() -> SocketAddr {
    "203.0.113.7:4242".parse().unwrap()
}

fn normalize(status: u16, headers: impl Iterator<Item = (String, Vec<u8>)>, body: Vec<u8>, head: bool) -> Answer {
    let mut headers: Vec<_> = headers.filter(|(name, _)| name != "content-length").collect();
    headers.sort();
    Answer { status, headers, body: if head { Vec::new() } else { body } }
}

async fn via_axum(router: &axum::Router, r: &Req) -> Answer {
    let mut builder = axum::http::Request::builder().method(r.method).uri(&r.path);
    for (name, value) in &r.headers {
        builder = builder.header(name, value);
    }
    let mut request = builder.body(Body::from(r.body.clone())).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer()));
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers: Vec<_> =
        response.headers().iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    normalize(status, headers.into_iter(), body, r.method == "HEAD")
}

async fn via_actix<S, B>(app: &S, r: &Req) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut request = test::TestRequest::default()
        .method(actix_web::http::Method::from_bytes(r.method.as_bytes()).unwrap())
        .uri(&r.path)
        .peer_addr(peer());
    for (name, value) in &r.headers {
        request = request.insert_header((name.as_str(), value.as_str()));
    }
    let response = test::call_service(app, request.set_payload(r.body.clone()).to_request()).await;
    let status = response.status().as_u16();
    let headers: Vec<_> =
        response.headers().iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
    let body = test::read_body(response).await.to_vec();
    normalize(status, headers.into_iter(), body, r.method == "HEAD")
}

/// `Auth` over a fresh memory store, cheap Argon2, rate limits off unless `limits`.
fn new_auth(configure: impl FnOnce(&mut AuthConfig)) -> Auth {
    let mut config = AuthConfig::new(vec![7u8; 32]).unwrap();
    config.argon2 = auth_core::Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    config.rate_limits = RateLimits::off();
    configure(&mut config);
    Auth::builder(config).stores(Arc::new(MemoryStore::new())).build().unwrap()
}

/// The access tokens of a user and an admin, registered and logged in through the canonical API.
async fn tokens(auth: &Auth) -> (String, String) {
    let setup = axum::Router::new().nest("/api/auth", AuthRouter::new(auth.clone()).build());
    let body = json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"});
    // From the allowed origin when cookies are on (which a foreign site may not set).
    let registered = via_axum(&setup, &req("POST", "/api/auth/register").json(&body).header("origin", ORIGIN)).await;
    assert_eq!(registered.status, 201, "{:?}", registered.json());
    auth.create_admin("root", &SecretString::new(PASSWORD)).await.unwrap();
    let login = json!({"username": "root", "password": PASSWORD});
    let login = via_axum(&setup, &req("POST", "/api/auth/login").json(&login).header("origin", ORIGIN)).await;
    assert_eq!(login.status, 200, "{:?}", login.json());
    let user = registered.json()["access_token"].as_str().unwrap().to_owned();
    let admin = login.json()["access_token"].as_str().unwrap().to_owned();
    (user, admin)
}

/// Sends each request to both and asserts equal answers; returns them.
async fn same_answers(auth: &Auth, dialect: Arc<dyn Dialect>, requests: &[Req]) -> Vec<Answer> {
    let mount = dialect.mount();
    let router = axum::Router::new().nest(mount, AuthRouter::new(auth.clone()).dialect(dialect.clone()).build());
    let scope = AuthScope::new(auth.clone()).dialect(dialect.clone());
    let app = test::init_service(App::new().service(scope.scope(mount))).await;
    let mut answers = Vec::new();
    for r in requests {
        let r = Req { path: format!("{mount}{}", r.path), ..r.clone() };
        let axum = via_axum(&router, &r).await;
        let actix = via_actix(&app, &r).await;
        assert_eq!(
            actix,
            axum,
            "{} {} ({}): actix body {:?}, axum body {:?}",
            r.method,
            r.path,
            dialect.name(),
            String::from_utf8_lossy(&actix.body),
            String::from_utf8_lossy(&axum.body)
        );
        answers.push(axum);
    }
    answers
}

/// Requests whose answers do not change the state: errors of every layer, reads.
fn matrix(dialect: &dyn Dialect, user: &str, admin: &str) -> Vec<Req> {
    let mut requests = vec![
        req("GET", "/no/such/route"),
        req("GET", ""),
        req("GET", "/"),
        req("POST", "/.well-known/jwks.json"),
        req("GET", "/.well-known/jwks.json"),
        req("HEAD", "/.well-known/jwks.json"),
        req("GET", "/.well-known/jwks.json/"),
        req("GET", "/openapi.json"),
        req("POST", "/introspect"),
        req("OPTIONS", "/me"),
    ];
    let big = vec![b'x'; 70 * 1024];
    for route in dialect.routes() {
        let path = route.path.replace("{id}", "00000000-0000-0000-0000-000000000000").replace("{sid}", "not-a-uuid");
        let method = route.method.as_str();
        let method: &'static str = match method {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            other => panic!("untested method {other}"),
        };
        let other = if method == "PATCH" { "TRACE" } else { "PATCH" };
        // A token that works would end the session on the first of the two servers.
        let user = if matches!(route.operation, Operation::Logout | Operation::DeleteAccount) { "x" } else { user };
        requests.extend([
            req(method, path.clone()),
            req(other, path.clone()),
            req(method, path.clone()).bearer("not-a-jwt"),
            req(method, path.clone()).header("authorization", "Basic Zm9vOmJhcg=="),
            req(method, path.clone()).bearer(user).raw("text/plain", "hello"),
            req(method, path.clone()).bearer(user).raw("application/json", "{\"password\":"),
            req(method, path.clone()).bearer(user).raw("application/json", "[1,2]"),
            req(method, path.clone()).bearer(user).raw("application/json", big.clone()),
            req(method, format!("{path}/extra")),
        ]);
        if method == "GET" {
            requests.push(req("HEAD", path.clone()).bearer(user));
        }
        if route.operation.required_role().is_some() {
            requests.push(req(method, path.clone()).bearer(user).json(&json!({})));
        }
    }
    // Reads that succeed and change nothing.
    for path in ["/me", "/sessions", "/mfa", "/captcha/status", "/admin/users", "/me/audit"] {
        if dialect.routes().iter().any(|r| r.path == path && r.method == http::Method::GET) {
            requests.push(req("GET", path).bearer(user));
            requests.push(req("GET", path).bearer(admin));
            requests.push(req("GET", format!("{path}?limit=x&limit=y")).bearer(admin));
        }
    }
    requests.push(
        req("POST", "/login").json(&json!({"username": "alice", "password": "wrong-password-123", "account": "alice"})),
    );
    requests
}

#[actix_web::test]
async fn every_dialect_answers_as_auth_axum() {
    for name in dialects::NAMES {
        let dialect = dialects::by_name(name).unwrap();
        let auth = new_auth(|_| {});
        let (user, admin) = tokens(&auth).await;
        let answers = same_answers(&auth, dialect.clone(), &matrix(&*dialect, &user, &admin)).await;
        // Some dialects answer every error 200 with a flag in the body: the statuses vary.
        let statuses: std::collections::BTreeSet<_> = answers.iter().map(|a| a.status).collect();
        assert!(statuses.len() > 1 || statuses.contains(&200), "{name}: {statuses:?}");
        assert!(answers.iter().any(|a| a.body.is_empty()), "{name}: the jwks 405 is empty");
    }
}

#[actix_web::test]
async fn the_canonical_dialect_answers_as_auth_axum_and_as_documented() {
    let auth = new_auth(|_| {});
    let (user, _) = tokens(&auth).await;
    let requests = [
        req("GET", "/nope"),
        req("GET", "/login"),
        req("GET", "/me"),
        req("PUT", "/me"),
        req("POST", "/login").raw("application/json", vec![b' '; 64 * 1024 + 1]),
        req("POST", "/login").raw("text/plain", "x"),
        req("POST", "/login").raw("application/json", "{"),
        req("GET", "/me").bearer(&user),
    ];
    let answers = same_answers(&auth, Arc::new(auth_http::Canonical), &requests).await;
    let statuses: Vec<_> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [404, 405, 401, 405, 413, 415, 400, 200]);
    assert_eq!(answers[0].json(), json!({"error": {"code": "not_found", "message": "no such route"}}));
    let header = |a: &Answer, name: &str| {
        a.headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header(&answers[1], "allow").as_deref(), Some("POST"));
    assert_eq!(header(&answers[2], "www-authenticate").as_deref(), Some("Bearer"));
    assert_eq!(header(&answers[3], "allow").as_deref(), Some("GET,HEAD,DELETE"));
    for answer in &answers {
        assert_eq!(header(answer, "cache-control").as_deref(), Some("no-store"));
        assert_eq!(header(answer, "pragma").as_deref(), Some("no-cache"));
    }
    assert_eq!(answers[7].json()["username"], "alice");
}

#[actix_web::test]
async fn cors_answers_as_auth_axum() {
    let auth = new_auth(|config| config.browser.allowed_origins = AllowedOrigins::parse(ORIGIN).unwrap());
    let (user, admin) = tokens(&auth).await;
    let mut requests = vec![
        req("OPTIONS", "/login")
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type"),
        req("OPTIONS", "/login").header("origin", "https://evil.example.com"),
        req("OPTIONS", "/nope").header("origin", ORIGIN),
        req("OPTIONS", "/.well-known/jwks.json").header("origin", ORIGIN),
        req("GET", "/.well-known/jwks.json").header("origin", ORIGIN),
        req("GET", "/me").header("origin", ORIGIN),
        req("GET", "/me").header("origin", ORIGIN).bearer(&user),
        req("GET", "/me").header("origin", "https://evil.example.com").bearer(&user),
        req("GET", "/nope").header("origin", ORIGIN),
        req("GET", "/login").header("origin", ORIGIN),
        req("DELETE", "/me"),
    ];
    requests.extend(matrix(&auth_http::Canonical, &user, &admin).into_iter().map(|r| r.header("origin", ORIGIN)));
    let answers = same_answers(&auth, Arc::new(auth_http::Canonical), &requests).await;
    assert_eq!(answers[0].status, 200);
    assert!(answers[0].headers.iter().any(|(n, v)| n == "access-control-allow-origin" && v == ORIGIN.as_bytes()));
}

#[actix_web::test]
async fn cookie_transport_answers_as_auth_axum() {
    for transport in [TokenTransport::Cookie, TokenTransport::Both] {
        let auth = new_auth(|config| {
            config.browser.token_transport = transport;
            config.browser.access_token_cookie = true;
            config.browser.allowed_origins = AllowedOrigins::parse(ORIGIN).unwrap();
        });
        let (user, admin) = tokens(&auth).await;
        let mut requests = vec![
            req("POST", "/refresh"),
            req("POST", "/refresh").header("origin", ORIGIN),
            req("POST", "/refresh").header("cookie", "__Secure-auth-refresh=bogus").header("origin", ORIGIN),
            req("POST", "/logout").header("origin", ORIGIN),
            req("POST", "/logout")
                .header("cookie", "__Secure-auth-refresh=bogus")
                .header("origin", "https://evil.test"),
            req("GET", "/me").header("cookie", format!("__Host-auth-access={user}")),
            req("PUT", "/me/preferences")
                .header("cookie", format!("__Host-auth-access={user}"))
                .header("origin", "https://evil.test")
                .json(&json!({"theme": "dark"})),
        ];
        requests.extend(matrix(&auth_http::Canonical, &user, &admin));
        same_answers(&auth, Arc::new(auth_http::Canonical), &requests).await;
    }
}

#[actix_web::test]
async fn a_rate_limited_route_answers_429_as_auth_axum() {
    let limited = |config: &mut AuthConfig| {
        config.rate_limits.other_per_ip = Some(auth_core::RateRule::new(1, 3600));
    };
    // One service each: the second request of each is over the limit.
    let (first, second) = (new_auth(limited), new_auth(limited));
    let request = req("GET", "/api/auth/me");
    let router = axum::Router::new().nest("/api/auth", AuthRouter::new(first).build());
    let app = test::init_service(App::new().service(AuthScope::new(second).scope("/api/auth"))).await;
    let (a1, b1) = (via_axum(&router, &request).await, via_actix(&app, &request).await);
    assert_eq!((a1.status, b1.status), (401, 401));
    let (a2, b2) = (via_axum(&router, &request).await, via_actix(&app, &request).await);
    assert_eq!(a2.status, 429);
    let names = |a: &Answer| a.headers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&b2), names(&a2));
    assert_eq!((b2.status, b2.json()["error"]["code"].clone()), (429, a2.json()["error"]["code"].clone()));
}

#[actix_web::test]
async fn introspection_answers_as_auth_axum() {
    let auth = new_auth(|config| {
        config.introspection =
            Some(auth_core::IntrospectionClient::new("rs", "a-client-secret-of-at-least-32-bytes").unwrap());
    });
    let (user, _) = tokens(&auth).await;
    let basic = "Basic cnM6YS1jbGllbnQtc2VjcmV0LW9mLWF0LWxlYXN0LTMyLWJ5dGVz";
    let form = "application/x-www-form-urlencoded";
    let requests = [
        req("POST", "/introspect").header("authorization", basic).raw(form, format!("token={user}")),
        req("POST", "/introspect").header("authorization", basic).raw(form, "token=nope"),
        req("POST", "/introspect").raw(form, "token=nope"),
        req("GET", "/introspect"),
    ];
    let answers = same_answers(&auth, Arc::new(auth_http::Canonical), &requests).await;
    assert_eq!(answers[0].json()["active"], true);
}

#[cfg(feature = "openapi")]
#[actix_web::test]
async fn the_openapi_document_is_served_as_by_auth_axum() {
    let auth = new_auth(|_| {});
    let requests = [req("GET", "/openapi.json"), req("POST", "/openapi.json"), req("HEAD", "/openapi.json")];
    let answers = same_answers(&auth, Arc::new(auth_http::Canonical), &requests).await;
    assert_eq!(answers[0].status, 200);
    assert!(answers[0].json()["openapi"].as_str().unwrap().starts_with("3.1"));
}
