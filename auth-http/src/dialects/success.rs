//! [`Success`]: the wire contract of seed 003 (email accounts with mailed codes and reCAPTCHA,
//! camelCase bodies with a `success` flag, errors as `{"success":false,"error":{"code","message"}}`).

use auth_core::captcha::CaptchaProof;
use auth_core::{
    CaptchaAction, EmailCodePurpose, EmailCodeRequest, ForgotPasswordRequest, LoginOutcome, LoginRequest, Preferences,
    PreferencesUpdate, RegisterRequest, ResetPasswordRequest, SecretString, Theme, User,
};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::body::json_body;
use crate::dialect::{
    json_response, Canonical, Dialect, HttpResponse, Input, Operation, Reply, RequestParts, Route, CANONICAL_ROUTES,
};
use crate::error::ErrorBody;

use super::{carry_headers, parse_recased, rename_keys};

/// Seed 003 (`success`), mounted at `/v1/auth`, camelCase:
///
/// - `POST /email/verify {"email","type":"register"|"reset-password"}` mails a code →
///   `{"success":true,"message":"success"}`;
/// - `POST /register {"email","password","verificationCode","recaptchaToken"}` →
///   `{"success":true,"message":"success","userId"}`;
/// - `POST /login {"email","password","recaptchaToken"}` →
///   `{"success":true,"token","user":{"id","email","preferences":{"theme","language"}}}`, with
///   `theme` `light|dark` and `language` `zh|en`;
/// - `PUT /preferences {"theme","language"}` (Bearer) → `{"success":true,"preferences":{…}}`;
/// - `POST /password/reset-request {"email","verificationCode","recaptchaToken"}` takes the
///   mailed code (type `reset-password`) and mails a reset link → message `密码重置链接已发送`;
/// - `POST /password/reset {"token","newPassword"}` → message `密码重置成功`; single use, and
///   every session of the account ends;
/// - every other canonical route under the same mount, its body camelCased with `"success":true`
///   (the canonical `POST /email/verify` of a logged-in user, whose path the seed takes, is
///   `POST /email/confirm` here);
/// - errors `{"success":false,"error":{"code","message"}}` with the canonical machine code and
///   message, and the seed's statuses: 400 for what the canonical API answers 409, 413, 415 or
///   422 with, 404 for 405; 401, 403, 429 (with `Retry-After`) and 5xx as they are.
///
/// The seed's password rules (8+ characters with upper- and lower-case letters, a digit and a
/// symbol), 24 h tokens and registration by mailed code are server defaults in this dialect
/// ([`Dialect::default_password_composition`], [`Dialect::default_access_token_ttl`],
/// [`Dialect::default_require_email_verification`]); reCAPTCHA is the server's captcha
/// provider (`AUTH_CAPTCHA=recaptcha`, with its minimum score).
#[derive(Debug, Clone, Copy, Default)]
pub struct Success;

static ROUTES: std::sync::LazyLock<Vec<Route>> = std::sync::LazyLock::new(|| {
    let seed = [
        Route::new(Method::POST, "/email/verify", Operation::EmailCode),
        Route::new(Method::POST, "/password/reset-request", Operation::ForgotPassword),
        Route::new(Method::PUT, "/preferences", Operation::UpdatePreferences),
        Route::new(Method::POST, "/email/confirm", Operation::VerifyEmail),
    ];
    // The canonical `POST /email/verify` is the seed's code request here.
    let canonical = CANONICAL_ROUTES.iter().filter(|r| r.operation != Operation::VerifyEmail).cloned();
    seed.into_iter().chain(canonical).collect()
});

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Register {
    email: String,
    password: SecretString,
    #[serde(default)]
    verification_code: Option<SecretString>,
    #[serde(default)]
    recaptcha_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Login {
    email: String,
    password: SecretString,
    #[serde(default)]
    recaptcha_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodeRequest {
    email: String,
    #[serde(rename = "type")]
    kind: String,
    /// Not in the seed: checked when a server guards the code request with the captcha
    /// (`AUTH_CAPTCHA_ROUTES` with `email_code`).
    #[serde(default)]
    recaptcha_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetRequest {
    email: String,
    verification_code: SecretString,
    #[serde(default)]
    recaptcha_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reset {
    token: SecretString,
    new_password: SecretString,
}

#[derive(Deserialize)]
struct PreferencesBody {
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

fn recaptcha(token: Option<String>) -> CaptchaProof {
    CaptchaProof { captcha_token: token, ..CaptchaProof::default() }
}

fn invalid(field: &str, reason: &str) -> ErrorBody {
    ErrorBody::from(&auth_core::AuthError::invalid_field(field, reason))
}

/// `snake_case` → `camelCase`.
fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `camelCase` → `snake_case`.
fn snake(key: &str) -> String {
    let mut snake = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// The seed's preferences: `theme` `light|dark` (`system` shows as `light`), `language` `zh|en`.
fn preferences(p: &Preferences) -> Value {
    let theme = if p.theme == Theme::Dark { "dark" } else { "light" };
    let language = if p.language.to_ascii_lowercase().starts_with("zh") { "zh" } else { "en" };
    json!({ "theme": theme, "language": language })
}

fn user(user: &User) -> Value {
    json!({ "id": user.id.to_string(), "email": user.email, "preferences": preferences(&user.preferences) })
}

fn ok(body: Value) -> HttpResponse {
    let mut body = match body {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    body.insert("success".to_owned(), Value::Bool(true));
    json_response(StatusCode::OK, &body)
}

fn sent(text: &str) -> HttpResponse {
    ok(json!({ "message": text }))
}

/// The error's message with what its details say (bad fields and why, the password policy's
/// reasons): the seed's envelope has no place for details.
fn message(error: &ErrorBody) -> String {
    let Some(details) = &error.details else { return error.message.clone() };
    let mut parts: Vec<String> = Vec::new();
    if let Some(fields) = details.get("fields").and_then(Value::as_object) {
        parts.extend(
            fields.iter().map(|(field, why)| format!("{}: {}", camel(field), why.as_str().unwrap_or_default())),
        );
    }
    if let Some(reasons) = details.get("reasons").and_then(Value::as_array) {
        parts.extend(reasons.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    if parts.is_empty() {
        error.message.clone()
    } else {
        format!("{} ({})", error.message, parts.join("; "))
    }
}

impl Dialect for Success {
    fn name(&self) -> &'static str {
        "success"
    }

    fn routes(&self) -> &[Route] {
        ROUTES.as_slice()
    }

    fn parse(&self, operation: Operation, request: &RequestParts<'_>) -> Result<Input, ErrorBody> {
        let (headers, body) = (request.headers, request.body);
        match operation {
            Operation::EmailCode => {
                let r: CodeRequest = json_body(headers, body)?;
                let purpose = match r.kind.as_str() {
                    "register" => EmailCodePurpose::Register,
                    "reset-password" => EmailCodePurpose::ResetPassword,
                    _ => return Err(invalid("type", "must be \"register\" or \"reset-password\"")),
                };
                Ok(Input::EmailCode(EmailCodeRequest {
                    email: r.email,
                    purpose,
                    captcha: recaptcha(r.recaptcha_token),
                }))
            }
            Operation::Register => {
                let r: Register = json_body(headers, body)?;
                Ok(Input::Register(RegisterRequest {
                    username: None,
                    email: Some(r.email),
                    password: r.password,
                    email_code: r.verification_code,
                    captcha: recaptcha(r.recaptcha_token),
                }))
            }
            Operation::Login => {
                let r: Login = json_body(headers, body)?;
                Ok(Input::Login(LoginRequest {
                    username: None,
                    email: Some(r.email),
                    password: r.password,
                    captcha: recaptcha(r.recaptcha_token),
                }))
            }
            Operation::ForgotPassword => {
                let r: ResetRequest = json_body(headers, body)?;
                Ok(Input::ForgotPassword(ForgotPasswordRequest {
                    email: r.email,
                    captcha: recaptcha(r.recaptcha_token),
                    code: Some(r.verification_code),
                }))
            }
            Operation::ResetPassword => {
                let r: Reset = json_body(headers, body)?;
                Ok(Input::ResetPassword(ResetPasswordRequest {
                    token: Some(r.token),
                    email: None,
                    code: None,
                    new_password: r.new_password,
                }))
            }
            Operation::UpdatePreferences => {
                let r: PreferencesBody = json_body(headers, body)?;
                let theme = match r.theme.as_deref() {
                    None => None,
                    Some("light") => Some(Theme::Light),
                    Some("dark") => Some(Theme::Dark),
                    Some(_) => return Err(invalid("theme", "must be \"light\" or \"dark\"")),
                };
                if r.language.as_deref().is_some_and(|l| l != "zh" && l != "en") {
                    return Err(invalid("language", "must be \"zh\" or \"en\""));
                }
                Ok(Input::UpdatePreferences(PreferencesUpdate { theme, language: r.language }))
            }
            _ => parse_recased(operation, request, &snake),
        }
    }

    fn render(&self, reply: Reply) -> HttpResponse {
        match reply {
            Reply::Registered(issued) => ok(json!({ "message": "success", "userId": issued.user.id.to_string() })),
            Reply::LoggedIn(LoginOutcome::Authenticated(issued)) => {
                ok(json!({ "token": issued.access_token, "user": user(&issued.user) }))
            }
            Reply::CodeSent => sent("success"),
            Reply::ResetLinkSent => sent("密码重置链接已发送"),
            Reply::PasswordReset => sent("密码重置成功"),
            Reply::Preferences(p) => ok(json!({ "preferences": preferences(&p) })),
            Reply::Me(me) => {
                // The canonical user, camelCased, with the seed's preference values.
                let shown = preferences(&me.preferences);
                let mut body = rename_keys(serde_json::to_value(&me).unwrap_or_default(), &camel);
                body["preferences"] = shown;
                ok(body)
            }
            other => {
                let canonical = Canonical.render(other);
                if !canonical.status().is_success() {
                    return canonical;
                }
                let wrapped = match serde_json::from_slice::<Value>(canonical.body()) {
                    Ok(body) => ok(rename_keys(body, &camel)),
                    Err(_) => sent("success"),
                };
                carry_headers(&canonical, wrapped)
            }
        }
    }

    fn render_error(&self, error: &ErrorBody) -> HttpResponse {
        let status = match error.status.as_u16() {
            409 | 413 | 415 | 422 => StatusCode::BAD_REQUEST,
            405 => StatusCode::NOT_FOUND,
            // The seed knows 500 only; `Retry-After` still goes out with a 503's answer.
            500..=599 => StatusCode::INTERNAL_SERVER_ERROR,
            _ => error.status,
        };
        let body = json!({ "success": false, "error": { "code": error.code, "message": message(error) } });
        let mut response = json_response(status, &body);
        error.add_headers(response.headers_mut());
        response
    }

    fn mount(&self) -> &'static str {
        "/v1/auth"
    }

    /// The seed's tokens live 24 h.
    fn default_access_token_ttl(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(24 * 3600))
    }

    /// Registration takes a mailed `verificationCode`.
    fn default_require_email_verification(&self) -> Option<bool> {
        Some(true)
    }

    /// Upper- and lower-case letters, a digit and a symbol.
    fn default_password_composition(&self) -> Option<bool> {
        Some(true)
    }

    /// Registration, login and the reset request carry `recaptchaToken`; the code request
    /// does not.
    fn default_captcha_actions(&self) -> Option<&'static [CaptchaAction]> {
        Some(&[CaptchaAction::Register, CaptchaAction::Login, CaptchaAction::PasswordForgot])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::AuthError;
    use http::header::{self, HeaderMap};

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers
    }

    #[test]
    fn errors_have_the_seeds_envelope_and_statuses() {
        let response = Success.render_error(&ErrorBody::from(&AuthError::EmailTaken));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "409 is not a status of the seed");
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "email_taken");
        let response = Success.render_error(&ErrorBody::from(&AuthError::RateLimited { retry_after_seconds: 7 }));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        let response = Success.render_error(&ErrorBody::from(&AuthError::Overloaded { retry_after_seconds: 2 }));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "the seed knows 500 only");
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response = Success.render_error(&ErrorBody::from(&AuthError::invalid_field("new_password", "is required")));
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert!(body["error"]["message"].as_str().unwrap().ends_with("(newPassword: is required)"), "{body}");
    }

    #[test]
    fn camel_case_in_and_out() {
        assert_eq!(camel("email_verified"), "emailVerified");
        assert_eq!(snake("newPassword"), "new_password");
        assert_eq!(
            rename_keys(json!({"created_at": 1, "metadata": {"a_b": 1}, "sessions": [{"last_used_at": 2}]}), &camel),
            json!({"createdAt": 1, "metadata": {"a_b": 1}, "sessions": [{"lastUsedAt": 2}]})
        );
        let headers = headers();
        let body = br#"{"currentPassword":"a","newPassword":"b"}"#;
        let request = RequestParts { headers: &headers, query: None, body, path_params: &[] };
        assert!(matches!(Success.parse(Operation::ChangePassword, &request), Ok(Input::ChangePassword(_))));
        let body = br#"{"theme":"system"}"#;
        let request = RequestParts { headers: &headers, query: None, body, path_params: &[] };
        assert_eq!(Success.parse(Operation::UpdatePreferences, &request).unwrap_err().code, "invalid_request");
    }

    #[test]
    fn preferences_show_as_the_seeds_enumerations() {
        let p = Preferences { theme: Theme::System, language: "zh-CN".into() };
        assert_eq!(preferences(&p), json!({"theme": "light", "language": "zh"}));
        let p = Preferences { theme: Theme::Dark, language: "fr".into() };
        assert_eq!(preferences(&p), json!({"theme": "dark", "language": "en"}));
    }
}
