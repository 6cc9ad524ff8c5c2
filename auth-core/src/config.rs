//! [`AuthConfig`]: every knob of the service, with the API contract's secure defaults.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use crate::captcha::CaptchaAction;
use crate::context::ClientIpHeader;
use crate::mfa::MfaKey;
use crate::password::{Argon2Params, PasswordPolicy};

/// Shortest accepted JWT secret, in bytes (RFC 7518 §3.2: a key of at least the hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A configuration the service refuses to start with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The JWT secret is shorter than [`MIN_JWT_SECRET_BYTES`].
    #[error("the JWT secret must be at least {MIN_JWT_SECRET_BYTES} bytes (got {0})")]
    JwtSecretTooShort(usize),
    /// A duration is zero or out of range.
    #[error("{0} must be between 1 second and 10 years")]
    BadDuration(&'static str),
    /// The Argon2 parameters are out of range.
    #[error("invalid Argon2 parameters: {0}")]
    Argon2(String),
    /// A store the service needs was not given to the builder.
    #[error("no {0} was given to Auth::builder()")]
    MissingStore(&'static str),
    /// A setting that needs mail is on, but no mailer was given to the builder.
    #[error("{0} needs a mailer: give one to AuthBuilder::mailer (SmtpMailer), or turn it off")]
    MissingMailer(&'static str),
    /// The authenticator issuer (`AuthConfig::mfa.issuer`, else `AuthConfig::issuer`) is empty
    /// or contains `:`, which the `otpauth://` format cannot carry.
    #[error("the second-factor issuer {0:?} must be non-empty and must not contain ':' (AUTH_MFA_ISSUER)")]
    BadMfaIssuer(String),
    /// `AuthConfig::mfa.required_for_roles` names `user`, the role registration gives: a new
    /// account's first session would have no second factor.
    #[error(
        "AUTH_MFA_REQUIRED_FOR_ROLES cannot name the role registration gives (user): registration would start a \
         session without a second factor; require it for other roles (e.g. admin)"
    )]
    MfaRequiredForNewUsers,
    /// A mailer was given but `AuthConfig::public_url` is not set, so no reset link can be built.
    #[error(
        "a mailer turns on password-reset links, which need AuthConfig::public_url (the app's public base URL, \
         e.g. https://app.example.com)"
    )]
    MissingPublicUrl,
    /// `AuthConfig::browser.cookie_path` is not a cookie path: it must start with `/` and hold
    /// visible ASCII without `;` or `,`.
    #[error(
        "the cookie path {0:?} (AuthConfig::browser.cookie_path) must start with '/' and hold no spaces, ';' or ','"
    )]
    BadCookiePath(String),
    /// The introspection client's id or secret is not usable.
    #[error("introspection client (AUTH_INTROSPECTION_CLIENT_ID / AUTH_INTROSPECTION_SECRET): {0}")]
    BadIntrospectionClient(&'static str),
    /// [`AuthConfig::jwks_max_age`] is zero or over a day.
    #[error("jwks_max_age (AUTH_JWKS_MAX_AGE) must be between 1 and 86400 seconds")]
    BadJwksMaxAge,
}

/// One rate-limit rule: at most `limit` hits per sliding `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRule {
    /// Hits allowed per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

impl RateRule {
    /// `limit` hits per `window_seconds`.
    #[must_use]
    pub const fn new(limit: u32, window_seconds: u64) -> Self {
        Self { limit, window: Duration::from_secs(window_seconds) }
    }

    /// Parses `LIMIT/SECONDS` (`5/60`), or `off` for no rule.
    ///
    /// # Errors
    /// A message saying what is expected.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let parsed = text
            .split_once('/')
            .and_then(|(limit, secs)| Some(Self::new(limit.trim().parse().ok()?, secs.trim().parse().ok()?)));
        match parsed {
            Some(rule) if rule.limit > 0 && !rule.window.is_zero() => Ok(Some(rule)),
            _ => Err(format!("expected LIMIT/SECONDS such as 5/60, or off; got {text:?}")),
        }
    }
}

/// The rate limits the service applies; `None` turns a rule off. Defaults are the API contract's (seed 003, NIST SP 800-63B §5.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimits {
    /// Login attempts per client IP (default 5 per 60 s).
    pub login_per_ip: Option<RateRule>,
    /// Password attempts per account since its last success (default 10 per 900 s): every login
    /// and password-change attempt takes a slot atomically before the password is verified, and
    /// a proven password clears the count, so only failures accumulate; once full, attempts get
    /// 429 from any IP until the window passes. The account is its user id when it exists (its
    /// username, email and their case variants share one count), else the
    /// [`identifier_key`](crate::validate::identifier_key) of what was typed. Trade-off: anyone
    /// who knows a username can lock its owner out of password logins for the window; the per-IP
    /// limit and a captcha bound how fast, and recovery (codes, reset) is not affected.
    pub login_failures_per_account: Option<RateRule>,
    /// Registration attempts per client IP, successful or not (default 3 per 86400 s).
    pub register_per_ip: Option<RateRule>,
    /// Codes requested per address (default 3 per 3600 s).
    pub email_code_per_address: Option<RateRule>,
    /// Reset links requested per address (default 3 per 86400 s). Reset attempts are not counted
    /// here (that would let anyone block a victim's recovery): a code dies after its own
    /// `email_code_max_attempts`, and adapters count attempts per IP.
    pub password_reset_per_account: Option<RateRule>,
    /// Code and reset mails (`POST /email/code`, `POST /password/forgot`) requested per client
    /// IP, whatever the address (default 10 per 3600 s): bounds mail bombing across addresses.
    pub mail_per_ip: Option<RateRule>,
    /// Every other route, per client IP (default 60 per 60 s).
    pub other_per_ip: Option<RateRule>,
    /// Second-factor codes per account (default 10 per 900 s): every code (`POST /login/mfa`,
    /// confirming an enrollment, step-up, disabling, new recovery codes) takes a slot before it
    /// is checked and a right one clears the count, so
    /// only failures accumulate. Unlike `login_failures_per_account`, a right password does not
    /// clear it: someone who knows the password gets 10 guesses per window, not 5 per login.
    pub mfa_failures_per_account: Option<RateRule>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_per_ip: Some(RateRule::new(5, 60)),
            login_failures_per_account: Some(RateRule::new(10, 900)),
            register_per_ip: Some(RateRule::new(3, 86_400)),
            email_code_per_address: Some(RateRule::new(3, 3600)),
            password_reset_per_account: Some(RateRule::new(3, 86_400)),
            mail_per_ip: Some(RateRule::new(10, 3600)),
            other_per_ip: Some(RateRule::new(60, 60)),
            mfa_failures_per_account: Some(RateRule::new(10, 900)),
        }
    }
}

/// One rule of [`RateLimits`], by name: what the service counts, the `rule` reported to
/// [`AuthEvents::rate_limited`](crate::AuthEvents::rate_limited), and the middle part of limiter
/// keys (`rl:{rule}:{key}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateRuleName {
    /// [`RateLimits::login_per_ip`].
    LoginPerIp,
    /// [`RateLimits::login_failures_per_account`].
    LoginFailuresPerAccount,
    /// [`RateLimits::register_per_ip`].
    RegisterPerIp,
    /// [`RateLimits::email_code_per_address`].
    EmailCodePerAddress,
    /// [`RateLimits::password_reset_per_account`].
    PasswordResetPerAccount,
    /// [`RateLimits::mail_per_ip`].
    MailPerIp,
    /// [`RateLimits::other_per_ip`].
    OtherPerIp,
    /// [`RateLimits::mfa_failures_per_account`].
    MfaFailuresPerAccount,
}

impl RateRuleName {
    /// The rule's name, as the field of [`RateLimits`]: `login_per_ip`, ….
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginPerIp => "login_per_ip",
            Self::LoginFailuresPerAccount => "login_failures_per_account",
            Self::RegisterPerIp => "register_per_ip",
            Self::EmailCodePerAddress => "email_code_per_address",
            Self::PasswordResetPerAccount => "password_reset_per_account",
            Self::MailPerIp => "mail_per_ip",
            Self::OtherPerIp => "other_per_ip",
            Self::MfaFailuresPerAccount => "mfa_failures_per_account",
        }
    }
}

impl RateLimits {
    /// The rule named `name`; `None` when it is off.
    #[must_use]
    pub fn rule(&self, name: RateRuleName) -> Option<RateRule> {
        match name {
            RateRuleName::LoginPerIp => self.login_per_ip,
            RateRuleName::LoginFailuresPerAccount => self.login_failures_per_account,
            RateRuleName::RegisterPerIp => self.register_per_ip,
            RateRuleName::EmailCodePerAddress => self.email_code_per_address,
            RateRuleName::PasswordResetPerAccount => self.password_reset_per_account,
            RateRuleName::MailPerIp => self.mail_per_ip,
            RateRuleName::OtherPerIp => self.other_per_ip,
            RateRuleName::MfaFailuresPerAccount => self.mfa_failures_per_account,
        }
    }

    /// Whether any rule is on.
    #[must_use]
    pub fn any(&self) -> bool {
        [
            self.login_per_ip,
            self.login_failures_per_account,
            self.register_per_ip,
            self.email_code_per_address,
            self.password_reset_per_account,
            self.mail_per_ip,
            self.other_per_ip,
            self.mfa_failures_per_account,
        ]
        .iter()
        .any(Option::is_some)
    }

    /// Every rule off.
    #[must_use]
    pub fn off() -> Self {
        Self {
            login_per_ip: None,
            login_failures_per_account: None,
            register_per_ip: None,
            email_code_per_address: None,
            password_reset_per_account: None,
            mail_per_ip: None,
            other_per_ip: None,
            mfa_failures_per_account: None,
        }
    }
}

/// The second factor (TOTP, RFC 6238, with recovery codes): [`AuthConfig::mfa`].
#[derive(Clone)]
#[non_exhaustive]
pub struct MfaConfig {
    /// The issuer shown by authenticator apps (`otpauth://totp/{issuer}:{account}`); `None`: the
    /// access tokens' [`AuthConfig::issuer`]. Must not contain `:`.
    pub issuer: Option<String>,
    /// The key that seals TOTP secrets at rest (XChaCha20-Poly1305); `None`: derived from the JWT
    /// secret with HKDF-SHA-256 ([`MfaKey::derive`]), so changing that secret then makes every
    /// factor unreadable. Set one explicitly (`AUTH_MFA_ENCRYPTION_KEY`) so that the JWT secret
    /// can change without it; the derived key keeps opening secrets sealed before the explicit
    /// one was set (they are re-sealed on their next use). Recovery codes are keyed hashes under
    /// a key derived from the JWT secret, like mailed codes: a new JWT secret voids them (users
    /// make new ones after their next login with a TOTP code).
    pub encryption_key: Option<MfaKey>,
    /// Keys that still open secrets sealed before a rotation (a secret is re-sealed with the
    /// current key the next time it is used); remove one once no factor is sealed with it.
    pub previous_encryption_keys: Vec<MfaKey>,
    /// Roles whose users must have a factor (default none): their password login answers
    /// `mfa_enrollment_required` with a token that can only enroll one. Not `user`, the role
    /// registration gives ([`ConfigError::MfaRequiredForNewUsers`]). Sessions made before a role
    /// was listed keep working until they end; revoke them to enforce the policy at once.
    pub required_for_roles: std::collections::BTreeSet<String>,
    /// How long after a login with two factors its session may do sensitive things (change the
    /// email or password, delete the account, admin changes) without a fresh code (default
    /// 600 s). Disabling the factor and new recovery codes always take a code.
    pub step_up_window: Duration,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            encryption_key: None,
            previous_encryption_keys: Vec::new(),
            required_for_roles: std::collections::BTreeSet::new(),
            step_up_window: Duration::from_secs(600),
        }
    }
}

impl fmt::Debug for MfaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MfaConfig")
            .field("issuer", &self.issuer)
            .field("encryption_key", &self.encryption_key.as_ref().map(|_| "[redacted]"))
            .field("previous_encryption_keys", &self.previous_encryption_keys.len())
            .field("required_for_roles", &self.required_for_roles)
            .field("step_up_window", &self.step_up_window)
            .finish()
    }
}

/// Which identifiers registration requires. At least one of username and email is always
/// required; these flags require a specific one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RegistrationPolicy {
    /// Require `username` (seed 000, 002).
    pub require_username: bool,
    /// Require `email` (seed 001, 003).
    pub require_email: bool,
}

/// The service's configuration. Build it with [`AuthConfig::new`] and adjust the public fields.
///
/// Defaults (API contract, "Default security settings"): access tokens 3600 s, refresh tokens
/// 30 days absolute and 7 days idle, reuse grace 10 s, Argon2id m = 19456 KiB t = 2 p = 1,
/// NIST password policy, captcha (when a provider is set) on register, login, email code and
/// password forgot, email codes 600 s with 5 tries, reset links 1800 s.
#[derive(Clone)]
#[non_exhaustive]
pub struct AuthConfig {
    pub(crate) jwt_secret: Vec<u8>,
    /// `iss` of access tokens (default `auth`).
    pub issuer: String,
    /// `aud` of access tokens (default `api`).
    pub audience: String,
    /// Access-token lifetime (default 3600 s).
    pub access_token_ttl: Duration,
    /// Absolute session / refresh-token lifetime from login (default 30 days).
    pub refresh_token_ttl: Duration,
    /// A session whose refresh token is unused this long dies (default 7 days).
    pub refresh_idle_timeout: Duration,
    /// How long a spent refresh token still returns its successor (default 10 s).
    pub refresh_reuse_grace: Duration,
    /// Whether every refresh spends the presented refresh token and hands out a successor
    /// (default true: rotation with reuse detection, OAuth 2.0 Security BCP §4.14.2).
    ///
    /// Off, a refresh token stays valid until its session is revoked, expires or goes idle, and
    /// refresh answers the same token again: for clients that never store a new one (seed 001's).
    /// The trade-off: a stolen refresh token works alongside the legitimate one and reuse is
    /// never detected, so the theft ends only with logout, a password change (which then ends
    /// the caller's own session too) or reset, disabling the account, the idle timeout, or the
    /// session's absolute lifetime. Tokens spent while rotation was on are still judged as reuse.
    /// The setting is the service's: routers of several dialects over one `Auth` share it.
    pub refresh_rotation: bool,
    /// Clock skew tolerated on `exp` / `nbf` (default 30 s).
    pub clock_leeway: Duration,
    /// How many verified access tokens to remember, so repeat requests skip the JWT signature
    /// and JSON work (default 131 072, sized for 100 000 clients with live tokens; an entry
    /// keeps a 32-byte digest of the token and its claims, about 0.3 KiB, so about 40 MiB at
    /// most; 0 turns it off). `exp`/`nbf` are
    /// re-checked and the session is looked up on every request either way.
    pub verified_token_cache: usize,
    /// Password rules.
    pub password_policy: PasswordPolicy,
    /// Argon2id cost.
    pub argon2: Argon2Params,
    /// Most password hashes computed at once, on as many threads of the hasher's own (default:
    /// the number of CPUs). Each thread holds `argon2.memory_kib` KiB once it has verified a
    /// password, for reuse; further requests wait in a queue.
    pub max_concurrent_hashes: usize,
    /// Most password hashes waiting for a hasher thread (default 256). When the queue is full,
    /// register, login, password change and reset answer `503 overloaded` with `Retry-After`
    /// instead of queueing without bound (memory, and latency for everyone).
    pub max_queued_hashes: usize,
    /// Which identifiers registration requires.
    pub registration: RegistrationPolicy,
    /// Which routes need a captcha when a captcha provider is enabled.
    pub captcha_actions: HashSet<CaptchaAction>,
    /// Registration needs `email` and a mailed code of purpose `register` (default `false`);
    /// such users start with `email_verified: true`.
    pub require_email_verification: bool,
    /// Lifetime of mailed codes (default 600 s).
    pub email_code_ttl: Duration,
    /// Wrong tries after which a mailed code is dead (default 5).
    pub email_code_max_attempts: u32,
    /// Lifetime of password-reset links (default 1800 s).
    pub reset_token_ttl: Duration,
    /// Rate limits: applied with the builder's [`RateLimiter`](crate::RateLimiter), or an
    /// in-process [`MemoryRateLimiter`](crate::MemoryRateLimiter) when none was given; turn them
    /// off with [`RateLimits::off`].
    pub rate_limits: RateLimits,
    /// Proxies (CIDRs) whose forwarding header HTTP adapters trust to name the client (default
    /// none: forwarding headers are ignored and the socket peer is the client).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one forwarding header read when the peer is a trusted proxy (default
    /// `X-Forwarded-For`); never a fallback to another. See [`ClientIpHeader`].
    pub client_ip_header: ClientIpHeader,
    /// Public base URL of the application, e.g. `https://app.example.com`. Reset links are
    /// `{public_url}/reset-password?token=…`, built from this setting only, never from a
    /// request's `Host` or forwarding headers. Required when a mailer is given: `build()` fails
    /// without it.
    pub public_url: Option<String>,
    /// How long audit events are kept: [`Auth::purge_expired`](crate::Auth::purge_expired)
    /// deletes older ones (default 90 days).
    pub audit_retention: Duration,
    /// Whether a request fails (`503 store_unavailable`) when its audit event cannot be written
    /// (default `false`: the event is written after the answer, and a failed write is logged at
    /// `error` with the event's type and ids, never silently dropped).
    pub audit_required: bool,
    /// Whether confirming a new email address ends every other session of the user (default
    /// `false`: they stay; the old address gets a notice either way).
    pub email_change_revokes_sessions: bool,
    /// The roles an admin may give and filter by (default `admin` and `user`); any other is
    /// `invalid_request`.
    pub roles: std::collections::BTreeSet<String>,
    /// The second factor: authenticator issuer, encryption of secrets at rest, roles that must
    /// enroll, the step-up window.
    pub mfa: MfaConfig,
    /// Browser clients: token transport (body or `HttpOnly` cookies), cookie attributes, and the
    /// origins allowed to call with credentials.
    pub browser: crate::browser::BrowserConfig,
    /// The keys access tokens are signed and verified with (default `None`: HS256 with the
    /// secret given to [`AuthConfig::new`], which then stays the master key of the HMAC keys
    /// either way). Set an `EdDSA`, `ES256` or `RS256` [`KeySet`](crate::keys::KeySet) so that
    /// other services verify tokens with the published public keys (`GET
    /// /.well-known/jwks.json`) and never hold a key that can mint them; see `docs/KEYS.md`.
    pub signing_keys: Option<crate::keys::KeySet>,
    /// `Cache-Control: max-age` of the JWK Set (default 600 s). During a rotation, wait this long
    /// after adding a key as verify-only before it signs, so every cache has it.
    pub jwks_max_age: Duration,
    /// The one client allowed to call token introspection (`POST /introspect`, RFC 7662) with
    /// HTTP Basic authentication (default `None`: the route answers `not_found`).
    pub introspection: Option<IntrospectionClient>,
}

/// The credentials of the service that may call token introspection (RFC 7662 §2.1: the
/// protected resource authenticates, here with HTTP Basic, RFC 7617).
#[derive(Clone)]
pub struct IntrospectionClient {
    client_id: String,
    secret: crate::secret::SecretString,
}

impl fmt::Debug for IntrospectionClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionClient")
            .field("client_id", &self.client_id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl IntrospectionClient {
    /// A client id (non-empty, no `:`, which Basic authentication cannot carry in the id) and a
    /// secret of at least [`MIN_JWT_SECRET_BYTES`] bytes.
    ///
    /// # Errors
    /// [`ConfigError::BadIntrospectionClient`] naming what is wrong.
    pub fn new(client_id: impl Into<String>, secret: impl Into<String>) -> Result<Self, ConfigError> {
        let (client_id, secret) = (client_id.into(), secret.into());
        if client_id.trim().is_empty() || client_id.contains(':') || client_id.chars().any(char::is_control) {
            return Err(ConfigError::BadIntrospectionClient("the client id must be non-empty and hold no ':'"));
        }
        if secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::BadIntrospectionClient("the secret must be at least 32 bytes"));
        }
        Ok(Self { client_id, secret: secret.into() })
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether `client_id` and `secret` are this client's, compared in constant time.
    #[must_use]
    pub fn authenticates(&self, client_id: &str, secret: &str) -> bool {
        let id_ok = crate::secret::bytes_eq(client_id.as_bytes(), self.client_id.as_bytes());
        let secret_ok = crate::secret::bytes_eq(secret.as_bytes(), self.secret.expose().as_bytes());
        id_ok & secret_ok
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("refresh_idle_timeout", &self.refresh_idle_timeout)
            .field("refresh_reuse_grace", &self.refresh_reuse_grace)
            .field("refresh_rotation", &self.refresh_rotation)
            .field("password_policy", &self.password_policy)
            .field("argon2", &self.argon2)
            .field("signing_keys", &self.signing_keys)
            .field("introspection", &self.introspection)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// A configuration with the default settings and `jwt_secret` as the HS256 key (unless
    /// [`signing_keys`](Self::signing_keys) is set) and the master key from which the
    /// refresh-token and one-time-secret HMAC keys are derived.
    ///
    /// # Errors
    /// [`ConfigError::JwtSecretTooShort`] below 32 bytes.
    pub fn new(jwt_secret: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        let jwt_secret = jwt_secret.into();
        if jwt_secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError::JwtSecretTooShort(jwt_secret.len()));
        }
        Ok(Self {
            jwt_secret,
            issuer: "auth".to_owned(),
            audience: "api".to_owned(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_idle_timeout: Duration::from_secs(7 * 24 * 3600),
            refresh_reuse_grace: Duration::from_secs(10),
            refresh_rotation: true,
            clock_leeway: Duration::from_secs(30),
            verified_token_cache: crate::cache::DEFAULT_CACHE_CAPACITY,
            password_policy: PasswordPolicy::default(),
            argon2: Argon2Params::default(),
            max_concurrent_hashes: std::thread::available_parallelism().map_or(2, usize::from),
            max_queued_hashes: 256,
            registration: RegistrationPolicy::default(),
            captcha_actions: CaptchaAction::ALL.into_iter().collect(),
            require_email_verification: false,
            email_code_ttl: Duration::from_secs(600),
            email_code_max_attempts: 5,
            reset_token_ttl: Duration::from_secs(1800),
            public_url: None,
            rate_limits: RateLimits::default(),
            trusted_proxies: Vec::new(),
            client_ip_header: ClientIpHeader::default(),
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            audit_required: false,
            email_change_revokes_sessions: false,
            roles: ["admin", "user"].into_iter().map(str::to_owned).collect(),
            mfa: MfaConfig::default(),
            browser: crate::browser::BrowserConfig::default(),
            signing_keys: None,
            jwks_max_age: Duration::from_secs(600),
            introspection: None,
        })
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
        for (name, d) in [
            ("access_token_ttl", self.access_token_ttl),
            ("refresh_token_ttl", self.refresh_token_ttl),
            ("refresh_idle_timeout", self.refresh_idle_timeout),
            ("email_code_ttl", self.email_code_ttl),
            ("reset_token_ttl", self.reset_token_ttl),
            ("audit_retention", self.audit_retention),
            ("mfa.step_up_window", self.mfa.step_up_window),
        ] {
            if d.as_secs() == 0 || d > MAX {
                return Err(ConfigError::BadDuration(name));
            }
        }
        if self.refresh_reuse_grace > MAX {
            return Err(ConfigError::BadDuration("refresh_reuse_grace"));
        }
        if self.mfa.required_for_roles.contains(crate::user::Role::user().as_str()) {
            return Err(ConfigError::MfaRequiredForNewUsers);
        }
        let issuer = self.mfa.issuer.as_deref().unwrap_or(&self.issuer);
        if issuer.contains(':') || issuer.trim().is_empty() {
            return Err(ConfigError::BadMfaIssuer(issuer.to_owned()));
        }
        if self.jwks_max_age.is_zero() || self.jwks_max_age > Duration::from_secs(24 * 3600) {
            return Err(ConfigError::BadJwksMaxAge);
        }
        if !self.browser.cookie_path_is_valid() {
            return Err(ConfigError::BadCookiePath(self.browser.cookie_path.clone()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(AuthConfig::new(vec![0u8; 31]), Err(ConfigError::JwtSecretTooShort(31))));
        assert!(AuthConfig::new(vec![0u8; 32]).is_ok());
    }

    #[test]
    fn rate_rules_parse() {
        assert_eq!(RateRule::parse("5/60"), Ok(Some(RateRule::new(5, 60))));
        assert_eq!(RateRule::parse(" OFF "), Ok(None));
        for bad in ["5", "5/0", "0/60", "five/60", "5/60s"] {
            assert!(RateRule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cookie_path_that_is_no_path_is_refused() {
        for bad in ["api/auth", "/api auth", "/api;x", "/a,b", ""] {
            let mut cfg = AuthConfig::new(vec![0u8; 32]).unwrap();
            cfg.browser.cookie_path = bad.to_owned();
            assert!(matches!(cfg.validate(), Err(ConfigError::BadCookiePath(p)) if p == bad), "{bad:?}");
        }
        let mut cfg = AuthConfig::new(vec![0u8; 32]).unwrap();
        cfg.browser.cookie_path = "/auth/v1".to_owned();
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let cfg = AuthConfig::new("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t").unwrap();
        assert!(!format!("{cfg:?}").contains("s3cr3t"));
    }
}
