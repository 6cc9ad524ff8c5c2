//! The HTTP API as actix-web services: [`AuthScope`], [`routes`] and [`jwks_resource`].

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use auth_core::{Auth, AuthError};
use auth_http::browser::{authorize, Access};
use auth_http::keys::{introspection_response, jwks_response, INTROSPECTION_PATH, JWKS_PATH};
use auth_http::{error_response, handle, request_context, Canonical, Dialect, ErrorBody, Operation, RequestParts};
use futures_util::StreamExt as _;
use http::header::{self, HeaderValue};
use http::Method;

use crate::convert::{http_headers, http_method, percent_decode, to_actix};
use crate::cors::{CorsApplied, CorsPolicy};
use crate::error::rerender;

/// Default largest request body: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The HTTP API as actix-web services, to be mounted by the host under a path of its choosing,
/// usually `/api/auth` (the [`Dialect::mount`]): the routes of a [`Dialect`] (default
/// [`Canonical`], `docs/API.md`), each running its operation through `auth_http::handle`. The
/// counterpart of `auth_axum::AuthRouter`, answering every request with the same status, headers
/// and body bytes.
///
/// - Unknown routes under the mount answer 404 `not_found`, known routes with another method 405
///   `method_not_allowed` with an `Allow` header (`GET` routes also answer `HEAD`); bodies over
///   the limit get 413 `payload_too_large`, non-JSON bodies 415 `unsupported_media_type`,
///   malformed JSON 400 `invalid_request` naming the field. Every error (those, a refused access
///   token, a rate limit) is rendered by the dialect.
/// - Every response, success or error, carries `Cache-Control: no-store` and `Pragma: no-cache`
///   (RFC 6749 §5.1): bodies hold tokens and account data that no browser or shared cache may
///   keep.
/// - Routes whose [`Operation::requires_auth`] check the access token as
///   [`RequireAuth`](crate::RequireAuth) does (with the dialect's `Authorization` schemes and the
///   operation's role); routes without a rate rule of their own share the per-IP "every other
///   route" rule, applied before authentication.
/// - Whatever the dialect, `GET /.well-known/jwks.json` serves the public signing keys (RFC 7517,
///   `Cache-Control: public, max-age=…`, see [`jwks_resource`]) and, with
///   `AuthConfig::introspection`, `POST /introspect` answers RFC 7662 token introspection
///   (`auth_http::keys`).
/// - With feature `openapi` and the canonical dialect, `GET /openapi.json` serves the API's
///   OpenAPI 3.1 document (`auth_http::openapi`), its server URL being
///   `AuthConfig::browser.cookie_path` (the mount, default `/api/auth`).
/// - Browser settings come from `AuthConfig::browser`: with `allowed_origins` every answer under
///   the mount carries the CORS headers of [`Cors`](crate::Cors) and every `OPTIONS` request is
///   answered as a preflight; with cookie transport the token routes set and read the `HttpOnly`
///   token cookies and check the origin of cookie-authenticated requests (`auth_http::browser`),
///   and `/logout` also takes the refresh-token cookie alone. Mount the scope at
///   `AuthConfig::browser.cookie_path` (default `/api/auth`), the refresh cookie's `Path`.
///
/// The client IP of sessions, audit events and rate limits is the connection's peer, or behind
/// [`AuthConfig::trusted_proxies`](auth_core::AuthConfig::trusted_proxies) the address of
/// [`AuthConfig::client_ip_header`](auth_core::AuthConfig::client_ip_header)
/// ([`auth_http::client_ip`]).
///
/// actix-web builds the app once per worker: build the `AuthScope` once, outside
/// `HttpServer::new`, and clone it (cheap) into the factory, or call [`routes`] there.
///
/// ```no_run
/// use std::sync::Arc;
/// use actix_web::{web, App, HttpServer};
/// use auth_actix::AuthScope;
/// use auth_core::{Auth, AuthConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let auth = Auth::builder(AuthConfig::new(std::env::var("JWT_SECRET")?)?)
///     .stores(Arc::new(auth_storage::MemoryStore::new()))
///     .build()?;
/// let api = AuthScope::new(auth).body_limit(32 * 1024);
/// HttpServer::new(move || {
///     let api = api.clone();
///     App::new().service(web::scope("/api/auth").configure(move |cfg| api.configure(cfg)))
/// })
/// .bind("127.0.0.1:8080")?
/// .run()
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct AuthScope {
    auth: Auth,
    body_limit: usize,
    dialect: Arc<dyn Dialect>,
    #[cfg(feature = "openapi")]
    openapi: Arc<std::sync::OnceLock<Vec<u8>>>,
}

impl std::fmt::Debug for AuthScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthScope")
            .field("auth", &self.auth)
            .field("body_limit", &self.body_limit)
            .field("dialect", &self.dialect.name())
            .finish_non_exhaustive()
    }
}

impl AuthScope {
    /// The API of `auth` in the canonical dialect, with the default 64 KiB body limit.
    pub fn new(auth: Auth) -> Self {
        Self {
            auth,
            body_limit: DEFAULT_BODY_LIMIT,
            dialect: Arc::new(Canonical),
            #[cfg(feature = "openapi")]
            openapi: Arc::default(),
        }
    }

    /// Largest accepted request body in bytes; larger ones get 413 `payload_too_large`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The wire contract served (default [`Canonical`]): its routes, request shapes, response
    /// bodies and error envelope. The flows and rules behind it are the same.
    ///
    /// # Panics
    /// If the service's token transport uses cookies and `dialect` cannot carry them
    /// ([`Dialect::supports_cookie_transport`]): a configuration error, found at startup.
    pub fn dialect(mut self, dialect: Arc<dyn Dialect>) -> Self {
        assert_cookies_fit(&self.auth, &*dialect);
        self.dialect = dialect;
        self
    }

    /// Registers the API's services on `cfg`: a resource per path of the dialect, the JWK Set,
    /// introspection and OpenAPI resources when they apply, and the default service (404
    /// `not_found`) of the scope or app it configures. For `web::scope(…).configure(…)`.
    ///
    /// # Panics
    /// As [`dialect`](Self::dialect); and if the dialect has two routes with one method and path,
    /// or a route on a path the scope serves itself: a programming error, found at startup.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        assert_cookies_fit(&self.auth, &*self.dialect);
        let config = self.auth.config();
        let state = Rc::new(State {
            auth: self.auth.clone(),
            dialect: self.dialect.clone(),
            body_limit: self.body_limit,
            cors: (!config.browser.allowed_origins.is_empty())
                .then(|| CorsPolicy::new(&config.browser.allowed_origins)),
        });
        let mut own: Vec<(&str, Target)> = vec![(JWKS_PATH, Target::Jwks)];
        #[cfg(feature = "openapi")]
        if self.dialect.name() == Canonical.name() {
            // Built once for every worker; the document describes the canonical dialect only.
            let json = self
                .openapi
                .get_or_init(|| auth_http::openapi::canonical_openapi_json(&config.browser.cookie_path).into_bytes());
            own.push(("/openapi.json", Target::OpenApi(json.clone())));
        }
        if config.introspection.is_some() {
            own.push((INTROSPECTION_PATH, Target::Introspect));
        }
        let mut paths = route_table(&self.auth, &*self.dialect);
        // Static paths before parameterized ones: a literal segment wins, as in axum's router.
        paths.sort_by_key(|(path, _)| (path.contains('{'), *path));
        for (path, routes) in paths {
            assert!(
                !own.iter().any(|(p, _)| *p == path),
                "dialect {}: route {path} is a path the auth scope serves itself",
                self.dialect.name()
            );
            own.push((path, Target::Routes(routes)));
        }
        // Everything else under the mount, but not the mount with a slash alone (`/api/auth/`),
        // which axum's `nest` leaves to the host, as this leaves it to the app's default service.
        own.push(("", Target::NotFound));
        own.push(("/{auth_actix_unknown_route:.+}", Target::NotFound));
        for (path, target) in own {
            let target = Rc::new(target);
            let state = state.clone();
            cfg.service(web::resource(path).to(move |req: HttpRequest, payload: web::Payload| {
                let (state, target) = (state.clone(), target.clone());
                async move { dispatch(&state, &target, req, payload).await }
            }));
        }
    }

    /// `web::scope(path)` with the API registered ([`configure`](Self::configure)).
    pub fn scope(&self, path: &str) -> actix_web::Scope {
        web::scope(path).configure(|cfg| self.configure(cfg))
    }
}

/// The API of `auth` in the canonical dialect as a configuration function, for
/// `web::scope("/api/auth").configure(auth_actix::routes(auth))`:
/// [`AuthScope::new(auth).configure`](AuthScope::configure).
///
/// ```no_run
/// use actix_web::{web, App, HttpServer};
///
/// # async fn run(auth: auth_core::Auth) -> std::io::Result<()> {
/// HttpServer::new(move || App::new().service(web::scope("/api/auth").configure(auth_actix::routes(auth.clone()))))
///     .bind("127.0.0.1:8080")?
///     .run()
///     .await
/// # }
/// ```
pub fn routes(auth: Auth) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| AuthScope::new(auth).configure(cfg)
}

/// `GET /.well-known/jwks.json` as a resource: the service's public signing keys
/// (`auth_http::keys::jwks_response`, a JWK Set per RFC 7517 §5), with
/// `Cache-Control: public, max-age=<AuthConfig::jwks_max_age>`; other methods get an empty 405
/// with `Allow: GET,HEAD`. [`AuthScope`] serves it under its mount; a host also serves it at its
/// root (the RFC 8615 well-known location) with `App::new().service(jwks_resource(auth))`.
pub fn jwks_resource(auth: Auth) -> actix_web::Resource {
    web::resource(JWKS_PATH).to(move |req: HttpRequest| {
        let auth = auth.clone();
        async move { to_actix(jwks_answer(&auth, &http_method(req.method()))) }
    })
}

fn jwks_answer(auth: &Auth, method: &Method) -> auth_http::HttpResponse {
    if method == Method::GET || method == Method::HEAD {
        jwks_response(auth)
    } else {
        // axum's own answer for a method its route lacks: empty, with `Allow`.
        let mut response = auth_http::empty_response(http::StatusCode::METHOD_NOT_ALLOWED);
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        response
    }
}

fn assert_cookies_fit(auth: &Auth, dialect: &dyn Dialect) {
    let cookies = auth.config().browser.token_transport.uses_cookies();
    assert!(
        !cookies || dialect.supports_cookie_transport(),
        "dialect {} cannot carry tokens in cookies: set the token transport (AUTH_TOKEN_TRANSPORT) to body, or serve \
         the canonical dialect",
        dialect.name()
    );
}

/// What the services of one configured scope share.
struct State {
    auth: Auth,
    dialect: Arc<dyn Dialect>,
    body_limit: usize,
    cors: Option<CorsPolicy>,
}

/// What a resource of the scope serves.
enum Target {
    /// The dialect's routes on one path.
    Routes(PathRoutes),
    Jwks,
    #[cfg(feature = "openapi")]
    OpenApi(Vec<u8>),
    Introspect,
    NotFound,
}

impl Target {
    /// The `Allow` header of the path: its methods, `GET` followed by `HEAD`.
    fn allow(&self) -> Option<HeaderValue> {
        match self {
            Self::Routes(routes) => Some(routes.allow.clone()),
            Self::Jwks => Some(HeaderValue::from_static("GET,HEAD")),
            #[cfg(feature = "openapi")]
            Self::OpenApi(_) => Some(HeaderValue::from_static("GET,HEAD")),
            Self::Introspect => Some(HeaderValue::from_static("POST")),
            Self::NotFound => None,
        }
    }
}

/// The routes of one path, and its `Allow` header for 405.
struct PathRoutes {
    routes: Vec<RouteSpec>,
    allow: HeaderValue,
}

impl PathRoutes {
    /// The route for `method`: its own, or for `HEAD` the `GET` route (as axum does).
    fn find(&self, method: &Method) -> Option<&RouteSpec> {
        self.routes.iter().find(|r| r.method == method).or_else(|| {
            (method == Method::HEAD).then(|| self.routes.iter().find(|r| r.method == Method::GET)).flatten()
        })
    }
}

/// One route: its operation and the checks in front of it.
struct RouteSpec {
    method: Method,
    operation: Operation,
    /// The access-token check, if any.
    mode: Option<Access>,
    /// Whether the per-IP "every other route" rate rule applies.
    limit_other: bool,
    schemes: &'static [&'static str],
}

/// The dialect's routes grouped by path, with what `auth_axum::AuthRouter` puts in front of each.
fn route_table(auth: &Auth, dialect: &dyn Dialect) -> Vec<(&'static str, PathRoutes)> {
    let cookies = auth.config().browser.token_transport.uses_cookies();
    let mut paths: BTreeMap<&'static str, Vec<RouteSpec>> = BTreeMap::new();
    for route in dialect.routes() {
        let operation = route.operation;
        // With cookies, logout also works with the refresh-token cookie alone.
        let cookie_logout = cookies && operation == Operation::Logout;
        let mode = if operation.requires_auth() && !cookie_logout {
            Some(Access::Required(operation.required_role().map(auth_core::Role::new)))
        } else if operation.accepts_auth() || cookie_logout {
            Some(Access::Optional)
        } else {
            None
        };
        let routes = paths.entry(route.path).or_default();
        assert!(
            !routes.iter().any(|r| r.method == route.method),
            "dialect {}: two routes {} {}",
            dialect.name(),
            route.method,
            route.path
        );
        routes.push(RouteSpec {
            method: route.method.clone(),
            operation,
            mode,
            limit_other: !operation.has_own_rate_rule(),
            schemes: dialect.auth_schemes(),
        });
    }
    paths
        .into_iter()
        .map(|(path, routes)| {
            // axum's `Allow`: the methods in route order, `GET` followed by `HEAD`.
            let allow: Vec<&str> = routes
                .iter()
                .flat_map(|r| if r.method == Method::GET { vec!["GET", "HEAD"] } else { vec![r.method.as_str()] })
                .collect();
            let allow = HeaderValue::from_str(&allow.join(",")).unwrap_or_else(|_| HeaderValue::from_static(""));
            (path, PathRoutes { routes, allow })
        })
        .collect()
}

/// One request to the scope: CORS preflight, the target's answer with the scope's headers, CORS.
async fn dispatch(state: &State, target: &Target, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let method = http_method(req.method());
    let headers = http_headers(req.headers());
    if let (Some(cors), true) = (&state.cors, method == Method::OPTIONS) {
        // Answered before rate limits and authentication; on a path of the API with the `Allow`
        // header of its methods, as axum's method router adds to what its fallback answers.
        let mut response = cors.preflight(&headers);
        if let Some(allow) = target.allow() {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return cors_applied(to_actix(response));
    }
    let mut response = match target {
        // Outside the `no-store` headers: the key set is public and meant to be cached.
        Target::Jwks => jwks_answer(&state.auth, &method),
        Target::Routes(routes) => match routes.find(&method) {
            Some(route) => state.layered(serve(state, route, &req, payload, &method, &headers).await),
            None => with_allow(state.layered(canonical_error(ErrorBody::method_not_allowed())), target),
        },
        #[cfg(feature = "openapi")]
        Target::OpenApi(json) => {
            if method == Method::GET || method == Method::HEAD {
                let mut response = http::Response::new(json.clone());
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                state.layered(response)
            } else {
                with_allow(state.layered(canonical_error(ErrorBody::method_not_allowed())), target)
            }
        }
        Target::Introspect => {
            if method == Method::POST {
                state.layered(introspect(state, &req, payload, &headers).await)
            } else {
                with_allow(state.layered(canonical_error(ErrorBody::method_not_allowed())), target)
            }
        }
        Target::NotFound => state.layered(canonical_error(ErrorBody::route_not_found())),
    };
    match &state.cors {
        Some(cors) => {
            cors.apply(&headers, response.headers_mut());
            cors_applied(to_actix(response))
        }
        None => to_actix(response),
    }
}

fn cors_applied(mut response: HttpResponse) -> HttpResponse {
    response.extensions_mut().insert(CorsApplied);
    response
}

impl State {
    /// `response` as every answer of the scope but the key set leaves: an error re-rendered by
    /// the dialect, with `Cache-Control: no-store` and `Pragma: no-cache`.
    fn layered(&self, response: auth_http::HttpResponse) -> auth_http::HttpResponse {
        let mut response = rerender(&*self.dialect, response);
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}

/// `response` with the `Allow` header of `target` unless it has one (a 405).
fn with_allow(mut response: auth_http::HttpResponse, target: &Target) -> auth_http::HttpResponse {
    if let (false, Some(allow)) = (response.headers().contains_key(header::ALLOW), target.allow()) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// `error` in the canonical envelope, carrying its [`ErrorBody`] for the dialect to re-render.
fn canonical_error(error: ErrorBody) -> auth_http::HttpResponse {
    error_response(&Canonical, error)
}

fn auth_error(err: &AuthError) -> auth_http::HttpResponse {
    canonical_error(ErrorBody::from_auth_error(err))
}

/// One request of a dialect route: the "every other route" rate limit, the access-token check,
/// the body, then `auth_http::handle` with the client, the path parameters and the claims.
async fn serve(
    state: &State,
    route: &RouteSpec,
    req: &HttpRequest,
    payload: web::Payload,
    method: &Method,
    headers: &http::HeaderMap,
) -> auth_http::HttpResponse {
    let ctx = request_context(state.auth.config(), req.peer_addr().map(|a| a.ip()), headers);
    let checks = async {
        // The rate limit first: it runs before authentication.
        if route.limit_other {
            state.auth.limit_other_request(&ctx).await?;
        }
        match &route.mode {
            Some(mode) => authorize(&state.auth, mode, route.schemes, method, headers).await,
            None => Ok(None),
        }
    };
    let claims = match checks.await {
        Ok(claims) => claims,
        Err(err) => return auth_error(&err),
    };
    let body = match read_body(payload, headers, state.body_limit).await {
        Ok(body) => body,
        Err(err) => return canonical_error(err),
    };
    let path_params = path_params(req);
    let request = RequestParts { headers, query: req.uri().query(), body: &body, path_params: &path_params };
    handle(&state.auth, &*state.dialect, route.operation, &request, &ctx, claims.as_deref()).await
}

/// `POST /introspect` (RFC 7662): its own request and answer formats, whatever the dialect;
/// rate-limited inside (failed client authentication only).
async fn introspect(
    state: &State,
    req: &HttpRequest,
    payload: web::Payload,
    headers: &http::HeaderMap,
) -> auth_http::HttpResponse {
    let ctx = request_context(state.auth.config(), req.peer_addr().map(|a| a.ip()), headers);
    let body = match read_body(payload, headers, state.body_limit).await {
        Ok(body) => body,
        Err(err) => return canonical_error(err),
    };
    introspection_response(&state.auth, &ctx, headers, &body).await
}

/// The path parameters, percent-decoded; none when one is not UTF-8 (no id of ours: the dialect
/// answers as for a missing one, as with axum).
fn path_params(req: &HttpRequest) -> Vec<(String, String)> {
    let mut params = Vec::new();
    for (name, value) in req.match_info().iter() {
        match percent_decode(value) {
            Some(value) => params.push((name.to_owned(), value)),
            None => return Vec::new(),
        }
    }
    params
}

/// The body, or 413 `payload_too_large` past `limit` (at once when `Content-Length` says so),
/// 400 `invalid_request` when it cannot be read.
async fn read_body(mut payload: web::Payload, headers: &http::HeaderMap, limit: usize) -> Result<Vec<u8>, ErrorBody> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ErrorBody::payload_too_large());
    }
    let mut body = Vec::with_capacity(declared.map_or(0, |length| length as usize));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ErrorBody::from_auth_error(&AuthError::invalid_field("body", "could not be read")))?;
        if body.len() + chunk.len() > limit {
            return Err(ErrorBody::payload_too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
