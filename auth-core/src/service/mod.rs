//! The [`Auth`] service: every flow of the HTTP API as one async method.

mod email;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use uuid::Uuid;

use crate::api::{
    CaptchaResponse, CaptchaStatus, ChangePasswordRequest, EmailCodePurpose, LoginRequest, PreferencesResponse,
    PreferencesUpdate, RegisterRequest, SessionInfo, TokenResponse,
};
use crate::captcha::{CaptchaAction, CaptchaProof, CaptchaProvider, NoCaptcha};
use crate::config::RateRule;
use crate::config::{AuthConfig, ConfigError};
use crate::context::RequestContext;
use crate::error::{AuthError, FieldError};
use crate::events::{AuthEvents, LoginFailure, NoEvents};
use crate::limit::MemoryRateLimiter;
use crate::mail::{DefaultTemplates, MailKind, MailTemplates, Mailer};
use crate::password::PasswordHasher;
use crate::secret::{random_token, HmacKey, SecretString, TokenHash};
use crate::store::{
    NewSession, RateLimitDecision, RateLimiter, RefreshRotation, Rotation, Session, TokenStore, UserStore,
};
use crate::token::{Claims, JwtCodec, VerifiedTokens};
use crate::user::{NewUser, Role, User, UserRecord, UserStatus, UserUpdate};
use crate::validate::{identifier_key, normalize_email, valid_language_tag, valid_username};

/// Longest refresh token accepted for lookup, in bytes (ours are 43).
const MAX_REFRESH_TOKEN_LEN: usize = 256;

/// The authentication service. Cheap to clone (an `Arc` inside); build it with
/// [`Auth::builder`].
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    users: Arc<dyn UserStore>,
    tokens: Arc<dyn TokenStore>,
    limiter: Option<Arc<dyn RateLimiter>>,
    captcha: Arc<dyn CaptchaProvider>,
    /// `None`: the email flows are off (`not_found`).
    mailer: Option<Arc<dyn Mailer>>,
    templates: Arc<dyn MailTemplates>,
    events: Arc<dyn AuthEvents>,
    config: AuthConfig,
    jwt: JwtCodec,
    verified: VerifiedTokens,
    successor_key: HmacKey,
    /// Keys the hashes of mailed codes, so a leaked store does not give them away to brute force.
    codes_key: HmacKey,
    hasher: PasswordHasher,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.inner.config)
            .field("captcha", &self.inner.captcha.name())
            .finish_non_exhaustive()
    }
}

/// Builds an [`Auth`]. A user store and a token store are required. The captcha defaults to
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
    tokens: Option<Arc<dyn TokenStore>>,
    limiter: Option<Arc<dyn RateLimiter>>,
    captcha: Arc<dyn CaptchaProvider>,
    mailer: Option<Arc<dyn Mailer>>,
    templates: Arc<dyn MailTemplates>,
    events: Arc<dyn AuthEvents>,
}

impl AuthBuilder {
    /// The user store.
    pub fn user_store(mut self, store: Arc<dyn UserStore>) -> Self {
        self.users = Some(store);
        self
    }

    /// The session and one-time-secret store.
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.tokens = Some(store);
        self
    }

    /// One backend as both user store and token store.
    pub fn stores<S: UserStore + TokenStore>(self, store: Arc<S>) -> Self {
        self.user_store(store.clone()).token_store(store)
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

    /// Builds the service.
    ///
    /// # Errors
    /// [`ConfigError`] for a missing store, an out-of-range setting, a mailer without
    /// `public_url`, or `require_email_verification` without a mailer.
    pub fn build(self) -> Result<Auth, ConfigError> {
        let config = self.config;
        config.validate()?;
        let users = self.users.ok_or(ConfigError::MissingStore("user store"))?;
        let tokens = self.tokens.ok_or(ConfigError::MissingStore("token store"))?;
        if self.mailer.is_none() && config.require_email_verification {
            return Err(ConfigError::MissingMailer("AuthConfig::require_email_verification"));
        }
        if self.mailer.is_some() && config.public_url.as_deref().is_none_or(|url| url.trim().is_empty()) {
            return Err(ConfigError::MissingPublicUrl);
        }
        let limiter = match self.limiter {
            Some(limiter) => Some(limiter),
            None if config.rate_limits.any() => Some(Arc::new(MemoryRateLimiter::new()) as Arc<dyn RateLimiter>),
            None => None,
        };
        let hasher = PasswordHasher::new(config.argon2, config.max_concurrent_hashes, config.max_queued_hashes)
            .map_err(|e| ConfigError::Argon2(e.to_string()))?;
        let jwt = JwtCodec::new(&config.jwt_secret, &config.issuer, &config.audience, config.clock_leeway.as_secs());
        let successor_key = HmacKey::derive(&config.jwt_secret, "auth-core/refresh-token-successor/v1");
        let codes_key = HmacKey::derive(&config.jwt_secret, "auth-core/email-code/v1");
        let verified = VerifiedTokens::new(config.verified_token_cache, config.clock_leeway.as_secs());
        Ok(Auth {
            inner: Arc::new(Inner {
                users,
                tokens,
                limiter,
                captcha: self.captcha,
                mailer: self.mailer,
                templates: self.templates,
                events: self.events,
                config,
                jwt,
                verified,
                successor_key,
                codes_key,
                hasher,
            }),
        })
    }
}

/// The current time truncated to whole seconds: every stored and returned time has second
/// precision, as RFC 3339 `…T10:00:00Z`.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Longest key part kept as it is in a limiter key, in bytes; longer ones are hashed.
const MAX_PLAIN_LIMIT_KEY: usize = 64;

/// The limiter key of `rule` for `key`: `rl:{rule}:{key}`, or `rl:{rule}:#{sha256 hex}` when
/// `key` is longer than 64 bytes, so a client cannot make the limiter store arbitrarily long keys
/// (a hashed key is 65 bytes, so it never equals a plain one).
fn limit_key(rule: &str, key: &str) -> String {
    if key.len() <= MAX_PLAIN_LIMIT_KEY {
        format!("rl:{rule}:{key}")
    } else {
        format!("rl:{rule}:#{}", TokenHash::of(key).to_hex())
    }
}

/// The bucket of the per-account lockout: `user:{id}` once the account is known, so that its
/// username, email and their case variants share one count; else `name:{identifier_key}` of
/// what was typed, so a lockout says nothing about whether the account exists.
fn account_bucket(user_id: Option<Uuid>, typed: &str) -> String {
    match user_id {
        Some(id) => format!("user:{id}"),
        None => format!("name:{}", identifier_key(typed)),
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
            tokens: None,
            limiter: None,
            captcha: Arc::new(NoCaptcha),
            mailer: None,
            templates: Arc::new(DefaultTemplates::default()),
            events: Arc::new(NoEvents),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
    }

    /// The user store.
    #[must_use]
    pub fn user_store(&self) -> &Arc<dyn UserStore> {
        &self.inner.users
    }

    /// The token store.
    #[must_use]
    pub fn token_store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.tokens
    }

    /// The mailer; `None` when the email flows are off.
    #[must_use]
    pub fn mailer(&self) -> Option<&Arc<dyn Mailer>> {
        self.inner.mailer.as_ref()
    }

    /// `POST /register`: checks the captcha, validates username / email, applies the password
    /// policy, hashes with Argon2id, creates the user (role `user`) and a session.
    ///
    /// # Errors
    /// `captcha_*`, `invalid_request`, `weak_password`, `username_taken`, `email_taken`,
    /// `store_unavailable`.
    pub async fn register(&self, req: RegisterRequest, ctx: &RequestContext) -> Result<TokenResponse, AuthError> {
        // Every attempt counts, taken or weak or not: the rule bounds what one client can make the
        // server do, not only the accounts it creates.
        self.limit_ip("register_per_ip", self.inner.config.rate_limits.register_per_ip, ctx).await?;
        self.check_captcha(&req.captcha, CaptchaAction::Register, ctx).await?;
        let policy = self.inner.config.registration;
        let mut fields = Vec::new();
        let username = req.username.as_deref().map(str::trim).filter(|u| !u.is_empty());
        if username.is_some_and(|u| !valid_username(u)) {
            fields.push(FieldError::new("username", "must be 3 to 50 letters, digits, '_', '-' or '.'"));
        }
        let email_raw = req.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let email = email_raw.and_then(normalize_email);
        if email_raw.is_some() && email.is_none() {
            fields.push(FieldError::new("email", "must be an email address"));
        }
        if policy.require_username && username.is_none() {
            fields.push(FieldError::new("username", "is required"));
        }
        let verify_email = self.inner.config.require_email_verification;
        if (policy.require_email || verify_email) && email_raw.is_none() {
            fields.push(FieldError::new("email", "is required"));
        }
        if verify_email && req.email_code.as_ref().is_none_or(|c| c.expose().trim().is_empty()) {
            fields.push(FieldError::new("email_code", "is required: request one with POST /email/code"));
        }
        if username.is_none() && email_raw.is_none() && fields.is_empty() {
            fields.push(FieldError::new("username", "a username or an email is required"));
        }
        if !fields.is_empty() {
            return Err(AuthError::InvalidRequest { fields });
        }
        let inputs: Vec<String> = username
            .into_iter()
            .map(str::to_owned)
            .chain(email.iter().filter_map(|e| e.split('@').next().map(str::to_owned)))
            .collect();
        self.check_password_policy(&req.password, inputs).await?;
        // Taken names are refused before Argon2 runs; the store's unique index re-checks at insert.
        if let Some(name) = username {
            if self.inner.users.user_by_username(name).await?.is_some() {
                return Err(AuthError::UsernameTaken);
            }
        }
        if let Some(address) = &email {
            if self.inner.users.user_by_email(address).await?.is_some() {
                return Err(AuthError::EmailTaken);
            }
        }
        // The code is spent only once everything else about the request is known to be fine.
        if let (true, Some(email), Some(code)) = (verify_email, &email, &req.email_code) {
            self.take_email_code(EmailCodePurpose::Register, email, code).await?;
        }
        let password_hash = self.inner.hasher.hash(req.password.expose()).await?;
        let created_at = now();
        let user = self
            .inner
            .users
            .create_user(NewUser {
                id: Uuid::now_v7(),
                username: username.map(str::to_owned),
                email,
                email_verified: verify_email,
                password_hash,
                role: Role::user(),
                created_at,
            })
            .await?;
        tracing::info!(user_id = %user.id, "user registered");
        self.inner.events.registered(&user, ctx);
        let (session, refresh_token) = self.create_session(user.id, ctx, created_at).await?;
        self.inner.events.logged_in(&user, session.id, ctx);
        self.token_response(user, &session, refresh_token, created_at)
    }

    /// `POST /login`: by username, or by email. An unknown account costs one Argon2 verify
    /// against a dummy hash, so it takes as long as a wrong password; a disabled account with a
    /// wrong password answers like any wrong password. Re-hashes the password when the stored
    /// hash used other Argon2 parameters.
    ///
    /// Every attempt first takes a slot of `login_failures_per_account` for the account (by user
    /// id when the account exists, by [`identifier_key`] of what was typed when not), atomically,
    /// so parallel guesses cannot all pass the check; a successful login clears the account's
    /// count. The session is kept only if the password hash that was verified is still the
    /// account's and the account is still active when the login is recorded (one compare-and-set
    /// store operation after the session is created): a password reset, change or disable that
    /// lands during the verify wins, and the login answers `invalid_credentials`.
    ///
    /// # Errors
    /// `captcha_*`, `invalid_request` (no identifier), `invalid_credentials`,
    /// `account_disabled`, `rate_limited`, `overloaded`, `store_unavailable`.
    pub async fn login(&self, req: LoginRequest, ctx: &RequestContext) -> Result<TokenResponse, AuthError> {
        let limits = &self.inner.config.rate_limits;
        self.limit_ip("login_per_ip", limits.login_per_ip, ctx).await?;
        self.check_captcha(&req.captcha, CaptchaAction::Login, ctx).await?;
        let username = req.username.as_deref().map(str::trim).filter(|u| !u.is_empty());
        let email = req.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let record = match (username, email) {
            (Some(name), _) if !name.contains('@') => self.inner.users.user_by_username(name).await?,
            (Some(address), _) | (None, Some(address)) => match normalize_email(address) {
                Some(address) => self.inner.users.user_by_email(&address).await?,
                None => None,
            },
            (None, None) => return Err(AuthError::invalid_field("username", "a username or an email is required")),
        };
        let identifier = username.or(email).unwrap_or_default();
        let account = account_bucket(record.as_ref().map(|r| r.user.id), identifier);
        if let Err(err) = self.take_account_attempt(&account, ctx).await {
            if matches!(err, AuthError::RateLimited { .. }) {
                tracing::warn!("login refused: the account is locked after repeated failures");
                self.inner.events.login_locked(&identifier_key(identifier), ctx);
            }
            return Err(err);
        }
        let verified =
            self.inner.hasher.verify(req.password.expose(), record.as_ref().map(|r| r.password_hash.as_str())).await?;
        let failure = match &record {
            None => Some(LoginFailure::UnknownAccount),
            Some(_) if !verified.valid => Some(LoginFailure::WrongPassword),
            Some(r) if r.user.status == UserStatus::Disabled => Some(LoginFailure::AccountDisabled),
            Some(_) => None,
        };
        if let Some(reason) = failure {
            tracing::info!(?reason, ip = ?ctx.ip, "login failed");
            self.inner.events.login_failed(identifier, reason, ctx);
            return Err(match reason {
                LoginFailure::AccountDisabled => AuthError::AccountDisabled,
                _ => AuthError::InvalidCredentials,
            });
        }
        let record = record.expect("checked above");
        self.clear_account_attempts(&account).await?;
        let rehash =
            if verified.needs_rehash { Some(self.inner.hasher.hash(req.password.expose()).await?) } else { None };
        let at = now();
        let (session, refresh_token) = self.create_session(record.user.id, ctx, at).await?;
        let mut record_login = UserUpdate::new()
            .last_login_at(at)
            .only_if_password_hash(record.password_hash)
            .only_if_status(UserStatus::Active);
        if let Some(phc) = rehash {
            record_login = record_login.password_hash(phc);
        }
        let Some(user) = self.inner.users.update_user(record.user.id, record_login, at).await? else {
            // The password was reset or changed, or the account disabled or deleted, while the
            // password was being verified: that change wins.
            tracing::info!(user_id = %record.user.id, "login lost a race with a credential change; session dropped");
            self.inner.tokens.revoke_session(session.id, at).await?;
            return Err(AuthError::InvalidCredentials);
        };
        self.inner.events.logged_in(&user, session.id, ctx);
        self.token_response(user, &session, refresh_token, at)
    }

    /// `POST /refresh`: rotates the refresh token (the presented one is spent, its successor
    /// returned) and issues a new access token.
    ///
    /// Within the reuse grace window a spent token answers with the *same* successor (two tabs
    /// refreshing at once stay logged in); after it, the whole session is revoked. The successor
    /// is `HMAC-SHA-256(server key, presented token)`, so no plaintext token is ever stored.
    ///
    /// # Errors
    /// `invalid_refresh_token` (unknown, expired, idle, revoked, or the account is gone or
    /// disabled), `refresh_token_reused`, `store_unavailable`.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenResponse, AuthError> {
        let presented = refresh_token.expose();
        if presented.is_empty() || presented.len() > MAX_REFRESH_TOKEN_LEN {
            return Err(AuthError::InvalidRefreshToken);
        }
        let successor = self.inner.successor_key.sign(presented.as_bytes());
        let at = now();
        let config = &self.inner.config;
        let rotation = RefreshRotation {
            presented: TokenHash::of(presented),
            successor: TokenHash::of(&successor),
            now: at,
            reuse_grace: delta(config.refresh_reuse_grace),
            idle_timeout: delta(config.refresh_idle_timeout),
        };
        let session = match self.inner.tokens.rotate_refresh_token(rotation).await? {
            Rotation::Rotated(session) | Rotation::Grace(session) => session,
            Rotation::Reused(session) => {
                tracing::warn!(user_id = %session.user_id, session_id = %session.id,
                    "spent refresh token reused after the grace window; session revoked");
                self.inner.events.refresh_token_reused(session.user_id, session.id);
                return Err(AuthError::RefreshTokenReused);
            }
            Rotation::Unknown => return Err(AuthError::InvalidRefreshToken),
        };
        let user = match self.inner.users.user_by_id(session.user_id).await? {
            Some(UserRecord { user, .. }) if user.status == UserStatus::Active => user,
            _ => {
                self.inner.tokens.revoke_session(session.id, at).await?;
                return Err(AuthError::InvalidRefreshToken);
            }
        };
        self.token_response(user, &session, successor, at)
    }

    /// `POST /logout`: revokes the caller's session, or with `all` every session of the user.
    /// Access tokens of revoked sessions are refused at once.
    ///
    /// # Errors
    /// `store_unavailable`.
    pub async fn logout(&self, claims: &Claims, all: bool) -> Result<(), AuthError> {
        let at = now();
        if all {
            self.inner.tokens.revoke_user_sessions(claims.sub, None, at).await?;
        } else {
            self.inner.tokens.revoke_session(claims.sid, at).await?;
        }
        self.inner.events.logged_out(claims.sub, claims.sid, all);
        Ok(())
    }

    /// `GET /me`: the caller.
    ///
    /// # Errors
    /// `unauthorized` if the user no longer exists, `store_unavailable`.
    pub async fn me(&self, claims: &Claims) -> Result<User, AuthError> {
        Ok(self.caller(claims).await?.user)
    }

    /// `PUT /me/preferences`: changes the given fields.
    ///
    /// # Errors
    /// `invalid_request` for a language that is not a BCP 47 tag, `unauthorized`,
    /// `store_unavailable`.
    pub async fn update_preferences(
        &self,
        claims: &Claims,
        update: PreferencesUpdate,
    ) -> Result<PreferencesResponse, AuthError> {
        if let Some(language) = &update.language {
            if !valid_language_tag(language) {
                return Err(AuthError::invalid_field("language", "must be a BCP 47 language tag such as en or zh-CN"));
            }
        }
        let mut preferences = self.caller(claims).await?.user.preferences;
        if let Some(theme) = update.theme {
            preferences.theme = theme;
        }
        if let Some(language) = update.language {
            preferences.language = language;
        }
        let user = self
            .inner
            .users
            .update_user(claims.sub, UserUpdate::new().preferences(preferences), now())
            .await?
            .ok_or(AuthError::Unauthorized)?;
        Ok(PreferencesResponse { preferences: user.preferences })
    }

    /// `POST /password/change`: verifies the current password, applies the policy to the new
    /// one, stores its hash (compare-and-set on the verified one) and revokes every other session
    /// of the user, then mails a notice (time and client IP, no secrets) to the account's address.
    ///
    /// A wrong current password counts toward the account's failed-login lockout
    /// (`login_failures_per_account`), like a failed login: a stolen access token does not give
    /// unlimited guesses at the password.
    ///
    /// # Errors
    /// [`AuthError::CurrentPasswordInvalid`] (403 `invalid_credentials`), `weak_password`,
    /// `rate_limited`, `overloaded`, `unauthorized`, `store_unavailable`.
    pub async fn change_password(
        &self,
        claims: &Claims,
        req: ChangePasswordRequest,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let record = self.caller(claims).await?;
        let account = account_bucket(Some(record.user.id), "");
        self.take_account_attempt(&account, ctx).await?;
        let verified = self.inner.hasher.verify(req.current_password.expose(), Some(&record.password_hash)).await?;
        if !verified.valid {
            return Err(AuthError::CurrentPasswordInvalid);
        }
        self.clear_account_attempts(&account).await?;
        let inputs = [record.user.username.clone(), record.user.email.clone()].into_iter().flatten().collect();
        self.check_password_policy(&req.new_password, inputs).await?;
        let hash = self.inner.hasher.hash(req.new_password.expose()).await?;
        let at = now();
        let update = UserUpdate::new().password_hash(hash).only_if_password_hash(record.password_hash);
        if self.inner.users.update_user(claims.sub, update, at).await?.is_none() {
            // Changed or reset by another request since the verify: that one wins.
            return Err(AuthError::CurrentPasswordInvalid);
        }
        let revoked = self.inner.tokens.revoke_user_sessions(claims.sub, Some(claims.sid), at).await?;
        tracing::info!(user_id = %claims.sub, revoked, "password changed; other sessions revoked");
        self.inner.events.password_changed(claims.sub);
        if let Some(email) = &record.user.email {
            self.send_notice(email, &MailKind::PasswordChanged { reset: false, at, ip: ctx.ip });
        }
        Ok(())
    }

    /// `GET /sessions`: the caller's live sessions, newest first, the current one marked.
    ///
    /// # Errors
    /// `store_unavailable`.
    pub async fn sessions(&self, claims: &Claims) -> Result<Vec<SessionInfo>, AuthError> {
        let sessions = self.inner.tokens.user_sessions(claims.sub, now()).await?;
        Ok(sessions.into_iter().map(|s| SessionInfo::new(s, claims.sid)).collect())
    }

    /// `DELETE /sessions/{id}`: revokes one of the caller's sessions (the current one included).
    ///
    /// # Errors
    /// `not_found` for a session that is not the caller's live session, `store_unavailable`.
    pub async fn revoke_session(&self, claims: &Claims, session_id: Uuid) -> Result<(), AuthError> {
        let at = now();
        match self.inner.tokens.session(session_id).await? {
            Some(s) if s.user_id == claims.sub && s.is_live(at) => {
                self.inner.tokens.revoke_session(session_id, at).await?;
                self.inner.events.session_revoked(claims.sub, session_id);
                Ok(())
            }
            _ => Err(AuthError::NotFound),
        }
    }

    /// Verifies an access token for the middleware: signature (HS256 only), `typ` `at+jwt`,
    /// `exp`, `nbf`, `iss`, `aud`, then that its session is still live in the token store.
    /// A token seen before skips the signature work (see
    /// [`AuthConfig::verified_token_cache`](crate::AuthConfig::verified_token_cache)); the
    /// session check runs every time.
    ///
    /// # Errors
    /// `unauthorized`, `token_expired`, `session_revoked`, `store_unavailable`.
    pub async fn authenticate(&self, access_token: &str) -> Result<Claims, AuthError> {
        let now = Utc::now();
        let claims = match self.inner.verified.get(access_token, now.timestamp()) {
            Some(cached) => cached?,
            None => {
                let claims = self.inner.jwt.verify(access_token)?;
                self.inner.verified.insert(access_token, &claims);
                claims
            }
        };
        if self.inner.tokens.session_is_live(claims.sid, claims.sub, now).await? {
            Ok(claims)
        } else {
            Err(AuthError::SessionRevoked)
        }
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

    /// `GET /captcha`: a fresh image challenge, or the disabled answer.
    ///
    /// # Errors
    /// `store_unavailable`.
    pub async fn captcha_challenge(&self) -> Result<CaptchaResponse, AuthError> {
        Ok(match self.inner.captcha.challenge().await? {
            Some(c) => CaptchaResponse {
                enabled: true,
                captcha_id: c.captcha_id,
                image: c.image,
                expires_in: Some(c.expires_in),
            },
            None => {
                CaptchaResponse { enabled: false, captcha_id: String::new(), image: String::new(), expires_in: None }
            }
        })
    }

    /// Creates an administrator, or promotes an existing user of that username: sets role
    /// `admin` and the given password (revoking the user's sessions). For operator tooling such
    /// as the example server's `create-admin`.
    ///
    /// # Errors
    /// `invalid_request` (username), `weak_password`, `store_unavailable`.
    pub async fn create_admin(&self, username: &str, password: &SecretString) -> Result<User, AuthError> {
        let username = username.trim();
        if !valid_username(username) {
            return Err(AuthError::invalid_field("username", "must be 3 to 50 letters, digits, '_', '-' or '.'"));
        }
        self.check_password_policy(password, vec![username.to_owned()]).await?;
        let password_hash = self.inner.hasher.hash(password.expose()).await?;
        let at = now();
        if let Some(existing) = self.inner.users.user_by_username(username).await? {
            let update = UserUpdate::new().role(Role::admin()).password_hash(password_hash);
            let user = self.inner.users.update_user(existing.user.id, update, at).await?.ok_or(AuthError::NotFound)?;
            self.inner.tokens.revoke_user_sessions(user.id, None, at).await?;
            return Ok(user);
        }
        Ok(self
            .inner
            .users
            .create_user(NewUser {
                id: Uuid::now_v7(),
                username: Some(username.to_owned()),
                email: None,
                email_verified: false,
                password_hash,
                role: Role::admin(),
                created_at: at,
            })
            .await?)
    }

    /// Sets a user's status; disabling revokes every session of the user at once.
    ///
    /// # Errors
    /// `not_found`, `store_unavailable`.
    pub async fn set_user_status(&self, user_id: Uuid, status: UserStatus) -> Result<User, AuthError> {
        let at = now();
        let user = self
            .inner
            .users
            .update_user(user_id, UserUpdate::new().status(status), at)
            .await?
            .ok_or(AuthError::NotFound)?;
        if status == UserStatus::Disabled {
            self.inner.tokens.revoke_user_sessions(user_id, None, at).await?;
        }
        Ok(user)
    }

    /// Sets a user's role. Access tokens carry the role they were issued with, so the change
    /// reaches `RequireAuth::with_role` at the user's next refresh (at most the access-token
    /// lifetime); revoke the user's sessions for an immediate demotion.
    ///
    /// # Errors
    /// `not_found`, `store_unavailable`.
    pub async fn set_user_role(&self, user_id: Uuid, role: Role) -> Result<User, AuthError> {
        self.inner.users.update_user(user_id, UserUpdate::new().role(role), now()).await?.ok_or(AuthError::NotFound)
    }

    /// Deletes revoked and expired sessions (with their refresh tokens) and expired one-time
    /// secrets from the token store; returns how many records went. Call it periodically.
    ///
    /// # Errors
    /// `store_unavailable`.
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        Ok(self.inner.tokens.purge_expired(now()).await?)
    }

    /// Takes a slot of `rule` for `key` (an atomic check-and-count).
    ///
    /// # Errors
    /// `rate_limited` (logged, and reported to [`AuthEvents::rate_limited`]) or
    /// `store_unavailable`. With the rule off, nothing is counted.
    pub(crate) async fn limit(
        &self,
        name: &'static str,
        rule: Option<RateRule>,
        key: &str,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let (Some(limiter), Some(rule)) = (&self.inner.limiter, rule) else {
            return Ok(());
        };
        match limiter.check(&limit_key(name, key), rule.limit, rule.window).await? {
            RateLimitDecision::Allowed { .. } => Ok(()),
            RateLimitDecision::Limited { retry_after_seconds } => {
                tracing::warn!(rule = name, ip = ?ctx.ip, retry_after_seconds, "rate limited");
                self.inner.events.rate_limited(name, retry_after_seconds, ctx);
                Err(AuthError::RateLimited { retry_after_seconds })
            }
        }
    }

    /// Takes a slot of a per-IP rule, keyed by [`RequestContext::rate_limit_key`] (the IPv4
    /// address or the IPv6 /64); requests whose client IP is unknown (no `ConnectInfo`) are not
    /// limited per IP.
    pub(crate) async fn limit_ip(
        &self,
        name: &'static str,
        rule: Option<RateRule>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        match ctx.rate_limit_key() {
            Some(key) => self.limit(name, rule, &key, ctx).await,
            None => Ok(()),
        }
    }

    /// Takes a slot of the account's `login_failures_per_account` bucket (see [`account_bucket`]).
    async fn take_account_attempt(&self, account: &str, ctx: &RequestContext) -> Result<(), AuthError> {
        let rule = self.inner.config.rate_limits.login_failures_per_account;
        self.limit("login_failures_per_account", rule, account, ctx).await
    }

    /// Clears the account's bucket after a proven password: only failures stay counted.
    async fn clear_account_attempts(&self, account: &str) -> Result<(), AuthError> {
        if let (Some(limiter), Some(_)) =
            (&self.inner.limiter, self.inner.config.rate_limits.login_failures_per_account)
        {
            limiter.reset(&limit_key("login_failures_per_account", account)).await?;
        }
        Ok(())
    }

    /// The "every other route" limit (60 per minute per IP by default), for adapters to apply to
    /// the routes without a limit of their own.
    ///
    /// # Errors
    /// `rate_limited`, `store_unavailable`.
    pub async fn limit_other_request(&self, ctx: &RequestContext) -> Result<(), AuthError> {
        self.limit_ip("other_per_ip", self.inner.config.rate_limits.other_per_ip, ctx).await
    }

    async fn caller(&self, claims: &Claims) -> Result<UserRecord, AuthError> {
        self.inner.users.user_by_id(claims.sub).await?.ok_or(AuthError::Unauthorized)
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

    /// Runs the password policy (zxcvbn costs milliseconds) on the blocking pool.
    async fn check_password_policy(&self, password: &SecretString, user_inputs: Vec<String>) -> Result<(), AuthError> {
        let policy = self.inner.config.password_policy.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
            policy.check(password.expose(), &inputs)
        })
        .await
        .map_err(AuthError::internal)?
        .map_err(|reasons| AuthError::WeakPassword { reasons })
    }

    /// Stores a new session of `user_id` started at `at` with a fresh refresh token.
    async fn create_session(
        &self,
        user_id: Uuid,
        ctx: &RequestContext,
        at: DateTime<Utc>,
    ) -> Result<(Session, String), AuthError> {
        let refresh_token = random_token();
        let session = Session {
            id: Uuid::new_v4(),
            user_id,
            created_at: at,
            last_used_at: at,
            expires_at: at + delta(self.inner.config.refresh_token_ttl),
            ip: ctx.ip.map(|ip| ip.to_string()),
            user_agent: ctx.user_agent.clone(),
            revoked_at: None,
        };
        self.inner
            .tokens
            .create_session(NewSession { session: session.clone(), refresh_token_hash: TokenHash::of(&refresh_token) })
            .await?;
        tracing::info!(user_id = %user_id, session_id = %session.id, "session started");
        Ok((session, refresh_token))
    }

    fn token_response(
        &self,
        user: User,
        session: &Session,
        refresh_token: String,
        at: DateTime<Utc>,
    ) -> Result<TokenResponse, AuthError> {
        let ttl = self.inner.config.access_token_ttl.as_secs();
        let (access_token, _) =
            self.inner.jwt.issue(user.id, session.id, &user.role, at, i64::try_from(ttl).unwrap_or(i64::MAX))?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            refresh_token,
            refresh_expires_in: u64::try_from((session.expires_at - at).num_seconds()).unwrap_or(0),
            user,
        })
    }
}
