//! Error → response: [`ApiError`], the [`ErrorBody`] every error renders from, and
//! [`render_errors_with`] to swap the JSON envelope.

use std::error::Error as _;
use std::sync::Arc;

use auth_core::AuthError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// What an error response says, before it is rendered: status, stable code, human message and
/// optional details. Every error of the router, the layers and the extractors is built as an
/// `ErrorBody`, and the rendered response carries it in its extensions so that
/// [`render_errors_with`] can re-render it.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBody {
    /// HTTP status.
    pub status: StatusCode,
    /// The API's stable machine code, e.g. `invalid_credentials`.
    pub code: &'static str,
    /// A human sentence without secrets.
    pub message: String,
    /// `fields`, `reasons` or `retry_after_seconds`, when the error has them.
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header (429).
    pub retry_after_seconds: Option<u64>,
}

impl ErrorBody {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after_seconds: None }
    }

    /// The API's envelope: `{"error":{"code","message","details"?}}`, with `Retry-After` on 429
    /// and `WWW-Authenticate: Bearer` (RFC 6750 §3) on 401 access-token errors.
    #[must_use]
    pub fn to_default_response(&self) -> Response {
        let mut error = Map::new();
        error.insert("code".into(), Value::from(self.code));
        error.insert("message".into(), Value::from(self.message.clone()));
        if let Some(details) = &self.details {
            error.insert("details".into(), details.clone());
        }
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        self.add_headers(&mut response);
        response
    }

    /// Adds `Retry-After` and `WWW-Authenticate` where they apply; for custom renderers.
    pub fn add_headers(&self, response: &mut Response) {
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        let www_authenticate = match self.code {
            "unauthorized" => Some("Bearer"),
            "token_expired" | "session_revoked" => Some("Bearer error=\"invalid_token\""),
            _ => None,
        };
        if let Some(value) = www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
    }
}

/// The HTTP status of an [`AuthError`], per the API's error table.
#[must_use]
pub fn status_of(err: &AuthError) -> StatusCode {
    match err {
        AuthError::InvalidRequest { .. }
        | AuthError::WeakPassword { .. }
        | AuthError::CaptchaRequired
        | AuthError::CaptchaInvalid
        | AuthError::InvalidCode => StatusCode::BAD_REQUEST,
        AuthError::InvalidCredentials
        | AuthError::Unauthorized
        | AuthError::TokenExpired
        | AuthError::SessionRevoked
        | AuthError::InvalidRefreshToken
        | AuthError::RefreshTokenReused => StatusCode::UNAUTHORIZED,
        AuthError::CurrentPasswordInvalid | AuthError::AccountDisabled | AuthError::Forbidden => StatusCode::FORBIDDEN,
        AuthError::NotFound => StatusCode::NOT_FOUND,
        AuthError::UsernameTaken | AuthError::EmailTaken => StatusCode::CONFLICT,
        AuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AuthError::CaptchaUnavailable(_) | AuthError::MailUnavailable(_) => StatusCode::BAD_GATEWAY,
        AuthError::StoreUnavailable(_) | AuthError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<&AuthError> for ErrorBody {
    fn from(err: &AuthError) -> Self {
        let mut body = ErrorBody::new(status_of(err), err.code(), err.to_string());
        match err {
            AuthError::InvalidRequest { fields } => {
                let fields: Map<String, Value> =
                    fields.iter().map(|f| (f.field.clone(), Value::from(f.message.clone()))).collect();
                body.details = Some(json!({ "fields": fields }));
            }
            AuthError::WeakPassword { reasons } => body.details = Some(json!({ "reasons": reasons })),
            AuthError::RateLimited { retry_after_seconds } | AuthError::Overloaded { retry_after_seconds } => {
                body.details = Some(json!({ "retry_after_seconds": retry_after_seconds }));
                body.retry_after_seconds = Some(*retry_after_seconds);
            }
            _ => {}
        }
        body
    }
}

/// An error answer of the HTTP API. Handlers return `Result<_, ApiError>`; `?` converts an
/// [`AuthError`]. Server-side failures (5xx) are logged here with their source chain; the
/// client only gets the stable code and a generic sentence.
#[derive(Debug)]
pub struct ApiError(pub ErrorBody);

impl ApiError {
    /// 413 `payload_too_large`.
    #[must_use]
    pub fn payload_too_large() -> Self {
        Self(ErrorBody::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large"))
    }

    /// 415 `unsupported_media_type`.
    #[must_use]
    pub fn unsupported_media_type() -> Self {
        Self(ErrorBody::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON (Content-Type: application/json)",
        ))
    }

    /// 404 `not_found` for an unknown route.
    #[must_use]
    pub fn route_not_found() -> Self {
        Self(ErrorBody::new(StatusCode::NOT_FOUND, "not_found", "no such route"))
    }

    /// 405 `method_not_allowed`.
    #[must_use]
    pub fn method_not_allowed() -> Self {
        Self(ErrorBody::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this method is not allowed here"))
    }

    /// 500 `internal` for a server misconfiguration (logged with `what`).
    #[must_use]
    pub fn misconfigured(what: &str) -> Self {
        tracing::error!("auth-axum misconfiguration: {what}");
        Self(ErrorBody::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error"))
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        if err.is_server_error() {
            let mut chain = String::new();
            let mut source = err.source();
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(code = err.code(), "request failed: {err}{chain}");
        }
        Self(ErrorBody::from(&err))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.0.to_default_response();
        response.extensions_mut().insert(self.0);
        response
    }
}

/// A function that renders an [`ErrorBody`] as a response.
pub type ErrorRenderer = Arc<dyn Fn(&ErrorBody) -> Response + Send + Sync>;

/// A layer that re-renders every error response of this library (router, [`RequireAuth`],
/// extractors) with `renderer`, for hosts whose clients expect another envelope, such as
/// `{"code":401,"message":"…"}` or `{"success":false,"error":{…}}`. Apply it to the whole app.
///
/// ```
/// use std::sync::Arc;
/// use auth_axum::{render_errors_with, ErrorBody};
/// use axum::{response::IntoResponse, Json, Router};
///
/// let layer = render_errors_with(Arc::new(|e: &ErrorBody| {
///     let body = serde_json::json!({"success": false, "error": {"code": e.code, "message": e.message}});
///     let mut response = (e.status, Json(body)).into_response();
///     e.add_headers(&mut response);
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
            rendered.extensions_mut().insert(body);
            rendered
        }
        None => response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_hasher_queue_is_503_overloaded_with_retry_after() {
        let response = ApiError::from(AuthError::Overloaded { retry_after_seconds: 1 }).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = response.extensions().get::<ErrorBody>().unwrap();
        assert_eq!(body.code, "overloaded");
        assert_eq!(body.details, Some(json!({"retry_after_seconds": 1})));
    }
}
