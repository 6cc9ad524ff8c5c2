//! [`ResErr`]: the wire contract of seed 001 (email accounts with a mailed registration code,
//! `Authorization: Customize <token>`, every body in a `{"res","err-msg","err-msg-details",
//! "err-code"}` envelope, kebab-case fields).

use auth_core::captcha::CaptchaProof;
use auth_core::{
    EmailCodePurpose, EmailCodeRequest, LoginOutcome, LoginRequest, RefreshRequest, RegisterRequest, SecretString,
};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::body::json_body;
use crate::client::access_token;
use crate::dialect::{
    json_response, Canonical, Dialect, HttpResponse, Input, Operation, Reply, RequestParts, Route, CANONICAL_ROUTES,
};
use crate::error::ErrorBody;

use super::{carry_headers, lowercase_sentence, parse_recased, rename_keys};

/// Seed 001 (`res-err`), mounted at `/api/v1/auth`:
///
/// - `POST /captcha {"type":"email","account"}` mails a registration code;
/// - `POST /register {"type","account","psw","captcha"}` (the mailed code as `captcha`) and
///   `POST /login {"type","account","psw"}` answer `res: {"user-id","token","refresh-token"}`;
/// - `POST /refresh-token {"refresh_token"}` answers `res: {"token"}` only: the client keeps its
///   refresh token, so this dialect needs rotation off ([`Dialect::default_refresh_rotation`],
///   [`Dialect::requires_refresh_rotation_off`]; a server sharing one `Auth` with a canonical
///   router turns it off for both). The access token being replaced, when sent as
///   `Authorization: Customize <token>` (or `Bearer`), must verify and belong to the same
///   session; expired is fine;
/// - `GET /logout` (and `POST /logout`) answers `res: {"message":"logout successful"}`;
/// - every other canonical route under the same mount, its body as `res` with kebab-case keys
///   (requests may use either casing);
/// - errors as `{"res":{},"err-msg","err-msg-details","err-code"}` with the canonical HTTP
///   status: `err-code` is that status as a string, `err-msg` a short sentence, `err-msg-details`
///   the canonical machine code and message (field names for a bad request).
///
/// `type` must be `email`; anything else is 400 naming the field. Access tokens are accepted as
/// `Authorization: Customize <token>` or `Bearer <token>`, here and on the host's routes that
/// use [`auth_schemes`](Dialect::auth_schemes).
///
/// The seed's registration takes a mailed code: give the service a mailer and turn on
/// `AuthConfig::require_email_verification` (the example server does both by default in this
/// dialect); without it the code is not checked. Likewise turn `AuthConfig::refresh_rotation`
/// off, or the refresh token the client keeps is spent by its first refresh.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResErr;

/// The seed's routes, then the canonical ones it does not replace.
static ROUTES: std::sync::LazyLock<Vec<Route>> = std::sync::LazyLock::new(|| {
    let seed = [
        Route::new(Method::POST, "/captcha", Operation::EmailCode),
        Route::new(Method::POST, "/refresh-token", Operation::Refresh),
        Route::new(Method::GET, "/logout", Operation::Logout),
    ];
    seed.into_iter().chain(CANONICAL_ROUTES.iter().cloned()).collect()
});

/// `{"type":"email","account",…}`: the seed's way of naming an email account.
#[derive(Deserialize)]
struct Account {
    #[serde(rename = "type")]
    kind: String,
    account: String,
    /// Not in the seed (whose `captcha` is the mailed code): a captcha provider's token, for
    /// servers that put a captcha in front of these routes.
    #[serde(default, rename = "captcha-token")]
    captcha_token: Option<String>,
}

impl Account {
    /// The email address and the captcha proof.
    fn email(self) -> Result<(String, CaptchaProof), ErrorBody> {
        if self.kind == "email" {
            Ok((self.account, CaptchaProof { captcha_token: self.captcha_token, ..CaptchaProof::default() }))
        } else {
            Err(ErrorBody::from(&auth_core::AuthError::invalid_field("type", "must be \"email\"")))
        }
    }
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(flatten)]
    account: Account,
    psw: SecretString,
    #[serde(default)]
    captcha: Option<SecretString>,
}

#[derive(Deserialize)]
struct Refresh {
    refresh_token: SecretString,
}

/// Whether the JSON body has `key` at the top level (the seed's shape rather than the canonical).
fn has_key(body: &[u8], key: &str) -> bool {
    serde_json::from_slice::<Map<String, Value>>(body).is_ok_and(|map| map.contains_key(key))
}

/// `key_name` → `key-name`.
fn kebab(key: &str) -> String {
    key.replace('_', "-")
}

/// `key-name` → `key_name`.
fn snake(key: &str) -> String {
    key.replace('-', "_")
}

fn envelope(res: Value) -> HttpResponse {
    json_response(StatusCode::OK, &json!({ "res": res, "err-msg": "", "err-msg-details": "", "err-code": "" }))
}

impl Dialect for ResErr {
    fn name(&self) -> &'static str {
        "res-err"
    }

    fn routes(&self) -> &[Route] {
        ROUTES.as_slice()
    }

    fn parse(&self, operation: Operation, request: &RequestParts<'_>) -> Result<Input, ErrorBody> {
        let body = request.body;
        match operation {
            Operation::EmailCode if has_key(body, "account") => {
                let account: Account = json_body(request.headers, body)?;
                let (email, captcha) = account.email()?;
                Ok(Input::EmailCode(EmailCodeRequest { email, purpose: EmailCodePurpose::Register, captcha }))
            }
            Operation::Register if has_key(body, "psw") => {
                let c: Credentials = json_body(request.headers, body)?;
                let (email, captcha) = c.account.email()?;
                Ok(Input::Register(RegisterRequest {
                    username: None,
                    email: Some(email),
                    password: c.psw,
                    email_code: c.captcha,
                    captcha,
                }))
            }
            Operation::Login if has_key(body, "psw") => {
                let c: Credentials = json_body(request.headers, body)?;
                let (email, captcha) = c.account.email()?;
                Ok(Input::Login(LoginRequest { username: None, email: Some(email), password: c.psw, captcha }))
            }
            Operation::Refresh => {
                let r: Refresh = json_body(request.headers, body)?;
                let access_token = access_token(request.headers, self.auth_schemes())
                    .map_err(|e| ErrorBody::from(&e))?
                    .map(SecretString::from);
                Ok(Input::Refresh(RefreshRequest { refresh_token: r.refresh_token, access_token }))
            }
            _ => parse_recased(operation, request, &snake),
        }
    }

    fn render(&self, reply: Reply) -> HttpResponse {
        match reply {
            Reply::Registered(issued) | Reply::LoggedIn(LoginOutcome::Authenticated(issued)) => envelope(json!({
                "user-id": issued.user.id.to_string(),
                "token": issued.access_token,
                "refresh-token": issued.refresh_token,
            })),
            Reply::Refreshed(issued) => envelope(json!({ "token": issued.access_token })),
            Reply::LoggedOut => envelope(json!({ "message": "logout successful" })),
            // The seed's code request answers an empty `res`.
            Reply::CodeSent => envelope(json!({})),
            other => {
                let canonical = Canonical.render(other);
                if !canonical.status().is_success() {
                    return canonical;
                }
                let res =
                    serde_json::from_slice(canonical.body()).map_or_else(|_| json!({}), |v| rename_keys(v, &kebab));
                carry_headers(&canonical, envelope(res))
            }
        }
    }

    fn render_error(&self, error: &ErrorBody) -> HttpResponse {
        let mut details = format!("{}: {}", error.code, error.message);
        if let Some(fields) = error.details.as_ref().and_then(|d| d.get("fields")).and_then(Value::as_object) {
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            details.push_str(&format!(" ({})", names.join(", ")));
        }
        let body = json!({
            "res": {},
            "err-msg": sentence(error.code).unwrap_or(error.message.as_str()),
            "err-msg-details": details,
            "err-code": error.status.as_u16().to_string(),
        });
        let mut response = json_response(error.status, &body);
        error.add_headers(response.headers_mut());
        response
    }

    fn mount(&self) -> &'static str {
        "/api/v1/auth"
    }

    fn auth_schemes(&self) -> &'static [&'static str] {
        &["Customize", "Bearer"]
    }

    /// Registration takes a mailed code.
    fn default_require_email_verification(&self) -> Option<bool> {
        Some(true)
    }

    /// The client never receives a new refresh token.
    fn default_refresh_rotation(&self) -> Option<bool> {
        Some(false)
    }

    /// The seed's bodies have no captcha field (its `captcha` is the mailed code): no route is
    /// guarded unless configured, with the token as `captcha-token`.
    fn default_captcha_actions(&self) -> Option<&'static [auth_core::CaptchaAction]> {
        Some(&[])
    }

    fn requires_refresh_rotation_off(&self) -> bool {
        true
    }
}

/// `err-msg`: the seed's account wording where it differs, else the shared lower-case sentences.
fn sentence(code: &str) -> Option<&'static str> {
    match code {
        "username_taken" | "email_taken" => Some("account already exists"),
        "invalid_credentials" => Some("invalid account or password"),
        "invalid_code" => Some("invalid or expired captcha"),
        "captcha_required" => Some("invalid captcha"),
        _ => lowercase_sentence(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::AuthError;
    use http::header::{self, HeaderMap};

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers
    }

    #[test]
    fn errors_are_in_the_envelope_with_the_status_as_err_code() {
        let response = ResErr.render_error(&ErrorBody::from(&AuthError::InvalidCredentials));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["res"], json!({}));
        assert_eq!(body["err-code"], "401");
        assert_eq!(body["err-msg"], "invalid account or password");
        assert!(body["err-msg-details"].as_str().unwrap().starts_with("invalid_credentials: "));
        let response = ResErr.render_error(&ErrorBody::from(&AuthError::invalid_field("type", "must be \"email\"")));
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!((body["err-code"].as_str(), body["err-msg"].as_str()), (Some("400"), Some("invalid request")));
        assert!(body["err-msg-details"].as_str().unwrap().ends_with("(type)"), "{body}");
    }

    #[test]
    fn the_seeds_bodies_become_canonical_inputs() {
        let headers = json_headers();
        let parse = |op, body: &[u8]| {
            ResErr.parse(op, &RequestParts { headers: &headers, query: None, body, path_params: &[] })
        };
        let Ok(Input::Register(r)) =
            parse(Operation::Register, br#"{"type":"email","account":"a@example.com","psw":"pw","captcha":"123456"}"#)
        else {
            panic!("a registration")
        };
        assert_eq!(r.email.as_deref(), Some("a@example.com"));
        assert_eq!(r.email_code.as_ref().map(SecretString::expose), Some("123456"));
        let Ok(Input::EmailCode(c)) = parse(Operation::EmailCode, br#"{"type":"email","account":"a@example.com"}"#)
        else {
            panic!("a code request")
        };
        assert_eq!((c.email.as_str(), c.purpose), ("a@example.com", EmailCodePurpose::Register));
        let err = parse(Operation::Login, br#"{"type":"phone","account":"+123","psw":"pw"}"#).unwrap_err();
        assert_eq!(err.code, "invalid_request");
        // Other routes take canonical bodies in either casing.
        let Ok(Input::ChangePassword(_)) =
            parse(Operation::ChangePassword, br#"{"current-password":"a","new-password":"b"}"#)
        else {
            panic!("a password change")
        };
    }

    #[test]
    fn other_replies_are_canonical_bodies_with_kebab_case_keys() {
        let value = rename_keys(
            json!({"email_verified": true, "preferences": {"some_key": 1}, "metadata": {"a_b": 1}}),
            &kebab,
        );
        assert_eq!(value, json!({"email-verified": true, "preferences": {"some-key": 1}, "metadata": {"a_b": 1}}));
        let body: Value = serde_json::from_slice(ResErr.render(Reply::CodeSent).body()).unwrap();
        assert_eq!(body, json!({"res": {}, "err-msg": "", "err-msg-details": "", "err-code": ""}));
        let body: Value = serde_json::from_slice(ResErr.render(Reply::ResetLinkSent).body()).unwrap();
        assert_eq!(body["res"], json!({"sent": true}), "other replies keep their canonical body");
    }
}
