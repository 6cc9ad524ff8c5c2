//! Error → response: [`ApiError`] (an [`ErrorBody`] as an axum response) and
//! [`render_errors_with`] to swap the JSON envelope.

use std::sync::Arc;

use auth_core::AuthError;
use auth_http::{error_response, Canonical, Dialect, ErrorBody, HttpResponse};
use axum::body::Body;
use axum::response::{IntoResponse, Response};

/// An error answer of the HTTP API. Handlers return `Result<_, ApiError>`; `?` converts an
/// [`AuthError`] (logging 5xx with their source chain: the client only gets the stable code and
/// a generic sentence). It renders in the canonical envelope and carries its [`ErrorBody`] in
/// the response extensions, so that the router's dialect and [`render_errors_with`] can
/// re-render it.
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        to_axum(error_response(&Canonical, self.0))
    }
}

/// An `auth-http` response as an axum one.
pub(crate) fn to_axum(response: HttpResponse) -> Response {
    response.map(Body::from)
}

/// `response` re-rendered by `dialect` if it is an error of this library (it carries an
/// [`ErrorBody`]); other responses pass unchanged (`auth_http::rerender_error`).
pub(crate) fn rerender(dialect: &dyn Dialect, response: Response) -> Response {
    auth_http::rerender_error(dialect, response).map_or_else(|unchanged| unchanged, to_axum)
}

/// A layer that renders every error response of this library (the router, [`RequireAuth`],
/// [`OptionalAuth`], the extractors) in `dialect`'s envelope. The router does this for its own
/// routes; put this layer on the host's app so that its protected routes answer 401 and 403 in
/// the same dialect.
///
/// ```
/// use std::sync::Arc;
/// use auth_axum::{dialect_errors, RequireAuth};
/// use auth_http::dialects::Plain;
/// use axum::{routing::get, Router};
///
/// fn app(auth: auth_core::Auth) -> Router {
///     Router::new()
///         .route("/api/profile", get(|| async { "…" }))
///         .route_layer(RequireAuth::new(auth))
///         .layer(dialect_errors(Arc::new(Plain)))
/// }
/// ```
///
/// [`RequireAuth`]: crate::RequireAuth
/// [`OptionalAuth`]: crate::OptionalAuth
pub fn dialect_errors(
    dialect: Arc<dyn Dialect>,
) -> tower::util::MapResponseLayer<impl Fn(Response) -> Response + Clone + Send + Sync + 'static> {
    tower::util::MapResponseLayer::new(move |response| rerender(&*dialect, response))
}

/// A function that renders an [`ErrorBody`] as a response.
pub type ErrorRenderer = Arc<dyn Fn(&ErrorBody) -> Response + Send + Sync>;

/// A layer that re-renders every error response of this library (router, [`RequireAuth`],
/// extractors) with `renderer`, for hosts whose clients expect another envelope, such as
/// `{"code":401,"message":"…"}` or `{"success":false,"error":{…}}`. Apply it to the whole app.
/// To change successes too, give the router a [`Dialect`] instead
/// ([`AuthRouter::dialect`](crate::AuthRouter::dialect)).
///
/// ```
/// use std::sync::Arc;
/// use auth_axum::{render_errors_with, ErrorBody};
/// use axum::{response::IntoResponse, Json, Router};
///
/// let layer = render_errors_with(Arc::new(|e: &ErrorBody| {
///     let body = serde_json::json!({"success": false, "error": {"code": e.code, "message": e.message}});
///     let mut response = (e.status, Json(body)).into_response();
///     e.add_headers(response.headers_mut());
///     response
/// }));
/// let app: Router = Router::new().layer(layer);
/// # let _ = app;
/// ```
///
/// [`RequireAuth`]: crate::RequireAuth
pub fn render_errors_with(
    renderer: ErrorRenderer,
) -> tower::util::MapResponseLayer<impl Fn(Response) -> Response + Clone + Send + Sync + 'static> {
    tower::util::MapResponseLayer::new(move |response: Response| match response.extensions().get::<ErrorBody>() {
        Some(body) => {
            let body = body.clone();
            let mut rendered = renderer(&body);
            auth_http::keep_missing_headers(response.headers(), rendered.headers_mut());
            rendered.extensions_mut().insert(body);
            rendered
        }
        None => response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;
    use axum::http::StatusCode;

    #[tokio::test]
    async fn re_rendering_changes_the_envelope_and_keeps_the_headers_layers_added() {
        use axum::http::{header, HeaderValue};
        use tower::{Layer as _, ServiceExt as _};
        let inner = tower::service_fn(|_: axum::extract::Request| async {
            let mut response = ApiError::route_not_found().into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok::<_, std::convert::Infallible>(response)
        });
        let renderer: ErrorRenderer = Arc::new(|e: &ErrorBody| (e.status, e.code).into_response());
        let service = render_errors_with(renderer).layer(inner);
        let response = service.oneshot(axum::extract::Request::new(Body::empty())).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8", "the renderer's own");
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"not_found");
    }

    #[test]
    fn an_auth_error_renders_in_the_canonical_envelope_with_its_body_attached() {
        let response = ApiError::from(AuthError::Overloaded { retry_after_seconds: 1 }).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(response.extensions().get::<ErrorBody>().unwrap().code, "overloaded");
    }
}
