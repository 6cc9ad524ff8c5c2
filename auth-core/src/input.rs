//! The inputs of the [`Auth`](crate::Auth) flows. They are plain data with public fields, so
//! any HTTP dialect can build them from its own request shapes; they also derive `Deserialize`
//! in the canonical API's shape (`snake_case`), which `auth-http`'s canonical dialect parses
//! bodies into directly. What the flows return is in [`outcome`](crate::outcome) and the
//! domain types. Secrets are [`SecretString`]s, redacted in `Debug`.

use serde::{Deserialize, Serialize};

use crate::captcha::CaptchaProof;
use crate::secret::SecretString;
use crate::user::Theme;

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
    /// The access token being replaced, when the client's contract sends it along (seed 001's
    /// `Authorization: Customize <token>`): it must then verify and belong to the refreshed
    /// session (see [`Auth::refresh_with_access_token`](crate::Auth::refresh_with_access_token)).
    /// Never read from the body.
    #[serde(skip)]
    pub access_token: Option<SecretString>,
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

/// `POST /password/change`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangePasswordRequest {
    /// The password the user has now.
    pub current_password: SecretString,
    /// The new password.
    pub new_password: SecretString,
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
    /// A mailed code of purpose `reset_password` that must be taken before the link is mailed,
    /// for contracts that ask for one (seed 003's `verificationCode`). Never read from the
    /// canonical body.
    #[serde(skip)]
    pub code: Option<SecretString>,
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
