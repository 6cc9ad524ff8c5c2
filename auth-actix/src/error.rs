//! Error → response: [`ApiError`] (an [`ErrorBody`] as an actix-web error) and the
//! [`RenderErrors`] middleware ([`dialect_errors`], [`render_errors_with`]) that swaps the JSON
//! envelope.

use std::fmt;
use std::future::{ready, Ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header as ax_header;
use actix_web::{HttpResponse, ResponseError};
use auth_core::AuthError;
use auth_http::{error_response, Canonical, Dialect, ErrorBody};
use futures_util::future::LocalBoxFuture;

use crate::convert::to_actix;

/// An error answer of the HTTP API, as an actix-web error: extractors and host handlers return
/// `Result<_, ApiError>`, and `?` converts an [`AuthError`] (logging 5xx with their source chain:
/// the client only gets the stable code and a generic sentence).
///
/// It renders in the canonical envelope (`{"error":{"code","message","details"?}}`, `docs/API.md`)
/// with the headers the error implies (`Retry-After`, `WWW-Authenticate` per RFC 6750 §3), and
/// carries its [`ErrorBody`] in the response extensions, so that [`dialect_errors`] and
/// [`render_errors_with`] can re-render it.
#[derive(Debug)]
pub struct ApiError(pub ErrorBody);

impl ApiError {
    /// 413 `payload_too_large`.
    #[must_use]
    pub fn payload_too_large() -> Self {
        Self(ErrorBody::payload_too_large())
    }

    /// 415 `unsupported_media_type`.
    #[must_use]
    pub fn unsupported_media_type() -> Self {
        Self(ErrorBody::unsupported_media_type())
    }

    /// 404 `not_found` for an unknown route.
    #[must_use]
    pub fn route_not_found() -> Self {
        Self(ErrorBody::route_not_found())
    }

    /// 405 `method_not_allowed`.
    #[must_use]
    pub fn method_not_allowed() -> Self {
        Self(ErrorBody::method_not_allowed())
    }

    /// 500 `internal` for a server misconfiguration (logged with `what`).
    #[must_use]
    pub fn misconfigured(what: &str) -> Self {
        Self(ErrorBody::misconfigured(what))
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        Self(ErrorBody::from_auth_error(&err))
    }
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        Self(body)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.code, self.0.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::from_u16(self.0.status.as_u16())
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        to_actix(error_response(&Canonical, self.0.clone()))
    }
}

/// `response` re-rendered by `dialect` if it is an error of this library (it carries an
/// [`ErrorBody`]), keeping the headers of the original that the new one does not set; other
/// responses pass unchanged (`auth_http::rerender_error`).
pub(crate) fn rerender(dialect: &dyn Dialect, response: auth_http::HttpResponse) -> auth_http::HttpResponse {
    auth_http::rerender_error(dialect, response).unwrap_or_else(|unchanged| unchanged)
}

/// `auth_http::keep_missing_headers` on actix-web's (`http` 0.2) header maps: the same rule.
fn keep_actix_headers(original: &ax_header::HeaderMap, rendered: &mut ax_header::HeaderMap) {
    let missing: Vec<_> = original.keys().filter(|name| !rendered.contains_key(*name)).cloned().collect();
    for name in missing {
        if name == ax_header::CONTENT_LENGTH {
            continue;
        }
        for value in original.get_all(&name) {
            rendered.append(name.clone(), value.clone());
        }
    }
}

/// A function that renders an [`ErrorBody`] as a response.
pub type ErrorRenderer = Arc<dyn Fn(&ErrorBody) -> HttpResponse + Send + Sync>;

#[derive(Clone)]
enum Renderer {
    Dialect(Arc<dyn Dialect>),
    Custom(ErrorRenderer),
}

impl Renderer {
    fn render(&self, body: &ErrorBody, original: &ax_header::HeaderMap) -> HttpResponse {
        let mut rendered = match self {
            Self::Dialect(dialect) => to_actix(error_response(&**dialect, body.clone())),
            Self::Custom(renderer) => {
                let mut rendered = renderer(body);
                rendered.extensions_mut().insert(body.clone());
                rendered
            }
        };
        keep_actix_headers(original, rendered.headers_mut());
        rendered
    }
}

/// Middleware that re-renders every error response of this library (the scope, [`RequireAuth`],
/// [`OptionalAuth`], the extractors, [`ApiError`]s of host handlers) — any response that carries
/// an [`ErrorBody`] — in another envelope, keeping the headers the original had and the new one
/// does not set. Other responses pass unchanged. Build it with [`dialect_errors`] or
/// [`render_errors_with`].
///
/// [`RequireAuth`]: crate::RequireAuth
/// [`OptionalAuth`]: crate::OptionalAuth
#[derive(Clone)]
#[must_use]
pub struct RenderErrors {
    renderer: Renderer,
}

impl fmt::Debug for RenderErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.renderer {
            Renderer::Dialect(dialect) => f.debug_struct("RenderErrors").field("dialect", &dialect.name()).finish(),
            Renderer::Custom(_) => f.debug_struct("RenderErrors").field("renderer", &"custom").finish(),
        }
    }
}

/// Middleware rendering every error response of this library in `dialect`'s envelope
/// ([`Dialect::render_error`]). [`AuthScope`](crate::AuthScope) does this for its own routes;
/// wrap the host's app (or the resources behind [`RequireAuth`](crate::RequireAuth)) with it so
/// that its protected routes answer 401 and 403 in the same dialect.
///
/// ```
/// use std::sync::Arc;
/// use actix_web::{web, App};
/// use auth_actix::{dialect_errors, RequireAuth};
/// use auth_http::dialects::Plain;
///
/// fn app(auth: auth_core::Auth) -> App<
///     impl actix_web::dev::ServiceFactory<
///         actix_web::dev::ServiceRequest,
///         Config = (),
///         Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
///         Error = actix_web::Error,
///         InitError = (),
///     >,
/// > {
///     App::new()
///         .service(web::resource("/api/profile").wrap(RequireAuth::new(auth)).to(|| async { "…" }))
///         .wrap(dialect_errors(Arc::new(Plain)))
/// }
/// ```
pub fn dialect_errors(dialect: Arc<dyn Dialect>) -> RenderErrors {
    RenderErrors { renderer: Renderer::Dialect(dialect) }
}

/// Middleware re-rendering every error response of this library with `renderer`, for hosts whose
/// clients expect another envelope, such as `{"code":401,"message":"…"}` or
/// `{"success":false,"error":{…}}`. The rendered response carries the [`ErrorBody`] too. Wrap the
/// whole app. To change successes too, give the scope a [`Dialect`] instead
/// ([`AuthScope::dialect`](crate::AuthScope::dialect)).
///
/// ```
/// use std::sync::Arc;
/// use actix_web::{App, HttpResponse};
/// use auth_actix::{render_errors_with, ErrorBody};
///
/// let middleware = render_errors_with(Arc::new(|e: &ErrorBody| {
///     let status = actix_web::http::StatusCode::from_u16(e.status.as_u16()).unwrap();
///     HttpResponse::build(status)
///         .json(serde_json::json!({"success": false, "error": {"code": e.code, "message": e.message}}))
/// }));
/// let app = App::new().wrap(middleware);
/// # let _ = app;
/// ```
pub fn render_errors_with(renderer: ErrorRenderer) -> RenderErrors {
    RenderErrors { renderer: Renderer::Custom(renderer) }
}

impl<S, B> Transform<S, ServiceRequest> for RenderErrors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RenderErrorsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RenderErrorsMiddleware { service: Rc::new(service), renderer: self.renderer.clone() }))
    }
}

/// The service of [`RenderErrors`].
pub struct RenderErrorsMiddleware<S> {
    service: Rc<S>,
    renderer: Renderer,
}

impl<S> fmt::Debug for RenderErrorsMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderErrorsMiddleware").finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for RenderErrorsMiddleware<S>
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
        let renderer = self.renderer.clone();
        Box::pin(async move {
            let response = service.call(req).await?;
            let body = response.response().extensions().get::<ErrorBody>().cloned();
            Ok(match body {
                Some(body) => {
                    let rendered = renderer.render(&body, response.headers());
                    response.into_response(rendered).map_into_right_body()
                }
                None => response.map_into_left_body(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_auth_error_renders_in_the_canonical_envelope_with_its_body_attached() {
        let response = ApiError::from(AuthError::Overloaded { retry_after_seconds: 1 }).error_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers().get(ax_header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(response.extensions().get::<ErrorBody>().unwrap().code, "overloaded");
    }

    #[actix_web::test]
    async fn re_rendering_changes_the_envelope_and_keeps_the_headers_the_original_had() {
        use actix_web::{test, web, App};
        let renderer: ErrorRenderer = Arc::new(|e: &ErrorBody| {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(e.status.as_u16()).unwrap())
                .content_type("text/plain; charset=utf-8")
                .body(e.code)
        });
        let app = test::init_service(
            App::new()
                .route(
                    "/",
                    web::get().to(|| async {
                        let mut response = ApiError::route_not_found().error_response();
                        response
                            .headers_mut()
                            .insert(ax_header::CACHE_CONTROL, ax_header::HeaderValue::from_static("no-store"));
                        response
                    }),
                )
                .wrap(render_errors_with(renderer)),
        )
        .await;
        let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers().get(ax_header::CACHE_CONTROL).unwrap(), "no-store");
        assert_eq!(
            response.headers().get(ax_header::CONTENT_TYPE).unwrap(),
            "text/plain; charset=utf-8",
            "the renderer's own"
        );
        assert_eq!(response.response().extensions().get::<ErrorBody>().unwrap().code, "not_found");
        assert_eq!(&test::read_body(response).await[..], b"not_found");
    }
}
