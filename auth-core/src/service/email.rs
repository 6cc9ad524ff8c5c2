//! The email flows: mailed codes, email verification, forgotten passwords.
//!
//! Codes are 6 digits from the OS CSPRNG, stored as `HMAC-SHA-256(key, purpose ‖ address ‖ code)`
//! under (`email_code:<purpose>`, lower-cased address), single use, dead after
//! `email_code_max_attempts` wrong tries; a new code replaces the old one and keeps its failure
//! count. Reset tokens are `base64url(user id) "." 256 random bits`, stored as SHA-256 under
//! (`reset_token`, user id). A code or token is stored only after its message was accepted by the
//! mail server, so a failed delivery leaves nothing valid behind.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use rand::Rng as _;
use uuid::Uuid;

use super::{delta, now, Auth};
use crate::api::{EmailCodePurpose, EmailCodeRequest, ForgotPasswordRequest, ResetPasswordRequest, VerifyEmailRequest};
use crate::captcha::CaptchaAction;
use crate::context::RequestContext;
use crate::error::AuthError;
use crate::mail::{EmailMessage, MailKind};
use crate::secret::{random_token, SecretString, TokenHash};
use crate::store::{NewSecret, OnMismatch, SecretCheck};
use crate::token::Claims;
use crate::user::{User, UserRecord, UserStatus, UserUpdate};
use crate::validate::normalize_email;

const RESET_TOKEN_PURPOSE: &str = "reset_token";

fn code_purpose(purpose: EmailCodePurpose) -> String {
    format!("email_code:{}", purpose.as_str())
}

fn email_key(email: &str) -> String {
    email.to_lowercase()
}

fn valid_email(email: &str) -> Result<String, AuthError> {
    normalize_email(email).ok_or_else(|| AuthError::invalid_field("email", "must be an email address"))
}

impl Auth {
    /// `POST /email/code`: mails a 6-digit code for `purpose`. Answers the same whether or not
    /// the address is known; for `verify_email` and `reset_password` nothing is mailed unless an
    /// active account has the address.
    ///
    /// # Errors
    /// `captcha_*`, `invalid_request`, `mail_unavailable` (nothing stored), `store_unavailable`.
    pub async fn send_email_code(&self, req: EmailCodeRequest, ctx: &RequestContext) -> Result<(), AuthError> {
        let email = valid_email(&req.email)?;
        let rule = self.inner.config.rate_limits.email_code_per_address;
        self.limit("email_code_per_address", rule, &email_key(&email), ctx, true).await?;
        self.check_captcha(&req.captcha, CaptchaAction::EmailCode, ctx).await?;
        let deliver = match req.purpose {
            EmailCodePurpose::Register => true,
            EmailCodePurpose::VerifyEmail | EmailCodePurpose::ResetPassword => {
                self.active_user_by_email(&email).await?.is_some()
            }
        };
        if !deliver {
            tracing::info!(purpose = req.purpose.as_str(), "no email code sent: no active account has this address");
            return Ok(());
        }
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        let config = &self.inner.config;
        let ttl_minutes = config.email_code_ttl.as_secs().div_ceil(60);
        self.send_mail(&email, &MailKind::EmailCode { purpose: req.purpose, code: &code, ttl_minutes }).await?;
        self.inner
            .tokens
            .put_secret(NewSecret {
                purpose: code_purpose(req.purpose),
                key: email_key(&email),
                hash: self.code_hash(req.purpose, &email, &code),
                expires_at: Utc::now() + delta(config.email_code_ttl),
                max_attempts: config.email_code_max_attempts,
            })
            .await?;
        Ok(())
    }

    /// `POST /email/verify`: proves the caller's email address with a code of purpose
    /// `verify_email`; returns the user with `email_verified: true`.
    ///
    /// # Errors
    /// `invalid_code`, `invalid_request` (the account has no email), `unauthorized`,
    /// `store_unavailable`.
    pub async fn verify_email(&self, claims: &Claims, req: VerifyEmailRequest) -> Result<User, AuthError> {
        let record = self.caller(claims).await?;
        let Some(email) = record.user.email.as_deref() else {
            return Err(AuthError::invalid_field("code", "the account has no email address to verify"));
        };
        self.take_email_code(EmailCodePurpose::VerifyEmail, email, &req.code).await?;
        let user = self
            .inner
            .users
            .update_user(record.user.id, UserUpdate::new().email_verified(true), now())
            .await?
            .ok_or(AuthError::Unauthorized)?;
        self.inner.events.email_verified(user.id);
        Ok(user)
    }

    /// `POST /password/forgot`: mails a single-use reset link built from
    /// [`AuthConfig::public_url`](crate::AuthConfig::public_url) to the account with this address,
    /// if an active one exists; answers the same either way.
    ///
    /// # Errors
    /// `captcha_*`, `invalid_request`, `mail_unavailable` (nothing stored), `store_unavailable`,
    /// `internal` without a configured public URL.
    pub async fn forgot_password(&self, req: ForgotPasswordRequest, ctx: &RequestContext) -> Result<(), AuthError> {
        let email = valid_email(&req.email)?;
        let rule = self.inner.config.rate_limits.password_reset_per_account;
        self.limit("password_reset_per_account", rule, &email_key(&email), ctx, true).await?;
        self.check_captcha(&req.captcha, CaptchaAction::PasswordForgot, ctx).await?;
        let config = &self.inner.config;
        let Some(public_url) = config.public_url.as_deref() else {
            return Err(AuthError::internal("AuthConfig::public_url is not set, so no reset link can be built"));
        };
        let Some(record) = self.active_user_by_email(&email).await? else {
            tracing::info!("no reset link sent: no active account has this address");
            return Ok(());
        };
        let user_id = record.user.id;
        let token = format!("{}.{}", URL_SAFE_NO_PAD.encode(user_id.as_bytes()), random_token());
        let link = format!("{}/reset-password?token={token}", public_url.trim_end_matches('/'));
        let ttl_minutes = config.reset_token_ttl.as_secs().div_ceil(60);
        self.send_mail(&email, &MailKind::PasswordReset { link: &link, ttl_minutes }).await?;
        self.inner
            .tokens
            .put_secret(NewSecret {
                purpose: RESET_TOKEN_PURPOSE.to_owned(),
                key: user_id.to_string(),
                hash: TokenHash::of(&token),
                expires_at: Utc::now() + delta(config.reset_token_ttl),
                max_attempts: config.email_code_max_attempts,
            })
            .await?;
        Ok(())
    }

    /// `POST /password/reset`: by the link's `token`, or by `email` + `code` (purpose
    /// `reset_password`). The new password must pass the policy before the token or code is
    /// spent. On success every session of the user is revoked (no tokens are returned) and a
    /// notice is mailed.
    ///
    /// # Errors
    /// `invalid_code`, `weak_password`, `invalid_request`, `rate_limited`, `store_unavailable`.
    pub async fn reset_password(&self, req: ResetPasswordRequest, ctx: &RequestContext) -> Result<(), AuthError> {
        let token = req.token.as_ref().filter(|t| !t.expose().trim().is_empty());
        let (record, purpose, key, hash) = match (token, req.email.as_deref(), &req.code) {
            (Some(token), _, _) => {
                let token = token.expose().trim();
                let user_id = token
                    .split_once('.')
                    .and_then(|(id, _)| URL_SAFE_NO_PAD.decode(id).ok())
                    .and_then(|bytes| Uuid::from_slice(&bytes).ok())
                    .ok_or(AuthError::InvalidCode)?;
                let record = self.inner.users.user_by_id(user_id).await?.ok_or(AuthError::InvalidCode)?;
                (record, RESET_TOKEN_PURPOSE.to_owned(), user_id.to_string(), TokenHash::of(token))
            }
            (None, Some(email), Some(code)) => {
                let email = valid_email(email)?;
                let record = self.inner.users.user_by_email(&email).await?.ok_or(AuthError::InvalidCode)?;
                let purpose = EmailCodePurpose::ResetPassword;
                let hash = self.code_hash(purpose, &email, code.expose().trim());
                (record, code_purpose(purpose), email_key(&email), hash)
            }
            _ => return Err(AuthError::invalid_field("token", "a token, or an email and a code, is required")),
        };
        let account = record.user.email.as_deref().map_or_else(|| record.user.id.to_string(), email_key);
        let rule = self.inner.config.rate_limits.password_reset_per_account;
        self.limit("password_reset_per_account", rule, &account, ctx, true).await?;
        let inputs = [record.user.username.clone(), record.user.email.clone()].into_iter().flatten().collect();
        self.check_password_policy(&req.new_password, inputs).await?;
        match self.inner.tokens.take_secret(&purpose, &key, &hash, OnMismatch::CountAttempt, Utc::now()).await? {
            SecretCheck::Valid => {}
            SecretCheck::Invalid { .. } | SecretCheck::Missing => return Err(AuthError::InvalidCode),
        }
        let password_hash = self.inner.hasher.hash(req.new_password.expose()).await?;
        let at = now();
        let user_id = record.user.id;
        self.inner.users.update_user(user_id, UserUpdate::new().password_hash(password_hash), at).await?;
        let revoked = self.inner.tokens.revoke_user_sessions(user_id, None, at).await?;
        tracing::info!(user_id = %user_id, revoked, "password reset; every session revoked");
        self.inner.events.password_reset(user_id);
        if let Some(email) = record.user.email.as_deref() {
            // The reset is done; a failed notice must not undo it or look like a failure.
            if let Err(err) = self.send_mail(email, &MailKind::PasswordChanged).await {
                tracing::warn!(user_id = %user_id, error = %err, "password-reset notice not delivered");
            }
        }
        Ok(())
    }

    /// Spends a mailed code of `purpose` for `email`.
    pub(super) async fn take_email_code(
        &self,
        purpose: EmailCodePurpose,
        email: &str,
        code: &SecretString,
    ) -> Result<(), AuthError> {
        let hash = self.code_hash(purpose, email, code.expose().trim());
        let check = self
            .inner
            .tokens
            .take_secret(&code_purpose(purpose), &email_key(email), &hash, OnMismatch::CountAttempt, Utc::now())
            .await?;
        match check {
            SecretCheck::Valid => Ok(()),
            SecretCheck::Invalid { .. } | SecretCheck::Missing => Err(AuthError::InvalidCode),
        }
    }

    fn code_hash(&self, purpose: EmailCodePurpose, email: &str, code: &str) -> TokenHash {
        let data = format!("{}\0{}\0{code}", purpose.as_str(), email_key(email));
        self.inner.codes_key.digest(data.as_bytes())
    }

    async fn active_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, AuthError> {
        Ok(self.inner.users.user_by_email(email).await?.filter(|r| r.user.status == UserStatus::Active))
    }

    async fn send_mail(&self, to: &str, mail: &MailKind<'_>) -> Result<(), AuthError> {
        let rendered = self.inner.templates.render(mail);
        let message =
            EmailMessage { to: to.to_owned(), subject: rendered.subject, text: rendered.text, html: rendered.html };
        self.inner.mailer.send(&message).await.map_err(AuthError::MailUnavailable)
    }
}
