//! The bundled example server on actix-web: `auth-actix`'s scope at `/api/auth` (the dialect's
//! mount), and a host app with a protected route and an admin-only route — the app of
//! `auth-example-server` (axum), route for route and header for header, on the same
//! configuration.
//!
//! The configuration is `auth-example-server`'s, not a copy: [`ServerConfig::from_env`] reads the
//! same `AUTH_*` variables and [`build_auth`] builds the same service on the same stores. This
//! library part lets tests start the app in-process ([`serve`]), like `auth_example_server::serve`.

use std::future::Future;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{from_fn, Condition, Next};
use actix_web::{guard, web, App, HttpRequest, HttpResponse, HttpServer};
use auth_actix::{cors, dialect_errors, jwks_resource, to_actix, AuthClaims, AuthScope, CurrentUser, RequireAuth};
use auth_core::Auth;
use auth_http::{Canonical, Dialect};
use serde_json::json;

pub use auth_example_server::{build_auth, build_auth_with_clock, users_command, ServerConfig, USERS_USAGE};

/// The log target of per-request lines (`auth_example_server::REQUEST_LOG_TARGET`): `http`.
pub use auth_example_server::REQUEST_LOG_TARGET;

/// The app: the auth API at `dialect`'s mount (`/api/auth`, `/api/v1/auth` for res-err) with its
/// routes, bodies and errors (and, in the canonical dialect, its OpenAPI document at
/// `<mount>/openapi.json` and the API docs UI at `/docs`); `GET /api/protected` for any logged-in
/// user, `GET /api/admin/ping` for admins, `GET /api/health` for anyone, the login page at `/` and
/// the JWK Set at `/.well-known/jwks.json`; a log line per request at `debug` (target `http`) and
/// per server error at `warn`. The answers are those of `auth_example_server::app_with_dialect`.
///
/// The host routes accept the dialect's `Authorization` schemes (and the access-token cookie
/// when the configuration sets it) and answer 401/403 in its envelope. With
/// `AuthConfig::browser.allowed_origins` the host routes and the auth API answer one CORS
/// policy ([`auth_actix::Cors`]).
///
/// # Panics
/// If the token transport uses cookies and `dialect` cannot carry them (as the axum app).
pub fn app(
    auth: Auth,
    dialect: Arc<dyn Dialect>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // The dialect's clients send their tokens with its schemes (`Customize` for res-err).
    let schemes = dialect.auth_schemes();
    let origins = auth.config().browser.allowed_origins.clone();
    let page = auth.config().browser.token_transport.uses_cookies();
    let require = |role: Option<&str>| {
        let mut require = RequireAuth::new(auth.clone()).schemes(schemes);
        if let Some(role) = role {
            require = require.with_role(role);
        }
        require
    };
    let api = AuthScope::new(auth.clone()).dialect(dialect.clone());
    let docs_ui = dialect.name() == Canonical.name();
    // The host's routes: each under the host's CORS policy (the auth scope has its own, as the
    // auth router has in the axum app).
    let host_cors = || Condition::new(!origins.is_empty(), cors(&origins));
    let mut app = App::new()
        .default_service(not_found(&origins, docs_ui))
        .service(api.scope(dialect.mount()))
        .service(
            get_only("/api/protected", web::route().to(protected))
                .wrap(require(None))
                .wrap(host_cors())
                .wrap_fn(allow_get_head),
        )
        .service(
            get_only("/api/admin/ping", web::route().to(admin_ping))
                .wrap(require(Some("admin")))
                .wrap(host_cors())
                .wrap_fn(allow_get_head),
        )
        .service(get_only("/", web::route().to(move || login_page(page))).wrap(host_cors()).wrap_fn(allow_get_head))
        .service(get_only("/api/health", web::route().to(health)).wrap(host_cors()).wrap_fn(allow_get_head))
        // The well-known location (RFC 8615) at the site root; the auth scope has it too.
        .service(jwks_resource(auth).wrap(host_cors()).wrap_fn(allow_get_head));
    if docs_ui {
        app = app.configure(docs(format!("{}/openapi.json", dialect.mount())));
    }
    app.wrap(dialect_errors(dialect)).wrap(from_fn(log_request))
}

/// The host's 404 for an unknown path (the axum app's fallback): empty; with the docs UI, with its
/// headers (axum's `merge` keeps the docs router's fallback), else under the host's CORS policy.
fn not_found(origins: &auth_http::AllowedOrigins, docs_ui: bool) -> actix_web::Route {
    if docs_ui {
        web::route().to(|req: HttpRequest| async move { docs_headers(empty_not_found(&req)) })
    } else {
        let route = web::route().to(|req: HttpRequest| async move { empty_not_found(&req) });
        route.wrap(Condition::new(!origins.is_empty(), cors(origins)))
    }
}

/// An empty 404; to `HEAD` without `Content-Length`, as hyper sends it.
fn empty_not_found(req: &HttpRequest) -> HttpResponse {
    if req.method() == actix_web::http::Method::HEAD {
        HttpResponse::NotFound().body(actix_web::body::None::new())
    } else {
        HttpResponse::NotFound().finish()
    }
}

/// A resource answering `GET` (and `HEAD`, as axum's `get` does) with `route`, and any other
/// method with an empty 405.
fn get_only(path: &str, route: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(route.guard(guard::Any(guard::Get()).or(guard::Head())))
        .default_service(web::to(HttpResponse::MethodNotAllowed))
}

/// `Allow: GET,HEAD` on every answer to another method — a 405, a 401 of the access-token check,
/// a CORS preflight — as axum's method router adds it to whatever its fallback answers.
fn allow_get_head<S, B>(
    req: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: actix_web::dev::Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let other = !matches!(*req.method(), actix_web::http::Method::GET | actix_web::http::Method::HEAD);
    let response = service.call(req);
    async move {
        let mut response = response.await?;
        if other && !response.headers().contains_key(header::ALLOW) {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        }
        Ok(response)
    }
}

/// One log line per request, as the axum app writes them: at `debug` under target
/// [`REQUEST_LOG_TARGET`] (`http`), method, path (never the query string), status and latency in
/// µs; server errors (5xx) at `warn` whatever the level.
async fn log_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    use tracing::Instrument as _;
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let start = std::time::Instant::now();
    let span = tracing::debug_span!(target: REQUEST_LOG_TARGET, "request", method = %method, path = %uri.path());
    let response = next.call(request).instrument(span).await?;
    let (status, latency_us) = (response.status().as_u16(), start.elapsed().as_micros());
    if response.status().is_server_error() {
        tracing::warn!(target: REQUEST_LOG_TARGET, method = %method, path = %uri.path(), status, latency_us, "server error");
    } else {
        tracing::debug!(target: REQUEST_LOG_TARGET, method = %method, path = %uri.path(), status, latency_us, "response");
    }
    Ok(response)
}

/// `GET /`: the axum example's login page, the same answer (`auth_example_server::login_page_response`).
async fn login_page(cookies: bool) -> HttpResponse {
    to_actix(auth_example_server::login_page_response(cookies))
}

async fn protected(CurrentUser(user): CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "user_id": user.id, "username": user.name(), "role": user.role }))
}

/// `GET /api/health`: open, `{"status":"ok"}` while the process serves.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn admin_ping(claims: AuthClaims) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "pong": true, "user_id": claims.sub }))
}

/// The API docs UI at `/docs` for the document at `openapi_url`, answering as
/// `utoipa-swagger-ui`'s axum router does (`/docs` redirects to `/docs/`), with the CSP and
/// `nosniff` of the axum app on every answer.
fn docs(openapi_url: String) -> impl FnOnce(&mut web::ServiceConfig) {
    let config = Arc::new(utoipa_swagger_ui::Config::new([openapi_url]));
    move |cfg| {
        let file = move |req: HttpRequest| {
            let config = config.clone();
            async move {
                let tail = req.match_info().get("rest").unwrap_or_default().to_owned();
                docs_headers(match utoipa_swagger_ui::serve(&tail, config) {
                    Ok(Some(file)) => {
                        let mut response = HttpResponse::Ok();
                        response.insert_header((header::CONTENT_TYPE, file.content_type));
                        if file.gzpipped {
                            response.insert_header((header::CONTENT_ENCODING, "gzip"));
                        }
                        response.body(file.bytes.into_owned())
                    }
                    Ok(None) => HttpResponse::NotFound().finish(),
                    Err(error) => HttpResponse::InternalServerError()
                        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
                        .body(error.to_string()),
                })
            }
        };
        let redirect =
            || async { docs_headers(HttpResponse::SeeOther().insert_header((header::LOCATION, "/docs/")).finish()) };
        let resource = |path: &str| {
            web::resource(path).default_service(web::to(|| async {
                docs_headers(HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, "GET,HEAD")).finish())
            }))
        };
        cfg.service(resource("/docs").route(web::route().guard(get_or_head()).to(redirect)))
            .service(resource("/docs/").route(web::route().guard(get_or_head()).to(file.clone())))
            .service(resource("/docs/{rest:.+}").route(web::route().guard(get_or_head()).to(file)));
    }
}

fn get_or_head() -> impl guard::Guard {
    guard::Any(guard::Get()).or(guard::Head())
}

fn docs_headers(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(auth_example_server::DOCS_CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Serves [`app`] on `listener` until `shutdown` completes, then finishes in-flight requests
/// (for up to 30 s): the counterpart of `auth_example_server::serve(listener,
/// app_with_dialect(auth, dialect), shutdown)`, with the same inputs.
///
/// Await it on a tokio runtime (`#[tokio::main]`, `#[tokio::test]`, `tokio::spawn`): actix-web
/// runs its workers on threads of their own, each on a runtime of its own. The work `auth`
/// leaves in the background (audit writes, mail) runs on the runtime `auth` was built on
/// (`AuthBuilder::runtime`), so it outlives the workers and `Auth::flush_audit` can wait for it
/// after `serve` returns. No OS signal handlers are installed: `shutdown` is the only stop.
///
/// # Errors
/// An I/O error of the listener.
///
/// # Panics
/// Outside a tokio runtime; as [`app`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    auth: Auth,
    dialect: Arc<dyn Dialect>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = server(listener.into_std()?, auth, dialect, shutdown)?;
    server.await
}

/// The actix-web server of [`serve`], built outside its future: `HttpServer` and the app factory's
/// types are not `Send`, the running [`Server`](actix_web::dev::Server) is.
fn server(
    listener: std::net::TcpListener,
    auth: Auth,
    dialect: Arc<dyn Dialect>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<actix_web::dev::Server> {
    // Checked here, not in each worker: a bad dialect fails now, on this thread.
    let _ = AuthScope::new(auth.clone()).dialect(dialect.clone());
    Ok(HttpServer::new(move || app(auth.clone(), dialect.clone()))
        .shutdown_signal(shutdown)
        .listen_auto_h2c(listener)?
        .run())
}

/// Resolves on SIGTERM or Ctrl-C (`auth_example_server::shutdown_signal`).
pub use auth_example_server::shutdown_signal;

#[cfg(test)]
mod tests {
    use super::*;

    /// [`serve`] can be spawned (`tokio::spawn`), as the e2e harness spawns the axum example's.
    #[allow(dead_code)]
    fn serve_is_spawnable(listener: tokio::net::TcpListener, auth: Auth, dialect: Arc<dyn Dialect>) {
        fn spawnable<F: Future<Output = std::io::Result<()>> + Send + 'static>(_: F) {}
        spawnable(serve(listener, auth, dialect, std::future::pending()));
    }
}
