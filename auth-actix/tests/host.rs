//! A host's own routes behind `RequireAuth` / `OptionalAuth`, with the extractors, answer as
//! with `auth-axum`'s layers and extractors.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App, HttpResponse};
use auth_core::{Auth, AuthConfig, RateLimits, SecretString};
use auth_http::Dialect;
use auth_storage::MemoryStore;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use serde_json::{json, Value};
use tower::ServiceExt as _;

const PASSWORD: &str = "violet-Kettle-93-orbit";

fn new_auth() -> Auth {
    let mut config = AuthConfig::new(vec![9u8; 32]).unwrap();
    config.argon2 = auth_core::Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    config.rate_limits = RateLimits::off();
    config.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    Auth::builder(config).stores(Arc::new(MemoryStore::new())).build().unwrap()
}

async fn token(auth: &Auth, username: &str, admin: bool) -> String {
    let password = SecretString::new(PASSWORD);
    if admin {
        auth.create_admin(username, &password).await.unwrap();
    } else {
        let req = serde_json::from_value(json!({"username": username, "password": PASSWORD})).unwrap();
        auth.register(req, &auth_core::RequestContext::default()).await.unwrap();
    }
    let login = serde_json::from_value(json!({"username": username, "password": PASSWORD})).unwrap();
    match auth.login(login, &auth_core::RequestContext::default()).await.unwrap() {
        auth_core::LoginOutcome::Authenticated(tokens) => tokens.access_token,
        other => panic!("{other:?}"),
    }
}

type Answer = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

/// A request: path, headers, peer.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, SocketAddr);

fn sorted(status: u16, headers: Vec<(String, Vec<u8>)>, body: Vec<u8>) -> Answer {
    let mut headers: Vec<_> = headers.into_iter().filter(|(n, _)| n != "content-length").collect();
    headers.sort();
    (status, headers, body)
}

async fn via_axum(router: &axum::Router, path: &str, headers: &[(&str, &str)], peer: SocketAddr) -> Answer {
    let mut builder = axum::http::Request::builder().uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let h = response.headers().iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    sorted(status, h, body)
}

async fn via_actix<S, B>(app: &S, path: &str, headers: &[(&str, &str)], peer: SocketAddr) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut request = test::TestRequest::get().uri(path).peer_addr(peer);
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let response = test::call_service(app, request.to_request()).await;
    let status = response.status().as_u16();
    let h = response.headers().iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
    sorted(status, h, test::read_body(response).await.to_vec())
}

fn axum_host(auth: &Auth, dialect: Arc<dyn Dialect>) -> axum::Router {
    use auth_axum::{AuthClaims, ClientContext, CurrentUser, OptionalAuth, OptionalUser, RequireAuth};
    let schemes = dialect.auth_schemes();
    axum::Router::new()
        .route(
            "/api/protected",
            get(|CurrentUser(user): CurrentUser| async move {
                axum::Json(json!({"user_id": user.id, "name": user.name()}))
            }),
        )
        .route_layer(RequireAuth::new(auth.clone()).schemes(schemes))
        .merge(
            axum::Router::new()
                .route(
                    "/api/admin/ping",
                    get(|c: AuthClaims| async move { axum::Json(json!({"pong": true, "sub": c.sub})) }),
                )
                .route_layer(RequireAuth::new(auth.clone()).with_role("admin").schemes(schemes)),
        )
        .merge(
            axum::Router::new()
                .route(
                    "/api/optional",
                    get(|OptionalUser(user): OptionalUser| async move {
                        axum::Json(json!({"name": user.as_ref().map(|u| u.name().to_owned())}))
                    }),
                )
                .route_layer(OptionalAuth::new(auth.clone()).schemes(schemes)),
        )
        .merge(
            axum::Router::new()
                .route(
                    "/api/client",
                    get(|ClientContext(ctx): ClientContext| async move { axum::Json(json!({"ip": ctx.ip})) }),
                )
                .with_state(auth.clone()),
        )
        .layer(auth_axum::dialect_errors(dialect))
}

macro_rules! actix_host {
    ($auth:expr, $dialect:expr) => {{
        use auth_actix::{AuthClaims, ClientContext, CurrentUser, OptionalAuth, OptionalUser, RequireAuth};
        let auth: Auth = $auth;
        let dialect: Arc<dyn Dialect> = $dialect;
        let schemes = dialect.auth_schemes();
        let require = |role: Option<&str>| {
            let mut m = RequireAuth::new(auth.clone()).schemes(schemes);
            if let Some(role) = role {
                m = m.with_role(role);
            }
            m
        };
        App::new()
            .app_data(auth.clone())
            .service(web::resource("/api/protected").wrap(require(None)).get(|CurrentUser(user): CurrentUser| async move {
                HttpResponse::Ok().json(json!({"user_id": user.id, "name": user.name()}))
            }))
            .service(web::resource("/api/admin/ping").wrap(require(Some("admin"))).get(|c: AuthClaims| async move {
                HttpResponse::Ok().json(json!({"pong": true, "sub": c.sub}))
            }))
            .service(web::resource("/api/optional").wrap(OptionalAuth::new(auth.clone()).schemes(schemes)).get(
                |OptionalUser(user): OptionalUser| async move {
                    HttpResponse::Ok().json(json!({"name": user.as_ref().map(|u| u.name().to_owned())}))
                },
            ))
            .service(web::resource("/api/client").get(|ClientContext(ctx): ClientContext| async move {
                HttpResponse::Ok().json(json!({"ip": ctx.ip}))
            }))
            .wrap(auth_actix::dialect_errors(dialect))
    }};
}

#[actix_web::test]
async fn host_routes_answer_as_with_auth_axum() {
    for name in ["canonical", "res-err"] {
        let dialect = auth_http::dialects::by_name(name).unwrap();
        let auth = new_auth();
        let (user, admin) = (token(&auth, "alice", false).await, token(&auth, "root", true).await);
        let router = axum_host(&auth, dialect.clone());
        let app = test::init_service(actix_host!(auth.clone(), dialect.clone())).await;
        let scheme = dialect.auth_schemes().last().unwrap();
        let (user_h, admin_h) = (format!("{scheme} {user}"), format!("{scheme} {admin}"));
        let direct: SocketAddr = "198.51.100.1:1000".parse().unwrap();
        let proxy: SocketAddr = "10.1.2.3:1000".parse().unwrap();
        let cases: Vec<Case<'_>> = vec![
            ("/api/protected", vec![], direct),
            ("/api/protected", vec![("authorization", "Bearer nope")], direct),
            ("/api/protected", vec![("authorization", "Basic eDp5")], direct),
            ("/api/protected", vec![("authorization", &user_h)], direct),
            ("/api/admin/ping", vec![("authorization", &user_h)], direct),
            ("/api/admin/ping", vec![("authorization", &admin_h)], direct),
            ("/api/admin/ping", vec![], direct),
            ("/api/optional", vec![], direct),
            ("/api/optional", vec![("authorization", &user_h)], direct),
            ("/api/optional", vec![("authorization", "Bearer nope")], direct),
            ("/api/client", vec![("x-forwarded-for", "192.0.2.9")], direct),
            ("/api/client", vec![("x-forwarded-for", "192.0.2.9, 10.0.0.5")], proxy),
            ("/api/client", vec![("x-forwarded-for", "unknown")], proxy),
        ];
        for (path, headers, peer) in &cases {
            let axum = via_axum(&router, path, headers, *peer).await;
            let actix = via_actix(&app, path, headers, *peer).await;
            assert_eq!(
                actix,
                axum,
                "{name} {path} {headers:?}: {} vs {}",
                String::from_utf8_lossy(&actix.2),
                String::from_utf8_lossy(&axum.2)
            );
        }
        let body = |a: &Answer| serde_json::from_slice::<Value>(&a.2).unwrap();
        let answer = via_actix(&app, "/api/client", &[("x-forwarded-for", "192.0.2.9, 10.0.0.5")], proxy).await;
        assert_eq!(body(&answer), json!({"ip": "192.0.2.9"}), "the client behind the trusted proxy");
        let answer = via_actix(&app, "/api/protected", &[("authorization", &user_h)], direct).await;
        assert_eq!((answer.0, body(&answer)["name"].clone()), (200, json!("alice")));
    }
}

#[actix_web::test]
async fn extractors_without_their_middleware_are_a_500() {
    let app = test::init_service(
        App::new()
            .route("/claims", web::get().to(|_: auth_actix::AuthClaims| async { "" }))
            .route("/user", web::get().to(|_: auth_actix::OptionalUser| async { "" }))
            .route("/client", web::get().to(|_: auth_actix::ClientContext| async { "" })),
    )
    .await;
    for path in ["/claims", "/user", "/client"] {
        let response = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(response.status(), 500, "{path}");
        let body: Value = serde_json::from_slice(&test::read_body(response).await).unwrap();
        assert_eq!(body["error"]["code"], "internal");
    }
}

/// The service built on a runtime that outlives the actix-web system: the audit writes of the
/// requests the system served finish on the service's runtime after the system is gone.
#[core::prelude::v1::test]
fn background_work_outlives_the_actix_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let handle = runtime.handle().clone();
    let auth = runtime.block_on(async { new_auth() });
    let served = auth.clone();
    actix_web::rt::System::new().block_on(async move {
        let auth = served;
        let user = {
            let auth = auth.clone();
            handle.spawn(async move { token(&auth, "alice", false).await }).await.unwrap()
        };
        let dialect: Arc<dyn Dialect> = Arc::new(auth_http::Canonical);
        let scope = auth_actix::AuthScope::new(auth.clone());
        let app =
            test::init_service(actix_host!(auth.clone(), dialect.clone()).service(scope.scope("/api/auth"))).await;
        let bearer = format!("Bearer {user}");
        let peer: SocketAddr = "198.51.100.1:1000".parse().unwrap();
        for path in ["/api/protected", "/api/auth/me", "/api/auth/sessions"] {
            let answer = via_actix(&app, path, &[("authorization", &bearer)], peer).await;
            assert_eq!(answer.0, 200, "{path}: {}", String::from_utf8_lossy(&answer.2));
        }
        let body = json!({"username": "bob", "password": PASSWORD});
        let request = test::TestRequest::post().uri("/api/auth/register").set_json(&body).to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 201);
    });
    // The registration's audit write went to the service's runtime, which is still there to
    // finish it (on the system's runtime it would have been dropped, and the flush would wait its
    // full 5 s).
    let flushed =
        runtime.block_on(async { tokio::time::timeout(std::time::Duration::from_secs(2), auth.flush_audit()).await });
    assert!(flushed.is_ok());
}
