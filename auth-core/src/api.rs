//! Inputs and outputs of the [`Auth`](crate::Auth) flows, shaped as the HTTP API's bodies
//! (`serde`, `snake_case`). Secrets in inputs are [`SecretString`]s, redacted in `Debug`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::captcha::CaptchaProof;
use crate::secret::SecretString;
use crate::store::Session;
use crate::user::{Preferences, Theme, User};

/// `POST /register`.
#[derive(Debug, Clone, Deserialize)]
pub struct RegisterRequest {
    /// 3–50 characters of letters, digits, `_`, `-`, `.`.
    #[serde(default)]
    pub username: Option<String>,
    /// An email address.
    #[serde(default)]
    pub email: Option<String>,
    /// The password, checked against the [`PasswordPolicy`](crate::PasswordPolicy).
    pub password: SecretString,
    /// A mailed code of purpose `register`, when email verification is required.
    #[serde(default)]
    pub email_code: Option<SecretString>,
    /// Captcha fields.
    #[serde(flatten)]
    pub captcha: CaptchaProof,
}

/// `POST /login`: by `username`, or by `email` (a `username` containing `@` is taken as an
/// email address).
#[derive(Debug, Clone, Deserialize)]
pub struct LoginRequest {
    /// The username.
    #[serde(default)]
    pub username: Option<String>,
    /// The email address.
    #[serde(default)]
    pub email: Option<String>,
    /// The password.
    pub password: SecretString,
    /// Captcha fields.
    #[serde(flatten)]
    pub captcha: CaptchaProof,
}

/// `POST /refresh`.
#[derive(Debug, Clone, Deserialize)]
pub struct RefreshRequest {
    /// The current refresh token.
    pub refresh_token: SecretString,
}

/// `POST /logout` (body optional).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct LogoutRequest {
    /// Log out every session of the user, not just this one.
    #[serde(default)]
    pub all: bool,
}

/// `PUT /me/preferences`: the fields to change.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PreferencesUpdate {
    /// `light`, `dark` or `system`.
    #[serde(default)]
    pub theme: Option<Theme>,
    /// A BCP 47 language tag.
    #[serde(default)]
    pub language: Option<String>,
}

/// The answer of `PUT /me/preferences`: `{"preferences":{…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct PreferencesResponse {
    /// The preferences after the update.
    pub preferences: Preferences,
}

/// `POST /password/change`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangePasswordRequest {
    /// The password the user has now.
    pub current_password: SecretString,
    /// The new password.
    pub new_password: SecretString,
}

/// The **Tokens** answer of register, login and refresh. `Debug` redacts the tokens.
#[derive(Clone, Serialize)]
pub struct TokenResponse {
    /// A JWT access token (`typ: at+jwt`).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The opaque refresh token (256 bits, base64url).
    pub refresh_token: String,
    /// Seconds until the session's absolute expiry (the refresh token dies earlier if the
    /// session goes unused for the idle timeout).
    pub refresh_expires_in: u64,
    /// The user.
    pub user: User,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[redacted]")
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("user", &self.user.id)
            .finish()
    }
}

/// One entry of `GET /sessions`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// Session id (the `sid` of its access tokens).
    pub id: Uuid,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last refresh (or the login).
    pub last_used_at: DateTime<Utc>,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
    /// Client IP at login.
    pub ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// Whether this is the session of the access token making the request.
    pub current: bool,
}

impl SessionInfo {
    pub(crate) fn new(session: Session, current_sid: Uuid) -> Self {
        Self {
            current: session.id == current_sid,
            id: session.id,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            ip: session.ip,
            user_agent: session.user_agent,
        }
    }
}

/// `GET /sessions`: `{"sessions":[…]}`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionsResponse {
    /// The caller's live sessions, newest first.
    pub sessions: Vec<SessionInfo>,
}

/// `GET /captcha/status`.
#[derive(Debug, Clone, Serialize)]
pub struct CaptchaStatus {
    /// Whether a captcha provider is enabled.
    pub captcha_enabled: bool,
    /// `none`, `image`, `turnstile`, `recaptcha` or `hcaptcha`.
    pub provider: &'static str,
    /// The public site key for the browser widget, if any.
    pub site_key: Option<String>,
    /// Whether login attempts are rate limited.
    pub login_rate_limit_enabled: bool,
    /// Whether registration needs a mailed code.
    pub email_verification_required: bool,
}

/// `GET /captcha`: a challenge, or `{"enabled":false,"captcha_id":"","image":""}`.
#[derive(Debug, Clone, Serialize)]
pub struct CaptchaResponse {
    /// Whether an image captcha is in use.
    pub enabled: bool,
    /// The challenge id ("" when disabled).
    pub captcha_id: String,
    /// `data:image/png;base64,…` ("" when disabled).
    pub image: String,
    /// Seconds until the challenge expires (absent when disabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// What an email code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailCodePurpose {
    /// Registration with a verified address.
    Register,
    /// Verifying the address of a logged-in user (`POST /email/verify`).
    VerifyEmail,
    /// Resetting a forgotten password (`POST /password/reset` with `email` + `code`).
    ResetPassword,
}

impl EmailCodePurpose {
    /// `register`, `verify_email` or `reset_password`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// `POST /email/code`.
#[derive(Debug, Clone, Deserialize)]
pub struct EmailCodeRequest {
    /// The address to mail the code to.
    pub email: String,
    /// What the code is for.
    pub purpose: EmailCodePurpose,
    /// Captcha fields.
    #[serde(flatten)]
    pub captcha: CaptchaProof,
}

/// `POST /email/verify`.
#[derive(Debug, Clone, Deserialize)]
pub struct VerifyEmailRequest {
    /// The mailed code (purpose `verify_email`).
    pub code: SecretString,
}

/// `POST /password/forgot`.
#[derive(Debug, Clone, Deserialize)]
pub struct ForgotPasswordRequest {
    /// The account's email address.
    pub email: String,
    /// Captcha fields.
    #[serde(flatten)]
    pub captcha: CaptchaProof,
}

/// `POST /password/reset`: `token` (from the mailed link), or `email` + `code` (purpose
/// `reset_password`), and the new password.
#[derive(Debug, Clone, Deserialize)]
pub struct ResetPasswordRequest {
    /// The token of the reset link.
    #[serde(default)]
    pub token: Option<SecretString>,
    /// The account's email address (with `code`).
    #[serde(default)]
    pub email: Option<String>,
    /// The mailed code (with `email`).
    #[serde(default)]
    pub code: Option<SecretString>,
    /// The new password.
    pub new_password: SecretString,
}

/// `{"sent":true}`: the answer of `POST /email/code` and `POST /password/forgot`, whether or not
/// the address is known.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SentResponse {
    /// Always `true`.
    pub sent: bool,
}
