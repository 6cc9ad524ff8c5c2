//! Limits: the rate-limit rules and the per-account lockout, as the flows apply them.

use uuid::Uuid;

use crate::config::RateRuleName;
use crate::context::RequestContext;
use crate::error::AuthError;
use crate::secret::TokenHash;
use crate::store::RateLimitDecision;
use crate::validate::identifier_key;

use super::Auth;

/// Longest key part kept as it is in a limiter key, in bytes; longer ones are hashed.
const MAX_PLAIN_LIMIT_KEY: usize = 64;

/// The limiter key of `rule` for `key`: `rl:{rule}:{key}`, or `rl:{rule}:#{sha256 hex}` when
/// `key` is longer than 64 bytes, so a client cannot make the limiter store arbitrarily long keys
/// (a hashed key is 65 bytes, so it never equals a plain one).
fn limit_key(rule: &str, key: &str) -> String {
    if key.len() <= MAX_PLAIN_LIMIT_KEY {
        format!("rl:{rule}:{key}")
    } else {
        format!("rl:{rule}:#{}", TokenHash::of(key).to_hex())
    }
}

/// The bucket of the per-account lockout: `user:{id}` once the account is known, so that its
/// username, email and their case variants share one count; else `name:{identifier_key}` of
/// what was typed, so a lockout says nothing about whether the account exists.
pub(super) fn account_bucket(user_id: Option<Uuid>, typed: &str) -> String {
    match user_id {
        Some(id) => user_bucket(id),
        None => format!("name:{}", identifier_key(typed)),
    }
}

/// The lockout bucket of a known account: `user:{id}`.
pub(super) fn user_bucket(user_id: Uuid) -> String {
    format!("user:{user_id}")
}

impl Auth {
    /// Takes a slot of the rule `name` for `key` (an atomic check-and-count).
    ///
    /// # Errors
    /// `rate_limited` (logged, and reported to [`AuthEvents::rate_limited`]) or
    /// `store_unavailable`. With the rule off, nothing is counted.
    pub(crate) async fn limit(&self, name: RateRuleName, key: &str, ctx: &RequestContext) -> Result<(), AuthError> {
        let (Some(limiter), Some(rule)) = (&self.inner.limiter, self.inner.config.rate_limits.rule(name)) else {
            return Ok(());
        };
        let name = name.as_str();
        match limiter.check(&limit_key(name, key), rule.limit, rule.window).await? {
            RateLimitDecision::Allowed { .. } => Ok(()),
            RateLimitDecision::Limited { retry_after_seconds } => {
                tracing::warn!(rule = name, ip = ?ctx.ip, retry_after_seconds, "rate limited");
                self.inner.events.rate_limited(name, retry_after_seconds, ctx);
                Err(AuthError::RateLimited { retry_after_seconds })
            }
        }
    }

    /// Takes a slot of a per-IP rule, keyed by [`RequestContext::rate_limit_key`] (the IPv4
    /// address or the IPv6 /64); requests whose client IP is unknown (no `ConnectInfo`) are not
    /// limited per IP.
    pub(crate) async fn limit_ip(&self, name: RateRuleName, ctx: &RequestContext) -> Result<(), AuthError> {
        match ctx.rate_limit_key() {
            Some(key) => self.limit(name, &key, ctx).await,
            None => Ok(()),
        }
    }

    /// Takes a slot of the account's `login_failures_per_account` bucket (see [`account_bucket`]).
    pub(super) async fn take_account_attempt(&self, account: &str, ctx: &RequestContext) -> Result<(), AuthError> {
        self.limit(RateRuleName::LoginFailuresPerAccount, account, ctx).await
    }

    /// Clears the account's bucket after a proven password: only failures stay counted.
    pub(super) async fn clear_account_attempts(&self, account: &str) -> Result<(), AuthError> {
        self.clear_rule(RateRuleName::LoginFailuresPerAccount, account).await
    }

    /// Takes a slot of both the account's lockout (`login_failures_per_account`) and its
    /// `mfa_failures_per_account` bucket before a second-factor code is checked.
    pub(super) async fn take_mfa_attempt(&self, user_id: Uuid, ctx: &RequestContext) -> Result<(), AuthError> {
        let account = user_bucket(user_id);
        self.limit(RateRuleName::MfaFailuresPerAccount, &account, ctx).await?;
        self.take_account_attempt(&account, ctx).await
    }

    /// Clears both buckets of [`take_mfa_attempt`](Self::take_mfa_attempt) after a right code.
    pub(super) async fn clear_mfa_attempts(&self, user_id: Uuid) -> Result<(), AuthError> {
        let account = user_bucket(user_id);
        self.clear_rule(RateRuleName::MfaFailuresPerAccount, &account).await?;
        self.clear_account_attempts(&account).await
    }

    /// Forgets the hits of rule `name` for `key` (when the rule is on).
    async fn clear_rule(&self, name: RateRuleName, key: &str) -> Result<(), AuthError> {
        if let (Some(limiter), Some(_)) = (&self.inner.limiter, self.inner.config.rate_limits.rule(name)) {
            limiter.reset(&limit_key(name.as_str(), key)).await?;
        }
        Ok(())
    }

    /// The "every other route" limit (60 per minute per IP by default), for adapters to apply to
    /// the routes without a limit of their own.
    ///
    /// # Errors
    /// `rate_limited`, `store_unavailable`.
    pub async fn limit_other_request(&self, ctx: &RequestContext) -> Result<(), AuthError> {
        self.limit_ip(RateRuleName::OtherPerIp, ctx).await
    }
}
