//! What the session flows return: [`IssuedTokens`] (a session's access and refresh tokens),
//! [`LoginOutcome`] (tokens, or a second step to take first) and [`SecondFactorChallenge`].
//!
//! These are domain values, not response bodies: an HTTP dialect (`auth-http`) renders them in
//! its own envelope and casing.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::store::Session;
use crate::user::User;

/// The tokens of a session that has just been created ([`Auth::register`], a completed
/// [`Auth::login`], [`Auth::issue_session`]) or refreshed ([`Auth::refresh`]). `Debug` redacts
/// both tokens.
///
/// [`Auth::register`]: crate::Auth::register
/// [`Auth::login`]: crate::Auth::login
/// [`Auth::issue_session`]: crate::Auth::issue_session
/// [`Auth::refresh`]: crate::Auth::refresh
#[derive(Clone)]
#[non_exhaustive]
pub struct IssuedTokens {
    /// The JWT access token (`typ: at+jwt`, RFC 9068), sent as `Authorization: Bearer`.
    pub access_token: String,
    /// Seconds until the access token expires (its `exp - iat`).
    pub expires_in: u64,
    /// The opaque refresh token: 256 bits from the OS CSPRNG, base64url, stored only as its
    /// SHA-256.
    pub refresh_token: String,
    /// When the tokens were issued (the access token's `iat`), whole seconds.
    pub issued_at: DateTime<Utc>,
    /// The session the tokens belong to (`sid` of the access token).
    pub session: Session,
    /// The user, as stored when the tokens were issued.
    pub user: User,
}

impl IssuedTokens {
    /// Seconds from [`issued_at`](Self::issued_at) until the session's absolute expiry (the
    /// refresh token dies earlier if the session goes unused for the idle timeout); 0 if past.
    #[must_use]
    pub fn refresh_expires_in(&self) -> u64 {
        u64::try_from((self.session.expires_at - self.issued_at).num_seconds()).unwrap_or(0)
    }
}

impl fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[redacted]")
            .field("issued_at", &self.issued_at)
            .field("session", &self.session.id)
            .field("user", &self.user.id)
            .finish()
    }
}

/// What a password login led to.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// The user is logged in: a new session and its tokens.
    Authenticated(Box<IssuedTokens>),
    /// The password was right, but the account has a second factor: no session yet; the client
    /// sends the challenge back with a code to `POST /login/mfa`
    /// ([`Auth::login_second_factor`](crate::Auth::login_second_factor)).
    SecondFactorRequired(SecondFactorChallenge),
    /// The password was right, but the user's role requires a second factor and they have
    /// none: no session; the challenge can only enroll one (`POST /mfa/totp/enroll` and
    /// `/confirm` with `mfa_token`), which then logs the user in.
    EnrollmentRequired(SecondFactorChallenge),
}

impl LoginOutcome {
    /// The tokens, if the login is complete.
    #[must_use]
    pub fn tokens(self) -> Option<IssuedTokens> {
        match self {
            Self::Authenticated(tokens) => Some(*tokens),
            Self::SecondFactorRequired(_) | Self::EnrollmentRequired(_) => None,
        }
    }
}

/// A pending second step of a login: an opaque, short-lived, single-use challenge that the
/// client sends back with its second factor. `Debug` redacts the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct SecondFactorChallenge {
    /// The opaque challenge token.
    pub token: String,
    /// The second factors the account accepts, e.g. `totp`, `recovery_code`.
    pub methods: Vec<&'static str>,
    /// Seconds until the challenge expires.
    pub expires_in: u64,
}

impl SecondFactorChallenge {
    /// A challenge: `token`, the accepted `methods`, and its lifetime in seconds.
    #[must_use]
    pub fn new(token: String, methods: Vec<&'static str>, expires_in: u64) -> Self {
        Self { token, methods, expires_in }
    }
}

impl fmt::Debug for SecondFactorChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecondFactorChallenge")
            .field("token", &"[redacted]")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// What [`Auth::export_account`](crate::Auth::export_account) gathers about the caller: the
/// profile (preferences and metadata included), the live sessions and the newest audit events.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AccountExport {
    /// When the export was made.
    pub exported_at: DateTime<Utc>,
    /// The profile.
    pub user: User,
    /// Live sessions, newest first.
    pub sessions: Vec<Session>,
    /// The user's audit events, newest first (at most 1000).
    pub audit: Vec<AuditEvent>,
}

/// A started TOTP enrollment ([`Auth::enroll_totp`](crate::Auth::enroll_totp)): what the user's
/// authenticator app needs. Nothing is active until a code confirms it. `Debug` redacts the
/// secret.
#[derive(Clone)]
#[non_exhaustive]
pub struct TotpEnrollment {
    /// The secret, RFC 4648 base32 without padding (for typing it in).
    pub secret: String,
    /// `otpauth://totp/{issuer}:{account}?secret=…&issuer=…` (SHA-1, 6 digits, 30 s).
    pub otpauth_uri: String,
    /// The URI as a QR code: `data:image/png;base64,…`.
    pub qr_png: String,
    /// Seconds until the enrollment must be confirmed.
    pub expires_in: u64,
}

impl fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpEnrollment").field("secret", &"[redacted]").field("expires_in", &self.expires_in).finish()
    }
}

/// A confirmed TOTP factor ([`Auth::confirm_totp`](crate::Auth::confirm_totp)): the recovery
/// codes, shown this once, and, when the enrollment was the one a login required, that login's
/// session. `Debug` redacts the codes.
#[derive(Clone)]
#[non_exhaustive]
pub struct TotpConfirmation {
    /// Ten single-use recovery codes, `XXXXX-XXXXX` (50 bits each); stored only as keyed hashes.
    pub recovery_codes: Vec<String>,
    /// The session of a login that had to enroll first (`mfa_token` given); `None` otherwise.
    pub tokens: Option<Box<IssuedTokens>>,
}

impl fmt::Debug for TotpConfirmation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpConfirmation")
            .field("recovery_codes", &self.recovery_codes.len())
            .field("tokens", &self.tokens)
            .finish()
    }
}

/// The caller's second-factor state (`GET /mfa`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MfaStatus {
    /// Whether a TOTP factor is active (logins need it).
    pub totp_enabled: bool,
    /// When it was confirmed.
    pub totp_confirmed_at: Option<DateTime<Utc>>,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
    /// Whether the caller's role requires a factor.
    pub required: bool,
}
