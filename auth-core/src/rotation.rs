//! The refresh-token rotation rule — rotation with reuse detection (OAuth 2.0 Security BCP
//! §4.14.2) — as one pure function, [`decide`], that every backend applies to what it read inside
//! its own transaction (memory, SQLite) or mirrors where it runs its rotation in one step (Redis:
//! a Lua script; PostgreSQL: the PL/pgSQL function `auth_rotate_refresh_token`, one round trip),
//! so that all of them implement [`SessionStore::rotate_refresh_token`](crate::SessionStore::rotate_refresh_token)
//! alike.
//!
//! A backend implementing the trait: lock the presented token (so that of concurrent rotations
//! one decides first), read a [`RotationState`], call [`decide`], carry out the [`RotationStep`]
//! in the same transaction, and answer [`RotationStep::outcome`].
//!
//! ```
//! use auth_core::rotation::{decide, RotationState, RotationStep};
//! use auth_core::{AuthMethod, RotationRequest, RotationOutcome, Session, TokenHash};
//! use chrono::{TimeDelta, Utc};
//! use uuid::Uuid;
//!
//! let now = Utc::now();
//! let session = Session {
//!     id: Uuid::new_v4(),
//!     user_id: Uuid::new_v4(),
//!     created_at: now,
//!     last_used_at: now,
//!     expires_at: now + TimeDelta::days(30),
//!     ip: None,
//!     user_agent: None,
//!     auth_method: AuthMethod::Password,
//!     revoked_at: None,
//! };
//! let rotation = RotationRequest {
//!     presented: TokenHash::of("presented"),
//!     successor: Some(TokenHash::of("successor")),
//!     now,
//!     reuse_grace: TimeDelta::seconds(10),
//!     idle_timeout: TimeDelta::days(7),
//! };
//! // An unspent token of a live session rotates.
//! let state = RotationState { session: &session, spent_at: None, successor_current: false };
//! let step = decide(Some(state), &rotation);
//! assert_eq!(step, RotationStep::Rotate);
//! assert!(matches!(step.outcome(session, now), RotationOutcome::Rotated(s) if s.last_used_at == now));
//! ```

use chrono::{DateTime, Utc};

use crate::store::{RotationOutcome, RotationRequest, Session};

/// What a backend read about the presented refresh token, inside the transaction that will carry
/// out the decision.
#[derive(Debug, Clone, Copy)]
pub struct RotationState<'a> {
    /// The session the presented token belongs to.
    pub session: &'a Session,
    /// When the presented token was spent (rotated away), if it was.
    pub spent_at: Option<DateTime<Utc>>,
    /// Whether [`RotationRequest::successor`] is given, stored for the same session and still
    /// unspent.
    pub successor_current: bool,
}

/// What the backend must do, in the same transaction as the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    /// Mark the presented token spent at `now`, store the successor as the session's current
    /// token, set the session's `last_used_at = now`.
    Rotate,
    /// Rotation is off: set the session's `last_used_at = now`; the presented token stays current.
    Keep,
    /// Nothing: a retry within the grace window gets the same successor again.
    Grace,
    /// Revoke the session at `now` (unless it is revoked already): a spent token came back.
    Revoke,
    /// Nothing: unknown token, or a session that is revoked, expired or idle.
    Unknown,
}

impl RotationStep {
    /// The answer of `rotate_refresh_token` once the step is carried out on `session` (as read)
    /// at `now`.
    #[must_use]
    pub fn outcome(self, mut session: Session, now: DateTime<Utc>) -> RotationOutcome {
        match self {
            Self::Rotate => {
                session.last_used_at = now;
                RotationOutcome::Rotated(session)
            }
            Self::Keep => {
                session.last_used_at = now;
                RotationOutcome::Kept(session)
            }
            Self::Grace => RotationOutcome::Grace(session),
            Self::Revoke => {
                session.revoked_at = session.revoked_at.or(Some(now));
                RotationOutcome::Reused(session)
            }
            Self::Unknown => RotationOutcome::Unknown,
        }
    }
}

/// The rule, for the presented token's state (`None`: no such token):
///
/// - unspent, and its session [refreshable](Session::is_refreshable) at `now` → [`Rotate`], or
///   [`Keep`] when the request has no successor (rotation off);
/// - spent, session [live](Session::is_live), successor current and spent at most `reuse_grace`
///   ago → [`Grace`];
/// - spent otherwise, session live → [`Revoke`] (reuse detected: the whole session dies);
/// - anything else → [`Unknown`].
///
/// [`Rotate`]: RotationStep::Rotate
/// [`Keep`]: RotationStep::Keep
/// [`Grace`]: RotationStep::Grace
/// [`Revoke`]: RotationStep::Revoke
/// [`Unknown`]: RotationStep::Unknown
#[must_use]
pub fn decide(state: Option<RotationState<'_>>, r: &RotationRequest) -> RotationStep {
    let Some(state) = state else { return RotationStep::Unknown };
    match state.spent_at {
        None if state.session.is_refreshable(r.now, r.idle_timeout) => match r.successor {
            Some(_) => RotationStep::Rotate,
            None => RotationStep::Keep,
        },
        None => RotationStep::Unknown,
        Some(_) if !state.session.is_live(r.now) => RotationStep::Unknown,
        Some(spent) if state.successor_current && r.now - spent <= r.reuse_grace => RotationStep::Grace,
        Some(_) => RotationStep::Revoke,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use uuid::Uuid;

    use super::*;
    use crate::secret::TokenHash;
    use crate::store::AuthMethod;

    fn session(now: DateTime<Utc>) -> Session {
        Session {
            id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            created_at: now - TimeDelta::days(1),
            last_used_at: now - TimeDelta::hours(1),
            expires_at: now + TimeDelta::days(29),
            ip: None,
            user_agent: None,
            auth_method: AuthMethod::Password,
            revoked_at: None,
        }
    }

    #[test]
    fn the_rule_table() {
        let now = Utc::now();
        let r = RotationRequest {
            presented: TokenHash::of("p"),
            successor: Some(TokenHash::of("s")),
            now,
            reuse_grace: TimeDelta::seconds(10),
            idle_timeout: TimeDelta::days(7),
        };
        let live = session(now);
        let idle = Session { last_used_at: now - TimeDelta::days(8), ..live.clone() };
        let expired = Session { expires_at: now - TimeDelta::seconds(1), ..live.clone() };
        let revoked = Session { revoked_at: Some(now - TimeDelta::seconds(5)), ..live.clone() };
        let recently = Some(now - TimeDelta::seconds(3));
        let long_ago = Some(now - TimeDelta::seconds(11));
        let at_the_edge = Some(now - TimeDelta::seconds(10));
        use RotationStep::*;
        // (case, session, spent_at, successor_current, expected)
        type Case<'a> = (&'a str, &'a Session, Option<DateTime<Utc>>, bool, RotationStep);
        let table: [Case<'_>; 13] = [
            ("unspent, live", &live, None, false, Rotate),
            ("unspent, successor somehow present", &live, None, true, Rotate),
            ("unspent, idle", &idle, None, false, Unknown),
            ("unspent, expired", &expired, None, false, Unknown),
            ("unspent, revoked", &revoked, None, false, Unknown),
            ("spent 3 s ago, successor current", &live, recently, true, Grace),
            ("spent 10 s ago, successor current", &live, at_the_edge, true, Grace),
            ("spent 11 s ago, successor current", &live, long_ago, true, Revoke),
            ("spent 3 s ago, successor spent too", &live, recently, false, Revoke),
            ("spent, idle but live", &idle, recently, true, Grace),
            ("spent, expired", &expired, recently, true, Unknown),
            ("spent, revoked", &revoked, long_ago, false, Unknown),
            ("spent long ago, successor spent", &live, long_ago, false, Revoke),
        ];
        for (case, session, spent_at, successor_current, expected) in table {
            let state = RotationState { session, spent_at, successor_current };
            assert_eq!(decide(Some(state), &r), expected, "{case}");
        }
        assert_eq!(decide(None, &r), Unknown, "no such token");

        // Rotation off: a current token is kept; everything else is decided as before.
        let off = RotationRequest { successor: None, ..r };
        let table: [Case<'_>; 6] = [
            ("unspent, live", &live, None, false, Keep),
            ("unspent, idle", &idle, None, false, Unknown),
            ("unspent, expired", &expired, None, false, Unknown),
            ("unspent, revoked", &revoked, None, false, Unknown),
            ("spent before rotation was turned off", &live, recently, false, Revoke),
            ("spent, revoked", &revoked, long_ago, false, Unknown),
        ];
        for (case, session, spent_at, successor_current, expected) in table {
            let state = RotationState { session, spent_at, successor_current };
            assert_eq!(decide(Some(state), &off), expected, "rotation off: {case}");
        }
    }

    #[test]
    fn outcomes_carry_the_session_as_changed() {
        let now = Utc::now();
        let s = session(now);
        assert!(
            matches!(RotationStep::Rotate.outcome(s.clone(), now), RotationOutcome::Rotated(x) if x.last_used_at == now)
        );
        assert!(
            matches!(RotationStep::Revoke.outcome(s.clone(), now), RotationOutcome::Reused(x) if x.revoked_at == Some(now))
        );
        assert!(
            matches!(RotationStep::Keep.outcome(s.clone(), now), RotationOutcome::Kept(x) if x.last_used_at == now)
        );
        assert_eq!(RotationStep::Grace.outcome(s.clone(), now), RotationOutcome::Grace(s.clone()));
        assert_eq!(RotationStep::Unknown.outcome(s, now), RotationOutcome::Unknown);
    }
}
