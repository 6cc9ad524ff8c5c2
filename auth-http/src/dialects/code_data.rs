//! [`CodeData`]: the wire contract of seed 000 (username login and registration with an image
//! captcha, every body in a `{"code","message","data"}` envelope).

use auth_core::{LoginOutcome, User};
use http::StatusCode;
use serde_json::{json, Value};

use crate::dialect::{json_response, Canonical, Dialect, HttpResponse, Reply};
use crate::error::ErrorBody;
use crate::wire::{CaptchaResponse, CaptchaStatusResponse};

use super::{carry_headers, lowercase_sentence};

/// The values of the seed's billing fields for a user whose metadata has none.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CodeDataUserDefaults {
    /// `balance` (US dollars), default 0.
    pub balance: f64,
    /// `price_rate` (1.0 = list price, 0 = free), default 1.0.
    pub price_rate: f64,
    /// `max_concurrency`, default 10.
    pub max_concurrency: u64,
}

impl Default for CodeDataUserDefaults {
    fn default() -> Self {
        Self { balance: 0.0, price_rate: 1.0, max_concurrency: 10 }
    }
}

/// Seed 000 (`code-data`): the canonical routes at the canonical mount (`/api/auth`), with
///
/// - every success as HTTP 200 (201 for registration) `{"code":0,"message":"success","data":…}`;
/// - `POST /register` answering message `created` and the user as `data` (no token);
///   `POST /login` answering `data: {"token","user"}`;
/// - `GET /captcha/status` → `data: {"captcha_enabled","login_rate_limit_enabled"}`,
///   `GET /captcha` → `data: {"captcha_id","image","enabled"}` (empty id and image when off);
/// - the user object of the seed: `id`, `username`, `email`, `role`, `status`, `balance`,
///   `price_rate`, `max_concurrency`, `created_at`, `updated_at`. The three billing fields are
///   host-owned: read from the user's metadata (`balance`, `price_rate`, `max_concurrency`), else
///   [`CodeDataUserDefaults`]. One difference from the seed: `id` is our UUID as a string, not an
///   integer;
/// - errors as `{"code":<HTTP status>,"message":"…"}` with that HTTP status: 400
///   `username already exists`, 401 `invalid username or password` (unknown account and wrong
///   password alike), and lower-case sentences for the rest.
///
/// Requests are the canonical ones (the seed's `username`, `password`, `email`, `captcha_id`,
/// `captcha` are canonical field names). The seed's tokens live 24 h: the example server makes
/// that the default access-token lifetime in this dialect.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeData {
    /// The billing fields of users whose metadata lacks them.
    pub user_defaults: CodeDataUserDefaults,
}

impl CodeData {
    /// The seed's user object of `user`.
    #[must_use]
    pub fn user(&self, user: &User) -> Value {
        let number = |key: &str, default: f64| user.metadata.get(key).and_then(Value::as_f64).unwrap_or(default);
        let max_concurrency =
            user.metadata.get("max_concurrency").and_then(Value::as_u64).unwrap_or(self.user_defaults.max_concurrency);
        json!({
            "id": user.id.to_string(),
            "username": user.username,
            "email": user.email,
            "role": user.role.as_str(),
            "status": user.status.as_str(),
            "balance": number("balance", self.user_defaults.balance),
            "price_rate": number("price_rate", self.user_defaults.price_rate),
            "max_concurrency": max_concurrency,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
        })
    }
}

fn envelope(status: StatusCode, message: &str, data: Value) -> HttpResponse {
    json_response(status, &json!({ "code": 0, "message": message, "data": data }))
}

impl Dialect for CodeData {
    fn name(&self) -> &'static str {
        "code-data"
    }

    fn render(&self, reply: Reply) -> HttpResponse {
        let ok = |data| envelope(StatusCode::OK, "success", data);
        match reply {
            Reply::CaptchaStatus(status) => {
                let status = CaptchaStatusResponse::from(status);
                ok(json!({
                    "captcha_enabled": status.captcha_enabled,
                    "login_rate_limit_enabled": status.login_rate_limit_enabled,
                }))
            }
            Reply::Captcha(challenge) => {
                let c = CaptchaResponse::from(challenge);
                ok(json!({ "captcha_id": c.captcha_id, "image": c.image, "enabled": c.enabled }))
            }
            Reply::Registered(issued) => envelope(StatusCode::CREATED, "created", self.user(&issued.user)),
            Reply::LoggedIn(LoginOutcome::Authenticated(issued)) => {
                ok(json!({ "token": issued.access_token, "user": self.user(&issued.user) }))
            }
            Reply::Me(user) | Reply::EmailVerified(user) => ok(self.user(&user)),
            other => {
                // Every other route: the canonical body as `data` (`null` for none), HTTP 200.
                let canonical = Canonical.render(other);
                if !canonical.status().is_success() {
                    return canonical;
                }
                let data = if canonical.body().is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(canonical.body()).unwrap_or(Value::Null)
                };
                carry_headers(&canonical, ok(data))
            }
        }
    }

    /// The seed's tokens live 24 h.
    fn default_access_token_ttl(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(24 * 3600))
    }

    fn render_error(&self, error: &ErrorBody) -> HttpResponse {
        let (status, message) = match error.code {
            "username_taken" => (StatusCode::BAD_REQUEST, "username already exists"),
            "email_taken" => (StatusCode::BAD_REQUEST, "email already exists"),
            "invalid_credentials" => (StatusCode::UNAUTHORIZED, "invalid username or password"),
            code => (error.status, lowercase_sentence(code).unwrap_or(error.message.as_str())),
        };
        let mut response = json_response(status, &json!({ "code": status.as_u16(), "message": message }));
        error.add_headers(response.headers_mut());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::AuthError;
    use http::header;

    #[test]
    fn errors_carry_the_http_status_as_code() {
        for (err, status, message) in [
            (AuthError::UsernameTaken, 400, "username already exists"),
            (AuthError::InvalidCredentials, 401, "invalid username or password"),
            (AuthError::RateLimited { retry_after_seconds: 3 }, 429, "too many requests"),
        ] {
            let response = CodeData::default().render_error(&ErrorBody::from(&err));
            assert_eq!(response.status().as_u16(), status);
            let body: Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(body, json!({"code": status, "message": message}));
        }
    }

    #[test]
    fn a_body_less_success_is_an_envelope_with_null_data() {
        let response = CodeData::default().render(Reply::LoggedOut);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body, json!({"code": 0, "message": "success", "data": null}));
    }
}
