//! Users: [`User`] (what the API returns), [`UserRecord`] (with the password hash, for stores),
//! [`NewUser`], [`UserUpdate`], [`Role`], [`UserStatus`] and [`Preferences`].

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user as the API returns it. Never carries the password hash.
///
/// Serialized as the API's **User** object; times are RFC 3339 UTC with whole seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Stable id (UUID v7: time-ordered).
    pub id: Uuid,
    /// 3–50 characters of letters, digits, `_`, `-`, `.`; unique case-insensitively. At least one
    /// of `username` and `email` is set.
    pub username: Option<String>,
    /// Trimmed, domain lower-cased; unique case-insensitively.
    pub email: Option<String>,
    /// Whether the address was proven by a mailed code.
    pub email_verified: bool,
    /// `admin`, `user`, or a host-defined role.
    pub role: Role,
    /// `active` or `disabled`.
    pub status: UserStatus,
    /// UI preferences the user edits through `PUT /me/preferences`.
    pub preferences: Preferences,
    /// A free JSON object owned by the host application (balance, quotas, …). Users cannot
    /// write it through the API.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When the account was last changed.
    pub updated_at: DateTime<Utc>,
    /// When the user last logged in, if ever.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    /// Whether the user has role `admin` and is active: what the last-admin guard counts.
    #[must_use]
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::admin() && self.status == UserStatus::Active
    }

    /// A display name: the username, or the email address for email-only accounts.
    #[must_use]
    pub fn name(&self) -> &str {
        self.username.as_deref().or(self.email.as_deref()).unwrap_or_default()
    }
}

/// A user together with its password hash (an Argon2id PHC string), as stores return it.
#[derive(Clone)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// PHC string, e.g. `$argon2id$v=19$m=19456,t=2,p=1$…`.
    pub password_hash: String,
    /// A new address the user asked to change to (`POST /me/email`) and has not confirmed yet;
    /// the login and recovery address stays [`User::email`] until then.
    pub pending_email: Option<String>,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("user", &self.user)
            .field("password_hash", &"[redacted]")
            .field("pending_email", &self.pending_email)
            .finish()
    }
}

/// What [`UserStore::create_user`](crate::UserStore::create_user) inserts. The service has
/// already validated and normalized every field.
#[derive(Clone)]
pub struct NewUser {
    /// The new user's id.
    pub id: Uuid,
    /// Validated username, if any.
    pub username: Option<String>,
    /// Normalized email, if any.
    pub email: Option<String>,
    /// Whether the email was verified during registration.
    pub email_verified: bool,
    /// PHC string of the password.
    pub password_hash: String,
    /// Initial role.
    pub role: Role,
    /// Creation time (also `updated_at`).
    pub created_at: DateTime<Utc>,
}

impl NewUser {
    /// The [`User`] this record becomes, with default preferences and empty metadata.
    #[must_use]
    pub fn to_user(&self) -> User {
        User {
            id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            role: self.role.clone(),
            status: UserStatus::Active,
            preferences: Preferences::default(),
            metadata: serde_json::Map::new(),
            created_at: self.created_at,
            updated_at: self.created_at,
            last_login_at: None,
        }
    }
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A partial update of a user: each `Some` field is written, `None` fields are kept.
/// `updated_at` is always set to `at`.
///
/// Preconditions ([`only_if_password_hash`](Self::only_if_password_hash),
/// [`only_if_status`](Self::only_if_status)) make it a compare-and-set: the store applies the
/// update only if they hold, in the same atomic step, and reports `None` otherwise. Login uses
/// them so that a password reset, change or disable that lands while the password is being
/// verified always wins.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct UserUpdate {
    /// New PHC string.
    pub password_hash: Option<String>,
    /// New username (validated by the service; unique like at creation).
    pub username: Option<String>,
    /// New email address (normalized by the service; unique like at creation).
    pub email: Option<String>,
    /// `Some(Some(address))` records a pending address change, `Some(None)` clears it.
    pub pending_email: Option<Option<String>>,
    /// New role.
    pub role: Option<Role>,
    /// New status.
    pub status: Option<UserStatus>,
    /// New email-verified flag.
    pub email_verified: Option<bool>,
    /// New preferences (replaces the whole object).
    pub preferences: Option<Preferences>,
    /// New host metadata (replaces the whole object).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Login time to record.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Precondition: the stored PHC string is still exactly this one.
    pub if_password_hash: Option<String>,
    /// Precondition: the status is still this one.
    pub if_status: Option<UserStatus>,
    /// Precondition (the last-admin guard): the user is not an active admin *now*, or some other
    /// user is. Set it on any change that may demote or disable an admin. Backends check it under
    /// a lock that serializes it with every other guarded change, so two admins demoting each
    /// other at once cannot both succeed, and on the stored row, not on what the caller read.
    pub if_an_admin_remains: bool,
}

impl UserUpdate {
    /// An empty update.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the password hash.
    #[must_use]
    pub fn password_hash(mut self, phc: String) -> Self {
        self.password_hash = Some(phc);
        self
    }
    /// Sets the role.
    #[must_use]
    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }
    /// Sets the status.
    #[must_use]
    pub fn status(mut self, status: UserStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// Sets the email-verified flag.
    #[must_use]
    pub fn email_verified(mut self, verified: bool) -> Self {
        self.email_verified = Some(verified);
        self
    }
    /// Replaces the preferences.
    #[must_use]
    pub fn preferences(mut self, preferences: Preferences) -> Self {
        self.preferences = Some(preferences);
        self
    }
    /// Replaces the host metadata.
    #[must_use]
    pub fn metadata(mut self, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata = Some(metadata);
        self
    }
    /// Sets the username.
    #[must_use]
    pub fn username(mut self, username: String) -> Self {
        self.username = Some(username);
        self
    }
    /// Sets the email address.
    #[must_use]
    pub fn email(mut self, email: String) -> Self {
        self.email = Some(email);
        self
    }
    /// Records (`Some`) or clears (`None`) a pending address change.
    #[must_use]
    pub fn pending_email(mut self, email: Option<String>) -> Self {
        self.pending_email = Some(email);
        self
    }
    /// Records a login at `at`.
    #[must_use]
    pub fn last_login_at(mut self, at: DateTime<Utc>) -> Self {
        self.last_login_at = Some(at);
        self
    }

    /// Applies the update only if the stored password hash is still `phc` (compare-and-set).
    #[must_use]
    pub fn only_if_password_hash(mut self, phc: String) -> Self {
        self.if_password_hash = Some(phc);
        self
    }
    /// Applies the update only if the user's status is still `status`.
    #[must_use]
    pub fn only_if_status(mut self, status: UserStatus) -> Self {
        self.if_status = Some(status);
        self
    }

    /// Applies the update only if an active admin remains besides this user, should it be one
    /// (see [`if_an_admin_remains`](Self::if_an_admin_remains)).
    #[must_use]
    pub fn only_if_an_admin_remains(mut self) -> Self {
        self.if_an_admin_remains = true;
        self
    }

    /// Whether the preconditions hold for `record` (for backends that keep whole records);
    /// `others` are the other users, for the last-admin guard.
    #[must_use]
    pub fn preconditions_hold<'a>(&self, record: &UserRecord, mut others: impl Iterator<Item = &'a User>) -> bool {
        self.if_password_hash.as_ref().is_none_or(|phc| *phc == record.password_hash)
            && self.if_status.is_none_or(|status| status == record.user.status)
            && (!self.if_an_admin_remains
                || !record.user.is_active_admin()
                || others.any(|u| u.id != record.user.id && u.is_active_admin()))
    }

    /// Applies the update to `user` in place (for backends that keep whole records); the caller
    /// checks [`preconditions_hold`](Self::preconditions_hold) first.
    pub fn apply(&self, record: &mut UserRecord, at: DateTime<Utc>) {
        let user = &mut record.user;
        if let Some(hash) = &self.password_hash {
            record.password_hash.clone_from(hash);
        }
        if let Some(role) = &self.role {
            user.role = role.clone();
        }
        if let Some(username) = &self.username {
            user.username = Some(username.clone());
        }
        if let Some(email) = &self.email {
            user.email = Some(email.clone());
        }
        if let Some(pending) = &self.pending_email {
            record.pending_email.clone_from(pending);
        }
        if let Some(status) = self.status {
            user.status = status;
        }
        if let Some(verified) = self.email_verified {
            user.email_verified = verified;
        }
        if let Some(preferences) = &self.preferences {
            user.preferences = preferences.clone();
        }
        if let Some(metadata) = &self.metadata {
            user.metadata = metadata.clone();
        }
        if let Some(login) = self.last_login_at {
            user.last_login_at = Some(login);
        }
        user.updated_at = at;
    }
}

impl fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserUpdate")
            .field("password_hash", &self.password_hash.as_ref().map(|_| "[redacted]"))
            .field("username", &self.username)
            .field("email", &self.email)
            .field("pending_email", &self.pending_email)
            .field("role", &self.role)
            .field("status", &self.status)
            .field("email_verified", &self.email_verified)
            .field("if_password_hash", &self.if_password_hash.as_ref().map(|_| "[redacted]"))
            .field("if_status", &self.if_status)
            .field("if_an_admin_remains", &self.if_an_admin_remains)
            .finish_non_exhaustive()
    }
}

/// A role name. `admin` and `user` are built in; hosts may use any other non-empty name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Role(String);

impl Role {
    /// The administrator role, `admin`.
    #[must_use]
    pub fn admin() -> Self {
        Self("admin".to_owned())
    }
    /// The default role of a new user, `user`.
    #[must_use]
    pub fn user() -> Self {
        Self("user".to_owned())
    }
    /// A host-defined role.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }
    /// The role's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a user may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// May log in.
    Active,
    /// May not log in; disabling revokes every session.
    Disabled,
}

impl UserStatus {
    /// `"active"` or `"disabled"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    /// Parses `"active"` / `"disabled"`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// UI theme preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Light theme (the default).
    #[default]
    Light,
    /// Dark theme.
    Dark,
    /// Follow the operating system.
    System,
}

/// A user's UI preferences: `{"theme":"light","language":"en"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preferences {
    /// `light`, `dark` or `system`.
    pub theme: Theme,
    /// A BCP 47 language tag such as `en` or `zh-CN`.
    pub language: String,
}

impl Default for Preferences {
    fn default() -> Self {
        Self { theme: Theme::Light, language: "en".to_owned() }
    }
}

/// A page request of [`UserStore::list_users`](crate::UserStore::list_users): users in id order
/// (UUID v7, so creation order), every filter optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserQuery {
    /// Only users whose username or email [`identifier_key`](crate::validate::identifier_key)
    /// starts with this (already an identifier key: the service folds what the admin typed).
    pub prefix: Option<String>,
    /// Only users with this status.
    pub status: Option<UserStatus>,
    /// Only users with this role.
    pub role: Option<Role>,
    /// Only users whose id is greater than this one (the last id of the previous page).
    pub after: Option<Uuid>,
    /// Most users returned.
    pub limit: u32,
}

impl UserQuery {
    /// The first `limit` users, unfiltered; set the public fields to filter.
    #[must_use]
    pub fn new(limit: u32) -> Self {
        Self { limit, ..Self::default() }
    }

    /// Whether `user` passes the filters (for backends that scan in memory).
    #[must_use]
    pub fn matches(&self, user: &User) -> bool {
        let key = |v: &Option<String>| v.as_deref().map(crate::validate::identifier_key);
        self.prefix.as_deref().is_none_or(|p| {
            key(&user.username).is_some_and(|k| k.starts_with(p)) || key(&user.email).is_some_and(|k| k.starts_with(p))
        }) && self.status.is_none_or(|s| user.status == s)
            && self.role.as_ref().is_none_or(|r| user.role == *r)
            && self.after.is_none_or(|after| user.id > after)
    }

    /// The exclusive upper bound of the prefix range, for SQL backends: `prefix` followed by
    /// U+10FFFF, above every key that starts with `prefix` in byte order (SQLite's `BINARY`,
    /// PostgreSQL's `"C"` collation), so the range uses a B-tree index.
    #[must_use]
    pub fn prefix_end(&self) -> Option<String> {
        self.prefix.as_ref().map(|p| format!("{p}\u{10FFFF}"))
    }
}
