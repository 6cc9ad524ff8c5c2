//! The persistent audit log: [`AuditEvent`]s (who did what to which account, from where, with
//! what outcome), the [`AuditStore`] that keeps them, the queries of the admin and `/me` screens
//! ([`AuditQuery`]) and the opaque keyset [`Cursor`] that pages both them and the user list.
//!
//! An event never carries a password, token, code or hash: its `details` are a small JSON
//! object of non-secret facts (`{"reason":"wrong_password"}`, `{"role":"admin"}`). The service
//! writes one per security event (see [`AuditEventType`]); a failing write is logged and, unless
//! [`AuthConfig::audit_required`](crate::AuthConfig::audit_required), never fails the request.

use std::fmt;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;

/// What happened, stored and filtered by its `snake_case` name (`login_failed`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditEventType {
    /// An account was created by registration.
    Registered,
    /// A login succeeded (`details.method`: `password`, `email_code`, `external`,
    /// `password_otp`).
    LoginSucceeded,
    /// A login failed; `details.reason`: `wrong_password`, `unknown_account`, `disabled`,
    /// `locked` or `captcha`. What was typed is never kept (users type passwords there).
    LoginFailed,
    /// A session was logged out (`details.all` when every session was).
    LoggedOut,
    /// The owner revoked one of their sessions (`details.session_id`).
    SessionRevoked,
    /// A spent refresh token came back after the grace window; its session was revoked.
    RefreshTokenReused,
    /// The user changed their password.
    PasswordChanged,
    /// The password was reset with a mailed link or code.
    PasswordReset,
    /// A 6-digit code was mailed (`details.purpose`).
    EmailCodeSent,
    /// The user verified their address with a mailed code.
    EmailVerified,
    /// The user asked to change their address; a code went to the new one.
    EmailChangeRequested,
    /// The address was changed (`details.from_domain`, `details.to_domain`).
    EmailChanged,
    /// An admin changed the role (`details.role`).
    RoleChanged,
    /// An admin changed the status (`details.status`).
    StatusChanged,
    /// The account was deleted; only this event, with the user id, is kept about it.
    AccountDeleted,
    /// The user downloaded their data.
    DataExported,
    /// An admin created the account (`details.role`, `details.with_password`).
    AdminUserCreated,
    /// An admin changed fields of the account (`details.fields`).
    AdminUserUpdated,
    /// An admin ended sessions of the account (`details.session_id` for one, `details.revoked`).
    AdminSessionsRevoked,
    /// An admin had a password-reset link mailed to the account.
    AdminPasswordResetSent,
    /// The password was right and the account has a second factor: a challenge (`mfa_token`)
    /// was issued, no session yet (`details.purpose`: `login`, or `enroll` when the role
    /// requires a factor the user lacks).
    LoginPasswordOkMfaPending,
    /// A second-factor code was refused: wrong, of the wrong shape, or already used
    /// (`details.context`: `login` (with `details.attempts_left`), `enroll`, `password_change`,
    /// `email_change`, `delete_account`, `admin`, `mfa_disabled`,
    /// `mfa_recovery_codes_regenerated`).
    MfaFailed,
    /// A TOTP factor was confirmed and is now required at login.
    MfaEnabled,
    /// The user disabled their TOTP factor.
    MfaDisabled,
    /// The recovery codes were replaced by new ones.
    MfaRecoveryCodesRegenerated,
    /// A recovery code was spent (`details.left`: how many remain).
    MfaRecoveryCodeUsed,
    /// An admin removed the user's second factor.
    AdminMfaReset,
}

impl AuditEventType {
    /// Every type, in declaration order.
    pub const ALL: [Self; 27] = [
        Self::Registered,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoggedOut,
        Self::SessionRevoked,
        Self::RefreshTokenReused,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::EmailCodeSent,
        Self::EmailVerified,
        Self::EmailChangeRequested,
        Self::EmailChanged,
        Self::RoleChanged,
        Self::StatusChanged,
        Self::AccountDeleted,
        Self::DataExported,
        Self::AdminUserCreated,
        Self::AdminUserUpdated,
        Self::AdminSessionsRevoked,
        Self::AdminPasswordResetSent,
        Self::LoginPasswordOkMfaPending,
        Self::MfaFailed,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::MfaRecoveryCodesRegenerated,
        Self::MfaRecoveryCodeUsed,
        Self::AdminMfaReset,
    ];

    /// The stored name, e.g. `login_failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::LoggedOut => "logged_out",
            Self::SessionRevoked => "session_revoked",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::EmailCodeSent => "email_code_sent",
            Self::EmailVerified => "email_verified",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChanged => "email_changed",
            Self::RoleChanged => "role_changed",
            Self::StatusChanged => "status_changed",
            Self::AccountDeleted => "account_deleted",
            Self::DataExported => "data_exported",
            Self::AdminUserCreated => "admin_user_created",
            Self::AdminUserUpdated => "admin_user_updated",
            Self::AdminSessionsRevoked => "admin_sessions_revoked",
            Self::AdminPasswordResetSent => "admin_password_reset_sent",
            Self::LoginPasswordOkMfaPending => "login_password_ok_mfa_pending",
            Self::MfaFailed => "mfa_failed",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::MfaRecoveryCodesRegenerated => "mfa_recovery_codes_regenerated",
            Self::MfaRecoveryCodeUsed => "mfa_recovery_code_used",
            Self::AdminMfaReset => "admin_mfa_reset",
        }
    }

    /// The type of a stored name; `None` for a name this version does not know.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for AuditEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the audited action succeeded (`success`) or was refused (`failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It happened.
    Success,
    /// It was refused.
    Failure,
}

impl AuditOutcome {
    /// `success` or `failure`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    /// The outcome of a stored name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Success, Self::Failure].into_iter().find(|o| o.as_str() == name)
    }
}

/// One entry of the audit log, as stored and as the API returns it (times RFC 3339 UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// UUID v7: time-ordered, the keyset of [`AuditQuery`] pages.
    pub id: Uuid,
    /// When it happened (whole seconds).
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: AuditEventType,
    /// The account concerned, when known.
    pub user_id: Option<Uuid>,
    /// Who acted: the user themselves, an admin, or `None` for the operator's tools and for
    /// anonymous requests.
    pub actor_id: Option<Uuid>,
    /// The client IP of the request, as text.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// Whether it succeeded.
    pub outcome: AuditOutcome,
    /// Non-secret facts about it; `{}` when there are none.
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// A page request of [`AuditStore::audit_events`]: the newest events first, every filter
/// optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only events about this account.
    pub user_id: Option<Uuid>,
    /// Only events of this type.
    pub kind: Option<AuditEventType>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only events older than this one (the last id of the previous page).
    pub before: Option<Uuid>,
    /// Most events returned (the service asks one more than it shows, to know whether a next
    /// page exists).
    pub limit: u32,
}

impl AuditQuery {
    /// The newest `limit` events, unfiltered; set the public fields to filter.
    #[must_use]
    pub fn new(limit: u32) -> Self {
        Self { limit, ..Self::default() }
    }

    /// Whether `event` passes the filters (for backends that scan in memory).
    #[must_use]
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.user_id.is_none_or(|id| event.user_id == Some(id))
            && self.kind.is_none_or(|kind| event.kind == kind)
            && self.since.is_none_or(|since| event.at >= since)
            && self.until.is_none_or(|until| event.at < until)
            && self.before.is_none_or(|before| event.id < before)
    }
}

/// The audit log's store. Backends: memory, SQLite, PostgreSQL (`auth-storage`); with
/// PostgreSQL + Redis the log lives in PostgreSQL.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends `event`.
    async fn append_audit(&self, event: AuditEvent) -> Result<(), StoreError>;

    /// The events passing `query`'s filters, newest (greatest id) first, at most `query.limit`.
    async fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;

    /// Deletes the events older than `before`; returns how many went. Called by
    /// [`Auth::purge_expired`](crate::Auth::purge_expired) with the retention period.
    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Deletes every event about `user_id` (an account being deleted); returns how many went.
    async fn forget_user_audit(&self, user_id: Uuid) -> Result<u64, StoreError>;
}

/// An opaque keyset cursor: the last id of a page, as 22 base64url characters. Clients pass it
/// back as `cursor` for the next page; anything else is a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub Uuid);

impl Cursor {
    /// The cursor's text.
    #[must_use]
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// The cursor of `text`; `None` for anything [`encode`](Self::encode) cannot have made.
    #[must_use]
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        Uuid::from_slice(&bytes).ok().map(Self)
    }
}

/// A page of results and the cursor of the next one (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass it back for the next page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of at most `limit` items from `items` (fetched with `limit + 1`), with the next
    /// cursor from the last shown item's id when there were more.
    pub fn from_overfetch(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> Uuid) -> Self {
        let limit = limit as usize;
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more { items.last().map(|last| Cursor(id(last)).encode()) } else { None };
        Self { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        assert_eq!(Cursor::decode(&Cursor(id).encode()), Some(Cursor(id)));
        for bad in ["", "not a cursor", "AAAA", "%%%%"] {
            assert_eq!(Cursor::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_page_names_a_next_cursor_only_when_more_items_exist() {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let page = Page::from_overfetch(ids.clone(), 2, |id| *id);
        assert_eq!(page.items, ids[..2]);
        assert_eq!(page.next_cursor, Some(Cursor(ids[1]).encode()));
        let last = Page::from_overfetch(ids[..2].to_vec(), 2, |id| *id);
        assert_eq!(last.next_cursor, None);
    }

    #[test]
    fn every_type_round_trips_through_its_name() {
        for kind in AuditEventType::ALL {
            assert_eq!(AuditEventType::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(AuditEventType::parse("nope"), None);
    }
}
