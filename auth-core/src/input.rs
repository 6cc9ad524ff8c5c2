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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"username": "ada", "email": "ada@example.com", "password": "correct horse battery staple"})))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"username": "ada", "password": "correct horse battery staple"})))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogoutRequest {
    /// Log out every session of the user, not just this one.
    #[serde(default)]
    pub all: bool,
}

/// `PUT /me/preferences`: the fields to change.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangePasswordRequest {
    /// The password the user has now.
    pub current_password: SecretString,
    /// The new password.
    pub new_password: SecretString,
    /// A second-factor code (TOTP or recovery code), needed when the user has a factor and the
    /// session was not made with two factors within the step-up window.
    #[serde(default)]
    pub mfa_code: Option<SecretString>,
}

/// What an email code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyEmailRequest {
    /// The mailed code (purpose `verify_email`).
    pub code: SecretString,
}

/// `POST /password/forgot`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// `POST /me/email`: start changing the account's address.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailChangeRequest {
    /// The new address; a code goes there.
    pub new_email: String,
    /// The current password, re-checked (a wrong one counts toward the lockout).
    pub password: SecretString,
    /// A second-factor code, as [`ChangePasswordRequest::mfa_code`].
    #[serde(default)]
    pub mfa_code: Option<SecretString>,
}

/// `POST /me/email/confirm`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailChangeConfirmRequest {
    /// The code mailed to the new address.
    pub code: SecretString,
}

/// `DELETE /me`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteAccountRequest {
    /// The current password, re-checked (a wrong one counts toward the lockout).
    pub password: SecretString,
    /// A second-factor code, as [`ChangePasswordRequest::mfa_code`].
    #[serde(default)]
    pub mfa_code: Option<SecretString>,
}

/// `POST /mfa/totp/enroll`: with an access token, the current password; with the enrollment
/// token a login answered `mfa_enrollment_required` with, that token.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpEnrollRequest {
    /// The current password (with an access token), re-checked.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// The enrollment token (without an access token).
    #[serde(default)]
    pub mfa_token: Option<SecretString>,
}

/// `POST /mfa/totp/confirm`: the first code of the new factor.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpConfirmRequest {
    /// A code from the authenticator app.
    pub code: SecretString,
    /// The enrollment token, when enrolling without an access token.
    #[serde(default)]
    pub mfa_token: Option<SecretString>,
}

/// `POST /mfa/recovery-codes` and `DELETE /mfa/totp`: the password and a second-factor code.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MfaConfirmRequest {
    /// The current password, re-checked.
    pub password: SecretString,
    /// A TOTP code or a recovery code.
    pub code: SecretString,
}

/// `POST /login/mfa`: the challenge of a password login and one second factor.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MfaLoginRequest {
    /// The `mfa_token` the password login answered.
    pub mfa_token: SecretString,
    /// A TOTP code.
    #[serde(default)]
    pub code: Option<SecretString>,
    /// Or a recovery code.
    #[serde(default)]
    pub recovery_code: Option<SecretString>,
}

/// `GET /admin/users` query parameters, as text: the service validates each (a bad one is
/// `invalid_request` naming it).
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ListUsersRequest {
    /// Username or email prefix, matched case-insensitively.
    #[serde(default)]
    pub query: Option<String>,
    /// `active` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    /// One of [`AuthConfig::roles`](crate::AuthConfig::roles).
    #[serde(default)]
    pub role: Option<String>,
    /// 1–200 (default 50).
    #[serde(default)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET /admin/audit` (and, without `user_id`, `GET /me/audit`) query parameters, as text.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ListAuditRequest {
    /// Only events about this user (a UUID).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Only events of this type (`login_failed`, …).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Only events at or after this RFC 3339 time.
    #[serde(default)]
    pub since: Option<String>,
    /// Only events before this RFC 3339 time.
    #[serde(default)]
    pub until: Option<String>,
    /// 1–200 (default 50).
    #[serde(default)]
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `POST /admin/users`: an account made by an admin. Without `password`, a set-password link
/// (a reset link) is mailed to `email`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminCreateUserRequest {
    /// Username (at least one of `username` and `email`).
    #[serde(default)]
    pub username: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// The initial password, checked against the policy; the only time an admin handles one.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Role (default `user`).
    #[serde(default)]
    pub role: Option<String>,
    /// Whether the address counts as verified (default false).
    #[serde(default)]
    pub email_verified: bool,
}

/// `PATCH /admin/users/{id}`: the fields to change.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminUpdateUserRequest {
    /// New role; ends every session of the user.
    #[serde(default)]
    pub role: Option<String>,
    /// `active` or `disabled`; disabling ends every session of the user.
    #[serde(default)]
    pub status: Option<String>,
    /// New email address.
    #[serde(default)]
    pub email: Option<String>,
    /// New verified flag.
    #[serde(default)]
    pub email_verified: Option<bool>,
    /// New username.
    #[serde(default)]
    pub username: Option<String>,
    /// Merged into the host metadata as a JSON Merge Patch (RFC 7396): a `null` member removes
    /// that key.
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}
