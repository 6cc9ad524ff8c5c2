//! The canonical API's response bodies (`docs/API.md`), built from the core's domain values.
//! They are `Serialize` only: what [`Canonical`](crate::Canonical) writes.

use std::fmt;

use auth_core::{
    CaptchaChallenge, CaptchaStatus, IssuedTokens, MfaStatus, Preferences, SecondFactorChallenge, Session,
    TotpConfirmation, TotpEnrollment, User,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// The **Tokens** answer of register, login and refresh. `Debug` redacts the tokens.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "access_token": "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",
    "token_type": "Bearer", "expires_in": 3600,
    "refresh_token": "p2mJ6yG3xv0sJ8cW1mYt3Qe3fVYV5kKq2m8rXw4nZ0A", "refresh_expires_in": 2_592_000,
    "user": {"id": "01939a2b-7c1d-7e4f-9a0b-1c2d3e4f5a6b", "username": "ada", "email": "ada@example.com",
        "email_verified": false, "role": "user", "status": "active", "metadata": {},
        "preferences": {"theme": "light", "language": "en"}, "created_at": "2026-12-04T10:00:00Z",
        "updated_at": "2026-12-04T10:00:00Z", "last_login_at": "2026-12-04T10:00:00Z"}
})))]
pub struct TokenResponse {
    /// A JWT access token (`typ: at+jwt`).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The opaque refresh token (256 bits, base64url); `None` (the field left out) when it
    /// travels only in its `HttpOnly` cookie (`TokenTransport::Cookie`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the session's absolute expiry (the refresh token dies earlier if the
    /// session goes unused for the idle timeout).
    pub refresh_expires_in: u64,
    /// The user.
    pub user: User,
}

impl From<IssuedTokens> for TokenResponse {
    fn from(tokens: IssuedTokens) -> Self {
        Self {
            refresh_expires_in: tokens.refresh_expires_in(),
            access_token: tokens.access_token,
            token_type: "Bearer",
            expires_in: tokens.expires_in,
            refresh_token: Some(tokens.refresh_token).filter(|t| !t.is_empty()),
            user: tokens.user,
        }
    }
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

/// The answer of a password login that needs a second step:
/// `{"mfa_required":true,"mfa_token":"…","methods":[…],"expires_in":300}`. `Debug` redacts the
/// token.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecondFactorResponse {
    /// Always `true`.
    pub mfa_required: bool,
    /// The opaque challenge to send back with the second factor.
    pub mfa_token: String,
    /// The accepted second factors.
    pub methods: Vec<&'static str>,
    /// Seconds until the challenge expires.
    pub expires_in: u64,
}

impl From<SecondFactorChallenge> for SecondFactorResponse {
    fn from(challenge: SecondFactorChallenge) -> Self {
        Self {
            mfa_required: true,
            mfa_token: challenge.token,
            methods: challenge.methods,
            expires_in: challenge.expires_in,
        }
    }
}

impl fmt::Debug for SecondFactorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecondFactorResponse")
            .field("mfa_token", &"[redacted]")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The answer of a password login whose role requires a second factor the user lacks:
/// `{"mfa_enrollment_required":true,"mfa_token":"…","methods":["totp"],"expires_in":600}`; the
/// token can only enroll (`POST /mfa/totp/enroll`, `/confirm`). `Debug` redacts the token.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentRequiredResponse {
    /// Always `true`.
    pub mfa_enrollment_required: bool,
    /// The enrollment token.
    pub mfa_token: String,
    /// The factors that can be enrolled.
    pub methods: Vec<&'static str>,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl From<SecondFactorChallenge> for EnrollmentRequiredResponse {
    fn from(challenge: SecondFactorChallenge) -> Self {
        Self {
            mfa_enrollment_required: true,
            mfa_token: challenge.token,
            methods: challenge.methods,
            expires_in: challenge.expires_in,
        }
    }
}

impl fmt::Debug for EnrollmentRequiredResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentRequiredResponse").field("mfa_token", &"[redacted]").finish_non_exhaustive()
    }
}

/// `POST /mfa/totp/enroll`: `{"secret","otpauth_uri","qr_png","expires_in"}`. `Debug` redacts the
/// secret.
#[derive(Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpEnrollmentResponse {
    /// Base32 secret, for typing into an app.
    pub secret: String,
    /// `otpauth://totp/…`.
    pub otpauth_uri: String,
    /// `data:image/png;base64,…` QR code of the URI.
    pub qr_png: String,
    /// Seconds until the enrollment must be confirmed.
    pub expires_in: u64,
}

impl From<TotpEnrollment> for TotpEnrollmentResponse {
    fn from(e: TotpEnrollment) -> Self {
        Self { secret: e.secret, otpauth_uri: e.otpauth_uri, qr_png: e.qr_png, expires_in: e.expires_in }
    }
}

impl fmt::Debug for TotpEnrollmentResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpEnrollmentResponse").field("secret", &"[redacted]").finish_non_exhaustive()
    }
}

/// `POST /mfa/totp/confirm` and `POST /mfa/recovery-codes`: `{"recovery_codes":[…]}`, with the
/// **Tokens** fields beside them when a required enrollment finished a login. `Debug` redacts.
#[derive(Clone, Serialize)]
// Its OpenAPI schema is written in `openapi.rs`: utoipa cannot express an optional flattened
// struct (it would make the token fields required).
pub struct RecoveryCodesResponse {
    /// Ten single-use codes, shown once.
    pub recovery_codes: Vec<String>,
    /// The login's tokens, when the confirmation finished one.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenResponse>,
}

impl From<TotpConfirmation> for RecoveryCodesResponse {
    fn from(c: TotpConfirmation) -> Self {
        Self { recovery_codes: c.recovery_codes, tokens: c.tokens.map(|t| TokenResponse::from(*t)) }
    }
}

impl fmt::Debug for RecoveryCodesResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryCodesResponse")
            .field("recovery_codes", &self.recovery_codes.len())
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// `GET /mfa`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MfaStatusResponse {
    /// Whether a TOTP factor is active.
    pub totp_enabled: bool,
    /// When it was confirmed.
    pub totp_confirmed_at: Option<DateTime<Utc>>,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Whether the caller's role requires a factor.
    pub required: bool,
}

impl From<MfaStatus> for MfaStatusResponse {
    fn from(s: MfaStatus) -> Self {
        Self {
            totp_enabled: s.totp_enabled,
            totp_confirmed_at: s.totp_confirmed_at,
            recovery_codes_left: s.recovery_codes_left,
            required: s.required,
        }
    }
}

/// One entry of `GET /sessions`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// How the session was authenticated (RFC 8176 values, as the access tokens' `amr`):
    /// `["pwd"]`, `["pwd","otp"]`, …
    pub amr: &'static [&'static str],
    /// Whether this is the session of the access token making the request.
    pub current: bool,
}

impl SessionInfo {
    /// The entry of `session`, marked current when its id is `current_sid`.
    #[must_use]
    pub fn new(session: Session, current_sid: Uuid) -> Self {
        Self {
            current: session.id == current_sid,
            id: session.id,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            ip: session.ip,
            user_agent: session.user_agent,
            amr: session.auth_method.amr(),
        }
    }
}

/// `GET /sessions`: `{"sessions":[…]}`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsResponse {
    /// The caller's live sessions, newest first.
    pub sessions: Vec<SessionInfo>,
}

/// The answer of `PUT /me/preferences`: `{"preferences":{…}}`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreferencesResponse {
    /// The preferences after the update.
    pub preferences: Preferences,
}

/// `GET /captcha/status`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaptchaStatusResponse {
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

impl From<CaptchaStatus> for CaptchaStatusResponse {
    fn from(s: CaptchaStatus) -> Self {
        Self {
            captcha_enabled: s.captcha_enabled,
            provider: s.provider,
            site_key: s.site_key,
            login_rate_limit_enabled: s.login_rate_limit_enabled,
            email_verification_required: s.email_verification_required,
        }
    }
}

/// `GET /captcha`: a challenge, or `{"enabled":false,"captcha_id":"","image":""}`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

impl From<Option<CaptchaChallenge>> for CaptchaResponse {
    fn from(challenge: Option<CaptchaChallenge>) -> Self {
        match challenge {
            Some(c) => Self { enabled: true, captcha_id: c.captcha_id, image: c.image, expires_in: Some(c.expires_in) },
            None => Self { enabled: false, captcha_id: String::new(), image: String::new(), expires_in: None },
        }
    }
}

/// `{"sent":true}`: the answer of `POST /email/code` and `POST /password/forgot`, whether or not
/// the address is known.
#[derive(Debug, Clone, Copy, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SentResponse {
    /// Always `true`.
    pub sent: bool,
}

/// `GET /admin/users`: `{"users":[…],"next_cursor":…}`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPageResponse {
    /// The users of this page, in creation order.
    pub users: Vec<auth_core::User>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /admin/audit`, `GET /me/audit`: `{"events":[…],"next_cursor":…}`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPageResponse {
    /// The events of this page, newest first.
    pub events: Vec<auth_core::AuditEvent>,
    /// The cursor of the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `DELETE /admin/users/{id}/sessions`: `{"revoked":n}`.
#[derive(Debug, Clone, Copy, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedResponse {
    /// How many sessions ended.
    pub revoked: u64,
}

/// `GET /me/export`: `{"exported_at","user","sessions","audit_events"}`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountExportResponse {
    /// When the export was made.
    pub exported_at: DateTime<Utc>,
    /// The profile, preferences and metadata.
    pub user: auth_core::User,
    /// Live sessions, newest first.
    pub sessions: Vec<SessionInfo>,
    /// The user's audit events, newest first.
    pub audit_events: Vec<auth_core::AuditEvent>,
}

impl From<auth_core::AccountExport> for AccountExportResponse {
    fn from(export: auth_core::AccountExport) -> Self {
        Self {
            exported_at: export.exported_at,
            user: export.user,
            sessions: export.sessions.into_iter().map(|s| SessionInfo::new(s, Uuid::nil())).collect(),
            audit_events: export.audit,
        }
    }
}
