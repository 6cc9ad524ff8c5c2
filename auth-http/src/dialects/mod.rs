//! Dialects beyond [`Canonical`]: the wire contracts of the services our users
//! migrate from (`../shared/seeds/`), over the same flows. Each is selected by name with
//! [`by_name`].

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::dialect::{Canonical, Dialect, HttpResponse, Input, Operation, RequestParts};
use crate::error::ErrorBody;

mod code_data;
mod plain;
mod res_err;
mod success;

pub use code_data::{CodeData, CodeDataUserDefaults};
pub use plain::Plain;
pub use res_err::ResErr;
pub use success::Success;

/// The names [`by_name`] knows.
pub const NAMES: &[&str] = &["canonical", "code-data", "plain", "res-err", "success"];

/// The dialect called `name` (`canonical`, `code-data`, `plain`, `res-err`, `success`), with its
/// default settings;
/// `None` for another name.
#[must_use]
pub fn by_name(name: &str) -> Option<Arc<dyn Dialect>> {
    match name {
        "canonical" => Some(Arc::new(Canonical)),
        "code-data" => Some(Arc::new(CodeData::default())),
        "plain" => Some(Arc::new(Plain)),
        "res-err" => Some(Arc::new(ResErr)),
        "success" => Some(Arc::new(Success)),
        _ => None,
    }
}

/// `wrapped`, a dialect's envelope around `canonical`'s body, with the header of `canonical` that
/// is about the content rather than its encoding: `Content-Disposition` (the account export is a
/// download in every dialect).
pub(crate) fn carry_headers(canonical: &HttpResponse, mut wrapped: HttpResponse) -> HttpResponse {
    if let Some(value) = canonical.headers().get(http::header::CONTENT_DISPOSITION) {
        wrapped.headers_mut().insert(http::header::CONTENT_DISPOSITION, value.clone());
    }
    wrapped
}

/// `value` with every object key renamed by `rename`, at every level but inside `metadata` (the
/// host's own keys): how a dialect recases canonical bodies.
pub(crate) fn rename_keys(value: Value, rename: &impl Fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if k == "metadata" { v } else { rename_keys(v, rename) };
                    (rename(&k), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| rename_keys(v, rename)).collect()),
        other => other,
    }
}

/// The canonical input of `operation` from a request whose top-level keys are in a dialect's
/// casing: renamed by `to_snake` first (a body that is not a JSON object is left to the
/// canonical parser, which says what is wrong with it).
pub(crate) fn parse_recased(
    operation: Operation,
    request: &RequestParts<'_>,
    to_snake: &impl Fn(&str) -> String,
) -> Result<Input, ErrorBody> {
    let renamed = serde_json::from_slice::<Map<String, Value>>(request.body).ok().and_then(|map| {
        serde_json::to_vec(&map.into_iter().map(|(k, v)| (to_snake(&k), v)).collect::<Map<_, _>>()).ok()
    });
    match renamed {
        Some(body) => Canonical.parse(operation, &RequestParts { body: &body, ..*request }),
        None => Canonical.parse(operation, request),
    }
}

/// Short lower-case sentences for the API's error codes, in the style of seeds 000 and 001
/// (`code-data`, `res-err`); `None` for a code it does not know.
pub(crate) fn lowercase_sentence(code: &str) -> Option<&'static str> {
    Some(match code {
        "invalid_request" => "invalid request",
        "unsupported_media_type" => "request body must be json",
        "payload_too_large" => "request body too large",
        "weak_password" => "password is too weak",
        "captcha_required" => "captcha required",
        "captcha_invalid" => "invalid captcha",
        "captcha_unavailable" => "captcha service unavailable",
        "account_disabled" => "account disabled",
        "current_password_invalid" => "invalid password",
        "unauthorized" => "unauthorized",
        "token_expired" => "token expired",
        "session_revoked" => "session revoked",
        "invalid_refresh_token" | "refresh_token_reused" => "invalid refresh token",
        "forbidden" => "forbidden",
        "not_found" => "not found",
        "method_not_allowed" => "method not allowed",
        "rate_limited" => "too many requests",
        "invalid_code" => "invalid code",
        "invalid_mfa_code" => "invalid two-factor code",
        "invalid_mfa_token" => "two-factor login expired, log in again",
        "mfa_required" => "two-factor code required",
        "mfa_already_enabled" => "two-factor login already enabled",
        "csrf_rejected" => "request origin not allowed",
        "mail_unavailable" => "mail service unavailable",
        "overloaded" | "store_unavailable" => "service unavailable",
        "internal" => "internal error",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use auth_core::{AuthError, LoginOutcome, SecondFactorChallenge};

    use super::*;
    use crate::dialect::Reply;

    /// `(dialect, how it writes mfa_token)`.
    const CASINGS: [(&str, &str); 5] = [
        ("canonical", "mfa_token"),
        ("code-data", "mfa_token"),
        ("plain", "mfa_token"),
        ("res-err", "mfa-token"),
        ("success", "mfaToken"),
    ];

    #[test]
    fn every_dialect_renders_a_second_factor_login_without_tokens_in_its_envelope_and_casing() {
        for (name, key) in CASINGS {
            let dialect = by_name(name).unwrap();
            for outcome in [LoginOutcome::SecondFactorRequired, LoginOutcome::EnrollmentRequired] {
                let challenge = SecondFactorChallenge::new("opaque-challenge".into(), vec!["totp"], 300);
                let response = dialect.render(Reply::LoggedIn(outcome(challenge)));
                assert_eq!(response.status(), 200, "{name}");
                let body = String::from_utf8(response.body().clone()).unwrap();
                assert!(body.contains(&format!("\"{key}\":\"opaque-challenge\"")), "{name}: {body}");
                assert!(!body.contains("access_token") && !body.contains("accessToken"), "{name}: {body}");
            }
            let codes = dialect.render(Reply::RecoveryCodes(vec!["ABCDE-FGHIJ".into()]));
            assert!(String::from_utf8(codes.body().clone()).unwrap().contains("ABCDE-FGHIJ"), "{name}");
            for (err, status) in [
                (AuthError::InvalidMfaCode { attempts_left: Some(2) }, 400),
                (AuthError::InvalidMfaToken, 401),
                (AuthError::MfaRequired, 403),
            ] {
                let body = ErrorBody::from(&err);
                let response = dialect.render_error(&body);
                assert_eq!(response.status(), status, "{name}: {err:?}");
                let text = String::from_utf8(response.body().clone()).unwrap();
                assert!(text.to_lowercase().contains("factor"), "{name}: a sentence of its own: {text}");
            }
        }
    }
}
