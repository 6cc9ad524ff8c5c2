//! CORS for the API's allowed origins ([`Cors`], [`cors`]): the headers `auth-axum`'s
//! `cors_layer` (tower-http's `CorsLayer`) sends, byte for byte.

use std::fmt;
use std::future::{ready, Ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header as ax_header;
use auth_http::{
    AllowedOrigins, CORS_ALLOWED_METHODS, CORS_EXPOSED_HEADERS, CORS_MAX_AGE_SECONDS, CORS_REQUEST_HEADERS,
};
use futures_util::future::LocalBoxFuture;

use crate::convert::{http_headers, to_actix};

/// The `Vary` value of every answer (tower-http's default: the three request headers a CORS
/// answer depends on).
const VARY: &str = "origin, access-control-request-method, access-control-request-headers";

/// The CORS policy of the API for some origins: what [`Cors`] and
/// [`AuthScope`](crate::AuthScope) apply.
#[derive(Debug, Clone)]
pub(crate) struct CorsPolicy {
    origins: Arc<Vec<Vec<u8>>>,
}

/// Marks a response whose CORS headers are set, so that an outer [`Cors`] leaves it alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CorsApplied;

impl CorsPolicy {
    pub(crate) fn new(origins: &AllowedOrigins) -> Self {
        // Origins that are no header value can never match one (tower-http drops them too).
        let origins = origins
            .as_slice()
            .iter()
            .filter(|o| http::HeaderValue::from_str(o).is_ok())
            .map(|o| o.as_bytes().to_vec())
            .collect();
        Self { origins: Arc::new(origins) }
    }

    /// The request's `Origin` if it is allowed.
    fn allowed<'h>(&self, headers: &'h http::HeaderMap) -> Option<&'h http::HeaderValue> {
        headers.get(http::header::ORIGIN).filter(|o| self.origins.iter().any(|allowed| allowed == o.as_bytes()))
    }

    /// The answer to a preflight (any `OPTIONS` request): 200, empty, with the credentials,
    /// `Vary`, methods, request headers, max age and (for an allowed origin) the origin.
    pub(crate) fn preflight(&self, request: &http::HeaderMap) -> auth_http::HttpResponse {
        use http::header::{self, HeaderValue};
        let mut response = auth_http::empty_response(http::StatusCode::OK);
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        headers.insert(header::VARY, HeaderValue::from_static(VARY));
        // As tower-http writes a list: no spaces.
        let methods: Vec<&str> = CORS_ALLOWED_METHODS.iter().map(http::Method::as_str).collect();
        if let Ok(value) = HeaderValue::from_str(&methods.join(",")) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
        }
        if let Ok(value) = HeaderValue::from_str(&CORS_REQUEST_HEADERS.join(",")) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(CORS_MAX_AGE_SECONDS));
        if let Some(origin) = self.allowed(request) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        response
    }

    /// Adds the CORS headers of a non-preflight answer: `Vary` appended to the response's own,
    /// then the credentials, the exposed headers and (for an allowed origin) the origin, replacing
    /// any the response set.
    pub(crate) fn apply(&self, request: &http::HeaderMap, response: &mut http::HeaderMap) {
        use http::header::{self, HeaderValue};
        response.append(header::VARY, HeaderValue::from_static(VARY));
        response.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        if let Ok(value) = HeaderValue::from_str(&CORS_EXPOSED_HEADERS.join(",")) {
            response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
        }
        if let Some(origin) = self.allowed(request) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
    }

    /// [`apply`](Self::apply) on an actix-web response.
    fn apply_actix(&self, request: &http::HeaderMap, response: &mut ax_header::HeaderMap) {
        let mut added = http::HeaderMap::new();
        self.apply(request, &mut added);
        for name in added.keys() {
            let Ok(ax_name) = ax_header::HeaderName::from_bytes(name.as_str().as_bytes()) else { continue };
            let values: Vec<_> = added
                .get_all(name)
                .iter()
                .filter_map(|v| ax_header::HeaderValue::from_bytes(v.as_bytes()).ok())
                .collect();
            if name != http::header::VARY {
                response.remove(&ax_name);
            }
            for value in values {
                response.append(ax_name.clone(), value);
            }
        }
    }
}

/// The CORS policy of the API for `origins`, as actix-web middleware: those exact origins only
/// (RFC 6454 serializations, compared byte for byte), with credentials (cookies, `Authorization`)
/// allowed; the methods of the API; the request headers it reads (`CORS_REQUEST_HEADERS`:
/// `Authorization` whatever the dialect's scheme, `Content-Type`, `X-MFA-Code`); the headers
/// scripts may read (`CORS_EXPOSED_HEADERS`: `Retry-After`, `WWW-Authenticate`,
/// `Content-Disposition`); preflights cached `CORS_MAX_AGE_SECONDS` (600).
///
/// The answers are those of `auth_axum::cors_layer` (tower-http's `CorsLayer`), header for
/// header: every `OPTIONS` request is a preflight, answered 200 with an empty body before
/// routing; every answer carries `Access-Control-Allow-Credentials: true` and
/// `Vary: origin, access-control-request-method, access-control-request-headers`. An origin
/// outside the list gets no `Access-Control-Allow-Origin`, so the browser keeps the answer from
/// its script. With an empty list nothing is allowed cross-origin.
///
/// [`AuthScope`](crate::AuthScope) applies the same policy to the auth routes when
/// `AuthConfig::browser.allowed_origins` is not empty; a host that serves its own routes to the
/// same origins wraps its whole app, and the scope's answers, which already carry the headers,
/// pass through unchanged.
///
/// ```
/// use auth_http::AllowedOrigins;
///
/// let origins = AllowedOrigins::parse("https://app.example.com").unwrap();
/// let app = actix_web::App::new().wrap(auth_actix::cors(&origins));
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Cors {
    policy: CorsPolicy,
}

/// [`Cors`] for `origins`.
pub fn cors(origins: &AllowedOrigins) -> Cors {
    Cors::new(origins)
}

impl Cors {
    /// The policy for `origins`.
    pub fn new(origins: &AllowedOrigins) -> Self {
        Self { policy: CorsPolicy::new(origins) }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Cors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = CorsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CorsMiddleware { service: Rc::new(service), policy: self.policy.clone() }))
    }
}

/// The service of [`Cors`].
pub struct CorsMiddleware<S> {
    service: Rc<S>,
    policy: CorsPolicy,
}

impl<S> fmt::Debug for CorsMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorsMiddleware").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for CorsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            let headers = http_headers(req.headers());
            if req.method() == actix_web::http::Method::OPTIONS {
                let mut response = to_actix(policy.preflight(&headers));
                response.extensions_mut().insert(CorsApplied);
                return Ok(req.into_response(response).map_into_right_body());
            }
            let mut response = service.call(req).await?;
            if response.response().extensions().get::<CorsApplied>().is_none() {
                policy.apply_actix(&headers, response.headers_mut());
                response.response_mut().extensions_mut().insert(CorsApplied);
            }
            Ok(response.map_into_left_body())
        })
    }
}
