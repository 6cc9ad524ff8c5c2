//! Sessions: login, refresh-token rotation, logout, the session list, and the check behind
//! every authenticated request.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::AuditEventType;
use crate::captcha::CaptchaAction;
use crate::config::RateRuleName;
use crate::context::RequestContext;
use crate::error::AuthError;
use crate::events::LoginFailure;
use crate::input::LoginRequest;
use crate::outcome::{IssuedTokens, LoginOutcome};
use crate::secret::{random_token, SecretString, TokenHash};
use crate::store::{AuthMethod, NewSession, RotationOutcome, RotationRequest, Session};
use crate::token::Claims;
use crate::user::{User, UserRecord, UserStatus, UserUpdate};
use crate::validate::{identifier_key, normalize_email};

use super::limits::account_bucket;
use super::{delta, Auth};

/// Longest refresh token accepted for lookup, in bytes (ours are 43).
const MAX_REFRESH_TOKEN_LEN: usize = 256;

impl Auth {
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
    /// The outcome is [`LoginOutcome::Authenticated`] with a new session (its
    /// [`AuthMethod::Password`]), or, with a second-factor store, no session yet:
    /// [`LoginOutcome::SecondFactorRequired`] for an account with an active factor (finish with
    /// [`login_second_factor`](Self::login_second_factor)), [`LoginOutcome::EnrollmentRequired`]
    /// for one whose role requires a factor it lacks (see [`enroll_totp`](Self::enroll_totp)).
    ///
    /// # Errors
    /// `captcha_*`, `invalid_request` (no identifier), `invalid_credentials`,
    /// `account_disabled`, `rate_limited`, `overloaded`, `store_unavailable`.
    pub async fn login(&self, req: LoginRequest, ctx: &RequestContext) -> Result<LoginOutcome, AuthError> {
        self.limit_ip(RateRuleName::LoginPerIp, ctx).await?;
        if let Err(err) = self.check_captcha(&req.captcha, CaptchaAction::Login, ctx).await {
            if !err.is_server_error() {
                self.audit(AuditEventType::LoginFailed, None, ctx)
                    .failed()
                    .detail("reason", "captcha")
                    .record()
                    .await?;
            }
            return Err(err);
        }
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
                let user_id = record.as_ref().map(|r| r.user.id);
                self.audit(AuditEventType::LoginFailed, user_id, ctx)
                    .failed()
                    .detail("reason", "locked")
                    .record()
                    .await?;
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
            let reason_name = match reason {
                LoginFailure::UnknownAccount => "unknown_account",
                LoginFailure::WrongPassword => "wrong_password",
                LoginFailure::AccountDisabled => "disabled",
            };
            // An unknown account's typed identifier is not kept: users type passwords there.
            let user_id = record.as_ref().map(|r| r.user.id);
            self.audit(AuditEventType::LoginFailed, user_id, ctx)
                .failed()
                .detail("reason", reason_name)
                .record()
                .await?;
            return Err(match reason {
                LoginFailure::AccountDisabled => AuthError::AccountDisabled,
                _ => AuthError::InvalidCredentials,
            });
        }
        let record = record.expect("checked above");
        self.clear_account_attempts(&account).await?;
        let rehash =
            if verified.needs_rehash { Some(self.inner.hasher.hash(req.password.expose()).await?) } else { None };
        if let Some(step) = self.second_step(&record.user).await? {
            // No session yet: the challenge is bound to the password just verified (re-hashed
            // first when its parameters are old, so the binding is to what is stored).
            let password_hash = match rehash {
                Some(phc) => {
                    let update = UserUpdate::new()
                        .password_hash(phc.clone())
                        .only_if_password_hash(record.password_hash.clone())
                        .only_if_status(UserStatus::Active);
                    if self.inner.users.update_user(record.user.id, update, self.now()).await?.is_none() {
                        return Err(AuthError::InvalidCredentials);
                    }
                    phc
                }
                None => record.password_hash.clone(),
            };
            return self.issue_challenge(&record.user, step, &password_hash, ctx).await;
        }
        let tokens = self.finish_login(record, rehash, AuthMethod::Password, ctx).await?;
        Ok(LoginOutcome::Authenticated(Box::new(tokens)))
    }

    /// Creates the session of a login whose factors were proven, authenticated by `method`,
    /// and records the login: kept only if the account's password hash is still the one in
    /// `record` and the account still active (one compare-and-set after the session is
    /// created, which also stores `rehash`), so a password reset, change or disable that landed
    /// meanwhile wins (`invalid_credentials`). Fires `logged_in`, audits `login_succeeded`.
    pub(super) async fn finish_login(
        &self,
        record: UserRecord,
        rehash: Option<String>,
        method: AuthMethod,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, AuthError> {
        let at = self.now();
        let (session, refresh_token) = self.create_session(record.user.id, method, ctx, at).await?;
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
            self.inner.sessions.revoke_session(session.id, at).await?;
            return Err(AuthError::InvalidCredentials);
        };
        self.inner.events.logged_in(&user, session.id, ctx);
        self.audit_login(&user, &session, ctx).await?;
        self.issue_tokens(user, session, refresh_token, at)
    }

    /// Starts a session for `user`, who the host authenticated its own way (`method`, usually
    /// [`AuthMethod::External`]: an OAuth 2.0 / OpenID Connect provider, SSO, a passkey library),
    /// and issues its tokens, exactly as a password login would: the session is stored with
    /// `method`, the client's IP and user agent, the user's `last_login_at` is set, and the
    /// `logged_in` event fires. Rate limits and captcha are the caller's business.
    ///
    /// The user is re-read from the store, so a stale `user` value cannot resurrect a deleted or
    /// disabled account.
    ///
    /// Which user an external identity is, is the host's decision and its risk: link an
    /// OpenID Connect login by the provider's stable subject (`iss` + `sub`) recorded when the
    /// link was made, never by an email address the provider has not verified, or anyone who can
    /// register that address at the provider takes over the account. Record the method truthfully:
    /// [`AuthMethod::Password`] only for a password the host itself checked.
    ///
    /// # Errors
    /// `not_found` (no such user), `account_disabled`, `store_unavailable`.
    pub async fn issue_session(
        &self,
        user: &User,
        method: AuthMethod,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, AuthError> {
        let record = self.inner.users.user_by_id(user.id).await?.ok_or(AuthError::NotFound)?;
        if record.user.status != UserStatus::Active {
            return Err(AuthError::AccountDisabled);
        }
        let at = self.now();
        let (session, refresh_token) = self.create_session(record.user.id, method, ctx, at).await?;
        let update = UserUpdate::new().last_login_at(at).only_if_status(UserStatus::Active);
        let Some(user) = self.inner.users.update_user(record.user.id, update, at).await? else {
            // Disabled or deleted since the read: that change wins.
            self.inner.sessions.revoke_session(session.id, at).await?;
            return Err(AuthError::AccountDisabled);
        };
        self.inner.events.logged_in(&user, session.id, ctx);
        self.audit_login(&user, &session, ctx).await?;
        self.issue_tokens(user, session, refresh_token, at)
    }

    /// Audits a successful login (`login_succeeded`, with the session and how the user
    /// authenticated).
    async fn audit_login(&self, user: &User, session: &Session, ctx: &RequestContext) -> Result<(), AuthError> {
        self.audit(AuditEventType::LoginSucceeded, Some(user.id), ctx)
            .detail("session_id", session.id.to_string())
            .detail("method", session.auth_method.as_str())
            .record()
            .await
    }

    /// `POST /refresh`: rotates the refresh token (the presented one is spent, its successor
    /// returned) and issues a new access token.
    ///
    /// Within the reuse grace window a spent token answers with the *same* successor (two tabs
    /// refreshing at once stay logged in); after it, the whole session is revoked. The successor
    /// is `HMAC-SHA-256(server key, presented token)`, so no plaintext token is ever stored. With
    /// [`AuthConfig::refresh_rotation`](crate::AuthConfig::refresh_rotation) off, the presented
    /// token stays current and comes back as the refresh token.
    ///
    /// # Errors
    /// `invalid_refresh_token` (unknown, expired, idle, revoked, or the account is gone or
    /// disabled), `refresh_token_reused`, `store_unavailable`.
    pub async fn refresh(&self, refresh_token: &SecretString, ctx: &RequestContext) -> Result<IssuedTokens, AuthError> {
        let presented = refresh_token.expose();
        if presented.is_empty() || presented.len() > MAX_REFRESH_TOKEN_LEN {
            return Err(AuthError::InvalidRefreshToken);
        }
        let at = self.now();
        let config = &self.inner.config;
        // With rotation off the client keeps its token: the "successor" is the token itself.
        let successor = if config.refresh_rotation {
            self.inner.successor_key.sign(presented.as_bytes())
        } else {
            presented.to_owned()
        };
        let rotation = RotationRequest {
            presented: TokenHash::of(presented),
            successor: config.refresh_rotation.then(|| TokenHash::of(&successor)),
            now: at,
            reuse_grace: delta(config.refresh_reuse_grace),
            idle_timeout: delta(config.refresh_idle_timeout),
        };
        let session = match self.inner.sessions.rotate_refresh_token(rotation).await? {
            RotationOutcome::Rotated(session) | RotationOutcome::Grace(session) | RotationOutcome::Kept(session) => {
                session
            }
            RotationOutcome::Reused(session) => {
                tracing::warn!(user_id = %session.user_id, session_id = %session.id,
                    "spent refresh token reused after the grace window; session revoked");
                self.inner.events.refresh_token_reused(session.user_id, session.id);
                self.audit(AuditEventType::RefreshTokenReused, Some(session.user_id), ctx)
                    .actor(None)
                    .failed()
                    .detail("session_id", session.id.to_string())
                    .record()
                    .await?;
                return Err(AuthError::RefreshTokenReused);
            }
            RotationOutcome::Unknown => return Err(AuthError::InvalidRefreshToken),
        };
        let user = match self.inner.users.user_by_id(session.user_id).await? {
            Some(UserRecord { user, .. }) if user.status == UserStatus::Active => user,
            _ => {
                self.inner.sessions.revoke_session(session.id, at).await?;
                return Err(AuthError::InvalidRefreshToken);
            }
        };
        self.issue_tokens(user, session, successor, at)
    }

    /// [`refresh`](Self::refresh) for clients that send the access token they are replacing
    /// along with the refresh token (seed 001). The access token must verify (signature, `typ`,
    /// `iss`, `aud`; expired is fine, that is when clients refresh) and name the session the
    /// refresh token belongs to; otherwise nothing is issued. The session is checked after the
    /// refresh step: with rotation off (the setting of the contract that sends the header) that
    /// step only records the use; with rotation on it has spent the presented token, so the
    /// owner's next refresh is a grace retry within the grace window and reuse (the session
    /// ends) after it. Only a caller holding the refresh token can cause either, and could use
    /// the token itself. The check binds the two tokens for clients that send both; it is no
    /// security control of its own, since sending the access token is optional.
    ///
    /// # Errors
    /// As [`refresh`](Self::refresh); `unauthorized` for an access token that does not verify;
    /// `invalid_refresh_token` when it names another session.
    pub async fn refresh_with_access_token(
        &self,
        refresh_token: &SecretString,
        access_token: &str,
        ctx: &RequestContext,
    ) -> Result<IssuedTokens, AuthError> {
        let claims = self.inner.jwt.verify_ignoring_times(access_token)?;
        let issued = self.refresh(refresh_token, ctx).await?;
        if issued.session.id != claims.sid || issued.user.id != claims.sub {
            tracing::warn!(session_id = %issued.session.id, "refresh with an access token of another session refused");
            return Err(AuthError::InvalidRefreshToken);
        }
        Ok(issued)
    }

    /// `POST /logout`: revokes the caller's session, or with `all` every session of the user.
    /// Access tokens of revoked sessions are refused at once.
    ///
    /// # Errors
    /// `store_unavailable`.
    pub async fn logout(&self, claims: &Claims, all: bool, ctx: &RequestContext) -> Result<(), AuthError> {
        self.end_session(claims.sub, claims.sid, all, ctx).await
    }

    /// Revokes session `session_id` of `user_id` (or with `all` every session of the user), then
    /// the `logged_out` event and audit: the one logout of [`logout`](Self::logout) and
    /// [`logout_with_refresh_token`](Self::logout_with_refresh_token).
    async fn end_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        all: bool,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let at = self.now();
        if all {
            self.inner.sessions.revoke_user_sessions(user_id, None, at).await?;
        } else {
            self.inner.sessions.revoke_session(session_id, at).await?;
        }
        self.inner.events.logged_out(user_id, session_id, all);
        self.audit(AuditEventType::LoggedOut, Some(user_id), ctx)
            .detail("session_id", session_id.to_string())
            .detail("all", all)
            .record()
            .await
    }

    /// `POST /logout` authenticated by the refresh token alone (a browser whose page holds no
    /// access token, with the refresh token in its cookie): the token is put through the
    /// refresh step ([`refresh`](Self::refresh), which finds its session and applies reuse
    /// detection), then that session (or with `all` every session of the user) is revoked as
    /// by [`logout`](Self::logout). The access token the refresh step made is never handed out.
    ///
    /// # Errors
    /// As [`refresh`](Self::refresh): `invalid_refresh_token` (unknown, expired, revoked),
    /// `refresh_token_reused` (the session is already revoked then), `store_unavailable`.
    pub async fn logout_with_refresh_token(
        &self,
        refresh_token: &SecretString,
        all: bool,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let issued = self.refresh(refresh_token, ctx).await?;
        self.end_session(issued.user.id, issued.session.id, all, ctx).await
    }

    /// `GET /sessions`: the caller's live sessions, newest first (the current one is the one
    /// whose id is `claims.sid`).
    ///
    /// # Errors
    /// `store_unavailable`.
    pub async fn sessions(&self, claims: &Claims) -> Result<Vec<Session>, AuthError> {
        Ok(self.inner.sessions.user_sessions(claims.sub, self.now()).await?)
    }

    /// `DELETE /sessions/{id}`: revokes one of the caller's sessions (the current one included).
    ///
    /// # Errors
    /// `not_found` for a session that is not the caller's live session, `store_unavailable`.
    pub async fn revoke_session(
        &self,
        claims: &Claims,
        session_id: Uuid,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        self.revoke_live_session(claims.sub, session_id).await?;
        self.inner.events.session_revoked(claims.sub, session_id);
        self.audit(AuditEventType::SessionRevoked, Some(claims.sub), ctx)
            .detail("session_id", session_id.to_string())
            .record()
            .await
    }

    /// Revokes session `session_id` if it is a live session of `owner`.
    ///
    /// # Errors
    /// `not_found` for anything else (unknown, another user's, already ended),
    /// `store_unavailable`.
    pub(super) async fn revoke_live_session(&self, owner: Uuid, session_id: Uuid) -> Result<(), AuthError> {
        let at = self.now();
        match self.inner.sessions.session(session_id).await? {
            Some(s) if s.user_id == owner && s.is_live(at) => {
                self.inner.sessions.revoke_session(session_id, at).await?;
                Ok(())
            }
            _ => Err(AuthError::NotFound),
        }
    }

    /// Verifies an access token for the middleware: the key its `kid` names, that key's
    /// algorithm only, the signature, `typ` `at+jwt`, `exp`, `nbf`, `iss`, `aud`
    /// ([`TokenVerifier`](crate::keys::TokenVerifier)), then that its session is still live in the session store.
    /// A token seen before skips the signature work (see
    /// [`AuthConfig::verified_token_cache`](crate::AuthConfig::verified_token_cache)); the
    /// session check runs every time. [`authenticate_shared`](Self::authenticate_shared) is the
    /// same check without copying the claims.
    ///
    /// # Errors
    /// `unauthorized`, `token_expired`, `session_revoked`, `store_unavailable`.
    pub async fn authenticate(&self, access_token: &str) -> Result<Claims, AuthError> {
        self.authenticate_shared(access_token).await.map(Arc::unwrap_or_clone)
    }

    /// [`authenticate`](Self::authenticate), answering the claims the verified-token cache holds
    /// (shared, not copied): on a cache hit nothing is allocated. What the framework adapters'
    /// middlewares put in the request.
    ///
    /// # Errors
    /// As [`authenticate`](Self::authenticate).
    pub async fn authenticate_shared(&self, access_token: &str) -> Result<Arc<Claims>, AuthError> {
        let now = self.inner.clock.now();
        let claims = match self.inner.verified.get(access_token, now.timestamp()) {
            Some(cached) => cached?,
            None => {
                let claims = Arc::new(self.inner.jwt.verify(access_token, now.timestamp())?);
                self.inner.verified.insert(access_token, &claims);
                claims
            }
        };
        if self.inner.sessions.session_is_live(claims.sid, claims.sub, now).await? {
            Ok(claims)
        } else {
            Err(AuthError::SessionRevoked)
        }
    }

    /// Token introspection (RFC 7662 §2.2): the claims of `access_token` when it verifies now
    /// and its session is live (as [`authenticate`](Self::authenticate) decides) and `exp` has
    /// not been reached (no clock leeway: the answer is for a service that trusts it as is),
    /// `None` when it is not active for any reason (bad, expired, revoked, another kind of
    /// token).
    ///
    /// # Errors
    /// A server error ([`AuthError::is_server_error`], e.g. `StoreUnavailable`) when the
    /// session cannot be looked up: "not active" is only said when known.
    pub async fn introspect(&self, access_token: &str) -> Result<Option<Claims>, AuthError> {
        match self.authenticate(access_token).await {
            Ok(claims) if self.inner.clock.now().timestamp() >= claims.exp => Ok(None),
            Ok(claims) => Ok(Some(claims)),
            Err(err) if err.is_server_error() => Err(err),
            Err(_) => Ok(None),
        }
    }

    /// Stores a new session of `user_id`, authenticated by `method`, started at `at`, with a
    /// fresh refresh token.
    pub(super) async fn create_session(
        &self,
        user_id: Uuid,
        method: AuthMethod,
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
            auth_method: method,
            revoked_at: None,
        };
        self.inner
            .sessions
            .create_session(NewSession { session: session.clone(), refresh_token_hash: TokenHash::of(&refresh_token) })
            .await?;
        tracing::info!(user_id = %user_id, session_id = %session.id, "session started");
        Ok((session, refresh_token))
    }

    /// Signs the access token of `session` and bundles it with `refresh_token`.
    pub(super) fn issue_tokens(
        &self,
        user: User,
        session: Session,
        refresh_token: String,
        at: DateTime<Utc>,
    ) -> Result<IssuedTokens, AuthError> {
        let ttl = self.inner.config.access_token_ttl.as_secs();
        let (access_token, _) = self.inner.jwt.issue(
            user.id,
            session.id,
            &user.role,
            session.auth_method.amr(),
            at,
            i64::try_from(ttl).unwrap_or(i64::MAX),
        )?;
        Ok(IssuedTokens { access_token, expires_in: ttl, refresh_token, issued_at: at, session, user })
    }
}
