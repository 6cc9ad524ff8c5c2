//! The one rule of one-time secrets, shared by the backends that decide in Rust (the Redis
//! backend runs the same rule inside its Lua script, to stay atomic there).

use auth_core::{OnMismatch, SecretCheck, TokenHash};

/// The verdict of one attempt at a stored secret, from its state *before* the attempt: the
/// outcome, and whether the secret stays stored (with one more failure counted) or goes.
///
/// - expired, or `failures >= max_attempts` → `Missing`, delete;
/// - `candidate` matches → `Valid`, delete (spent);
/// - otherwise → `Invalid` with the tries left (0 with [`OnMismatch::Spend`]); it stays only
///   while tries are left.
pub(crate) fn judge(
    stored: Option<TokenHash>,
    expired: bool,
    failures: u32,
    max_attempts: u32,
    candidate: &TokenHash,
    on_mismatch: OnMismatch,
) -> (SecretCheck, bool) {
    if expired || failures >= max_attempts {
        return (SecretCheck::Missing, false);
    }
    if stored.is_some_and(|h| h == *candidate) {
        return (SecretCheck::Valid, false);
    }
    let attempts_left = match on_mismatch {
        OnMismatch::Spend => 0,
        OnMismatch::CountAttempt => max_attempts - failures - 1,
    };
    (SecretCheck::Invalid { attempts_left }, attempts_left > 0)
}
