//! [`AuthEvents`]: hooks for auditing. Every method has a no-op default.

use uuid::Uuid;

use crate::audit::AuditEvent;
use crate::context::RequestContext;
use crate::user::User;

/// Why a login failed, as reported to [`AuthEvents::login_failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginFailure {
    /// No account has this username or email.
    UnknownAccount,
    /// The password was wrong.
    WrongPassword,
    /// The password was right but the account is disabled.
    AccountDisabled,
}

/// Audit hooks, called inline after the fact. Implementations must be quick and must not block:
/// spawn a task for I/O. Passwords and tokens are never passed.
#[allow(unused_variables)]
pub trait AuthEvents: Send + Sync + 'static {
    /// A user registered.
    fn registered(&self, user: &User, ctx: &RequestContext) {}
    /// A user logged in and got session `session_id`.
    fn logged_in(&self, user: &User, session_id: Uuid, ctx: &RequestContext) {}
    /// A login failed. `identifier` is the username or email as typed.
    fn login_failed(&self, identifier: &str, reason: LoginFailure, ctx: &RequestContext) {}
    /// A session (or, with `all`, every session of the user) was logged out.
    fn logged_out(&self, user_id: Uuid, session_id: Uuid, all: bool) {}
    /// A user changed their password; their other sessions were revoked.
    fn password_changed(&self, user_id: Uuid) {}
    /// A user proved their email address with a mailed code.
    fn email_verified(&self, user_id: Uuid) {}
    /// A user reset a forgotten password; every session was revoked.
    fn password_reset(&self, user_id: Uuid) {}
    /// A session was revoked by its owner from the sessions list.
    fn session_revoked(&self, user_id: Uuid, session_id: Uuid) {}
    /// A request was refused by the rate-limit rule `rule` (`login_per_ip`,
    /// `login_failures_per_account`, …) for `retry_after_seconds`.
    fn rate_limited(&self, rule: &'static str, retry_after_seconds: u64, ctx: &RequestContext) {}
    /// A login was refused because the account reached its failed-login limit. `identifier` is
    /// the `identifier_key` (NFKC + case folding) of the username or email typed.
    fn login_locked(&self, identifier: &str, ctx: &RequestContext) {}
    /// A spent refresh token came back after the grace window; the session was revoked.
    fn refresh_token_reused(&self, user_id: Uuid, session_id: Uuid) {}
    /// Any security event, as written to the audit log (whether or not the service has an
    /// [`AuditStore`](crate::AuditStore)): the one hook that sees them all, admin actions and
    /// account deletion included.
    fn audited(&self, event: &AuditEvent) {}
}

/// The default: does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl AuthEvents for NoEvents {}
