//! Errors as HTTP sees them: [`ErrorBody`] (status, stable code, message, details) built from an
//! [`AuthError`] or by the HTTP layer itself (413, 415, 404, 405), and [`status_of`].

use std::error::Error as _;

use auth_core::AuthError;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use serde_json::{json, Map, Value};

/// What an error response says, before a [`Dialect`](crate::Dialect) renders it: status, the
/// API's stable machine code, a human message and optional details. Every error of the HTTP
/// layer and of the adapters' layers and extractors is built as an `ErrorBody`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ErrorBody {
    /// HTTP status.
    pub status: StatusCode,
    /// The API's stable machine code, e.g. `invalid_credentials` (`docs/API.md`, error table).
    pub code: &'static str,
    /// A human sentence without secrets.
    pub message: String,
    /// `{"fields":{…}}`, `{"reasons":[…]}` or `{"retry_after_seconds":n}`, when the error has
    /// them.
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header (429, 503 `overloaded`).
    pub retry_after_seconds: Option<u64>,
}

impl ErrorBody {
    /// An error without details.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after_seconds: None }
    }

    /// 413 `payload_too_large`.
    #[must_use]
    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
    }

    /// 415 `unsupported_media_type`.
    #[must_use]
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON (Content-Type: application/json)",
        )
    }

    /// 404 `not_found` for an unknown route.
    #[must_use]
    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 405 `method_not_allowed`.
    #[must_use]
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this method is not allowed here")
    }

    /// 500 `internal` for a server misconfiguration; logs `what` (the client sees a generic
    /// sentence).
    #[must_use]
    pub fn misconfigured(what: &str) -> Self {
        tracing::error!("auth-http misconfiguration: {what}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
    }

    /// The error of `err`, logging server-side failures (5xx) with their source chain: the
    /// client only gets the stable code and a generic sentence.
    #[must_use]
    pub fn from_auth_error(err: &AuthError) -> Self {
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
        Self::from(err)
    }

    /// Adds the headers the error implies, whatever the envelope: `Retry-After` (seconds) when
    /// set, and `WWW-Authenticate` (RFC 6750 §3) on 401 access-token errors — `Bearer` for a
    /// missing or malformed token, `Bearer error="invalid_token"` for an expired or revoked one.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
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

/// The HTTP status of an [`AuthError`], per the API's error table (`docs/API.md`): 400 input,
/// 401 credentials and tokens, 403, 404, 409 conflicts, 429, 502 upstream (captcha, mail), 503
/// store or overload, 500 otherwise.
#[must_use]
pub fn status_of(err: &AuthError) -> StatusCode {
    match err {
        AuthError::InvalidRequest { .. }
        | AuthError::WeakPassword { .. }
        | AuthError::CaptchaRequired
        | AuthError::CaptchaInvalid
        | AuthError::InvalidCode
        | AuthError::InvalidMfaCode { .. } => StatusCode::BAD_REQUEST,
        AuthError::InvalidCredentials
        | AuthError::Unauthorized
        | AuthError::TokenExpired
        | AuthError::SessionRevoked
        | AuthError::InvalidRefreshToken
        | AuthError::RefreshTokenReused
        | AuthError::InvalidMfaToken => StatusCode::UNAUTHORIZED,
        AuthError::CurrentPasswordInvalid
        | AuthError::AccountDisabled
        | AuthError::Forbidden
        | AuthError::MfaRequired
        | AuthError::CsrfRejected => StatusCode::FORBIDDEN,
        AuthError::NotFound => StatusCode::NOT_FOUND,
        AuthError::UsernameTaken | AuthError::EmailTaken | AuthError::LastAdmin | AuthError::MfaAlreadyEnabled => {
            StatusCode::CONFLICT
        }
        AuthError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AuthError::CaptchaUnavailable(_) | AuthError::MailUnavailable(_) => StatusCode::BAD_GATEWAY,
        AuthError::StoreUnavailable(_) | AuthError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<&AuthError> for ErrorBody {
    /// The body of `err` (without logging; see [`ErrorBody::from_auth_error`]).
    fn from(err: &AuthError) -> Self {
        let mut body = ErrorBody::new(status_of(err), err.code(), err.to_string());
        match err {
            AuthError::InvalidRequest { fields } => {
                let fields: Map<String, Value> =
                    fields.iter().map(|f| (f.field.clone(), Value::from(f.message.clone()))).collect();
                body.details = Some(json!({ "fields": fields }));
            }
            AuthError::WeakPassword { reasons } => body.details = Some(json!({ "reasons": reasons })),
            AuthError::InvalidMfaCode { attempts_left: Some(left) } => {
                body.details = Some(json!({ "attempts_left": left }));
            }
            AuthError::RateLimited { retry_after_seconds } | AuthError::Overloaded { retry_after_seconds } => {
                body.details = Some(json!({ "retry_after_seconds": retry_after_seconds }));
                body.retry_after_seconds = Some(*retry_after_seconds);
            }
            _ => {}
        }
        body
    }
}

impl From<AuthError> for ErrorBody {
    /// [`ErrorBody::from_auth_error`]: logs 5xx.
    fn from(err: AuthError) -> Self {
        Self::from_auth_error(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_hasher_queue_is_503_overloaded_with_retry_after() {
        let body = ErrorBody::from(AuthError::Overloaded { retry_after_seconds: 1 });
        assert_eq!(body.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body.code, "overloaded");
        assert_eq!(body.details, Some(json!({"retry_after_seconds": 1})));
        let mut headers = HeaderMap::new();
        body.add_headers(&mut headers);
        assert_eq!(headers[header::RETRY_AFTER], "1");
    }

    #[test]
    fn access_token_errors_carry_www_authenticate() {
        for (err, value) in [
            (AuthError::Unauthorized, Some("Bearer")),
            (AuthError::TokenExpired, Some("Bearer error=\"invalid_token\"")),
            (AuthError::SessionRevoked, Some("Bearer error=\"invalid_token\"")),
            (AuthError::InvalidCredentials, None),
        ] {
            let mut headers = HeaderMap::new();
            ErrorBody::from(&err).add_headers(&mut headers);
            assert_eq!(headers.get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap()), value, "{err:?}");
        }
    }
}
