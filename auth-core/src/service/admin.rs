//! Operator actions: the admin API's flows as methods of [`Admin`], for the HTTP routes under
//! `/admin` and for host code and command-line tools. Every change is audited with the acting
//! admin's id (reads are not).

use serde_json::Value;
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditEventType, Page};
use crate::context::RequestContext;
use crate::error::{AuthError, FieldError};
use crate::input::{AdminCreateUserRequest, AdminUpdateUserRequest, ListAuditRequest, ListUsersRequest};
use crate::secret::random_token;
use crate::store::Session;
use crate::token::Claims;
use crate::user::{NewUser, Role, User, UserQuery, UserStatus, UserUpdate};
use crate::validate::identifier_key;

use super::account::identifiers;
use super::audit::{page_cursor, page_limit};
use super::Auth;

/// The admin operations of an [`Auth`], acting as one admin (or as the operator): get it with
/// [`Auth::admin`] or [`Auth::admin_as`].
///
/// Step-up: acting as an admin who has a second factor ([`Auth::admin_as`]), every change (not a
/// read) first answers `mfa_required`, `invalid_mfa_code` or `rate_limited` unless the request's
/// code or the session's recent two-factor login passes; these errors are not repeated below.
///
/// Guard rails: no change leaves the service without an active admin (the last one cannot be
/// disabled, demoted or deleted: `last_admin`, 409), checked atomically by the store. Disabling
/// a user or changing their role ends every session of theirs at once (ASVS 7.4.2): their access
/// tokens are refused on the next request, on every instance sharing the session store.
///
/// ```
/// # async fn demo(auth: auth_core::Auth, user_id: uuid::Uuid) -> Result<(), auth_core::AuthError> {
/// use auth_core::{ListUsersRequest, UserStatus};
///
/// let page = auth.admin().list_users(&ListUsersRequest::default()).await?;
/// println!("{} users, more: {}", page.items.len(), page.next_cursor.is_some());
/// auth.admin().set_status(user_id, UserStatus::Disabled).await?; // sessions end now
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin<'a> {
    auth: &'a Auth,
    actor: Option<Uuid>,
    /// The acting admin's claims (`None`: the operator), for step-up.
    claims: Option<Claims>,
    ctx: RequestContext,
}

impl Auth {
    /// Admin operations for host code and operator tools: audited with no actor.
    #[must_use]
    pub fn admin(&self) -> Admin<'_> {
        Admin { auth: self, actor: None, claims: None, ctx: RequestContext::default() }
    }

    /// Admin operations on behalf of the caller of `claims`, from the client of `ctx`. Changes
    /// (not reads) by an admin who has a second factor need step-up: a code in
    /// [`RequestContext::mfa_code`] (`X-MFA-Code`), or a session made with two factors within
    /// [`MfaConfig::step_up_window`](crate::MfaConfig::step_up_window); else `mfa_required`.
    ///
    /// # Errors
    /// `forbidden` unless the access token carries role `admin` (its session was checked by
    /// [`authenticate`](Self::authenticate); a role change ends the user's sessions, so the role
    /// of a live session is current).
    pub fn admin_as(&self, claims: &Claims, ctx: &RequestContext) -> Result<Admin<'_>, AuthError> {
        if claims.role != Role::admin() {
            return Err(AuthError::Forbidden);
        }
        Ok(Admin { auth: self, actor: Some(claims.sub), claims: Some(claims.clone()), ctx: ctx.clone() })
    }
}

impl Auth {
    /// Whether an active admin other than `user_id` exists (read without a lock: the store's
    /// guard is what makes a change safe; this only refuses early).
    ///
    /// # Errors
    /// `store_unavailable`.
    pub(super) async fn another_active_admin(&self, user_id: Uuid) -> Result<bool, AuthError> {
        let mut admins = UserQuery::new(2);
        admins.role = Some(Role::admin());
        admins.status = Some(UserStatus::Active);
        Ok(self.inner.users.list_users(&admins).await?.iter().any(|u| u.id != user_id))
    }
}

/// A role name the configuration knows (`AuthConfig::roles`).
fn role(auth: &Auth, name: &str, fields: &mut Vec<FieldError>) -> Option<Role> {
    let roles = &auth.inner.config.roles;
    let name = name.trim();
    if roles.contains(name) {
        return Some(Role::new(name));
    }
    let known: Vec<&str> = roles.iter().map(String::as_str).collect();
    fields.push(FieldError::new("role", format!("must be one of {}", known.join(", "))));
    None
}

fn status(name: &str, fields: &mut Vec<FieldError>) -> Option<UserStatus> {
    let status = UserStatus::parse(name.trim());
    if status.is_none() {
        fields.push(FieldError::new("status", "must be active or disabled"));
    }
    status
}

/// RFC 7396 JSON Merge Patch of an object: `null` members remove keys, objects merge
/// recursively, anything else replaces.
fn merge_patch(target: &mut serde_json::Map<String, Value>, patch: serde_json::Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::Object(inner) => {
                let slot = target.entry(key).or_insert_with(|| Value::Object(serde_json::Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(serde_json::Map::new());
                }
                if let Value::Object(existing) = slot {
                    merge_patch(existing, inner);
                }
            }
            other => {
                target.insert(key, other);
            }
        }
    }
}

impl Admin<'_> {
    /// `GET /admin/users`: a page of users in creation order, filtered by `query` (username or
    /// email prefix, case-insensitive), `status` and `role`.
    ///
    /// # Errors
    /// `invalid_request` naming each bad parameter (`status`, `role`, `limit`, `cursor`),
    /// `store_unavailable`.
    pub async fn list_users(&self, req: &ListUsersRequest) -> Result<Page<User>, AuthError> {
        let mut fields = Vec::new();
        let prefix = req.query.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(identifier_key);
        let status = req.status.as_deref().filter(|s| !s.trim().is_empty()).and_then(|s| status(s, &mut fields));
        let role = req.role.as_deref().filter(|r| !r.trim().is_empty()).and_then(|r| role(self.auth, r, &mut fields));
        let limit = page_limit(req.limit.as_deref(), &mut fields);
        let after = page_cursor(req.cursor.as_deref(), &mut fields);
        if !fields.is_empty() {
            return Err(AuthError::InvalidRequest { fields });
        }
        let query = UserQuery { prefix, status, role, after, limit: limit + 1 };
        let users = self.auth.inner.users.list_users(&query).await?;
        Ok(Page::from_overfetch(users, limit, |u| u.id))
    }

    /// `GET /admin/users/{id}`.
    ///
    /// # Errors
    /// `not_found`, `store_unavailable`.
    pub async fn user(&self, id: Uuid) -> Result<User, AuthError> {
        Ok(self.auth.inner.users.user_by_id(id).await?.ok_or(AuthError::NotFound)?.user)
    }

    /// `POST /admin/users`: creates an account. With `password` (checked against the policy)
    /// the user can log in at once; without it the account gets an unusable password and a
    /// set-password link (a reset link) is mailed to `email`.
    ///
    /// # Errors
    /// `invalid_request` (identifiers, role; no password and no email; no password and no
    /// mailer), `weak_password`, `username_taken`, `email_taken`, `store_unavailable`.
    pub async fn create_user(&self, req: AdminCreateUserRequest) -> Result<User, AuthError> {
        self.stepped_up().await?;
        let mut fields = Vec::new();
        let (username, email) = identifiers(req.username.as_deref(), req.email.as_deref(), &mut fields);
        if username.is_none() && email.is_none() && fields.is_empty() {
            fields.push(FieldError::new("username", "a username or an email is required"));
        }
        let role = match req.role.as_deref() {
            Some(name) => role(self.auth, name, &mut fields),
            None => Some(Role::user()),
        };
        if req.password.is_none() {
            if email.is_none() {
                fields.push(FieldError::new("password", "is required when no email receives a set-password link"));
            } else if self.auth.inner.mailer.is_none() {
                fields.push(FieldError::new("password", "is required: no mailer is configured to send a link"));
            }
        }
        if !fields.is_empty() {
            return Err(AuthError::InvalidRequest { fields });
        }
        let role = role.unwrap_or_else(Role::user);
        let password_hash = match &req.password {
            Some(password) => {
                let inputs = username.iter().map(|u| (*u).to_owned()).chain(email.iter().cloned()).collect();
                self.auth.check_password_policy(password, inputs).await?;
                self.auth.inner.hasher.hash(password.expose()).await?
            }
            // A password nobody knows: the user sets theirs through the mailed link.
            None => self.auth.inner.hasher.hash(&random_token()).await?,
        };
        let user = self
            .auth
            .inner
            .users
            .create_user(NewUser {
                id: Uuid::now_v7(),
                username: username.map(str::to_owned),
                email: email.clone(),
                email_verified: req.email_verified && email.is_some(),
                password_hash,
                role: role.clone(),
                created_at: self.auth.now(),
            })
            .await?;
        if req.password.is_none() {
            if let Some(email) = email {
                // The account exists either way; a failed link is logged, and the admin can send
                // another with `send_password_reset`.
                let _ = self.auth.mail_reset_link(email).await;
            }
        }
        self.audit(AuditEventType::AdminUserCreated, user.id)
            .detail("role", role.as_str())
            .detail("with_password", req.password.is_some())
            .record()
            .await?;
        Ok(user)
    }

    /// `PATCH /admin/users/{id}`: changes role, status, email, verified flag, username, and
    /// merges metadata (RFC 7396). A new role or disabling ends every session of the user at
    /// once; a new email is unverified unless `email_verified` says otherwise, and cancels a
    /// pending address change.
    ///
    /// # Errors
    /// `invalid_request` naming each bad field, `not_found`, `last_admin`, `username_taken`,
    /// `email_taken`, `store_unavailable`.
    pub async fn update_user(&self, id: Uuid, req: AdminUpdateUserRequest) -> Result<User, AuthError> {
        self.stepped_up().await?;
        let users = &self.auth.inner.users;
        let mut fields = Vec::new();
        let new_role = req.role.as_deref().and_then(|r| role(self.auth, r, &mut fields));
        let new_status = req.status.as_deref().and_then(|s| status(s, &mut fields));
        let (username, email) = identifiers(req.username.as_deref(), req.email.as_deref(), &mut fields);
        if req.username.as_deref().is_some_and(|u| u.trim().is_empty()) {
            fields.push(FieldError::new("username", "cannot be emptied"));
        }
        if req.email.as_deref().is_some_and(|e| e.trim().is_empty()) {
            fields.push(FieldError::new("email", "cannot be emptied"));
        }
        if !fields.is_empty() {
            return Err(AuthError::InvalidRequest { fields });
        }
        let current = users.user_by_id(id).await?.ok_or(AuthError::NotFound)?.user;
        let mut update = UserUpdate::new();
        let mut changed: Vec<&str> = Vec::new();
        let role_changed = new_role.as_ref().is_some_and(|r| *r != current.role);
        if let Some(r) = new_role.clone().filter(|_| role_changed) {
            update = update.role(r);
        }
        let status_changed = new_status.is_some_and(|s| s != current.status);
        if let Some(s) = new_status.filter(|_| status_changed) {
            update = update.status(s);
        }
        // Compared as written: a new capitalization of the same name is a change too.
        if let Some(name) = username.filter(|u| Some(*u) != current.username.as_deref()) {
            update = update.username(name.to_owned());
            changed.push("username");
        }
        let email_changed = email.as_ref().is_some_and(|e| Some(e) != current.email.as_ref());
        if let Some(address) = email.filter(|_| email_changed) {
            update = update.email(address).pending_email(None).email_verified(req.email_verified.unwrap_or(false));
            changed.push("email");
        }
        if let Some(verified) = req.email_verified.filter(|v| !email_changed && *v != current.email_verified) {
            update = update.email_verified(verified);
            changed.push("email_verified");
        }
        if let Some(patch) = req.metadata {
            let mut metadata = current.metadata.clone();
            merge_patch(&mut metadata, patch);
            if metadata != current.metadata {
                update = update.metadata(metadata);
                changed.push("metadata");
            }
        }
        let demotes = new_role.as_ref().is_some_and(|r| *r != Role::admin());
        let disables = new_status == Some(UserStatus::Disabled);
        if demotes || disables {
            // Judged by the store on the stored row, whatever was read above.
            update = update.only_if_an_admin_remains();
        }
        let at = self.auth.now();
        if !role_changed && !status_changed && changed.is_empty() {
            if disables {
                // Idempotent: a retry after a revocation that failed finishes it.
                self.auth.inner.sessions.revoke_user_sessions(id, None, at).await?;
            }
            return Ok(current);
        }
        if role_changed || disables {
            // Sessions end before the change is stored, so a failure cannot leave a demoted or
            // disabled user with live tokens, and again after it; a refused change must not end
            // them, so the last-admin rule is checked first (and again, atomically, by the store).
            if current.is_active_admin() && (demotes || disables) && !self.auth.another_active_admin(id).await? {
                return Err(AuthError::LastAdmin);
            }
            let revoked = self.auth.inner.sessions.revoke_user_sessions(id, None, at).await?;
            tracing::info!(user_id = %id, revoked, "role or status changed by an admin; sessions revoked");
        }
        let Some(user) = users.update_user(id, update, at).await? else {
            return Err(match users.user_by_id(id).await? {
                Some(_) => AuthError::LastAdmin,
                None => AuthError::NotFound,
            });
        };
        if role_changed || disables {
            // And after: a login that created its session between the first revocation and the
            // change passed its own check on the old role or status.
            self.auth.inner.sessions.revoke_user_sessions(id, None, at).await?;
        }
        if email_changed {
            // Links and codes mailed to the old address die with it.
            self.auth.withdraw_recovery_secrets(id, current.email.as_deref()).await?;
        }
        if role_changed {
            self.audit(AuditEventType::RoleChanged, id).detail("role", user.role.as_str()).record().await?;
        }
        if status_changed {
            self.audit(AuditEventType::StatusChanged, id).detail("status", user.status.as_str()).record().await?;
        }
        if !changed.is_empty() {
            self.audit(AuditEventType::AdminUserUpdated, id).detail("fields", changed).record().await?;
        }
        Ok(user)
    }

    /// Sets a user's status ([`update_user`](Self::update_user) with only `status`).
    ///
    /// # Errors
    /// As [`update_user`](Self::update_user).
    pub async fn set_status(&self, id: Uuid, status: UserStatus) -> Result<User, AuthError> {
        let req = AdminUpdateUserRequest { status: Some(status.as_str().to_owned()), ..Default::default() };
        self.update_user(id, req).await
    }

    /// Sets a user's role ([`update_user`](Self::update_user) with only `role`; the role must be
    /// one of [`AuthConfig::roles`](crate::AuthConfig::roles)).
    ///
    /// # Errors
    /// As [`update_user`](Self::update_user).
    pub async fn set_role(&self, id: Uuid, role: &Role) -> Result<User, AuthError> {
        let req = AdminUpdateUserRequest { role: Some(role.as_str().to_owned()), ..Default::default() };
        self.update_user(id, req).await
    }

    /// `DELETE /admin/users/{id}`: deletes the account as [`Auth::delete_account`] does (user,
    /// sessions, refresh tokens, pending codes; the audit log keeps only `account_deleted`, with
    /// this admin as its actor).
    ///
    /// # Errors
    /// `not_found`, `last_admin`, `store_unavailable`.
    pub async fn delete_user(&self, id: Uuid) -> Result<(), AuthError> {
        self.stepped_up().await?;
        let record = self.auth.inner.users.user_by_id(id).await?.ok_or(AuthError::NotFound)?;
        self.auth.erase_account(&record.user, self.actor).await
    }

    /// `GET /admin/users/{id}/sessions`: the user's live sessions, newest first.
    ///
    /// # Errors
    /// `not_found`, `store_unavailable`.
    pub async fn user_sessions(&self, id: Uuid) -> Result<Vec<Session>, AuthError> {
        self.user(id).await?;
        Ok(self.auth.inner.sessions.user_sessions(id, self.auth.now()).await?)
    }

    /// `DELETE /admin/users/{id}/sessions`: ends every session of the user; returns how many.
    ///
    /// # Errors
    /// `not_found`, `store_unavailable`.
    pub async fn revoke_user_sessions(&self, id: Uuid) -> Result<u64, AuthError> {
        self.stepped_up().await?;
        self.user(id).await?;
        let revoked = self.auth.inner.sessions.revoke_user_sessions(id, None, self.auth.now()).await?;
        self.audit(AuditEventType::AdminSessionsRevoked, id).detail("revoked", revoked).record().await?;
        Ok(revoked)
    }

    /// `DELETE /admin/users/{id}/sessions/{sid}`: ends one session of the user.
    ///
    /// # Errors
    /// `not_found` (no such user, or the session is not a live session of theirs),
    /// `store_unavailable`.
    pub async fn revoke_user_session(&self, id: Uuid, session_id: Uuid) -> Result<(), AuthError> {
        self.stepped_up().await?;
        self.auth.revoke_live_session(id, session_id).await?;
        self.audit(AuditEventType::AdminSessionsRevoked, id)
            .detail("session_id", session_id.to_string())
            .detail("revoked", 1)
            .record()
            .await
    }

    /// `POST /admin/users/{id}/password-reset`: mails the user a password-reset link. The admin
    /// never sees it.
    ///
    /// # Errors
    /// `not_found` (no such user, or no mailer), `invalid_request` (the account has no email
    /// address or is disabled), `mail_unavailable` (the mail server refused it; the link was
    /// withdrawn), `store_unavailable`.
    pub async fn send_password_reset(&self, id: Uuid) -> Result<(), AuthError> {
        self.stepped_up().await?;
        self.auth.mailer_for_email_flows()?;
        let user = self.user(id).await?;
        let Some(email) = user.email.clone() else {
            return Err(AuthError::invalid_field("email", "the account has no email address"));
        };
        if user.status != UserStatus::Active {
            return Err(AuthError::invalid_field("status", "the account is disabled"));
        }
        self.auth.mail_reset_link(email).await?;
        self.audit(AuditEventType::AdminPasswordResetSent, id).record().await
    }

    /// `GET /admin/audit`: a page of the audit log, newest first.
    ///
    /// # Errors
    /// `invalid_request` naming each bad parameter, `not_found` without an audit store,
    /// `store_unavailable`.
    pub async fn audit_log(&self, req: &ListAuditRequest) -> Result<Page<AuditEvent>, AuthError> {
        self.auth.audit_page(req, None).await
    }

    /// `DELETE /admin/users/{id}/mfa`: removes the user's second factor and recovery codes (they
    /// log in with the password alone, or must enroll again if their role requires a factor).
    /// Audited `admin_mfa_reset`; the user gets a notice.
    ///
    /// # Errors
    /// `not_found` (no such user, no active factor — a pending enrollment is removed all the
    /// same — or the second factor is off), the step-up errors, `store_unavailable`.
    pub async fn reset_mfa(&self, id: Uuid) -> Result<(), AuthError> {
        self.stepped_up().await?;
        let user = self.user(id).await?;
        if !self.auth.reset_factor(&user, &self.ctx).await? {
            return Err(AuthError::NotFound);
        }
        self.audit(AuditEventType::AdminMfaReset, id).record().await
    }

    /// Step-up for a change by an admin with a second factor (see [`Auth::admin_as`]); the
    /// operator ([`Auth::admin`]) passes.
    async fn stepped_up(&self) -> Result<(), AuthError> {
        let Some(claims) = &self.claims else { return Ok(()) };
        let record = self.auth.caller(claims).await?;
        self.auth.step_up(claims, &record.user, self.ctx.mfa_code.as_ref(), "admin", &self.ctx).await
    }

    fn audit(&self, kind: AuditEventType, user_id: Uuid) -> super::audit::Entry<'_> {
        self.auth.audit(kind, Some(user_id), &self.ctx).actor(self.actor)
    }
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::json;

    #[test]
    fn metadata_merges_as_rfc_7396_says() {
        let mut target = json!({"plan": "free", "quota": {"a": 1, "b": 2}, "drop": true}).as_object().unwrap().clone();
        let patch = json!({"plan": "pro", "quota": {"b": null, "c": 3}, "drop": null}).as_object().unwrap().clone();
        merge_patch(&mut target, patch);
        assert_eq!(serde_json::Value::Object(target), json!({"plan": "pro", "quota": {"a": 1, "c": 3}}));
    }
}
