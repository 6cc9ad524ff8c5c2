//! The account: registration, the profile and preferences, password change, and operator
//! actions (create an admin, disable, change a role).

use uuid::Uuid;

use crate::audit::AuditEventType;
use crate::captcha::CaptchaAction;
use crate::config::RateRuleName;
use crate::context::RequestContext;
use crate::error::{AuthError, FieldError};
use crate::input::{ChangePasswordRequest, EmailCodePurpose, PreferencesUpdate, RegisterRequest};
use crate::mail::MailKind;
use crate::outcome::IssuedTokens;
use crate::secret::SecretString;
use crate::store::AuthMethod;
use crate::token::Claims;
use crate::user::{NewUser, Preferences, Role, User, UserRecord, UserUpdate};
use crate::validate::{normalize_email, valid_language_tag, valid_username};

use super::limits::user_bucket;
use super::Auth;

impl Auth {
    /// `POST /register`: checks the captcha, validates username / email, applies the password
    /// policy, hashes with Argon2id, creates the user (role `user`) and a session.
    ///
    /// # Errors
    /// `captcha_*`, `invalid_request`, `weak_password`, `username_taken`, `email_taken`,
    /// `store_unavailable`.
    pub async fn register(&self, req: RegisterRequest, ctx: &RequestContext) -> Result<IssuedTokens, AuthError> {
        // Every attempt counts, taken or weak or not: the rule bounds what one client can make the
        // server do, not only the accounts it creates.
        self.limit_ip(RateRuleName::RegisterPerIp, ctx).await?;
        self.check_captcha(&req.captcha, CaptchaAction::Register, ctx).await?;
        let policy = self.inner.config.registration;
        let mut fields = Vec::new();
        let (username, email) = identifiers(req.username.as_deref(), req.email.as_deref(), &mut fields);
        let email_raw = req.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
        let username_raw = req.username.as_deref().map(str::trim).filter(|u| !u.is_empty());
        if policy.require_username && username_raw.is_none() {
            fields.push(FieldError::new("username", "is required"));
        }
        let verify_email = self.inner.config.require_email_verification;
        if (policy.require_email || verify_email) && email_raw.is_none() {
            fields.push(FieldError::new("email", "is required"));
        }
        if verify_email && req.email_code.as_ref().is_none_or(|c| c.expose().trim().is_empty()) {
            fields.push(FieldError::new("email_code", "is required: request one with POST /email/code"));
        }
        if username_raw.is_none() && email_raw.is_none() && fields.is_empty() {
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
        let created_at = self.now();
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
        self.audit(AuditEventType::Registered, Some(user.id), ctx)
            .detail("email_verified", user.email_verified)
            .record()
            .await?;
        let (session, refresh_token) = self.create_session(user.id, AuthMethod::Password, ctx, created_at).await?;
        self.inner.events.logged_in(&user, session.id, ctx);
        self.issue_tokens(user, session, refresh_token, created_at)
    }

    /// `GET /me`: the caller.
    ///
    /// # Errors
    /// `unauthorized` if the user no longer exists, `store_unavailable`.
    pub async fn me(&self, claims: &Claims) -> Result<User, AuthError> {
        Ok(self.caller(claims).await?.user)
    }

    /// `PUT /me/preferences`: changes the given fields; returns the preferences after the update.
    ///
    /// # Errors
    /// `invalid_request` for a language that is not a BCP 47 tag, `unauthorized`,
    /// `store_unavailable`.
    pub async fn update_preferences(
        &self,
        claims: &Claims,
        update: PreferencesUpdate,
    ) -> Result<Preferences, AuthError> {
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
            .update_user(claims.sub, UserUpdate::new().preferences(preferences), self.now())
            .await?
            .ok_or(AuthError::Unauthorized)?;
        Ok(user.preferences)
    }

    /// `POST /password/change`: verifies the current password, applies the policy to the new
    /// one, stores its hash (compare-and-set on the verified one) and revokes every other session
    /// of the user, then mails a notice (time and client IP, no secrets) to the account's address.
    /// With [`AuthConfig::refresh_rotation`](crate::AuthConfig::refresh_rotation) off the caller's
    /// session is revoked too (its refresh token may be the stolen one), so the client logs in
    /// again.
    ///
    /// A wrong current password counts toward the account's failed-login lockout
    /// (`login_failures_per_account`), like a failed login: a stolen access token does not give
    /// unlimited guesses at the password.
    ///
    /// # Errors
    /// [`AuthError::CurrentPasswordInvalid`] (403 `invalid_credentials`), `weak_password`,
    /// `mfa_required` / `invalid_mfa_code` (step-up, for a user with a second factor: `mfa_code`),
    /// `rate_limited`, `overloaded`, `unauthorized`, `store_unavailable`.
    pub async fn change_password(
        &self,
        claims: &Claims,
        req: ChangePasswordRequest,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let record = self.caller(claims).await?;
        self.recheck_password(&record, &req.current_password, AuditEventType::PasswordChanged, ctx).await?;
        let inputs = [record.user.username.clone(), record.user.email.clone()].into_iter().flatten().collect();
        self.check_password_policy(&req.new_password, inputs).await?;
        // Last of the checks: a code is spent only by a change that is otherwise good to go.
        let code = req.mfa_code.as_ref().or(ctx.mfa_code.as_ref());
        self.step_up(claims, &record.user, code, "password_change", ctx).await?;
        let hash = self.inner.hasher.hash(req.new_password.expose()).await?;
        let at = self.now();
        let update = UserUpdate::new().password_hash(hash).only_if_password_hash(record.password_hash);
        if self.inner.users.update_user(claims.sub, update, at).await?.is_none() {
            // Changed or reset by another request since the verify: that one wins.
            return Err(AuthError::CurrentPasswordInvalid);
        }
        // With rotation off a stolen refresh token of this very session would outlive the
        // change (no reuse detection would catch it): then every session ends, this one too.
        let keep = self.inner.config.refresh_rotation.then_some(claims.sid);
        let revoked = self.inner.sessions.revoke_user_sessions(claims.sub, keep, at).await?;
        tracing::info!(user_id = %claims.sub, revoked, kept_current = keep.is_some(), "password changed; sessions revoked");
        self.inner.events.password_changed(claims.sub);
        self.audit(AuditEventType::PasswordChanged, Some(claims.sub), ctx).detail("revoked", revoked).record().await?;
        if let Some(email) = &record.user.email {
            self.send_notice(email, &MailKind::PasswordChanged { reset: false, at, ip: ctx.ip });
        }
        Ok(())
    }

    /// Creates an administrator, or promotes an existing user of that username: sets role
    /// `admin` and the given password (revoking the user's sessions). For operator tooling such
    /// as the example server's `create-admin`; audited (`admin_user_created` or `role_changed`)
    /// with no actor.
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
        let at = self.now();
        if let Some(existing) = self.inner.users.user_by_username(username).await? {
            let update = UserUpdate::new().role(Role::admin()).password_hash(password_hash);
            let user = self.inner.users.update_user(existing.user.id, update, at).await?.ok_or(AuthError::NotFound)?;
            self.inner.sessions.revoke_user_sessions(user.id, None, at).await?;
            let operator = RequestContext::default();
            self.audit(AuditEventType::RoleChanged, Some(user.id), &operator)
                .actor(None)
                .detail("role", "admin")
                .record()
                .await?;
            return Ok(user);
        }
        let user = self
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
            .await?;
        let operator = RequestContext::default();
        let created = self.audit(AuditEventType::AdminUserCreated, Some(user.id), &operator).actor(None);
        created.detail("role", "admin").detail("with_password", true).record().await?;
        Ok(user)
    }

    pub(super) async fn caller(&self, claims: &Claims) -> Result<UserRecord, AuthError> {
        self.inner.users.user_by_id(claims.sub).await?.ok_or(AuthError::Unauthorized)
    }

    /// Re-checks the caller's password before a sensitive change. The try takes a slot of the
    /// account's failed-login lockout (`login_failures_per_account`) first, like a login, so a
    /// stolen access token gives no unlimited guesses; a right password clears the count. A
    /// wrong one is audited as a failed `action`.
    ///
    /// # Errors
    /// [`AuthError::CurrentPasswordInvalid`], `rate_limited`, `overloaded`, `store_unavailable`.
    pub(super) async fn recheck_password(
        &self,
        record: &UserRecord,
        password: &SecretString,
        action: AuditEventType,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let account = user_bucket(record.user.id);
        self.take_account_attempt(&account, ctx).await?;
        let verified = self.inner.hasher.verify(password.expose(), Some(&record.password_hash)).await?;
        if !verified.valid {
            self.audit(action, Some(record.user.id), ctx).failed().detail("reason", "wrong_password").record().await?;
            return Err(AuthError::CurrentPasswordInvalid);
        }
        self.clear_account_attempts(&account).await
    }

    /// Runs the password policy (zxcvbn costs milliseconds) on the blocking pool.
    pub(super) async fn check_password_policy(
        &self,
        password: &SecretString,
        user_inputs: Vec<String>,
    ) -> Result<(), AuthError> {
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
}

/// The username and normalized email of a request, each validated when given (blank counts as
/// absent); a bad one is a field error and comes back `None`. Registration and admin-created
/// accounts share it.
pub(super) fn identifiers<'a>(
    username: Option<&'a str>,
    email: Option<&str>,
    fields: &mut Vec<FieldError>,
) -> (Option<&'a str>, Option<String>) {
    let username = match username.map(str::trim).filter(|u| !u.is_empty()) {
        Some(name) if !valid_username(name) => {
            fields.push(FieldError::new("username", "must be 3 to 50 letters, digits, '_', '-' or '.'"));
            None
        }
        other => other,
    };
    let email_raw = email.map(str::trim).filter(|e| !e.is_empty());
    let email = email_raw.and_then(normalize_email);
    if email_raw.is_some() && email.is_none() {
        fields.push(FieldError::new("email", "must be an email address"));
    }
    (username, email)
}
