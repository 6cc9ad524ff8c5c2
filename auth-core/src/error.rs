//! Errors: [`AuthError`] for every flow of the [`Auth`](crate::Auth) service, [`StoreError`] for
//! store backends.

use std::fmt;

/// Why a password was refused by the [`PasswordPolicy`](crate::PasswordPolicy).
///
/// Serialized as the `snake_case` strings listed in `details.reasons` of the API's
/// `weak_password` error (`too_short`, `too_long`, `too_common`, `missing_uppercase`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WeakPasswordReason {
    /// Fewer characters (Unicode scalar values) than the policy's minimum.
    TooShort,
    /// More characters than the policy's maximum.
    TooLong,
    /// A common password, a dictionary word or a pattern that an online attacker guesses in
    /// under 10^6 tries (zxcvbn score 0 or 1), also counting the user's own username and email.
    TooCommon,
    /// No upper-case letter while the policy asks for one.
    MissingUppercase,
    /// No lower-case letter while the policy asks for one.
    MissingLowercase,
    /// No ASCII digit while the policy asks for one.
    MissingDigit,
    /// No character outside letters and digits while the policy asks for one.
    MissingSymbol,
}

/// One rejected request field, rendered in `details.fields` of `invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as the client sent it (`snake_case`), or `body` for the body as a whole.
    pub field: String,
    /// A short human sentence; never contains the field's value.
    pub message: String,
}

impl FieldError {
    /// A field error for `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The error of every [`Auth`](crate::Auth) flow.
///
/// Each variant has a stable machine code ([`AuthError::code`]) from the API contract; adapters map
/// it to an HTTP status. [`Display`](fmt::Display) is a human sentence that is safe to show a
/// client: it never contains a secret, a hash, SQL, or whether an account exists. Details of
/// dependency failures are kept in the `source` chain for the server log only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Malformed input: a missing, ill-typed or out-of-range field (`invalid_request`, 400).
    #[error("the request is invalid")]
    InvalidRequest {
        /// The fields that were refused.
        fields: Vec<FieldError>,
    },
    /// The password policy refused the password (`weak_password`, 400).
    #[error("the password does not meet the password policy")]
    WeakPassword {
        /// Every reason that applies.
        reasons: Vec<WeakPasswordReason>,
    },
    /// The route needs a captcha and none was sent (`captcha_required`, 400).
    #[error("a captcha is required")]
    CaptchaRequired,
    /// The captcha was wrong, expired or already used (`captcha_invalid`, 400).
    #[error("the captcha is invalid, expired or already used")]
    CaptchaInvalid,
    /// An email code or reset token was wrong, expired or already used (`invalid_code`, 400).
    #[error("the code is invalid, expired or already used")]
    InvalidCode,
    /// Unknown account or wrong password; the two are indistinguishable (`invalid_credentials`, 401,
    /// or 403 on password change).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The current password given to a password change was wrong (`invalid_credentials`, but
    /// 403 rather than 401, so clients don't take it for a dead session).
    #[error("the current password is wrong")]
    CurrentPasswordInvalid,
    /// Missing, malformed or badly signed access token (`unauthorized`, 401).
    #[error("a valid access token is required")]
    Unauthorized,
    /// The access token is past its `exp` (`token_expired`, 401).
    #[error("the access token has expired")]
    TokenExpired,
    /// The token's session was logged out, rotated away or revoked (`session_revoked`, 401).
    #[error("the session has been revoked")]
    SessionRevoked,
    /// Unknown or expired refresh token (`invalid_refresh_token`, 401).
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    /// An already-rotated refresh token came back after the reuse grace window; its session has
    /// been revoked (`refresh_token_reused`, 401).
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    /// Right password, but the account is disabled (`account_disabled`, 403).
    #[error("the account is disabled")]
    AccountDisabled,
    /// Authenticated but lacking the required role (`forbidden`, 403).
    #[error("you do not have permission to do this")]
    Forbidden,
    /// The resource does not exist or is not the caller's (`not_found`, 404).
    #[error("not found")]
    NotFound,
    /// The username is taken, compared case-insensitively (`username_taken`, 409).
    #[error("the username is already taken")]
    UsernameTaken,
    /// The email address is taken, compared case-insensitively (`email_taken`, 409).
    #[error("the email address is already registered")]
    EmailTaken,
    /// The change would leave no active admin (`last_admin`, 409).
    #[error("this would leave no active admin")]
    LastAdmin,
    /// A second-factor code (TOTP or recovery code) was wrong, of the wrong shape, or already
    /// used (`invalid_mfa_code`, 400). With a challenge (`POST /login/mfa`, or confirming with an
    /// enrollment token), `attempts_left` says how many more codes it takes.
    #[error("the second-factor code is invalid or was already used")]
    InvalidMfaCode {
        /// Codes the challenge still takes; `None` without a challenge.
        attempts_left: Option<u32>,
    },
    /// The `mfa_token` is unknown, expired, spent, out of attempts, or its password has changed
    /// since (`invalid_mfa_token`, 401): log in with the password again.
    #[error("the second-factor login token is invalid or expired; log in again")]
    InvalidMfaToken,
    /// The action needs a second factor: send a code (`mfa_code` in the body, or the
    /// `X-MFA-Code` header), or use a session made with two factors within the step-up window
    /// (`mfa_required`, 403).
    #[error("this action needs a second-factor code (mfa_code)")]
    MfaRequired,
    /// The account already has an active second factor (`mfa_already_enabled`, 409): disable it
    /// first.
    #[error("a second factor is already enabled")]
    MfaAlreadyEnabled,
    /// A request authenticated by a cookie, or one that would set the token cookies, did not
    /// come from the API's own site or an allowed origin (`csrf_rejected`, 403): its
    /// `Sec-Fetch-Site` is `cross-site` and its `Origin` (else `Referer`) is not allowed, or it
    /// carries neither header.
    #[error("this request did not come from an allowed origin")]
    CsrfRejected,
    /// A rate limit was hit (`rate_limited`, 429).
    #[error("too many requests; retry later")]
    RateLimited {
        /// Whole seconds until the client may retry (`Retry-After`).
        retry_after_seconds: u64,
    },
    /// The captcha verifier failed or timed out; nothing was changed (`captcha_unavailable`, 502).
    #[error("the captcha service is unavailable")]
    CaptchaUnavailable(#[source] BoxError),
    /// The mail server failed; nothing was changed (`mail_unavailable`, 502).
    #[error("the mail service is unavailable")]
    MailUnavailable(#[source] BoxError),
    /// The password hasher's queue is full: too many password checks are waiting already
    /// (`overloaded`, 503 with `Retry-After`). Nothing was changed; the client may retry.
    #[error("the server is busy; retry later")]
    Overloaded {
        /// Whole seconds after which a retry is likely to be served (`Retry-After`).
        retry_after_seconds: u64,
    },
    /// The database or Redis failed; nothing was half-written (`store_unavailable`, 503).
    #[error("the store is unavailable")]
    StoreUnavailable(#[source] StoreError),
    /// A bug or an impossible state (`internal`, 500). Details are for the server log only.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// A boxed error for dependency failures kept in an [`AuthError`]'s source chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl AuthError {
    /// The stable machine code of the API contract, e.g. `"invalid_credentials"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::WeakPassword { .. } => "weak_password",
            Self::CaptchaRequired => "captcha_required",
            Self::CaptchaInvalid => "captcha_invalid",
            Self::InvalidCode => "invalid_code",
            Self::InvalidCredentials | Self::CurrentPasswordInvalid => "invalid_credentials",
            Self::Unauthorized => "unauthorized",
            Self::TokenExpired => "token_expired",
            Self::SessionRevoked => "session_revoked",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::AccountDisabled => "account_disabled",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::UsernameTaken => "username_taken",
            Self::EmailTaken => "email_taken",
            Self::LastAdmin => "last_admin",
            Self::InvalidMfaCode { .. } => "invalid_mfa_code",
            Self::InvalidMfaToken => "invalid_mfa_token",
            Self::MfaRequired => "mfa_required",
            Self::MfaAlreadyEnabled => "mfa_already_enabled",
            Self::CsrfRejected => "csrf_rejected",
            Self::RateLimited { .. } => "rate_limited",
            Self::CaptchaUnavailable(_) => "captcha_unavailable",
            Self::MailUnavailable(_) => "mail_unavailable",
            Self::Overloaded { .. } => "overloaded",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// An `invalid_request` error for one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest { fields: vec![FieldError::new(field, message)] }
    }

    /// An `internal` error from any displayable cause (kept for the server log).
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self::Internal(cause.into())
    }

    /// Whether this error is the server's or a dependency's fault (5xx) rather than the client's.
    #[must_use]
    pub fn is_server_error(&self) -> bool {
        matches!(
            self,
            Self::CaptchaUnavailable(_)
                | Self::MailUnavailable(_)
                | Self::StoreUnavailable(_)
                | Self::Overloaded { .. }
                | Self::Internal(_)
        )
    }
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::UsernameTaken => Self::UsernameTaken,
            StoreError::EmailTaken => Self::EmailTaken,
            StoreError::Corrupt(_) => Self::Internal(Box::new(err)),
            other => Self::StoreUnavailable(other),
        }
    }
}

/// The one error type of the store traits ([`UserStore`](crate::UserStore),
/// [`SessionStore`](crate::SessionStore), [`SecretStore`](crate::SecretStore), [`RateLimiter`](crate::RateLimiter)).
///
/// Backends report uniqueness conflicts as [`UsernameTaken`](Self::UsernameTaken) /
/// [`EmailTaken`](Self::EmailTaken), every I/O or driver failure as
/// [`Backend`](Self::Backend) (the service answers `store_unavailable`, 503), and rows they
/// cannot decode as [`Corrupt`](Self::Corrupt) (`internal`, 500).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another user has this username (case-insensitive).
    #[error("username already taken")]
    UsernameTaken,
    /// Another user has this email address (case-insensitive).
    #[error("email already taken")]
    EmailTaken,
    /// The backend failed: connection refused, timeout, pool exhausted, I/O error.
    #[error("store backend failed: {0}")]
    Backend(#[source] BoxError),
    /// A stored value could not be decoded.
    #[error("stored data could not be decoded: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Wraps a driver error as [`StoreError::Backend`].
    pub fn backend(err: impl Into<BoxError>) -> Self {
        Self::Backend(err.into())
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
