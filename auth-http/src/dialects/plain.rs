//! [`Plain`]: the wire contract of seed 002 (username login and registration guarded by
//! Cloudflare Turnstile, bare JSON bodies).

use auth_core::captcha::CaptchaProof;
use auth_core::{LoginOutcome, LoginRequest, RegisterRequest, SecretString};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::body::json_body;
use crate::dialect::{json_response, Canonical, Dialect, HttpResponse, Input, Operation, Reply, RequestParts};
use crate::error::ErrorBody;

/// Seed 002 (`plain`): the canonical routes at the canonical mount (`/api/auth`), with
///
/// - `POST /register` and `POST /login` taking `{"username","password","turnstile_token"}` and
///   answering **200** `{"access_token","refresh_token","expires_in"}` (registration too);
///   `POST /refresh` answers the same three fields;
/// - errors as `{"error":"<message>"}`: 400 `Invalid request body` (malformed JSON, missing or
///   ill-typed fields, a body that is not JSON), 400 `Invalid captcha` (token missing or
///   refused), 401 `Invalid username or password` (unknown account and wrong password alike),
///   500 `Failed to verify captcha` (siteverify unreachable or failing: the one 5xx the seed
///   documents), and for what the seed does not list the canonical status with a short English
///   sentence (409 `Username already exists`, 429 `Too many requests`, …);
/// - every other route as in [`Canonical`], bare JSON.
///
/// `turnstile_token` is the widget's token; with the captcha off it may be empty or absent
/// (the example server maps the seed's `TURNSTILE_ENABLED` and `TURNSTILE_ALLOWED_HOSTNAME`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

/// The body of the seed's register and login.
#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: SecretString,
    #[serde(default)]
    turnstile_token: Option<String>,
}

impl Credentials {
    fn captcha(&self) -> CaptchaProof {
        CaptchaProof { captcha_token: self.turnstile_token.clone(), ..CaptchaProof::default() }
    }
}

/// `{"access_token","refresh_token","expires_in"}`.
#[derive(Serialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
    expires_in: u64,
}

fn tokens(tokens: auth_core::IssuedTokens) -> HttpResponse {
    let body = Tokens {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_in: tokens.expires_in,
    };
    json_response(StatusCode::OK, &body)
}

impl Dialect for Plain {
    fn name(&self) -> &'static str {
        "plain"
    }

    fn parse(&self, operation: Operation, request: &RequestParts<'_>) -> Result<Input, ErrorBody> {
        match operation {
            Operation::Register => {
                let c: Credentials = json_body(request.headers, request.body)?;
                Ok(Input::Register(RegisterRequest {
                    captcha: c.captcha(),
                    username: Some(c.username),
                    email: None,
                    password: c.password,
                    email_code: None,
                }))
            }
            Operation::Login => {
                let c: Credentials = json_body(request.headers, request.body)?;
                Ok(Input::Login(LoginRequest {
                    captcha: c.captcha(),
                    username: Some(c.username),
                    email: None,
                    password: c.password,
                }))
            }
            _ => Canonical.parse(operation, request),
        }
    }

    fn render(&self, reply: Reply) -> HttpResponse {
        match reply {
            Reply::Registered(issued) | Reply::Refreshed(issued) => tokens(*issued),
            Reply::LoggedIn(LoginOutcome::Authenticated(issued)) => tokens(*issued),
            other => Canonical.render(other),
        }
    }

    fn render_error(&self, error: &ErrorBody) -> HttpResponse {
        let (status, message) = match error.code {
            "invalid_request" | "unsupported_media_type" => (StatusCode::BAD_REQUEST, "Invalid request body"),
            "captcha_required" | "captcha_invalid" => (StatusCode::BAD_REQUEST, "Invalid captcha"),
            "captcha_unavailable" => (StatusCode::INTERNAL_SERVER_ERROR, "Failed to verify captcha"),
            "invalid_credentials" => (StatusCode::UNAUTHORIZED, "Invalid username or password"),
            code => (error.status, sentence(code).unwrap_or(error.message.as_str())),
        };
        let mut response = json_response(status, &json!({ "error": message }));
        error.add_headers(response.headers_mut());
        response
    }
}

/// The seed's style of sentence for the codes it does not list.
fn sentence(code: &str) -> Option<&'static str> {
    Some(match code {
        "username_taken" => "Username already exists",
        "email_taken" => "Email already exists",
        "weak_password" => "Password is too weak",
        "account_disabled" => "Account disabled",
        "unauthorized" => "Unauthorized",
        "token_expired" => "Token expired",
        "session_revoked" => "Session revoked",
        "invalid_refresh_token" | "refresh_token_reused" => "Invalid refresh token",
        "forbidden" => "Forbidden",
        "not_found" => "Not found",
        "method_not_allowed" => "Method not allowed",
        "payload_too_large" => "Request body too large",
        "rate_limited" => "Too many requests",
        "invalid_code" => "Invalid code",
        "invalid_mfa_code" => "Invalid two-factor code",
        "invalid_mfa_token" => "Two-factor login expired, log in again",
        "mfa_required" => "Two-factor code required",
        "mfa_already_enabled" => "Two-factor login already enabled",
        "csrf_rejected" => "Request origin not allowed",
        "overloaded" | "store_unavailable" => "Service unavailable",
        "mail_unavailable" => "Failed to send mail",
        "internal" => "Internal server error",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::AuthError;
    use http::header::{self, HeaderMap};

    fn error(err: &AuthError) -> (StatusCode, serde_json::Value) {
        let response = Plain.render_error(&ErrorBody::from(err));
        (response.status(), serde_json::from_slice(response.body()).unwrap())
    }

    #[test]
    fn the_seeds_errors_have_its_statuses_and_sentences() {
        assert_eq!(error(&AuthError::CaptchaRequired), (StatusCode::BAD_REQUEST, json!({"error": "Invalid captcha"})));
        assert_eq!(
            error(&AuthError::InvalidCredentials),
            (StatusCode::UNAUTHORIZED, json!({"error": "Invalid username or password"}))
        );
        assert_eq!(
            error(&AuthError::invalid_field("username", "is required")),
            (StatusCode::BAD_REQUEST, json!({"error": "Invalid request body"}))
        );
        assert_eq!(
            error(&AuthError::UsernameTaken),
            (StatusCode::CONFLICT, json!({"error": "Username already exists"}))
        );
    }

    #[test]
    fn the_turnstile_token_is_the_captcha_token_and_a_missing_field_is_invalid_request() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        let body = br#"{"username":"user_123","password":"pw","turnstile_token":"tok"}"#;
        let request = RequestParts { headers: &headers, query: None, body, path_params: &[] };
        let Ok(Input::Login(login)) = Plain.parse(Operation::Login, &request) else { panic!("a login") };
        assert_eq!(
            (login.username.as_deref(), login.captcha.captcha_token.as_deref()),
            (Some("user_123"), Some("tok"))
        );
        let request =
            RequestParts { headers: &headers, query: None, body: br#"{"username":"user_123"}"#, path_params: &[] };
        assert_eq!(Plain.parse(Operation::Register, &request).unwrap_err().code, "invalid_request");
    }
}
