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
        "mail_unavailable" => "mail service unavailable",
        "overloaded" | "store_unavailable" => "service unavailable",
        "internal" => "internal error",
        _ => return None,
    })
}
