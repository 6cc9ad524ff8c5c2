//! The HTTP API router: [`AuthRouter`] and [`auth_router`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth_core::Auth;
use auth_http::keys::{introspection_response, jwks_response, INTROSPECTION_PATH, JWKS_PATH};
use auth_http::{
    handle, request_context, AllowedOrigins, Canonical, Dialect, Operation, RequestParts, CORS_ALLOWED_METHODS,
    CORS_EXPOSED_HEADERS, CORS_MAX_AGE_SECONDS, CORS_REQUEST_HEADERS,
};
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef, FromRequestParts, RawPathParams, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::{dialect_errors, to_axum, ApiError};
use crate::extract::{read_body, AuthClaims, ClientContext};
use crate::middleware::{OptionalAuth, RequireAuth};

/// Default largest request body: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Builds the router of the HTTP API, to be nested by the host, usually at `/api/auth`: the
/// routes of a [`Dialect`] (default [`Canonical`], `docs/API.md`), each running its operation
/// through `auth_http::handle`.
///
/// Unknown routes answer 404 `not_found` and wrong methods 405 `method_not_allowed`; every error
/// (bad JSON, 413, 415, a refused access token, a rate limit) is rendered by the dialect. Every
/// response, success or error, carries `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749
/// §5.1): bodies hold tokens and account data that no browser or shared cache may keep. Routes
/// whose [`Operation::requires_auth`] are behind [`RequireAuth`]; routes without a rate rule of
/// their own share the per-IP "every other route" rule, applied before authentication. Serve
/// the app with `into_make_service_with_connect_info::<SocketAddr>()` so sessions record the
/// client IP.
///
/// Whatever the dialect, `GET /.well-known/jwks.json` serves the public signing keys
/// ([`jwks_router`]) and, with `AuthConfig::introspection`, `POST /introspect` answers RFC 7662
/// token introspection (`auth_http::keys`).
///
/// With feature `openapi` and the canonical dialect, `GET /openapi.json` serves the API's
/// OpenAPI 3.1 document (`auth_http::openapi`), its server URL being
/// `AuthConfig::browser.cookie_path` (the mount, default `/api/auth`).
///
/// Browser settings come from `AuthConfig::browser`: with `allowed_origins` the router answers
/// CORS for them ([`cors_layer`]); with cookie transport the token routes set and read the
/// `HttpOnly` token cookies and check the origin of cookie-authenticated requests
/// (`auth_http::browser`), and `/logout` also takes the refresh-token cookie alone. Nest the
/// router at `AuthConfig::browser.cookie_path` (default `/api/auth`), the refresh cookie's
/// `Path`.
///
/// ```
/// use auth_axum::AuthRouter;
/// use axum::Router;
///
/// fn app(auth: auth_core::Auth) -> Router {
///     Router::new().nest("/api/auth", AuthRouter::new(auth).body_limit(32 * 1024).build())
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthRouter {
    auth: Auth,
    body_limit: usize,
    dialect: Arc<dyn Dialect>,
}

/// The CORS policy of the API for `origins` (`tower-http`'s [`CorsLayer`]): those exact origins
/// only, with credentials (cookies, `Authorization`) allowed; the methods of the API; the request
/// headers it reads ([`CORS_REQUEST_HEADERS`]: `Authorization` whatever the dialect's scheme,
/// `Content-Type`, `X-MFA-Code`); the headers scripts may read ([`CORS_EXPOSED_HEADERS`]);
/// preflights cached [`CORS_MAX_AGE_SECONDS`]. An origin outside the list gets no
/// `Access-Control-Allow-Origin`, so the browser keeps the answer from its script. With an empty
/// list the layer allows nothing cross-origin.
///
/// Put it outermost, once: [`AuthRouter`] does for the auth routes when
/// `AuthConfig::browser.allowed_origins` is not empty; a host that serves its own routes to the
/// same origins wraps its whole app instead.
///
/// ```
/// use auth_http::AllowedOrigins;
///
/// let origins = AllowedOrigins::parse("https://app.example.com").unwrap();
/// let app: axum::Router = axum::Router::new().layer(auth_axum::cors_layer(&origins));
/// ```
pub fn cors_layer(origins: &AllowedOrigins) -> CorsLayer {
    let list: Vec<HeaderValue> = origins.as_slice().iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let names = |names: &[&'static str]| names.iter().map(|n| HeaderName::from_static(n)).collect::<Vec<_>>();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_credentials(true)
        .allow_methods(CORS_ALLOWED_METHODS.to_vec())
        .allow_headers(names(CORS_REQUEST_HEADERS))
        .expose_headers(names(CORS_EXPOSED_HEADERS))
        .max_age(Duration::from_secs(CORS_MAX_AGE_SECONDS))
}

impl AuthRouter {
    /// A router serving `auth` in the canonical dialect, with the default 64 KiB body limit.
    pub fn new(auth: Auth) -> Self {
        Self { auth, body_limit: DEFAULT_BODY_LIMIT, dialect: Arc::new(Canonical) }
    }

    /// Largest accepted request body in bytes; larger ones get 413 `payload_too_large`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The wire contract served (default [`Canonical`]): its routes, request shapes, response
    /// bodies and error envelope. The flows and rules behind it are the same.
    pub fn dialect(mut self, dialect: Arc<dyn Dialect>) -> Self {
        self.dialect = dialect;
        self
    }

    /// The router, for any host state `S`.
    ///
    /// # Panics
    /// If the dialect has a route whose method axum cannot route (not one of the standard
    /// methods), or two routes with one method and path: a programming error, found at startup.
    /// If the service's token transport uses cookies and the dialect cannot carry them
    /// ([`Dialect::supports_cookie_transport`]).
    pub fn build<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let cookies = self.auth.config().browser.token_transport.uses_cookies();
        assert!(
            !cookies || self.dialect.supports_cookie_transport(),
            "dialect {} cannot carry tokens in cookies: set the token transport (AUTH_TOKEN_TRANSPORT) to body, or \
             serve the canonical dialect",
            self.dialect.name()
        );
        let state = RouterState { auth: self.auth.clone(), dialect: self.dialect.clone() };
        let mut paths: BTreeMap<&'static str, MethodRouter<RouterState>> = BTreeMap::new();
        for route in self.dialect.routes() {
            let operation = route.operation;
            let filter = MethodFilter::try_from(route.method.clone()).unwrap_or_else(|err| {
                panic!("dialect {}: route {} {}: {err}", self.dialect.name(), route.method, route.path)
            });
            let mut method_router =
                on(filter, move |State(state): State<RouterState>, request: Request| serve(state, operation, request));
            // With cookies, logout also works with the refresh-token cookie alone.
            let cookie_logout = cookies && operation == Operation::Logout;
            if operation.requires_auth() && !cookie_logout {
                let mut require = RequireAuth::new(self.auth.clone()).schemes(self.dialect.auth_schemes());
                if let Some(role) = operation.required_role() {
                    require = require.with_role(role);
                }
                method_router = method_router.route_layer(require);
            } else if operation.accepts_auth() || cookie_logout {
                method_router = method_router
                    .route_layer(OptionalAuth::new(self.auth.clone()).schemes(self.dialect.auth_schemes()));
            }
            if !operation.has_own_rate_rule() {
                // Outside the access-token check: it runs first.
                method_router =
                    method_router.route_layer(middleware::from_fn_with_state(self.auth.clone(), limit_other_routes));
            }
            let merged = match paths.remove(route.path) {
                Some(existing) => existing.merge(method_router),
                None => method_router,
            };
            paths.insert(route.path, merged);
        }
        let mut router = Router::new();
        for (path, method_router) in paths {
            router = router.route(path, method_router);
        }
        #[cfg(feature = "openapi")]
        if self.dialect.name() == Canonical.name() {
            // Built once; the document describes the canonical dialect only.
            let json = axum::body::Bytes::from(auth_http::openapi::canonical_openapi_json(
                &self.auth.config().browser.cookie_path,
            ));
            let json_type = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
            router = router.route(
                "/openapi.json",
                axum::routing::get(move || {
                    let json = json.clone();
                    async move { (json_type.clone(), json) }
                }),
            );
        }
        if self.auth.config().introspection.is_some() {
            // RFC 7662: its own request and answer formats, whatever the dialect.
            // Rate-limited inside: failed client authentication only.
            let introspect = axum::routing::post(|State(state): State<RouterState>, request: Request| async move {
                let (parts, body) = request.into_parts();
                let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
                let ctx = request_context(state.auth.config(), peer, &parts.headers);
                match read_body(Request::from_parts(parts.clone(), body), &()).await {
                    Ok(body) => to_axum(introspection_response(&state.auth, &ctx, &parts.headers, &body).await),
                    Err(err) => err.into_response(),
                }
            });
            router = router.route(INTROSPECTION_PATH, introspect);
        }
        let dialect = self.dialect;
        let router = router
            .fallback(|| async { ApiError::route_not_found() })
            .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
            .layer(DefaultBodyLimit::max(self.body_limit))
            // Every error of the router, its layers and extractors, in the dialect's envelope.
            .layer(dialect_errors(dialect))
            // Outermost, so that rejections, rate-limit answers and fallbacks carry them too.
            .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .layer(SetResponseHeaderLayer::overriding(header::PRAGMA, HeaderValue::from_static("no-cache")))
            .with_state(state);
        // Outside the `no-store` layers: the key set is public and meant to be cached.
        let router = router.merge(jwks_router(self.auth.clone()));
        let origins = &self.auth.config().browser.allowed_origins;
        if origins.is_empty() {
            router
        } else {
            // Outermost: a preflight is answered before routing, rate limits and authentication.
            router.layer(cors_layer(origins))
        }
    }
}

/// `GET /.well-known/jwks.json`: the service's public signing keys (`auth_http::keys`), with
/// `Cache-Control: public, max-age=<AuthConfig::jwks_max_age>`. [`AuthRouter`] serves it under
/// its mount; a host also serves it at its root (the RFC 8615 well-known location) with
/// `Router::new().merge(jwks_router(auth))`.
pub fn jwks_router<S: Clone + Send + Sync + 'static>(auth: Auth) -> Router<S> {
    Router::new().route(JWKS_PATH, axum::routing::get(move || std::future::ready(to_axum(jwks_response(&auth)))))
}

/// [`AuthRouter::new(auth).build()`](AuthRouter::build).
pub fn auth_router<S: Clone + Send + Sync + 'static>(auth: Auth) -> Router<S> {
    AuthRouter::new(auth).build()
}

#[derive(Clone)]
struct RouterState {
    auth: Auth,
    dialect: Arc<dyn Dialect>,
}

impl FromRef<RouterState> for Auth {
    fn from_ref(state: &RouterState) -> Self {
        state.auth.clone()
    }
}

async fn limit_other_routes(
    State(auth): State<Auth>,
    ClientContext(ctx): ClientContext,
    request: Request,
    next: Next,
) -> Response {
    match auth.limit_other_request(&ctx).await {
        Ok(()) => next.run(request).await,
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// One request of `operation`: the client, the path parameters, the claims put there by
/// [`RequireAuth`] and the body, handed to `auth_http::handle`.
async fn serve(state: RouterState, operation: Operation, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ctx = request_context(state.auth.config(), peer, &parts.headers);
    let claims = parts.extensions.get::<AuthClaims>().map(|c| c.0.clone());
    // A parameter that is not UTF-8 is no id of ours: the dialect answers as for a missing one.
    let path_params: Vec<(String, String)> = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => params.iter().map(|(name, value)| (name.to_owned(), value.to_owned())).collect(),
        Err(_) => Vec::new(),
    };
    let query = parts.uri.query().map(str::to_owned);
    let headers = std::mem::take(&mut parts.headers);
    let body = match read_body(Request::from_parts(parts, body), &()).await {
        Ok(body) => body,
        Err(err) => return err.into_response(),
    };
    let request = RequestParts { headers: &headers, query: query.as_deref(), body: &body, path_params: &path_params };
    to_axum(handle(&state.auth, &*state.dialect, operation, &request, &ctx, claims.as_deref()).await)
}
