//! The bundled example server: `auth-axum`'s router nested at `/api/auth` over SQLite (by
//! default), and a host app with a protected route and an admin-only route.
//!
//! Configuration comes from environment variables (see [`ServerConfig::from_lookup`] and the
//! README). The binary is `auth-example-server`; this library part lets tests start the same
//! app in-process, and [`users`] holds its `users` subcommands.

pub mod cli;
pub mod users;

pub use users::{users_command, USERS_USAGE};

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use auth_axum::{cors_layer, dialect_errors, jwks_router, AuthClaims, AuthRouter, CurrentUser, RequireAuth};
use auth_core::captcha::{ImageCaptcha, ImageCaptchaOptions, SiteverifyCaptcha, SiteverifyOptions, SiteverifyProvider};
use auth_core::ipnet::IpNet;
use auth_core::keys::{JwtAlgorithm, JwtKey, KeyError, KeySet};
use auth_core::mail::{LogMailer, SmtpMailer};
use auth_core::{
    AuditStore, Auth, AuthConfig, CaptchaAction, CaptchaProvider, ClientIpHeader, Clock, MfaKey, MfaStore, RateLimiter,
    RateLimits, RateRule, SecretStore, SessionStore, SystemClock, UserStore, MIN_JWT_SECRET_BYTES,
};
use auth_core::{CookieSameSite, IntrospectionClient, TokenTransport};
use auth_http::dialects;
use auth_http::AllowedOrigins;
use auth_http::{Canonical, Dialect};
use auth_storage::cache::RevocationFeed;
use auth_storage::{
    CachedSessionStore, CachedUserStore, MemoryStore, PostgresStore, RedisOptions, RedisStore, SessionCacheOptions,
    SqliteStore, UserCacheOptions,
};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_http::set_header::SetResponseHeaderLayer;

/// The server's configuration, read from `AUTH_*` environment variables.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// `AUTH_BIND`: listen address (default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// `AUTH_DATABASE_URL`: `sqlite://path` (default `sqlite://auth.db`, created if missing),
    /// `postgres://user:pass@host/db`, or `memory` (nothing persisted).
    pub database_url: String,
    /// `AUTH_REDIS_URL`: sessions, one-time codes and rate limits in Redis, shared by every
    /// instance (unset: in the SQL database, and limits in process memory).
    pub redis_url: Option<String>,
    /// `AUTH_REDIS_PREFIX`: prefix of every Redis key (default `auth:`).
    pub redis_prefix: String,
    /// `AUTH_SESSION_CACHE`: how many live sessions each instance remembers locally when
    /// sessions are in SQLite, PostgreSQL or Redis (default 131072; `0` asks the store on every
    /// request). Revocations reach every instance's cache through PostgreSQL `NOTIFY`, Redis
    /// pub/sub or SQLite's change log; see `auth_storage::cache`.
    pub session_cache: usize,
    /// `AUTH_USER_CACHE`: how many users each instance remembers locally for `CurrentUser` and
    /// `/me` when users are in SQLite or PostgreSQL (default 131072; `0` reads the store every
    /// time); kept exact by the same feeds.
    pub user_cache: usize,
    /// `AUTH_REDIS_REQUIRE_NOEVICTION`: refuse to start unless Redis's `maxmemory-policy` is
    /// `noeviction`, or when it cannot be read (default false: a warning); see
    /// `auth_storage::redis`.
    pub redis_require_noeviction: bool,
    /// `AUTH_JWT_SECRET`: at least 32 bytes; `None` if unset (a random one is generated).
    pub jwt_secret: Option<String>,
    /// `AUTH_ACCESS_TOKEN_TTL`: seconds (default 3600).
    pub access_token_ttl: Duration,
    /// `AUTH_REFRESH_TOKEN_TTL`: seconds (default 2592000).
    pub refresh_token_ttl: Duration,
    /// `AUTH_REFRESH_REUSE_GRACE`: seconds (default 10).
    pub refresh_reuse_grace: Duration,
    /// `AUTH_PASSWORD_COMPOSITION` (`on` | `off`): passwords must mix upper- and lower-case
    /// letters, digits and symbols (default off, on with the success dialect). Length and the
    /// common-password check apply either way.
    pub password_composition: bool,
    /// `AUTH_REFRESH_ROTATION` (`on` | `off`): whether a refresh spends the refresh token and
    /// hands out a successor (default on, or the dialect's default); see
    /// `AuthConfig::refresh_rotation` for what turning it off gives up.
    pub refresh_rotation: bool,
    /// `AUTH_LOG`: a `tracing` filter (default `info`).
    pub log_filter: String,
    /// `AUTH_RATE_LIMITS` (`default` | `off`) and `AUTH_RATE_LIMIT_<RULE>` (`LIMIT/SECONDS` or
    /// `off`); `None` when off. Counters live in Redis with `AUTH_REDIS_URL`, else in process
    /// memory.
    pub rate_limits: Option<RateLimits>,
    /// `AUTH_TRUSTED_PROXIES`: comma list of CIDRs whose forwarding headers are trusted.
    pub trusted_proxies: Vec<IpNet>,
    /// `AUTH_CLIENT_IP_HEADER`: the one header that names the client when the peer is a trusted
    /// proxy: `x-forwarded-for` (default), `forwarded`, `x-real-ip` or `cf-connecting-ip`. Pick
    /// the one your proxy sets; the others are never read, since a client can send them itself.
    pub client_ip_header: ClientIpHeader,
    /// `AUTH_API_DIALECT`: the wire contract of the auth API, `canonical` (default,
    /// `docs/API.md`), `code-data` (seed 000: `{"code","message","data"}`, 24 h access tokens by
    /// default) or `plain` (seed 002: Turnstile-guarded username login, bare JSON); see
    /// `docs/DIALECTS.md`. Host routes answer their 401/403 in it too.
    pub api_dialect: Arc<dyn Dialect>,
    /// `AUTH_MAX_QUEUED_HASHES`: most password hashes waiting for a hasher thread before
    /// register, login, password change and reset answer 503 `overloaded` (unset: the core's
    /// default, 256).
    pub max_queued_hashes: Option<usize>,
    /// `AUTH_CAPTCHA*`: which captcha provider, and its settings.
    pub captcha: CaptchaSettings,
    /// `AUTH_SMTP_URL`: `smtps://user:pass@host`, `smtp://user:pass@host?tls=required`,
    /// `smtp://host:port` for a local relay, or `log` for the log mailer (development: recipients
    /// and subjects only, unless `AUTH_LOG_MAIL_BODIES=true`). Unset: no mailer, so the email
    /// flows (`/email/code`, `/password/forgot`) answer 404 and no code is ever logged.
    pub smtp_url: Option<String>,
    /// `AUTH_LOG_MAIL_BODIES`: with `AUTH_SMTP_URL=log`, also log message bodies, codes and reset
    /// links included (default false; development only).
    pub log_mail_bodies: bool,
    /// `AUTH_MAIL_FROM`: the sender (default `Auth <no-reply@localhost>`).
    pub mail_from: String,
    /// `AUTH_PUBLIC_URL`: base of reset links (default `http://127.0.0.1:8080`).
    pub public_url: String,
    /// `AUTH_REQUIRE_EMAIL_VERIFICATION`: registration needs a mailed code (default false, true
    /// with the res-err dialect).
    pub require_email_verification: bool,
    /// `AUTH_EMAIL_CODE_TTL`: seconds (default 600).
    pub email_code_ttl: Duration,
    /// `AUTH_RESET_TOKEN_TTL`: seconds (default 1800).
    pub reset_token_ttl: Duration,
    /// `AUTH_AUDIT_RETENTION_DAYS`: days audit events are kept (default 90); the hourly purge
    /// deletes older ones.
    pub audit_retention_days: u64,
    /// `AUTH_AUDIT_REQUIRED`: fail a request (503) whose audit event cannot be written (default
    /// false: the failure is logged).
    pub audit_required: bool,
    /// `AUTH_EMAIL_CHANGE_REVOKES_SESSIONS`: confirming a new email address ends every other
    /// session of the user (default false).
    pub email_change_revokes_sessions: bool,
    /// `AUTH_MFA_ISSUER`: the issuer authenticator apps show next to the account (default the
    /// service's name as its tokens carry it, `auth`); no `:`.
    pub mfa_issuer: Option<String>,
    /// `AUTH_MFA_ENCRYPTION_KEY`: base64 of 32 bytes sealing TOTP secrets at rest (default:
    /// derived from the JWT secret with HKDF-SHA-256).
    pub mfa_encryption_key: Option<MfaKey>,
    /// `AUTH_MFA_PREVIOUS_ENCRYPTION_KEYS`: comma-separated base64 keys that still open secrets
    /// sealed before a rotation.
    pub mfa_previous_encryption_keys: Vec<MfaKey>,
    /// `AUTH_MFA_REQUIRED_FOR_ROLES`: comma-separated roles whose users must enroll a second
    /// factor (default none; e.g. `admin`).
    pub mfa_required_for_roles: Vec<String>,
    /// `AUTH_MFA_STEP_UP_WINDOW`: seconds after a two-factor login during which sensitive actions
    /// need no fresh code (default 600).
    pub mfa_step_up_window: Duration,
    /// `AUTH_ALLOWED_ORIGINS`: comma-separated browser origins (`https://app.example.com`) allowed
    /// to call the API and the host routes cross-origin, with credentials (default none).
    pub allowed_origins: AllowedOrigins,
    /// `AUTH_TOKEN_TRANSPORT`: `body` (default), `cookie` (the refresh token only in an
    /// `HttpOnly; Secure` cookie scoped to the auth mount) or `both`. Cookies need the canonical
    /// dialect.
    pub token_transport: TokenTransport,
    /// `AUTH_COOKIE_SAME_SITE`: `lax` (default), `strict` or `none` (an app on another site).
    pub cookie_same_site: CookieSameSite,
    /// `AUTH_ACCESS_TOKEN_COOKIE`: also set the access token as an `HttpOnly` cookie that the
    /// host routes accept without an `Authorization` header (default false).
    pub access_token_cookie: bool,
    /// `AUTH_JWT_ALGORITHM`: `HS256` (default: `AUTH_JWT_SECRET` signs), `EdDSA`, `ES256` or
    /// `RS256` (a private key signs; other services verify with `/.well-known/jwks.json`).
    pub jwt_algorithm: JwtAlgorithm,
    /// `AUTH_JWT_PRIVATE_KEY_FILE`: the PKCS#8 PEM private key that signs (asymmetric algorithms
    /// only). Unset: `<AUTH_DATA_DIR>/jwt-<algorithm>.pem`, generated on first start.
    pub jwt_private_key_file: Option<PathBuf>,
    /// `AUTH_JWT_PREVIOUS_KEY_FILES`: comma-separated PEM files (private or public keys, any of
    /// the asymmetric algorithms) whose tokens are still accepted: the previous signer during a
    /// rotation, or the next one before it signs (`docs/KEYS.md`).
    pub jwt_previous_key_files: Vec<PathBuf>,
    /// `AUTH_DATA_DIR`: where generated keys are kept (default the current directory).
    pub data_dir: PathBuf,
    /// `AUTH_JWKS_MAX_AGE`: seconds the JWK Set may be cached (`Cache-Control: max-age`, default
    /// 600, at most 86400). During a rotation, wait this long between adding a key and signing
    /// with it.
    pub jwks_max_age: Duration,
    /// `AUTH_INTROSPECTION_CLIENT_ID` and `AUTH_INTROSPECTION_SECRET` (both or neither): the
    /// service allowed to call `POST /api/auth/introspect` (RFC 7662) with HTTP Basic.
    pub introspection: Option<IntrospectionClient>,
}

/// The signing key kept in `dir` (`jwt-<algorithm>.pem`), generated and written (mode 0600)
/// on first start.
///
/// The file must be a regular file (not a symlink) that only its owner can read or write: one
/// anybody else could write would let them plant a key they know. A new key is written to a
/// temporary file first and linked into place only if no other process got there first (then
/// that one's key is used), so a second instance never reads half a key and no key is ever
/// overwritten.
fn generated_key(dir: &Path, algorithm: JwtAlgorithm) -> anyhow::Result<JwtKey> {
    let path = dir.join(format!("jwt-{}.pem", algorithm.name().to_ascii_lowercase()));
    if let Some(key) = load_generated_key(&path, algorithm)? {
        return Ok(key);
    }
    let (key, pem) = JwtKey::generate(algorithm)?;
    let temp = dir.join(format!(".jwt-{}.pem.{}.tmp", algorithm.name().to_ascii_lowercase(), std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temp)
        .and_then(|mut file| {
            use std::io::Write as _;
            file.write_all(pem.expose().as_bytes())?;
            file.sync_all()
        })
        // Linking fails if the name exists: never over another process's key.
        .and_then(|()| std::fs::hard_link(&temp, &path));
    let _ = std::fs::remove_file(&temp);
    match written {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another instance generated one meanwhile: use that one.
            return load_generated_key(&path, algorithm)?
                .with_context(|| format!("{} (the key generated in AUTH_DATA_DIR) vanished", path.display()));
        }
        Err(err) => bail!("cannot write the generated signing key to {} (AUTH_DATA_DIR): {err}", path.display()),
    }
    tracing::warn!(
        path = %path.display(),
        kid = key.kid(),
        "AUTH_JWT_PRIVATE_KEY_FILE is not set: generated a new {algorithm} signing key in AUTH_DATA_DIR; keep it secret and \
         give the same file to every instance",
    );
    Ok(key)
}

/// The key generated before at `path`; `None` if there is none.
fn load_generated_key(path: &Path, algorithm: JwtAlgorithm) -> anyhow::Result<Option<JwtKey>> {
    let what = || format!("{} (the key generated in AUTH_DATA_DIR)", path.display());
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => bail!("{} cannot be read: {err}", what()),
    };
    if !metadata.file_type().is_file() {
        bail!("{} is not a regular file (a symlink?): remove it, or set AUTH_JWT_PRIVATE_KEY_FILE", what());
    }
    #[cfg(unix)]
    {
        let mode = std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o777;
        if mode & 0o077 != 0 {
            bail!("{} has mode {mode:03o}: others could read or replace the signing key; `chmod 600` it", what());
        }
    }
    let pem = std::fs::read(path).with_context(|| format!("{} cannot be read", what()))?;
    let key = JwtKey::from_pem(algorithm, &pem).map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
    tracing::info!(path = %path.display(), kid = key.kid(), "signing with the key generated in AUTH_DATA_DIR");
    Ok(Some(key))
}

/// A verify-only key of any asymmetric algorithm (a previous key may be of another algorithm
/// than the signer's, during a change of algorithm).
fn any_asymmetric_key(pem: &[u8]) -> Result<JwtKey, KeyError> {
    let mut first_error = None;
    for algorithm in [JwtAlgorithm::EdDsa, JwtAlgorithm::Es256, JwtAlgorithm::Rs256] {
        match JwtKey::from_pem(algorithm, pem) {
            Ok(key) => return Ok(key),
            // The most telling error: one that is not "not this key type".
            Err(KeyError::BadPem(_)) => {}
            Err(err) => first_error = first_error.or(Some(err)),
        }
    }
    Err(first_error.unwrap_or_else(|| {
        KeyError::Unusable(JwtAlgorithm::EdDsa, "not a PEM EdDSA, ES256 or RS256 key (PKCS#8 or SPKI)".into())
    }))
}

/// A base64 key of `AUTH_MFA_*` variable `name`; the message names the variable, never the key.
fn mfa_key(name: &str, text: &str) -> anyhow::Result<MfaKey> {
    MfaKey::from_base64(text).map_err(|e| {
        anyhow::anyhow!("{name} {e}: give 32 random bytes in base64, e.g. the output of `openssl rand -base64 32`")
    })
}

/// The default limits, each overridable by its `AUTH_RATE_LIMIT_<RULE>` variable.
fn rate_limits(lookup: &impl Fn(&str) -> Option<String>) -> anyhow::Result<RateLimits> {
    let mut limits = RateLimits::default();
    for (name, rule) in [
        ("AUTH_RATE_LIMIT_LOGIN", &mut limits.login_per_ip),
        ("AUTH_RATE_LIMIT_LOGIN_FAILURES", &mut limits.login_failures_per_account),
        ("AUTH_RATE_LIMIT_REGISTER", &mut limits.register_per_ip),
        ("AUTH_RATE_LIMIT_EMAIL_CODE", &mut limits.email_code_per_address),
        ("AUTH_RATE_LIMIT_PASSWORD_RESET", &mut limits.password_reset_per_account),
        ("AUTH_RATE_LIMIT_MAIL", &mut limits.mail_per_ip),
        ("AUTH_RATE_LIMIT_OTHER", &mut limits.other_per_ip),
        ("AUTH_RATE_LIMIT_MFA_FAILURES", &mut limits.mfa_failures_per_account),
    ] {
        if let Some(value) = lookup(name) {
            *rule = RateRule::parse(&value).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        }
    }
    Ok(limits)
}

/// Which captcha the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaKind {
    /// No captcha (default).
    None,
    /// The image captcha.
    Image,
    /// A token provider.
    Token(SiteverifyProvider),
}

/// The captcha part of the configuration.
#[derive(Clone)]
#[non_exhaustive]
pub struct CaptchaSettings {
    /// `AUTH_CAPTCHA`: `none` | `image` | `turnstile` | `recaptcha` | `hcaptcha`. When unset,
    /// seed 002's `TURNSTILE_ENABLED=true` selects `turnstile`.
    pub kind: CaptchaKind,
    /// `AUTH_CAPTCHA_SECRET`: the provider's secret key (required for token providers).
    pub secret: Option<String>,
    /// `AUTH_CAPTCHA_SITE_KEY`: the public site key reported by `GET /captcha/status`.
    pub site_key: Option<String>,
    /// `AUTH_CAPTCHA_VERIFY_URL`: siteverify URL (default: the provider's).
    pub verify_url: Option<String>,
    /// `AUTH_CAPTCHA_ALLOWED_HOSTNAME` (or seed 002's `TURNSTILE_ALLOWED_HOSTNAME`).
    pub allowed_hostname: Option<String>,
    /// `AUTH_CAPTCHA_MIN_SCORE`: reCAPTCHA v3 minimum score (default 0.5).
    pub min_score: f64,
    /// `AUTH_CAPTCHA_TIMEOUT`: siteverify timeout in seconds (default 5).
    pub timeout: Duration,
    /// `AUTH_CAPTCHA_ROUTES`: comma list of `register`, `login`, `email_code`,
    /// `password_forgot` (default: all, or the dialect's: the success dialect's code request
    /// carries no captcha field).
    pub routes: Vec<CaptchaAction>,
}

impl CaptchaSettings {
    /// `default_routes`: the routes guarded when `AUTH_CAPTCHA_ROUTES` is unset.
    fn from_lookup(lookup: &impl Fn(&str) -> Option<String>, default_routes: &[CaptchaAction]) -> anyhow::Result<Self> {
        let kind = match lookup("AUTH_CAPTCHA").as_deref().map(str::trim) {
            Some("none") => CaptchaKind::None,
            Some("image") => CaptchaKind::Image,
            Some("turnstile") => CaptchaKind::Token(SiteverifyProvider::Turnstile),
            Some("recaptcha") => CaptchaKind::Token(SiteverifyProvider::Recaptcha),
            Some("hcaptcha") => CaptchaKind::Token(SiteverifyProvider::Hcaptcha),
            Some(other) => {
                bail!("AUTH_CAPTCHA must be none, image, turnstile, recaptcha or hcaptcha, got {other:?}")
            }
            None => match lookup("TURNSTILE_ENABLED").as_deref().map(str::trim) {
                Some("true" | "1") => CaptchaKind::Token(SiteverifyProvider::Turnstile),
                None | Some("false" | "0") => CaptchaKind::None,
                Some(other) => bail!("TURNSTILE_ENABLED must be true or false, got {other:?}"),
            },
        };
        let secret = lookup("AUTH_CAPTCHA_SECRET");
        if let (CaptchaKind::Token(provider), None) = (kind, &secret) {
            bail!("AUTH_CAPTCHA_SECRET is required for the {} captcha", provider.name());
        }
        let min_score = match lookup("AUTH_CAPTCHA_MIN_SCORE") {
            None => 0.5,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(score) if (0.0..=1.0).contains(&score) => score,
                _ => bail!("AUTH_CAPTCHA_MIN_SCORE must be a number from 0.0 to 1.0, got {v:?}"),
            },
        };
        let timeout = seconds(lookup, "AUTH_CAPTCHA_TIMEOUT", 5)?;
        if timeout.is_zero() {
            bail!("AUTH_CAPTCHA_TIMEOUT must be at least 1 second");
        }
        let routes = match lookup("AUTH_CAPTCHA_ROUTES") {
            None => default_routes.to_vec(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(|name| {
                    CaptchaAction::parse(name).with_context(|| {
                        format!("AUTH_CAPTCHA_ROUTES: unknown route {name:?} (use register, login, email_code, password_forgot)")
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        };
        Ok(Self {
            kind,
            secret,
            site_key: lookup("AUTH_CAPTCHA_SITE_KEY"),
            verify_url: lookup("AUTH_CAPTCHA_VERIFY_URL"),
            allowed_hostname: lookup("AUTH_CAPTCHA_ALLOWED_HOSTNAME").or_else(|| lookup("TURNSTILE_ALLOWED_HOSTNAME")),
            min_score,
            timeout,
            routes,
        })
    }

    /// The provider these settings describe, keeping image answers in `tokens` under a key
    /// derived from `secret`.
    ///
    /// # Errors
    /// The HTTP client of a token provider cannot be built.
    pub fn provider(
        &self,
        tokens: Arc<dyn SecretStore>,
        secret: &[u8],
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Option<Arc<dyn CaptchaProvider>>> {
        Ok(match self.kind {
            CaptchaKind::None => None,
            CaptchaKind::Image => {
                let mut options = ImageCaptchaOptions::default();
                options.clock = clock;
                Some(Arc::new(ImageCaptcha::new(tokens, secret, options)))
            }
            CaptchaKind::Token(provider) => {
                let mut options = SiteverifyOptions::new(provider, self.secret.clone().unwrap_or_default());
                options.site_key.clone_from(&self.site_key);
                if let Some(url) = &self.verify_url {
                    options.verify_url.clone_from(url);
                }
                options.allowed_hostname.clone_from(&self.allowed_hostname);
                options.min_score = self.min_score;
                options.timeout = self.timeout;
                Some(Arc::new(SiteverifyCaptcha::new(options)?))
            }
        })
    }
}

impl std::fmt::Debug for CaptchaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptchaSettings")
            .field("kind", &self.kind)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("site_key", &self.site_key)
            .field("verify_url", &self.verify_url)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("database_url", &"[set]")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "[set]"))
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "[redacted]"))
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_rotation", &self.refresh_rotation)
            .field("password_composition", &self.password_composition)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("refresh_reuse_grace", &self.refresh_reuse_grace)
            .field("captcha", &self.captcha)
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "[set]"))
            .field("mail_from", &self.mail_from)
            .field("public_url", &self.public_url)
            .field("api_dialect", &self.api_dialect.name())
            .field("allowed_origins", &self.allowed_origins)
            .field("token_transport", &self.token_transport)
            .finish_non_exhaustive()
    }
}

/// A `true|1|false|0` variable, false when unset.
fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> anyhow::Result<bool> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => bail!("{name} must be true or false, got {other:?}"),
    }
}

/// An `on|off` (or `true|false`, `1|0`) variable; `None` when unset.
fn on_off(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> anyhow::Result<Option<bool>> {
    match lookup(name).as_deref().map(str::trim) {
        None => Ok(None),
        Some("on" | "true" | "1") => Ok(Some(true)),
        Some("off" | "false" | "0") => Ok(Some(false)),
        Some(other) => bail!("{name} must be on or off, got {other:?}"),
    }
}

fn seconds(lookup: &impl Fn(&str) -> Option<String>, name: &str, default: u64) -> anyhow::Result<Duration> {
    match lookup(name) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .with_context(|| format!("{name} must be a whole number of seconds, got {v:?}")),
    }
}

impl ServerConfig {
    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    /// A message naming the variable that is malformed.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the configuration through `lookup` (for tests: no global environment).
    ///
    /// # Errors
    /// A message naming the variable that is malformed, or a JWT secret under 32 bytes.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let bind = lookup("AUTH_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind =
            bind.parse().with_context(|| format!("AUTH_BIND must be an address like 127.0.0.1:8080, got {bind:?}"))?;
        let jwt_secret = lookup("AUTH_JWT_SECRET");
        if let Some(secret) = &jwt_secret {
            if secret.len() < MIN_JWT_SECRET_BYTES {
                bail!(
                    "AUTH_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes (it is {}); generate one with \
                     `openssl rand -base64 48`",
                    secret.len()
                );
            }
        }
        let rate_limits = match lookup("AUTH_RATE_LIMITS").as_deref().map(str::trim) {
            None | Some("default") => Some(rate_limits(&lookup)?),
            Some("off") => None,
            Some(other) => bail!("AUTH_RATE_LIMITS must be `default` or `off`, got {other:?}"),
        };
        let trusted_proxies = match lookup("AUTH_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    // A bare address is a /32 or /128.
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                        .with_context(|| format!("AUTH_TRUSTED_PROXIES: {s:?} is not a CIDR such as 10.0.0.0/8"))
                })
                .collect::<anyhow::Result<_>>()?,
        };
        let client_ip_header = match lookup("AUTH_CLIENT_IP_HEADER") {
            None => ClientIpHeader::default(),
            Some(v) => ClientIpHeader::parse(&v).with_context(|| {
                format!(
                    "AUTH_CLIENT_IP_HEADER must be x-forwarded-for, forwarded, x-real-ip or cf-connecting-ip, got {v:?}"
                )
            })?,
        };
        let api_dialect: Arc<dyn Dialect> = match lookup("AUTH_API_DIALECT") {
            None => dialects::by_name("canonical").expect("a built-in dialect"),
            Some(name) => dialects::by_name(name.trim()).with_context(|| {
                format!("AUTH_API_DIALECT must be one of {}, got {name:?}", dialects::NAMES.join(", "))
            })?,
        };
        let token_transport = lookup("AUTH_TOKEN_TRANSPORT")
            .map(|v| v.parse::<TokenTransport>().map_err(|e| anyhow::anyhow!("AUTH_TOKEN_TRANSPORT: {e}")))
            .transpose()?
            .unwrap_or_default();
        if token_transport.uses_cookies() && !api_dialect.supports_cookie_transport() {
            bail!(
                "AUTH_TOKEN_TRANSPORT={} needs AUTH_API_DIALECT=canonical: the {} contract has no cookie transport",
                lookup("AUTH_TOKEN_TRANSPORT").unwrap_or_default().trim(),
                api_dialect.name()
            );
        }
        let jwt_algorithm = lookup("AUTH_JWT_ALGORITHM")
            .map(|v| v.parse::<JwtAlgorithm>().map_err(|e| anyhow::anyhow!("AUTH_JWT_ALGORITHM: {e}")))
            .transpose()?
            .unwrap_or_default();
        for name in ["AUTH_JWT_PRIVATE_KEY_FILE", "AUTH_JWT_PREVIOUS_KEY_FILES"] {
            // The key itself pasted where its path goes: refused without echoing it.
            if lookup(name).is_some_and(|v| v.contains("-----BEGIN") || v.contains('\n')) {
                bail!("{name} takes the path of a PEM file, not the key itself (the value is not shown)");
            }
        }
        let jwt_private_key_file = lookup("AUTH_JWT_PRIVATE_KEY_FILE").map(PathBuf::from);
        let jwt_previous_key_files: Vec<PathBuf> = lookup("AUTH_JWT_PREVIOUS_KEY_FILES")
            .map(|list| list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(PathBuf::from).collect())
            .unwrap_or_default();
        if jwt_algorithm.is_symmetric() && (jwt_private_key_file.is_some() || !jwt_previous_key_files.is_empty()) {
            bail!(
                "AUTH_JWT_PRIVATE_KEY_FILE and AUTH_JWT_PREVIOUS_KEY_FILES need AUTH_JWT_ALGORITHM=EdDSA, ES256 or RS256 \
                 (HS256, the default, signs with AUTH_JWT_SECRET)"
            );
        }
        let refresh_rotation = on_off(&lookup, "AUTH_REFRESH_ROTATION")?
            .unwrap_or_else(|| api_dialect.default_refresh_rotation().unwrap_or(true));
        if refresh_rotation && api_dialect.requires_refresh_rotation_off() {
            bail!(
                "AUTH_REFRESH_ROTATION=on does not work with AUTH_API_DIALECT={}: its clients never receive the new \
                 refresh token, so their second refresh would count as reuse and end their session; leave \
                 AUTH_REFRESH_ROTATION unset or off",
                api_dialect.name()
            );
        }
        let captcha = CaptchaSettings::from_lookup(
            &lookup,
            api_dialect.default_captcha_actions().unwrap_or(&CaptchaAction::ALL),
        )?;
        let require_email_verification = match lookup("AUTH_REQUIRE_EMAIL_VERIFICATION") {
            None => api_dialect.default_require_email_verification().unwrap_or(false),
            Some(_) => flag(&lookup, "AUTH_REQUIRE_EMAIL_VERIFICATION")?,
        };
        let max_queued_hashes = match lookup("AUTH_MAX_QUEUED_HASHES") {
            None => None,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => bail!("AUTH_MAX_QUEUED_HASHES must be a positive whole number, got {v:?}"),
            },
        };
        Ok(Self {
            bind,
            database_url: lookup("AUTH_DATABASE_URL").unwrap_or_else(|| "sqlite://auth.db".into()),
            redis_url: lookup("AUTH_REDIS_URL"),
            redis_prefix: lookup("AUTH_REDIS_PREFIX").unwrap_or_else(|| "auth:".into()),
            session_cache: match lookup("AUTH_SESSION_CACHE") {
                _ if lookup("AUTH_REDIS_SESSION_CACHE").is_some() => {
                    bail!("AUTH_REDIS_SESSION_CACHE is now AUTH_SESSION_CACHE (it covers PostgreSQL too): rename it")
                }
                None => SessionCacheOptions::default().capacity,
                Some(v) => v
                    .trim()
                    .parse()
                    .with_context(|| format!("AUTH_SESSION_CACHE must be a number of sessions (0 = off), got {v:?}"))?,
            },
            user_cache: match lookup("AUTH_USER_CACHE") {
                None => UserCacheOptions::default().capacity,
                Some(v) => v
                    .trim()
                    .parse()
                    .with_context(|| format!("AUTH_USER_CACHE must be a number of users (0 = off), got {v:?}"))?,
            },
            redis_require_noeviction: flag(&lookup, "AUTH_REDIS_REQUIRE_NOEVICTION")?,
            jwt_secret,
            access_token_ttl: seconds(
                &lookup,
                "AUTH_ACCESS_TOKEN_TTL",
                api_dialect.default_access_token_ttl().map_or(3600, |ttl| ttl.as_secs()),
            )?,
            refresh_token_ttl: seconds(&lookup, "AUTH_REFRESH_TOKEN_TTL", 2_592_000)?,
            refresh_reuse_grace: seconds(&lookup, "AUTH_REFRESH_REUSE_GRACE", 10)?,
            refresh_rotation,
            password_composition: on_off(&lookup, "AUTH_PASSWORD_COMPOSITION")?
                .unwrap_or_else(|| api_dialect.default_password_composition().unwrap_or(false)),
            log_filter: lookup("AUTH_LOG").unwrap_or_else(|| "info".into()),
            rate_limits,
            trusted_proxies,
            client_ip_header,
            api_dialect,
            max_queued_hashes,
            captcha,
            smtp_url: lookup("AUTH_SMTP_URL"),
            log_mail_bodies: flag(&lookup, "AUTH_LOG_MAIL_BODIES")?,
            mail_from: lookup("AUTH_MAIL_FROM").unwrap_or_else(|| "Auth <no-reply@localhost>".into()),
            public_url: lookup("AUTH_PUBLIC_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            require_email_verification,
            email_code_ttl: seconds(&lookup, "AUTH_EMAIL_CODE_TTL", 600)?,
            reset_token_ttl: seconds(&lookup, "AUTH_RESET_TOKEN_TTL", 1800)?,
            audit_retention_days: match lookup("AUTH_AUDIT_RETENTION_DAYS") {
                None => 90,
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(days) if (1..=3650).contains(&days) => days,
                    _ => bail!("AUTH_AUDIT_RETENTION_DAYS must be a whole number of days from 1 to 3650, got {v:?}"),
                },
            },
            audit_required: flag(&lookup, "AUTH_AUDIT_REQUIRED")?,
            email_change_revokes_sessions: flag(&lookup, "AUTH_EMAIL_CHANGE_REVOKES_SESSIONS")?,
            mfa_issuer: lookup("AUTH_MFA_ISSUER"),
            mfa_encryption_key: lookup("AUTH_MFA_ENCRYPTION_KEY")
                .map(|key| mfa_key("AUTH_MFA_ENCRYPTION_KEY", &key))
                .transpose()?,
            mfa_previous_encryption_keys: lookup("AUTH_MFA_PREVIOUS_ENCRYPTION_KEYS")
                .map(|keys| {
                    keys.split(',')
                        .filter(|k| !k.trim().is_empty())
                        .map(|k| mfa_key("AUTH_MFA_PREVIOUS_ENCRYPTION_KEYS", k))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
                .transpose()?
                .unwrap_or_default(),
            mfa_required_for_roles: lookup("AUTH_MFA_REQUIRED_FOR_ROLES")
                .map(|roles| roles.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            mfa_step_up_window: seconds(&lookup, "AUTH_MFA_STEP_UP_WINDOW", 600)?,
            allowed_origins: lookup("AUTH_ALLOWED_ORIGINS")
                .map(|list| AllowedOrigins::parse(&list).map_err(|e| anyhow::anyhow!("AUTH_ALLOWED_ORIGINS: {e}")))
                .transpose()?
                .unwrap_or_default(),
            token_transport,
            cookie_same_site: lookup("AUTH_COOKIE_SAME_SITE")
                .map(|v| v.parse::<CookieSameSite>().map_err(|e| anyhow::anyhow!("AUTH_COOKIE_SAME_SITE: {e}")))
                .transpose()?
                .unwrap_or_default(),
            access_token_cookie: flag(&lookup, "AUTH_ACCESS_TOKEN_COOKIE")?,
            jwt_algorithm,
            jwt_private_key_file,
            jwt_previous_key_files,
            data_dir: lookup("AUTH_DATA_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from),
            jwks_max_age: seconds(&lookup, "AUTH_JWKS_MAX_AGE", 600)?,
            introspection: match (lookup("AUTH_INTROSPECTION_CLIENT_ID"), lookup("AUTH_INTROSPECTION_SECRET")) {
                (None, None) => None,
                (Some(id), Some(secret)) => Some(IntrospectionClient::new(id, secret)?),
                _ => {
                    bail!("AUTH_INTROSPECTION_CLIENT_ID and AUTH_INTROSPECTION_SECRET go together: set both or neither")
                }
            },
        })
    }

    /// The access-token key set of `AUTH_JWT_ALGORITHM`: `None` for HS256 (the JWT secret
    /// signs); else the private key of `AUTH_JWT_PRIVATE_KEY_FILE`, or the one kept in
    /// `AUTH_DATA_DIR` (generated on first start, with a warning), plus the verify-only keys of
    /// `AUTH_JWT_PREVIOUS_KEY_FILES`.
    ///
    /// # Errors
    /// A key file that cannot be read or is not a usable key, named with its variable and path;
    /// a data directory where the key cannot be written.
    pub fn signing_keys(&self) -> anyhow::Result<Option<KeySet>> {
        let algorithm = self.jwt_algorithm;
        if algorithm.is_symmetric() {
            return Ok(None);
        }
        let signer = match &self.jwt_private_key_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("AUTH_JWT_PRIVATE_KEY_FILE {}: cannot be read", path.display()))?;
                let key = JwtKey::from_pem(algorithm, &pem)
                    .map_err(|e| anyhow::anyhow!("AUTH_JWT_PRIVATE_KEY_FILE {}: {e}", path.display()))?;
                if !key.can_sign() {
                    bail!(
                        "AUTH_JWT_PRIVATE_KEY_FILE {}: holds a public key; the signing key must be a PKCS#8 private key \
                         (list public keys in AUTH_JWT_PREVIOUS_KEY_FILES)",
                        path.display()
                    );
                }
                key
            }
            None => generated_key(&self.data_dir, algorithm)?,
        };
        let mut set = KeySet::new(signer)?;
        for path in &self.jwt_previous_key_files {
            let pem = std::fs::read(path)
                .with_context(|| format!("AUTH_JWT_PREVIOUS_KEY_FILES {}: cannot be read", path.display()))?;
            set = set
                .with_verify_only(
                    any_asymmetric_key(&pem)
                        .map_err(|e| anyhow::anyhow!("AUTH_JWT_PREVIOUS_KEY_FILES {}: {e}", path.display()))?,
                )
                .map_err(|e| anyhow::anyhow!("AUTH_JWT_PREVIOUS_KEY_FILES {}: {e}", path.display()))?;
        }
        Ok(Some(set))
    }

    /// The JWT secret, or without `AUTH_JWT_SECRET` a random 256-bit one: tokens then die when
    /// the process restarts (`serve` warns about it).
    #[must_use]
    pub fn jwt_secret_or_random(&self) -> Vec<u8> {
        match &self.jwt_secret {
            Some(secret) => secret.clone().into_bytes(),
            None => auth_core::random_token().into_bytes(),
        }
    }

    /// The core configuration with `secret` as the JWT secret.
    ///
    /// # Errors
    /// An out-of-range setting.
    pub fn auth_config(&self, secret: Vec<u8>) -> anyhow::Result<AuthConfig> {
        let mut config = AuthConfig::new(secret)?;
        config.access_token_ttl = self.access_token_ttl;
        config.refresh_token_ttl = self.refresh_token_ttl;
        config.refresh_reuse_grace = self.refresh_reuse_grace;
        config.refresh_rotation = self.refresh_rotation;
        if self.password_composition {
            let policy = &mut config.password_policy;
            (policy.require_uppercase, policy.require_lowercase) = (true, true);
            (policy.require_digit, policy.require_symbol) = (true, true);
        }
        config.captcha_actions = self.captcha.routes.iter().copied().collect();
        config.public_url = Some(self.public_url.clone());
        config.rate_limits = self.rate_limits.clone().unwrap_or_else(RateLimits::off);
        config.trusted_proxies.clone_from(&self.trusted_proxies);
        config.client_ip_header = self.client_ip_header;
        if let Some(n) = self.max_queued_hashes {
            config.max_queued_hashes = n;
        }
        config.require_email_verification = self.require_email_verification;
        config.email_code_ttl = self.email_code_ttl;
        config.reset_token_ttl = self.reset_token_ttl;
        config.audit_retention = Duration::from_secs(self.audit_retention_days * 24 * 3600);
        config.audit_required = self.audit_required;
        config.email_change_revokes_sessions = self.email_change_revokes_sessions;
        config.mfa.issuer.clone_from(&self.mfa_issuer);
        config.mfa.encryption_key.clone_from(&self.mfa_encryption_key);
        config.mfa.previous_encryption_keys.clone_from(&self.mfa_previous_encryption_keys);
        for role in &self.mfa_required_for_roles {
            if !config.roles.contains(role) {
                bail!("AUTH_MFA_REQUIRED_FOR_ROLES: {role:?} is not a role (known: {:?})", config.roles);
            }
            config.mfa.required_for_roles.insert(role.clone());
        }
        config.mfa.step_up_window = self.mfa_step_up_window;
        config.browser.token_transport = self.token_transport;
        config.browser.cookie_same_site = self.cookie_same_site;
        config.browser.access_token_cookie = self.access_token_cookie;
        config.browser.cookie_path = self.api_dialect.mount().to_owned();
        config.browser.allowed_origins.clone_from(&self.allowed_origins);
        config.signing_keys = self.signing_keys()?;
        config.jwks_max_age = self.jwks_max_age;
        config.introspection.clone_from(&self.introspection);
        Ok(config)
    }
}

/// Builds the [`Auth`] service on the configured database.
///
/// # Errors
/// An unsupported `AUTH_DATABASE_URL`, a database that cannot be opened, or a bad setting.
pub async fn build_auth(config: &ServerConfig) -> anyhow::Result<Auth> {
    build_auth_with_clock(config, Arc::new(SystemClock)).await
}

/// `store`'s sessions behind a [`CachedSessionStore`] of `capacity` following `feed`; `store`
/// itself when `capacity` is 0.
fn session_cache<S: SessionStore>(store: Arc<S>, feed: impl RevocationFeed, capacity: usize) -> Arc<dyn SessionStore> {
    if capacity == 0 {
        return store;
    }
    let mut options = SessionCacheOptions::default();
    options.capacity = capacity;
    Arc::new(CachedSessionStore::with_options(store, feed, options))
}

/// `store`'s users behind a [`CachedUserStore`] of `capacity` following `feed`; `store` itself
/// when `capacity` is 0.
fn user_cache<S: UserStore>(store: Arc<S>, feed: impl RevocationFeed, capacity: usize) -> Arc<dyn UserStore> {
    if capacity == 0 {
        return store;
    }
    let mut options = UserCacheOptions::default();
    options.capacity = capacity;
    Arc::new(CachedUserStore::with_options(store, feed, options))
}

/// [`build_auth`] on `clock` (tests give a `ManualClock` and move it instead of sleeping).
///
/// # Errors
/// As [`build_auth`].
pub async fn build_auth_with_clock(config: &ServerConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Auth> {
    let url = config.database_url.as_str();
    // The audit log stays in the SQL database (or memory) when sessions move to Redis.
    // So do the second factors, next to the users they belong to.
    type Stores =
        (Arc<dyn UserStore>, Arc<dyn SessionStore>, Arc<dyn SecretStore>, Arc<dyn AuditStore>, Arc<dyn MfaStore>);
    let (users, mut sessions, mut secrets, audit, mfa): Stores = if url.starts_with("sqlite:") {
        let store = Arc::new(
            SqliteStore::connect(url).await.with_context(|| format!("cannot open the SQLite database {url}"))?,
        );
        // Other processes on the same file (a second server, the `users` command) announce
        // their changes through the file's change log.
        let users = user_cache(store.clone(), store.changes(), config.user_cache);
        let sessions = match config.redis_url {
            None => session_cache(store.clone(), store.changes(), config.session_cache),
            Some(_) => store.clone(),
        };
        (users, sessions, store.clone(), store.clone(), store)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = Arc::new(PostgresStore::connect(url).await.context("cannot connect to the PostgreSQL database")?);
        // With Redis, sessions live there (below) and are cached there.
        let sessions = match config.redis_url {
            None => session_cache(store.clone(), store.revocations(), config.session_cache),
            Some(_) => store.clone(),
        };
        let users = user_cache(store.clone(), store.revocations(), config.user_cache);
        (users, sessions, store.clone(), store.clone(), store)
    } else if url == "memory" {
        let store = Arc::new(MemoryStore::new());
        (store.clone(), store.clone(), store.clone(), store.clone(), store)
    } else {
        bail!("AUTH_DATABASE_URL {url:?} is not supported: use sqlite://path/to/file.db, postgres://… or memory");
    };
    let mut limiter: Option<Arc<dyn RateLimiter>> = None;
    if let Some(redis_url) = &config.redis_url {
        let mut options = RedisOptions::default();
        options.prefix.clone_from(&config.redis_prefix);
        options.require_noeviction = config.redis_require_noeviction;
        let redis = Arc::new(RedisStore::connect_with(redis_url, options).await.context("cannot connect to Redis")?);
        sessions = session_cache(redis.clone(), redis.revocations(), config.session_cache);
        secrets = redis.clone();
        limiter = Some(redis);
    }
    let secret = config.jwt_secret_or_random();
    let captcha = config.captcha.provider(secrets.clone(), &secret, clock.clone())?;
    let mut builder = Auth::builder(config.auth_config(secret)?)
        .user_store(users)
        .session_store(sessions)
        .secret_store(secrets)
        .audit_store(audit)
        .mfa_store(mfa)
        .clock(clock);
    if let Some(captcha) = captcha {
        builder = builder.captcha(captcha);
    }
    // Without Redis, limits (unless off) are counted in process memory: the core's default.
    if let (Some(limiter), Some(_)) = (limiter, &config.rate_limits) {
        builder = builder.rate_limiter(limiter);
    }
    match config.smtp_url.as_deref() {
        None => {}
        Some("log") if config.log_mail_bodies => builder = builder.mailer(Arc::new(LogMailer::with_bodies())),
        Some("log") => builder = builder.mailer(Arc::new(LogMailer::new())),
        Some(url) => {
            let mailer = SmtpMailer::new(url, &config.mail_from, Duration::from_secs(10))
                .map_err(|e| anyhow::anyhow!("AUTH_SMTP_URL / AUTH_MAIL_FROM: {e}"))?;
            builder = builder.mailer(Arc::new(mailer));
        }
    }
    Ok(builder.build()?)
}

/// The app: the auth router at `/api/auth` (with its OpenAPI document at
/// `/api/auth/openapi.json`), `GET /api/protected` for any logged-in user, `GET /api/admin/ping`
/// for admins, `GET /api/health` for anyone, the login page at `/` and the API docs UI at `/docs`, with a log line per request
/// at `debug` (target `http`) and per server error at `warn`.
pub fn app(auth: Auth) -> Router {
    app_with_dialect(auth, Arc::new(Canonical))
}

/// [`app`] speaking `dialect` ([`ServerConfig::api_dialect`]): the auth API at the dialect's
/// mount (`/api/auth`, `/api/v1/auth` for res-err) with its routes, bodies and errors, and the
/// host routes accepting its `Authorization` schemes (and the access-token cookie when the
/// configuration sets it) and answering 401/403 in its envelope. With
/// `AuthConfig::browser.allowed_origins` ([`ServerConfig::allowed_origins`]) the host routes
/// and the auth API answer one CORS policy (`auth_axum::cors_layer`).
pub fn app_with_dialect(auth: Auth, dialect: Arc<dyn Dialect>) -> Router {
    // The dialect's clients send their tokens with its schemes (`Customize` for res-err).
    let schemes = dialect.auth_schemes();
    let origins = auth.config().browser.allowed_origins.clone();
    let page = auth.config().browser.token_transport.uses_cookies();
    let mut host = Router::new()
        .route("/api/protected", get(protected))
        .route_layer(RequireAuth::new(auth.clone()).schemes(schemes))
        .merge(
            Router::new()
                .route("/api/admin/ping", get(admin_ping))
                .route_layer(RequireAuth::new(auth.clone()).with_role("admin").schemes(schemes)),
        )
        .route("/", get(move || login_page(page)))
        .route("/api/health", get(health))
        // The well-known location (RFC 8615) at the site root; the auth router has it too.
        .merge(jwks_router(auth.clone()));
    if !origins.is_empty() {
        // The auth router has its own (AuthRouter reads the same origins).
        host = host.layer(cors_layer(&origins));
    }
    if dialect.name() == Canonical.name() {
        // A docs UI for the document the auth router serves (Swagger UI, its assets vendored in
        // the crate: nothing is loaded from elsewhere).
        let openapi_url = format!("{}/openapi.json", dialect.mount());
        let docs = utoipa_swagger_ui::SwaggerUi::new("/docs").config(utoipa_swagger_ui::Config::new([openapi_url]));
        let docs = Router::from(docs)
            .layer(SetResponseHeaderLayer::overriding(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOCS_CSP),
            ))
            .layer(SetResponseHeaderLayer::overriding(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ));
        host = host.merge(docs);
    }
    host.nest(dialect.mount(), AuthRouter::new(auth).dialect(dialect.clone()).build())
        .layer(dialect_errors(dialect))
        .layer(axum::middleware::from_fn(log_request))
}

/// The log target of per-request lines: `AUTH_LOG=info,http=debug` turns them on.
pub const REQUEST_LOG_TARGET: &str = "http";

/// One log line per request, at `debug` under target [`REQUEST_LOG_TARGET`] (`http`): method,
/// path (never the query string), status and latency in µs; no headers or bodies. Off at the
/// default `info`, where a line per request would cost a large share of a cheap route's
/// throughput and write gigabytes under load; server errors (5xx) are logged at `warn` whatever
/// the level. The request's fields are kept as they came (`Method` and `Uri` clones share their
/// bytes): nothing is formatted unless a line is written.
async fn log_request(request: Request, next: axum::middleware::Next) -> axum::response::Response {
    use tracing::Instrument as _;
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let start = std::time::Instant::now();
    let span = tracing::debug_span!(target: REQUEST_LOG_TARGET, "request", method = %method, path = %uri.path());
    let response = next.run(request).instrument(span).await;
    let (status, latency_us) = (response.status().as_u16(), start.elapsed().as_micros());
    if response.status().is_server_error() {
        tracing::warn!(target: REQUEST_LOG_TARGET, method = %method, path = %uri.path(), status, latency_us, "server error");
    } else {
        tracing::debug!(target: REQUEST_LOG_TARGET, method = %method, path = %uri.path(), status, latency_us, "response");
    }
    response
}

/// The login page (`static/index.html`): plain HTML and one inline script, no build step and
/// nothing from another origin. It needs cookie transport (its script never sees the refresh
/// token); without it `/` says so.
const LOGIN_PAGE: &str = include_str!("../static/index.html");

/// `Content-Security-Policy` of the login page: nothing but its own inline script and style
/// (by SHA-256, CSP Level 2), `data:` images (the captcha and QR codes) and calls to its own
/// origin; no framing, no form posts elsewhere.
fn login_page_csp() -> &'static str {
    static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let inline = |open: &str, close: &str| {
            let start = LOGIN_PAGE.find(open).and_then(|i| LOGIN_PAGE[i..].find('>').map(|j| i + j + 1));
            let body = start.and_then(|s| LOGIN_PAGE[s..].find(close).map(|e| &LOGIN_PAGE[s..s + e])).unwrap_or("");
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body.as_bytes()))
        };
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            inline("<script", "</script>"),
            inline("<style", "</style>")
        )
    });
    &CSP
}

/// `GET /`, the login page, for both example apps: with `cookies` (cookie transport) the page
/// with its CSP, `nosniff`, `Referrer-Policy: same-origin` and `Cache-Control: no-cache`; without,
/// a plain-text line saying it needs cookie transport.
#[must_use]
pub fn login_page_response(cookies: bool) -> auth_http::HttpResponse {
    let text = |content_type: &'static str, body: &str| {
        let mut response = auth_http::HttpResponse::new(body.as_bytes().to_vec());
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    if !cookies {
        return text(
            "text/plain; charset=utf-8",
            "The login page needs cookie transport: start the server with AUTH_TOKEN_TRANSPORT=cookie.\n",
        );
    }
    let mut response = text("text/html; charset=utf-8", LOGIN_PAGE);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(login_page_csp()));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: that makes same-origin POSTs send `Origin: null`.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `Content-Security-Policy` of the API docs UI at `/docs` (Swagger UI, its assets vendored in
/// the crate: nothing is loaded from elsewhere; React sets inline style attributes). It shares the
/// origin of the login page, so it gets a policy too.
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                            img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                            frame-ancestors 'none'; base-uri 'none'";

async fn login_page(cookies: bool) -> axum::response::Response {
    login_page_response(cookies).map(axum::body::Body::from)
}

async fn protected(CurrentUser(user): CurrentUser) -> Json<Value> {
    Json(json!({ "user_id": user.id, "username": user.name(), "role": user.role }))
}

/// `GET /api/health`: open, `{"status":"ok"}` while the process serves (it asks no store; a
/// load balancer's liveness probe, and the open route the benchmark compares routes with).
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn admin_ping(claims: AuthClaims) -> Json<Value> {
    Json(json!({ "pong": true, "user_id": claims.sub }))
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes in-flight requests.
///
/// # Errors
/// An I/O error of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn server_errors_are_logged_at_warn_and_other_responses_only_at_debug() {
        use auth_test_support::EventRecorder;
        let app = Router::new()
            .route("/fail", get(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }))
            .route("/ok", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(log_request));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // A current-thread runtime: the server task runs on this thread, under its recorder.
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("{base}{path}")).send();

        let warnings = EventRecorder::new(|m| m.target() == REQUEST_LOG_TARGET && *m.level() == tracing::Level::WARN);
        let guard = warnings.set_default();
        assert_eq!(get("/fail?token=secret").await.unwrap().status(), 500);
        assert_eq!(get("/ok").await.unwrap().status(), 200);
        drop(guard);
        let warned = warnings.lines();
        assert_eq!(warned.len(), 1, "only the server error: {warned:?}");
        for part in ["method=GET", "path=/fail", "status=500", "latency_us="] {
            assert!(warned[0].contains(part), "{warned:?} lacks {part}");
        }
        assert!(!warned[0].contains("secret"), "no query string: {warned:?}");

        let debug = EventRecorder::new(|m| m.target() == REQUEST_LOG_TARGET && *m.level() == tracing::Level::DEBUG);
        let guard = debug.set_default();
        assert_eq!(get("/ok").await.unwrap().status(), 200);
        drop(guard);
        let lines = debug.lines();
        assert!(lines.len() == 1 && lines[0].contains("path=/ok") && lines[0].contains("status=200"), "{lines:?}");
    }

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_match_the_readme() {
        let c = ServerConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://auth.db");
        assert_eq!(c.access_token_ttl.as_secs(), 3600);
        assert_eq!(c.refresh_token_ttl.as_secs(), 2_592_000);
        assert_eq!(c.refresh_reuse_grace.as_secs(), 10);
        assert_eq!(c.session_cache, 131_072);
        assert_eq!(c.user_cache, 131_072);
        assert!(c.jwt_secret.is_none());
        assert_eq!(c.client_ip_header, ClientIpHeader::XForwardedFor);
        assert_eq!(c.max_queued_hashes, None);
        assert_eq!(c.rate_limits.unwrap().mail_per_ip, RateLimits::default().mail_per_ip);
    }

    /// A lookup of one variable, for values built in a loop.
    fn one(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |n| (n == name).then(|| value.to_owned())
    }

    #[test]
    fn a_dialect_sets_defaults_that_explicit_variables_override() {
        let c = ServerConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!((c.api_dialect.name(), c.access_token_ttl.as_secs()), ("canonical", 3600));
        let c = ServerConfig::from_lookup(one("AUTH_API_DIALECT", "code-data")).unwrap();
        assert_eq!((c.api_dialect.name(), c.access_token_ttl.as_secs()), ("code-data", 24 * 3600));
        let c =
            ServerConfig::from_lookup(lookup(&[("AUTH_API_DIALECT", "code-data"), ("AUTH_ACCESS_TOKEN_TTL", "600")]))
                .unwrap();
        assert_eq!(c.access_token_ttl.as_secs(), 600, "an explicit setting wins");
        let c = ServerConfig::from_lookup(one("AUTH_API_DIALECT", "plain")).unwrap();
        assert_eq!((c.api_dialect.name(), c.access_token_ttl.as_secs()), ("plain", 3600));
        assert!(c.refresh_rotation, "rotation is on unless a dialect or the variable says otherwise");
        let c = ServerConfig::from_lookup(one("AUTH_REFRESH_ROTATION", "off")).unwrap();
        assert!(!c.refresh_rotation);
        assert!(!c.auth_config(vec![7; 32]).unwrap().refresh_rotation, "reaches the core");
        let err = ServerConfig::from_lookup(one("AUTH_REFRESH_ROTATION", "sometimes")).unwrap_err().to_string();
        assert!(err.contains("AUTH_REFRESH_ROTATION"), "{err}");
        let c = ServerConfig::from_lookup(one("AUTH_API_DIALECT", "res-err")).unwrap();
        assert_eq!(c.api_dialect.mount(), "/api/v1/auth");
        assert!(!c.refresh_rotation, "res-err clients never receive a new refresh token");
        assert!(c.require_email_verification, "res-err registers with a mailed code");
        let c = ServerConfig::from_lookup(lookup(&[
            ("AUTH_API_DIALECT", "res-err"),
            ("AUTH_REFRESH_ROTATION", "off"),
            ("AUTH_REQUIRE_EMAIL_VERIFICATION", "false"),
        ]))
        .unwrap();
        assert!(!c.require_email_verification, "explicit settings win");
        let err =
            ServerConfig::from_lookup(lookup(&[("AUTH_API_DIALECT", "res-err"), ("AUTH_REFRESH_ROTATION", "on")]))
                .unwrap_err()
                .to_string();
        assert!(err.contains("AUTH_REFRESH_ROTATION=on does not work with AUTH_API_DIALECT=res-err"), "{err}");
        let c = ServerConfig::from_lookup(one("AUTH_API_DIALECT", "success")).unwrap();
        assert_eq!((c.api_dialect.mount(), c.access_token_ttl.as_secs()), ("/v1/auth", 24 * 3600));
        assert!(c.password_composition && c.require_email_verification && c.refresh_rotation);
        assert!(c.auth_config(vec![7; 32]).unwrap().password_policy.require_symbol, "reaches the core");
        let c =
            ServerConfig::from_lookup(lookup(&[("AUTH_API_DIALECT", "success"), ("AUTH_PASSWORD_COMPOSITION", "off")]))
                .unwrap();
        assert!(!c.auth_config(vec![7; 32]).unwrap().password_policy.require_symbol, "an explicit setting wins");
        let err = ServerConfig::from_lookup(one("AUTH_API_DIALECT", "soap")).unwrap_err().to_string();
        assert!(err.contains("AUTH_API_DIALECT") && err.contains("code-data"), "{err}");
    }

    #[test]
    fn the_client_ip_header_is_one_of_four_and_anything_else_is_refused() {
        for (value, header) in [
            ("x-forwarded-for", ClientIpHeader::XForwardedFor),
            ("forwarded", ClientIpHeader::Forwarded),
            ("X-Real-IP", ClientIpHeader::XRealIp),
            (" cf-connecting-ip ", ClientIpHeader::CfConnectingIp),
        ] {
            let c = ServerConfig::from_lookup(one("AUTH_CLIENT_IP_HEADER", value)).unwrap();
            assert_eq!(c.client_ip_header, header, "{value}");
            let config = c.auth_config(vec![7; MIN_JWT_SECRET_BYTES]).unwrap();
            assert_eq!(config.client_ip_header, header);
        }
        for bad in ["x-client-ip", "true-client-ip", "x-forwarded-for, forwarded", ""] {
            let err = ServerConfig::from_lookup(one("AUTH_CLIENT_IP_HEADER", bad)).unwrap_err().to_string();
            assert!(err.contains("AUTH_CLIENT_IP_HEADER"), "{err}");
        }
    }

    #[test]
    fn queued_hashes_and_the_mail_limit_are_read() {
        let c =
            ServerConfig::from_lookup(lookup(&[("AUTH_MAX_QUEUED_HASHES", "32"), ("AUTH_RATE_LIMIT_MAIL", "4/600")]))
                .unwrap();
        assert_eq!(c.max_queued_hashes, Some(32));
        assert_eq!(c.rate_limits.as_ref().unwrap().mail_per_ip, Some(RateRule::new(4, 600)));
        let config = c.auth_config(vec![7; MIN_JWT_SECRET_BYTES]).unwrap();
        assert_eq!(config.max_queued_hashes, 32);
        assert_eq!(config.rate_limits.mail_per_ip, Some(RateRule::new(4, 600)));
        let c = ServerConfig::from_lookup(lookup(&[("AUTH_RATE_LIMIT_MAIL", "off")])).unwrap();
        assert_eq!(c.rate_limits.unwrap().mail_per_ip, None);
        for (name, bad) in [
            ("AUTH_MAX_QUEUED_HASHES", "0"),
            ("AUTH_MAX_QUEUED_HASHES", "-1"),
            ("AUTH_MAX_QUEUED_HASHES", "many"),
            ("AUTH_RATE_LIMIT_MAIL", "10 per hour"),
            ("AUTH_RATE_LIMIT_MAIL", "0/60"),
        ] {
            let err = ServerConfig::from_lookup(one(name, bad)).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={bad}: {err}");
        }
    }

    #[test]
    fn a_short_jwt_secret_is_refused_with_a_clear_message() {
        let err = ServerConfig::from_lookup(lookup(&[("AUTH_JWT_SECRET", "too-short")])).unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        assert!(!err.to_string().contains("too-short"), "the secret is never echoed");
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let err = ServerConfig::from_lookup(lookup(&[("AUTH_ACCESS_TOKEN_TTL", "1h")])).unwrap_err();
        assert!(err.to_string().contains("AUTH_ACCESS_TOKEN_TTL"));
        let err = ServerConfig::from_lookup(lookup(&[("AUTH_RATE_LIMITS", "sometimes")])).unwrap_err();
        assert!(err.to_string().contains("AUTH_RATE_LIMITS"));
        assert!(ServerConfig::from_lookup(lookup(&[("AUTH_RATE_LIMITS", "off")])).unwrap().rate_limits.is_none());
        let err = ServerConfig::from_lookup(lookup(&[("AUTH_RATE_LIMIT_LOGIN", "5 per minute")])).unwrap_err();
        assert!(err.to_string().contains("AUTH_RATE_LIMIT_LOGIN"), "{err}");
        let err = ServerConfig::from_lookup(lookup(&[("AUTH_TRUSTED_PROXIES", "10.0.0.0/8, nonsense")])).unwrap_err();
        assert!(err.to_string().contains("AUTH_TRUSTED_PROXIES"), "{err}");
        let err = ServerConfig::from_lookup(lookup(&[("AUTH_SESSION_CACHE", "lots")])).unwrap_err();
        assert!(err.to_string().contains("AUTH_SESSION_CACHE"), "{err}");
        let err = ServerConfig::from_lookup(lookup(&[("AUTH_REDIS_SESSION_CACHE", "0")])).unwrap_err();
        assert!(err.to_string().contains("is now AUTH_SESSION_CACHE"), "the old name is refused, not ignored: {err}");
    }

    #[test]
    fn redis_require_noeviction_is_true_or_false() {
        let read = |value: &'static str| {
            ServerConfig::from_lookup(move |name: &str| (name == "AUTH_REDIS_REQUIRE_NOEVICTION").then(|| value.into()))
        };
        assert!(!ServerConfig::from_lookup(lookup(&[])).unwrap().redis_require_noeviction, "off by default");
        for (value, expected) in [("true", true), ("1", true), ("false", false), ("0", false)] {
            assert_eq!(read(value).unwrap().redis_require_noeviction, expected, "{value}");
        }
        for bad in ["yes", "on", "2", "noeviction"] {
            let err = read(bad).unwrap_err().to_string();
            assert!(err.contains("AUTH_REDIS_REQUIRE_NOEVICTION"), "{bad}: {err}");
        }
    }

    #[test]
    fn rate_limit_rules_and_trusted_proxies_are_read() {
        let c = ServerConfig::from_lookup(lookup(&[
            ("AUTH_RATE_LIMIT_LOGIN", "7/30"),
            ("AUTH_RATE_LIMIT_OTHER", "off"),
            ("AUTH_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
        ]))
        .unwrap();
        let limits = c.rate_limits.unwrap();
        assert_eq!(limits.login_per_ip, Some(RateRule::new(7, 30)));
        assert_eq!(limits.other_per_ip, None);
        assert_eq!(limits.register_per_ip, RateLimits::default().register_per_ip);
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(c.trusted_proxies[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
    }

    #[test]
    fn captcha_settings_and_seed_002_variables() {
        let c = ServerConfig::from_lookup(lookup(&[])).unwrap().captcha;
        assert_eq!(c.kind, CaptchaKind::None);
        assert_eq!(c.routes, CaptchaAction::ALL);
        assert_eq!((c.min_score, c.timeout.as_secs()), (0.5, 5));
        let c = ServerConfig::from_lookup(lookup(&[
            ("TURNSTILE_ENABLED", "true"),
            ("TURNSTILE_ALLOWED_HOSTNAME", "app.example.com"),
            ("AUTH_CAPTCHA_SECRET", "s"),
        ]))
        .unwrap()
        .captcha;
        assert_eq!(c.kind, CaptchaKind::Token(SiteverifyProvider::Turnstile));
        assert_eq!(c.allowed_hostname.as_deref(), Some("app.example.com"));
        let c = ServerConfig::from_lookup(lookup(&[("TURNSTILE_ENABLED", "false")])).unwrap().captcha;
        assert_eq!(c.kind, CaptchaKind::None);
        let c =
            ServerConfig::from_lookup(lookup(&[("AUTH_CAPTCHA", "image"), ("AUTH_CAPTCHA_ROUTES", "login, register")]))
                .unwrap()
                .captcha;
        assert_eq!((c.kind, c.routes), (CaptchaKind::Image, vec![CaptchaAction::Login, CaptchaAction::Register]));
    }

    #[test]
    fn bad_captcha_settings_are_refused_by_name() {
        for (vars, needle) in [
            (&[("AUTH_CAPTCHA", "recaptcha")][..], "AUTH_CAPTCHA_SECRET is required"),
            (&[("AUTH_CAPTCHA", "puzzle")][..], "AUTH_CAPTCHA must be"),
            (&[("AUTH_CAPTCHA_MIN_SCORE", "2")][..], "AUTH_CAPTCHA_MIN_SCORE"),
            (&[("AUTH_CAPTCHA_ROUTES", "login,logout")][..], "AUTH_CAPTCHA_ROUTES"),
            (&[("AUTH_CAPTCHA_TIMEOUT", "0")][..], "AUTH_CAPTCHA_TIMEOUT"),
        ] {
            let vars: &'static [(&'static str, &'static str)] = vars;
            let err = ServerConfig::from_lookup(lookup(vars)).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
