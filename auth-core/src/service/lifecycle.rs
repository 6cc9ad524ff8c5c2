//! The account's lifecycle in the user's own hands: changing the email address with a code
//! mailed to the new one, deleting the account, and exporting its data.
//!
//! An address change keeps the new address on the account as *pending* until confirmed; the
//! login and recovery address stays the old one until then. Its code is 6 digits, stored as
//! `HMAC-SHA-256(key, "email_change" ‖ user id ‖ new address ‖ code)` under (`email_change`,
//! user id): asking again for another address kills the first code, and a code works only for
//! the address it was mailed to.

use uuid::Uuid;

use crate::audit::{AuditEvent, AuditEventType, AuditQuery};
use crate::config::RateRuleName;
use crate::context::RequestContext;
use crate::error::AuthError;
use crate::input::{DeleteAccountRequest, EmailChangeConfirmRequest, EmailChangeRequest, ListAuditRequest};
use crate::mail::MailKind;
use crate::outcome::AccountExport;
use crate::secret::TokenHash;
use crate::store::Session;
use crate::token::Claims;
use crate::user::{User, UserStatus, UserUpdate};
use crate::validate::{identifier_key, normalize_email};

use super::limits::user_bucket;
use super::Auth;

pub(super) const EMAIL_CHANGE_PURPOSE: &str = "email_change";

/// Most audit events in an export (the newest; retention bounds the rest).
const EXPORT_AUDIT_EVENTS: u32 = 1000;

impl Auth {
    /// `POST /me/email`: re-checks the password (a wrong one counts toward the account's
    /// lockout), records `new_email` as the pending address, mails a 6-digit code to it and a
    /// notice to the current address. Answers the same whether or not the new address belongs
    /// to another account (then no code is sent, and nothing could confirm it anyway).
    ///
    /// # Errors
    /// `invalid_request` (`new_email` not an address, or the current one), `invalid_credentials`
    /// (403), `rate_limited` (lockout, `mail_per_ip`, or `email_code_per_address` on the new
    /// address), `mfa_required` / `invalid_mfa_code` (step-up, for a user with a second factor),
    /// `not_found` (no mailer), `unauthorized`, `overloaded`, `store_unavailable`.
    pub async fn request_email_change(
        &self,
        claims: &Claims,
        req: EmailChangeRequest,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        self.mailer_for_email_flows()?;
        let new_email = normalize_email(req.new_email.trim())
            .ok_or_else(|| AuthError::invalid_field("new_email", "must be an email address"))?;
        let record = self.caller(claims).await?;
        if record.user.email.as_deref().map(identifier_key) == Some(identifier_key(&new_email)) {
            return Err(AuthError::invalid_field("new_email", "is already the account's address"));
        }
        self.recheck_password(&record, &req.password, AuditEventType::EmailChangeRequested, ctx).await?;
        // Mail to an address of the caller's choosing: the rules of `/email/code`.
        self.limit_ip(RateRuleName::MailPerIp, ctx).await?;
        self.limit(RateRuleName::EmailCodePerAddress, &identifier_key(&new_email), ctx).await?;
        // Last of the checks: a code is spent only by a request that is otherwise good to go.
        let code = req.mfa_code.as_ref().or(ctx.mfa_code.as_ref());
        self.step_up(claims, &record.user, code, "email_change", ctx).await?;
        let user_id = record.user.id;
        let at = self.now();
        let update = UserUpdate::new().pending_email(Some(new_email.clone()));
        self.inner.users.update_user(user_id, update, at).await?.ok_or(AuthError::Unauthorized)?;
        let (code, secret) = self.new_code(EMAIL_CHANGE_PURPOSE.to_owned(), user_id.to_string(), |code| {
            self.email_change_hash(user_id, &new_email, code)
        });
        let ttl_minutes = self.inner.config.email_code_ttl.as_secs().div_ceil(60);
        let mail = self.render(&new_email, &MailKind::EmailChangeCode { code: &code, ttl_minutes });
        // A taken address gets no code (its owner did not ask), decided after the answer.
        let auth = self.clone();
        let taken_check = new_email.clone();
        self.spawn_background(async move {
            match auth.inner.users.user_by_email(&taken_check).await {
                // Failures are logged where they happen.
                Ok(None) => drop(auth.deliver_secret(mail, secret).await),
                Ok(Some(_)) => tracing::info!("no email-change code sent: the address belongs to another account"),
                Err(err) => tracing::error!(error = %err, "no email-change code sent: the user store failed"),
            }
        });
        if let Some(old) = &record.user.email {
            self.send_notice(old, &MailKind::EmailChangeRequested { new_email: &new_email, at, ip: ctx.ip });
        }
        self.audit(AuditEventType::EmailChangeRequested, Some(user_id), ctx)
            .detail("to_domain", domain(&new_email))
            .record()
            .await
    }

    /// `POST /me/email/confirm`: spends the code mailed to the pending address and makes it the
    /// account's (verified) address; the old address gets a notice with the time and client IP.
    /// With [`AuthConfig::email_change_revokes_sessions`](crate::AuthConfig::email_change_revokes_sessions)
    /// every other session ends.
    ///
    /// # Errors
    /// `invalid_code` (wrong, expired, used up, nothing pending, or the address was taken
    /// meanwhile: one answer for all), `unauthorized`, `store_unavailable`.
    pub async fn confirm_email_change(
        &self,
        claims: &Claims,
        req: EmailChangeConfirmRequest,
        ctx: &RequestContext,
    ) -> Result<User, AuthError> {
        let record = self.caller(claims).await?;
        let Some(new_email) = record.pending_email.clone() else {
            return Err(AuthError::InvalidCode);
        };
        let user_id = record.user.id;
        let hash = self.email_change_hash(user_id, &new_email, req.code.expose().trim());
        self.take_secret(EMAIL_CHANGE_PURPOSE, &user_id.to_string(), &hash).await?;
        let at = self.now();
        let update = UserUpdate::new().email(new_email.clone()).email_verified(true).pending_email(None);
        let user = match self.inner.users.update_user(user_id, update, at).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(AuthError::Unauthorized),
            Err(crate::StoreError::EmailTaken) => {
                tracing::info!(user_id = %user_id, "email change not confirmed: the address was taken meanwhile");
                return Err(AuthError::InvalidCode);
            }
            Err(err) => return Err(err.into()),
        };
        // Links and codes mailed to the old address die with it: it may be the mailbox an
        // attacker reads, which is why the owner moved.
        self.withdraw_recovery_secrets(user_id, record.user.email.as_deref()).await?;
        let mut revoked = 0;
        if self.inner.config.email_change_revokes_sessions {
            revoked = self.inner.sessions.revoke_user_sessions(user_id, Some(claims.sid), at).await?;
        }
        if let Some(old) = &record.user.email {
            self.send_notice(old, &MailKind::EmailChanged { new_email: &new_email, at, ip: ctx.ip });
        }
        let mut entry =
            self.audit(AuditEventType::EmailChanged, Some(user_id), ctx).detail("to_domain", domain(&new_email));
        if let Some(old) = &record.user.email {
            entry = entry.detail("from_domain", domain(old));
        }
        entry.detail("revoked", revoked).record().await?;
        Ok(user)
    }

    /// `DELETE /me`: re-checks the password (a wrong one counts toward the lockout), then
    /// deletes the account for good, in an order that leaves no usable credential at any step:
    /// every session is revoked (access tokens are refused at once, on every instance), the
    /// account is disabled (refused with `last_admin` for the only active admin, and then
    /// nothing changed), so a login racing the deletion fails; then the sessions and refresh
    /// tokens, the pending codes and reset link, the lockout counter and the user's audit events
    /// go, and the user row last (the username and email are free again). One `account_deleted`
    /// event holding only the user id is kept. If a store fails part-way the account stays
    /// disabled, without sessions, for an admin to delete again.
    /// [`Admin::delete_user`](crate::Admin::delete_user) does the same.
    ///
    /// # Errors
    /// `invalid_credentials` (403), `last_admin` (the only active admin), `rate_limited`,
    /// `mfa_required` / `invalid_mfa_code` (step-up, for a user with a second factor),
    /// `unauthorized`, `overloaded`, `store_unavailable`.
    pub async fn delete_account(
        &self,
        claims: &Claims,
        req: DeleteAccountRequest,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let record = self.caller(claims).await?;
        self.recheck_password(&record, &req.password, AuditEventType::AccountDeleted, ctx).await?;
        if record.user.is_active_admin() && !self.another_active_admin(record.user.id).await? {
            return Err(AuthError::LastAdmin);
        }
        let code = req.mfa_code.as_ref().or(ctx.mfa_code.as_ref());
        self.step_up(claims, &record.user, code, "delete_account", ctx).await?;
        self.erase_account(&record.user, Some(record.user.id)).await
    }

    /// Deletes `user` as [`delete_account`](Self::delete_account) describes (refused with
    /// `last_admin` for the only active admin); `actor` is the user or the admin who acted.
    ///
    /// # Errors
    /// `not_found`, `last_admin`, `store_unavailable` (what was done stays done; a retry
    /// finishes the rest only while the user row exists).
    pub(super) async fn erase_account(&self, user: &User, actor: Option<Uuid>) -> Result<(), AuthError> {
        let id = user.id;
        let at = self.now();
        // A refused deletion must change nothing: the last-admin rule first (the store checks
        // it again, atomically, when disabling).
        if user.is_active_admin() && !self.another_active_admin(id).await? {
            return Err(AuthError::LastAdmin);
        }
        // Sessions end before the account is disabled (a failure leaves no disabled account
        // with live sessions); disabled, a login racing the rest fails its own compare-and-set
        // on the status; deleting the sessions revokes again whatever a login made meanwhile.
        self.inner.sessions.revoke_user_sessions(id, None, at).await?;
        let disable = UserUpdate::new().status(UserStatus::Disabled).only_if_an_admin_remains();
        if self.inner.users.update_user(id, disable, at).await?.is_none() {
            return Err(match self.inner.users.user_by_id(id).await? {
                Some(_) => AuthError::LastAdmin,
                None => AuthError::NotFound,
            });
        }
        let sessions = self.inner.sessions.delete_user_sessions(id, at).await?;
        // The second factor before the row: the same lock order as a login redeeming a
        // challenge (challenge, then factor), which the row's cascade would reverse.
        if let Some(mfa) = &self.inner.mfa {
            mfa.delete_totp(id).await?;
        }
        self.withdraw_recovery_secrets(id, user.email.as_deref()).await?;
        self.clear_account_attempts(&user_bucket(id)).await?;
        if let Some(audit) = &self.inner.audit {
            // Events of the user still being written would outlive the forgetting.
            self.flush_audit().await;
            audit.forget_user_audit(id).await?;
        }
        // Disabled now, so the guard has nothing left to refuse.
        if !self.inner.users.delete_user(id, true).await? {
            return Err(AuthError::NotFound);
        }
        tracing::info!(user_id = %id, sessions, by_admin = actor != Some(id), "account deleted");
        self.audit(AuditEventType::AccountDeleted, Some(id), &RequestContext::default()).actor(actor).record().await
    }

    /// `GET /me/export`: the caller's data — profile (with preferences and metadata), live
    /// sessions, and their newest audit events (at most 1000) — for a download.
    ///
    /// # Errors
    /// `unauthorized`, `store_unavailable`.
    pub async fn export_account(&self, claims: &Claims, ctx: &RequestContext) -> Result<AccountExport, AuthError> {
        let user = self.caller(claims).await?.user;
        let sessions: Vec<Session> = self.inner.sessions.user_sessions(user.id, self.now()).await?;
        let audit: Vec<AuditEvent> = match &self.inner.audit {
            Some(store) => {
                let mut query = AuditQuery::new(EXPORT_AUDIT_EVENTS);
                query.user_id = Some(user.id);
                store.audit_events(&query).await?.into_iter().map(as_the_user_sees_it).collect()
            }
            None => Vec::new(),
        };
        self.audit(AuditEventType::DataExported, Some(user.id), ctx).record().await?;
        Ok(AccountExport { exported_at: self.now(), user, sessions, audit })
    }

    /// `GET /me/audit`: a page of the caller's own security events, newest first ("was that
    /// login me?"). `user_id` in the request is ignored; events an admin caused show no IP or
    /// user agent (the admin's).
    ///
    /// # Errors
    /// `invalid_request` naming each bad parameter, `not_found` without an audit store,
    /// `store_unavailable`.
    pub async fn my_audit_log(
        &self,
        claims: &Claims,
        req: &ListAuditRequest,
    ) -> Result<crate::audit::Page<AuditEvent>, AuthError> {
        let mut page = self.audit_page(req, Some(claims.sub)).await?;
        page.items = page.items.into_iter().map(as_the_user_sees_it).collect();
        Ok(page)
    }

    fn email_change_hash(&self, user_id: Uuid, new_email: &str, code: &str) -> TokenHash {
        let data = format!("{EMAIL_CHANGE_PURPOSE}\0{user_id}\0{}\0{code}", identifier_key(new_email));
        self.inner.codes_key.digest(data.as_bytes())
    }
}

/// An event of the user's as the user is shown it: the client of an admin who acted on the
/// account (IP, user agent) is the admin's, not theirs to see.
fn as_the_user_sees_it(mut event: AuditEvent) -> AuditEvent {
    if event.actor_id.is_some() && event.actor_id != event.user_id {
        event.ip = None;
        event.user_agent = None;
    }
    event
}

/// The domain of an address, the only part of it the audit log keeps.
fn domain(email: &str) -> String {
    email.rsplit_once('@').map_or_else(String::new, |(_, domain)| domain.to_owned())
}
