//! The [`Auth`] service: every flow of the HTTP API as one async method, grouped by concern:
//! `sessions` (login, refresh, logout, the session list, the per-request check), `account`
//! (registration, profile, preferences, password change, operator actions), `recovery` (codes,
//! email verification, password reset) and `limits` (the rate rules and the lockout). This
//! module holds the service, its builder, and the captcha helpers every flow shares.

mod account;
mod admin;
mod audit;
mod lifecycle;
mod limits;
mod mfa;
mod recovery;
mod sessions;

pub use admin::Admin;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use crate::audit::AuditStore;
use crate::captcha::{CaptchaAction, CaptchaChallenge, CaptchaProof, CaptchaProvider, CaptchaStatus, NoCaptcha};
use crate::clock::{Clock, SystemClock};
use crate::config::{AuthConfig, ConfigError};
use crate::context::RequestContext;
use crate::error::AuthError;
use crate::events::{AuthEvents, NoEvents};
use crate::keys::{JwtKey, KeySet};
use crate::limit::MemoryRateLimiter;
use crate::mail::{DefaultTemplates, MailTemplates, Mailer};
use crate::mfa::{MfaKey, MfaStore, SecretBox};
use crate::password::PasswordHasher;
use crate::secret::HmacKey;
use crate::store::{RateLimiter, SecretStore, SessionStore, UserStore};
use crate::token::{JwtCodec, VerifiedTokens};
use jsonwebtoken::jwk::JwkSet;

/// The authentication service. Cheap to clone (an `Arc` inside); build it with
/// [`Auth::builder`].
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    secrets: Arc<dyn SecretStore>,
    /// `None`: no persistent audit log (the `audited` hook still fires).
    audit: Option<Arc<dyn AuditStore>>,
    /// `None`: no second factor (the MFA routes answer `not_found`).
    mfa: Option<Arc<dyn MfaStore>>,
    /// Seals TOTP secrets at rest.
    secret_box: SecretBox,
    /// The audit writes in flight, which [`Auth::flush_audit`] waits for.
    audit_pending: Arc<audit::PendingWrites>,
    limiter: Option<Arc<dyn RateLimiter>>,
    captcha: Arc<dyn CaptchaProvider>,
    /// `None`: the email flows are off (`not_found`).
    mailer: Option<Arc<dyn Mailer>>,
    templates: Arc<dyn MailTemplates>,
    events: Arc<dyn AuthEvents>,
    clock: Arc<dyn Clock>,
    config: AuthConfig,
    jwt: JwtCodec,
    /// The public keys of the signing key set.
    jwks: JwkSet,
    verified: VerifiedTokens,
    successor_key: HmacKey,
    /// Keys the hashes of mailed codes, so a leaked store does not give them away to brute force.
    codes_key: HmacKey,
    hasher: PasswordHasher,
    /// Where background work runs (audit writes, mail): the runtime `build` ran on, or
    /// [`AuthBuilder::runtime`]; `None`: the caller's.
    runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.inner.config)
            .field("captcha", &self.inner.captcha.name())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Auth`]. A user store, a session store and a secret store are required
/// ([`stores`](Self::stores) gives all three from one backend). The captcha defaults to
/// [`NoCaptcha`] and events to [`NoEvents`].
///
/// Safe defaults, checked by [`build`](Self::build):
/// - Rate limits: unless every rule of [`AuthConfig::rate_limits`] is off
///   ([`RateLimits::off`](crate::RateLimits::off)), a [`MemoryRateLimiter`] (one process) is
///   installed when no [`rate_limiter`](Self::rate_limiter) is given.
/// - Mail: there is no default mailer. Without one, the email flows (`/email/code`,
///   `/password/forgot`) answer `not_found`; with one, [`AuthConfig::public_url`] is required
///   (reset links are built from it). [`AuthConfig::require_email_verification`] without a mailer
///   is refused. [`LogMailer`](crate::LogMailer) is for development, given by name.
#[must_use = "call .build() to get the service"]
pub struct AuthBuilder {
    config: AuthConfig,
    users: Option<Arc<dyn UserStore>>,
    sessions: Option<Arc<dyn SessionStore>>,
    secrets: Option<Arc<dyn SecretStore>>,
    audit: Option<Arc<dyn AuditStore>>,
    mfa: Option<Arc<dyn MfaStore>>,
    limiter: Option<Arc<dyn RateLimiter>>,
    captcha: Arc<dyn CaptchaProvider>,
    mailer: Option<Arc<dyn Mailer>>,
    templates: Arc<dyn MailTemplates>,
    events: Arc<dyn AuthEvents>,
    clock: Arc<dyn Clock>,
    runtime: Option<tokio::runtime::Handle>,
}

impl AuthBuilder {
    /// The user store.
    pub fn user_store(mut self, store: Arc<dyn UserStore>) -> Self {
        self.users = Some(store);
        self
    }

    /// The session store (sessions and their refresh tokens).
    pub fn session_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// The one-time-secret store (mailed codes, reset tokens).
    pub fn secret_store(mut self, store: Arc<dyn SecretStore>) -> Self {
        self.secrets = Some(store);
        self
    }

    /// The persistent audit log (`GET /admin/audit`, `GET /me/audit`). Without one, the
    /// [`AuthEvents::audited`] hook still fires and the audit routes answer `not_found`.
    pub fn audit_store(mut self, store: Arc<dyn AuditStore>) -> Self {
        self.audit = Some(store);
        self
    }

    /// The second-factor store (TOTP factors, recovery codes, login challenges), which turns
    /// the second factor on. Keep it in the same database as the users. Without one, the MFA
    /// routes answer `not_found` and logins never ask for a second factor.
    pub fn mfa_store(mut self, store: Arc<dyn MfaStore>) -> Self {
        self.mfa = Some(store);
        self
    }

    /// One backend as user, session, secret, audit and second-factor store.
    pub fn stores<S: UserStore + SessionStore + SecretStore + AuditStore + MfaStore>(self, store: Arc<S>) -> Self {
        self.user_store(store.clone())
            .session_store(store.clone())
            .secret_store(store.clone())
            .audit_store(store.clone())
            .mfa_store(store)
    }

    /// The rate limiter: a shared one (`auth_storage::RedisStore`) for several instances. Without
    /// it, a [`MemoryRateLimiter`] is used unless every rule is off.
    pub fn rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The captcha provider.
    pub fn captcha(mut self, provider: Arc<dyn CaptchaProvider>) -> Self {
        self.captcha = provider;
        self
    }

    /// The mailer, which turns the email flows on (and then needs [`AuthConfig::public_url`]).
    pub fn mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The wording of mailed codes, reset links and notices (default [`DefaultTemplates`]).
    pub fn mail_templates(mut self, templates: Arc<dyn MailTemplates>) -> Self {
        self.templates = templates;
        self
    }

    /// The audit hooks.
    pub fn events(mut self, events: Arc<dyn AuthEvents>) -> Self {
        self.events = events;
        self
    }

    /// The clock (default [`SystemClock`]): tests give a [`ManualClock`](crate::ManualClock) and
    /// move it instead of sleeping. The default rate limiter reads it too.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The tokio runtime that runs the service's background work: audit writes and mail sent
    /// after the answer (codes to an account, reset links, notices). Default: the runtime
    /// [`build`](Self::build) is called on, else the caller's at each spawn.
    ///
    /// Name one that outlives the request handlers' runtimes when those can end first: actix-web,
    /// for one, serves each worker on a runtime of its own and drops it when the server stops,
    /// and work left there would be dropped with it. Build the service on the runtime that lives
    /// longest (`#[tokio::main]`'s): once that one has shut down, background work is dropped as
    /// it is started (the answers are unaffected, and [`Auth::flush_audit`] does not wait for
    /// it).
    pub fn runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Builds the service.
    ///
    /// # Errors
    /// [`ConfigError`] for a missing store, an out-of-range setting, a mailer without
    /// `public_url`, or `require_email_verification` without a mailer.
    pub fn build(self) -> Result<Auth, ConfigError> {
        let config = self.config;
        config.validate()?;
        let users = self.users.ok_or(ConfigError::MissingStore("user store"))?;
        let sessions = self.sessions.ok_or(ConfigError::MissingStore("session store"))?;
        let secrets = self.secrets.ok_or(ConfigError::MissingStore("secret store"))?;
        if self.mailer.is_none() && config.require_email_verification {
            return Err(ConfigError::MissingMailer("AuthConfig::require_email_verification"));
        }
        if self.mailer.is_some() && config.public_url.as_deref().is_none_or(|url| url.trim().is_empty()) {
            return Err(ConfigError::MissingPublicUrl);
        }
        let limiter = match self.limiter {
            Some(limiter) => Some(limiter),
            None if config.rate_limits.any() => {
                Some(Arc::new(MemoryRateLimiter::with_clock(self.clock.clone())) as Arc<dyn RateLimiter>)
            }
            None => None,
        };
        let hasher = PasswordHasher::new(config.argon2, config.max_concurrent_hashes, config.max_queued_hashes)
            .map_err(|e| ConfigError::Argon2(e.to_string()))?;
        let keys = match &config.signing_keys {
            Some(keys) => keys.clone(),
            // `AuthConfig::new` checked the secret's length.
            None => {
                let too_short = |_| ConfigError::JwtSecretTooShort(config.jwt_secret.len());
                KeySet::new(JwtKey::hs256(&config.jwt_secret).map_err(too_short)?).map_err(too_short)?
            }
        };
        let jwt = JwtCodec::new(&keys, &config.issuer, &config.audience, config.clock_leeway.as_secs());
        let jwks = keys.jwks();
        let successor_key = HmacKey::derive(&config.jwt_secret, "auth-core/refresh-token-successor/v1");
        let codes_key = HmacKey::derive(&config.jwt_secret, "auth-core/email-code/v1");
        let verified = VerifiedTokens::new(config.verified_token_cache, config.clock_leeway.as_secs());
        // With an explicit key, the derived one still opens what was sealed before it was set.
        let derived = MfaKey::derive(&config.jwt_secret);
        let mut previous = config.mfa.previous_encryption_keys.clone();
        let current = match &config.mfa.encryption_key {
            Some(key) => {
                previous.push(derived);
                key.clone()
            }
            None => derived,
        };
        let secret_box = SecretBox::new(current, previous);
        Ok(Auth {
            inner: Arc::new(Inner {
                users,
                sessions,
                secrets,
                audit: self.audit,
                audit_pending: Arc::default(),
                mfa: self.mfa,
                secret_box,
                limiter,
                captcha: self.captcha,
                mailer: self.mailer,
                templates: self.templates,
                events: self.events,
                clock: self.clock,
                config,
                jwt,
                jwks,
                verified,
                successor_key,
                codes_key,
                hasher,
                runtime: self.runtime.or_else(|| tokio::runtime::Handle::try_current().ok()),
            }),
        })
    }
}

pub(crate) fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl Auth {
    /// Starts building a service with `config`.
    pub fn builder(config: AuthConfig) -> AuthBuilder {
        AuthBuilder {
            config,
            users: None,
            sessions: None,
            secrets: None,
            audit: None,
            mfa: None,
            limiter: None,
            captcha: Arc::new(NoCaptcha),
            mailer: None,
            templates: Arc::new(DefaultTemplates::default()),
            events: Arc::new(NoEvents),
            clock: Arc::new(SystemClock),
            runtime: None,
        }
    }

    /// Runs `work` in the background on the service's runtime ([`AuthBuilder::runtime`]).
    pub(crate) fn spawn_background<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.inner.runtime {
            Some(runtime) => runtime.spawn(work),
            None => tokio::spawn(work),
        }
    }

    /// The clock's time truncated to whole seconds: every stored and returned time has second
    /// precision, as RFC 3339 `…T10:00:00Z`.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now().trunc_subsecs(0)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The public keys access tokens are signed with, as a JWK Set (RFC 7517): what `GET
    /// /.well-known/jwks.json` serves. Empty with HS256, whose keys are never published.
    #[must_use]
    pub fn jwks(&self) -> &JwkSet {
        &self.inner.jwks
    }

    /// The user store.
    #[must_use]
    pub fn user_store(&self) -> &Arc<dyn UserStore> {
        &self.inner.users
    }

    /// The session store.
    #[must_use]
    pub fn session_store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.sessions
    }

    /// The one-time-secret store.
    #[must_use]
    pub fn secret_store(&self) -> &Arc<dyn SecretStore> {
        &self.inner.secrets
    }

    /// The audit store; `None` when the service keeps no audit log.
    #[must_use]
    pub fn audit_log_store(&self) -> Option<&Arc<dyn AuditStore>> {
        self.inner.audit.as_ref()
    }

    /// The second-factor store; `None` when the second factor is off.
    #[must_use]
    pub fn mfa_store(&self) -> Option<&Arc<dyn MfaStore>> {
        self.inner.mfa.as_ref()
    }

    /// The mailer; `None` when the email flows are off.
    #[must_use]
    pub fn mailer(&self) -> Option<&Arc<dyn Mailer>> {
        self.inner.mailer.as_ref()
    }

    /// `GET /captcha/status`.
    #[must_use]
    pub fn captcha_status(&self) -> CaptchaStatus {
        let captcha = &self.inner.captcha;
        CaptchaStatus {
            captcha_enabled: captcha.enabled(),
            provider: captcha.name(),
            site_key: captcha.site_key().map(str::to_owned),
            login_rate_limit_enabled: self.inner.limiter.is_some()
                && (self.inner.config.rate_limits.login_per_ip.is_some()
                    || self.inner.config.rate_limits.login_failures_per_account.is_some()),
            email_verification_required: self.inner.config.require_email_verification,
        }
    }

    /// `GET /captcha`: a fresh image challenge, or `None` when no image captcha is in use.
    ///
    /// # Errors
    /// `store_unavailable`.
    pub async fn captcha_challenge(&self) -> Result<Option<CaptchaChallenge>, AuthError> {
        self.inner.captcha.challenge().await
    }

    /// Deletes revoked and expired sessions (with their refresh tokens), expired one-time
    /// secrets and second-factor challenges, unconfirmed enrollments, and audit events older than [`AuthConfig::audit_retention`] from their stores;
    /// returns how many records went. Call it periodically. Every store is purged even if another
    /// fails.
    ///
    /// # Errors
    /// `store_unavailable`.
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        let now = self.now();
        // Each store is purged even when another fails; the first failure is reported.
        let sessions = self.inner.sessions.purge_expired_sessions(now).await;
        let secrets = self.inner.secrets.purge_expired_secrets(now).await;
        let audit = match &self.inner.audit {
            Some(store) => store.purge_audit(now - delta(self.inner.config.audit_retention)).await,
            None => Ok(0),
        };
        let mfa = match &self.inner.mfa {
            Some(store) => store.purge_expired_mfa(now, now - mfa::enrollment_window()).await,
            None => Ok(0),
        };
        Ok(sessions? + secrets? + audit? + mfa?)
    }

    async fn check_captcha(
        &self,
        proof: &CaptchaProof,
        action: CaptchaAction,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let captcha = &self.inner.captcha;
        if captcha.enabled() && self.inner.config.captcha_actions.contains(&action) {
            captcha.verify(proof, action, ctx).await?;
        }
        Ok(())
    }
}
