//! Recovery: the email flows — mailed codes, email verification, forgotten passwords.
//!
//! Codes are 6 digits from the OS CSPRNG, stored as `HMAC-SHA-256(key, purpose ‖ address ‖ code)`
//! under (`email_code:<purpose>`, the address's `identifier_key`), single use, dead after
//! `email_code_max_attempts` wrong tries; a new code replaces the old one and keeps its failure
//! count. Reset tokens are `base64url(user id) "." 256 random bits`, stored as SHA-256 under
//! (`reset_token`, user id). Mail to an existing account goes to the address stored on it, in the
//! background, so that known and unknown addresses answer alike; a code or link whose mail the
//! server refused is withdrawn.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::Rng as _;
use uuid::Uuid;

use super::{delta, Auth};
use crate::audit::AuditEventType;
use crate::captcha::CaptchaAction;
use crate::config::RateRuleName;
use crate::context::RequestContext;
use crate::error::AuthError;
use crate::input::{
    EmailCodePurpose, EmailCodeRequest, ForgotPasswordRequest, ResetPasswordRequest, VerifyEmailRequest,
};
use crate::mail::{EmailMessage, MailKind, Mailer};
use crate::secret::{random_token, SecretString, TokenHash};
use crate::store::{NewSecret, OnMismatch, SecretCheck};
use crate::token::Claims;
use crate::user::{User, UserRecord, UserStatus, UserUpdate};
use crate::validate::{identifier_key, normalize_email};

pub(super) const RESET_TOKEN_PURPOSE: &str = "reset_token";

pub(super) fn code_purpose(purpose: EmailCodePurpose) -> String {
    format!("email_code:{}", purpose.as_str())
}

/// The secret-store and limiter key of an address: its [`identifier_key`].
fn email_key(email: &str) -> String {
    identifier_key(email)
}

fn valid_email(email: &str) -> Result<String, AuthError> {
    normalize_email(email).ok_or_else(|| AuthError::invalid_field("email", "must be a bare email address"))
}

impl Auth {
    /// `POST /email/code`: mails a 6-digit code for `purpose`. Answers the same, at the same
    /// speed, whether or not the address is known. For `verify_email` and `reset_password`
    /// everything that depends on the account (the lookup, the code, storing it, the mail to the
    /// address stored on the account) happens in a task of its own after the answer, so neither
    /// the work done, a mail-server failure nor a store failure can tell the client whether the
    /// account exists; failures are logged, and a code whose mail was refused is withdrawn.
    /// `register` codes go to the address given and are sent before answering.
    ///
    /// The captcha is checked first; only requests that pass it are counted, per client IP
    /// (`mail_per_ip`) and per address (`email_code_per_address`), so that garbage requests
    /// cannot use up a victim's allowance.
    ///
    /// # Errors
    /// `captcha_*`, `invalid_request` (not a bare email address), `rate_limited`,
    /// `mail_unavailable` (`register` only; nothing stored), `not_found` (no mailer configured),
    /// `store_unavailable`.
    pub async fn send_email_code(&self, req: EmailCodeRequest, ctx: &RequestContext) -> Result<(), AuthError> {
        let email = valid_email(&req.email)?;
        let mailer = self.mailer_for_email_flows()?;
        self.check_captcha(&req.captcha, CaptchaAction::EmailCode, ctx).await?;
        self.limit_ip(RateRuleName::MailPerIp, ctx).await?;
        self.limit(RateRuleName::EmailCodePerAddress, &email_key(&email), ctx).await?;
        if req.purpose != EmailCodePurpose::Register {
            let auth = self.clone();
            let ctx = ctx.clone();
            self.spawn_background(async move { auth.mail_code_to_account(req.purpose, email, &ctx).await });
            return Ok(());
        }
        let (mail, secret) = self.code_mail(req.purpose, &email, &email);
        mailer.send(&mail).await.map_err(AuthError::MailUnavailable)?;
        self.inner.secrets.put_secret(secret, self.now()).await?;
        self.audit(AuditEventType::EmailCodeSent, None, ctx).detail("purpose", req.purpose.as_str()).record().await
    }

    /// The background half of [`send_email_code`](Self::send_email_code) for an account's code.
    async fn mail_code_to_account(&self, purpose: EmailCodePurpose, email: String, ctx: &RequestContext) {
        let (user_id, recipient) = match self.active_user_by_email(&email).await {
            Ok(Some(UserRecord { user: User { id, email: Some(stored), .. }, .. })) => (id, stored),
            Ok(_) => {
                tracing::info!(purpose = purpose.as_str(), "no email code sent: no active account has this address");
                return;
            }
            Err(err) => {
                tracing::error!(purpose = purpose.as_str(), error = %err, "no email code sent: the user store failed");
                return;
            }
        };
        let (mail, secret) = self.code_mail(purpose, &email, &recipient);
        // Failures are logged where they happen.
        let delivered = self.deliver_secret(mail, secret).await;
        let mut event = self.audit(AuditEventType::EmailCodeSent, Some(user_id), ctx).actor(None);
        if delivered.is_err() {
            event = event.failed().detail("reason", "not_delivered");
        }
        // In the background already: a required write that fails has no request left to fail.
        let _ = event.detail("purpose", purpose.as_str()).record().await;
    }

    /// A fresh code for `purpose` keyed under `email`, and its mail to `recipient`.
    fn code_mail(&self, purpose: EmailCodePurpose, email: &str, recipient: &str) -> (EmailMessage, NewSecret) {
        let (code, secret) =
            self.new_code(code_purpose(purpose), email_key(email), |code| self.code_hash(purpose, email, code));
        let ttl_minutes = self.inner.config.email_code_ttl.as_secs().div_ceil(60);
        (self.render(recipient, &MailKind::EmailCode { purpose, code: &code, ttl_minutes }), secret)
    }

    /// A fresh 6-digit code from the OS CSPRNG and the secret that keeps it under (`purpose`,
    /// `key`), as `hash` digests it, for `email_code_ttl` and `email_code_max_attempts`.
    pub(super) fn new_code(
        &self,
        purpose: String,
        key: String,
        hash: impl FnOnce(&str) -> TokenHash,
    ) -> (String, NewSecret) {
        let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
        let config = &self.inner.config;
        let secret = NewSecret {
            purpose,
            key,
            hash: hash(&code),
            expires_at: self.inner.clock.now() + delta(config.email_code_ttl),
            max_attempts: config.email_code_max_attempts,
        };
        (code, secret)
    }

    /// `POST /email/verify`: proves the caller's email address with a code of purpose
    /// `verify_email`; returns the user with `email_verified: true`.
    ///
    /// # Errors
    /// `invalid_code`, `invalid_request` (the account has no email), `unauthorized`,
    /// `store_unavailable`.
    pub async fn verify_email(
        &self,
        claims: &Claims,
        req: VerifyEmailRequest,
        ctx: &RequestContext,
    ) -> Result<User, AuthError> {
        let record = self.caller(claims).await?;
        let Some(email) = record.user.email.as_deref() else {
            return Err(AuthError::invalid_field("code", "the account has no email address to verify"));
        };
        self.take_email_code(EmailCodePurpose::VerifyEmail, email, &req.code).await?;
        let user = self
            .inner
            .users
            .update_user(record.user.id, UserUpdate::new().email_verified(true), self.now())
            .await?
            .ok_or(AuthError::Unauthorized)?;
        self.inner.events.email_verified(user.id);
        self.audit(AuditEventType::EmailVerified, Some(user.id), ctx).record().await?;
        Ok(user)
    }

    /// `POST /password/forgot`: mails a single-use reset link built from
    /// [`AuthConfig::public_url`](crate::AuthConfig::public_url) to the address stored on the
    /// active account with this address, if one exists; answers the same, at the same speed,
    /// either way: the lookup, the token and the mail happen in a task of their own after the
    /// answer (as for [`send_email_code`](Self::send_email_code)). The captcha is checked before
    /// anything is counted. With [`ForgotPasswordRequest::code`], that mailed code (purpose
    /// `reset_password`) is taken first and the link goes out only if it matched.
    ///
    /// # Errors
    /// `captcha_*`, `invalid_request` (not a bare email address), `rate_limited`, `not_found`
    /// (no mailer configured), `invalid_code` (with a code that does not match, or any code for
    /// an unknown address), `store_unavailable`.
    pub async fn forgot_password(&self, req: ForgotPasswordRequest, ctx: &RequestContext) -> Result<(), AuthError> {
        let email = valid_email(&req.email)?;
        self.mailer_for_email_flows()?;
        self.check_captcha(&req.captcha, CaptchaAction::PasswordForgot, ctx).await?;
        self.limit_ip(RateRuleName::MailPerIp, ctx).await?;
        self.limit(RateRuleName::PasswordResetPerAccount, &email_key(&email), ctx).await?;
        if let Some(code) = &req.code {
            // Unknown address and wrong code alike: `invalid_code`.
            self.take_email_code(EmailCodePurpose::ResetPassword, &email, code).await?;
        }
        let auth = self.clone();
        // Failures are logged where they happen; the answer is the same either way.
        self.spawn_background(async move {
            let _ = auth.mail_reset_link(email).await;
        });
        Ok(())
    }

    /// The background half of [`forgot_password`](Self::forgot_password) (failures are logged);
    /// also what admins trigger, who learn of a failure.
    ///
    /// # Errors
    /// `store_unavailable`, `mail_unavailable` (the link was withdrawn); no active account with
    /// this address is no error.
    pub(super) async fn mail_reset_link(&self, email: String) -> Result<(), AuthError> {
        let record = match self.active_user_by_email(&email).await {
            Ok(Some(UserRecord { user: User { id, email: Some(stored), .. }, .. })) => (id, stored),
            Ok(_) => {
                tracing::info!("no reset link sent: no active account has this address");
                return Ok(());
            }
            Err(err) => {
                tracing::error!(error = %err, "no reset link sent: the user store failed");
                return Err(err);
            }
        };
        let (user_id, recipient) = record;
        let config = &self.inner.config;
        // `build()` refuses a mailer without a public URL.
        let public_url = config.public_url.as_deref().unwrap_or_default();
        let token = format!("{}.{}", URL_SAFE_NO_PAD.encode(user_id.as_bytes()), random_token());
        let link = format!("{}/reset-password?token={token}", public_url.trim_end_matches('/'));
        let ttl_minutes = config.reset_token_ttl.as_secs().div_ceil(60);
        let mail = self.render(&recipient, &MailKind::PasswordReset { link: &link, ttl_minutes });
        let secret = NewSecret {
            purpose: RESET_TOKEN_PURPOSE.to_owned(),
            key: user_id.to_string(),
            hash: TokenHash::of(&token),
            expires_at: self.inner.clock.now() + delta(config.reset_token_ttl),
            max_attempts: config.email_code_max_attempts,
        };
        self.deliver_secret(mail, secret).await
    }

    /// `POST /password/reset`: by the link's `token`, or by `email` + `code` (purpose
    /// `reset_password`). On success every session of the user is revoked (no tokens are
    /// returned) and a notice is mailed.
    ///
    /// An unknown account is indistinguishable from a known one with a wrong code, in body,
    /// status and work done: the new password is checked against the policy first (with only
    /// what the client sent as known words), then the token or code is taken from the secret
    /// store under the key the client named (a missing one is `invalid_code`), and only a valid
    /// one leads to the account. Attempts are not charged to the account (which would let anyone
    /// block a victim's recovery): each code dies after `email_code_max_attempts` wrong tries,
    /// reset tokens are 256-bit, and adapters apply the per-IP "every other route" rule.
    ///
    /// # Errors
    /// `invalid_code`, `weak_password`, `invalid_request`, `overloaded`, `store_unavailable`.
    pub async fn reset_password(&self, req: ResetPasswordRequest, ctx: &RequestContext) -> Result<(), AuthError> {
        let token = req.token.as_ref().map(|t| t.expose().trim()).filter(|t| !t.is_empty());
        let (secret, email) = match (token, req.email.as_deref(), &req.code) {
            (Some(token), _, _) => (ResetSecret::Token(token), None),
            (None, Some(email), Some(code)) => {
                let email = valid_email(email)?;
                (ResetSecret::Code(code.expose().trim()), Some(email))
            }
            _ => return Err(AuthError::invalid_field("token", "a token, or an email and a code, is required")),
        };
        let inputs = email.iter().filter_map(|e| e.split('@').next().map(str::to_owned)).collect();
        self.check_password_policy(&req.new_password, inputs).await?;
        let record = match (secret, &email) {
            (ResetSecret::Token(token), _) => {
                let user_id = token
                    .split_once('.')
                    .and_then(|(id, _)| URL_SAFE_NO_PAD.decode(id).ok())
                    .and_then(|bytes| Uuid::from_slice(&bytes).ok())
                    .ok_or(AuthError::InvalidCode)?;
                self.take_secret(RESET_TOKEN_PURPOSE, &user_id.to_string(), &TokenHash::of(token)).await?;
                self.inner.users.user_by_id(user_id).await?
            }
            (ResetSecret::Code(code), Some(email)) => {
                self.take_email_code(EmailCodePurpose::ResetPassword, email, &SecretString::from(code)).await?;
                self.inner.users.user_by_email(email).await?
            }
            (ResetSecret::Code(_), None) => None,
        };
        // Deleted since the code was mailed.
        let record = record.ok_or(AuthError::InvalidCode)?;
        let user_id = record.user.id;
        let password_hash = self.inner.hasher.hash(req.new_password.expose()).await?;
        let at = self.now();
        self.inner.users.update_user(user_id, UserUpdate::new().password_hash(password_hash), at).await?;
        let revoked = self.inner.sessions.revoke_user_sessions(user_id, None, at).await?;
        tracing::info!(user_id = %user_id, revoked, "password reset; every session revoked");
        self.inner.events.password_reset(user_id);
        let via = if matches!(secret, ResetSecret::Token(_)) { "link" } else { "code" };
        self.audit(AuditEventType::PasswordReset, Some(user_id), ctx)
            .actor(None)
            .detail("via", via)
            .detail("revoked", revoked)
            .record()
            .await?;
        if let Some(email) = record.user.email.as_deref() {
            self.send_notice(email, &MailKind::PasswordChanged { reset: true, at, ip: ctx.ip });
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
        self.take_secret(&code_purpose(purpose), &email_key(email), &hash).await
    }

    /// Spends the one-time secret under (`purpose`, `key`) if `hash` is it; a wrong one counts an
    /// attempt. Missing, wrong, expired or used up: `invalid_code`.
    pub(super) async fn take_secret(&self, purpose: &str, key: &str, hash: &TokenHash) -> Result<(), AuthError> {
        match self
            .inner
            .secrets
            .take_secret(purpose, key, hash, OnMismatch::CountAttempt, self.inner.clock.now())
            .await?
        {
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

    /// The mailer, or `not_found` when the service was built without one (email flows off).
    pub(super) fn mailer_for_email_flows(&self) -> Result<&Arc<dyn Mailer>, AuthError> {
        self.inner.mailer.as_ref().ok_or_else(|| {
            tracing::info!("email flow requested, but no mailer is configured");
            AuthError::NotFound
        })
    }

    pub(super) fn render(&self, to: &str, mail: &MailKind<'_>) -> EmailMessage {
        let rendered = self.inner.templates.render(mail);
        EmailMessage { to: to.to_owned(), subject: rendered.subject, text: rendered.text, html: rendered.html }
    }

    /// Stores `secret`, then mails `mail` (called in a background task: failures are logged). If
    /// delivery fails, the secret is withdrawn (spent with a candidate that cannot match).
    pub(super) async fn deliver_secret(&self, mail: EmailMessage, secret: NewSecret) -> Result<(), AuthError> {
        let Some(mailer) = &self.inner.mailer else { return Err(AuthError::NotFound) };
        let (purpose, key) = (secret.purpose.clone(), secret.key.clone());
        if let Err(err) = self.inner.secrets.put_secret(secret, self.now()).await {
            tracing::error!(%purpose, error = %err, "no mail sent: its code or link could not be stored");
            return Err(err.into());
        }
        if let Err(err) = mailer.send(&mail).await {
            tracing::warn!(%purpose, error = %err, "mail not delivered; its code or link is withdrawn");
            let nothing = TokenHash::from_bytes([0; 32]);
            let withdraw = self
                .inner
                .secrets
                .take_secret(&purpose, &key, &nothing, OnMismatch::Spend, self.inner.clock.now())
                .await;
            if let Err(err) = withdraw {
                tracing::error!(%purpose, error = %err, "an undelivered code or link could not be withdrawn");
            }
            return Err(AuthError::MailUnavailable(err));
        }
        Ok(())
    }

    /// Withdraws every code and link that could change the account's password or address: its
    /// reset link and pending address change (keyed by user id) and the codes mailed to `email`.
    /// After an address change (to the old address) and with a deleted account.
    ///
    /// # Errors
    /// `store_unavailable`.
    pub(super) async fn withdraw_recovery_secrets(&self, user_id: Uuid, email: Option<&str>) -> Result<(), AuthError> {
        let mut keyed = vec![
            (RESET_TOKEN_PURPOSE.to_owned(), user_id.to_string()),
            (super::lifecycle::EMAIL_CHANGE_PURPOSE.to_owned(), user_id.to_string()),
        ];
        if let Some(email) = email {
            for purpose in [EmailCodePurpose::VerifyEmail, EmailCodePurpose::ResetPassword, EmailCodePurpose::Register]
            {
                keyed.push((code_purpose(purpose), email_key(email)));
            }
        }
        let nothing = TokenHash::from_bytes([0; 32]);
        let now = self.inner.clock.now();
        for (purpose, key) in keyed {
            // Spending with a candidate that cannot match deletes the secret.
            self.inner.secrets.take_secret(&purpose, &key, &nothing, OnMismatch::Spend, now).await?;
        }
        Ok(())
    }

    /// Mails a notice (password changed or reset) in the background: the change is done, and a
    /// failed notice must neither undo it nor delay the answer. Without a mailer, nothing.
    pub(super) fn send_notice(&self, to: &str, mail: &MailKind<'_>) {
        let Some(mailer) = self.inner.mailer.clone() else { return };
        let message = self.render(to, mail);
        self.spawn_background(async move {
            if let Err(err) = mailer.send(&message).await {
                tracing::warn!(subject = %message.subject, error = %err, "notice mail not delivered");
            }
        });
    }
}

/// What a password reset presents.
#[derive(Clone, Copy)]
enum ResetSecret<'a> {
    /// The token of a reset link.
    Token(&'a str),
    /// A mailed code (with the email address).
    Code(&'a str),
}
