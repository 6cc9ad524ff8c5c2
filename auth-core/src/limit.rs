//! [`MemoryRateLimiter`]: the in-process sliding-window limiter that [`Auth`](crate::Auth)
//! installs when rate limits are on and no shared limiter was given.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;
use crate::store::{RateLimitDecision, RateLimiter};

/// Rate limiting in process memory: an exact sliding-window log per key (the instants of its
/// counted hits within the window), so no burst of twice the limit passes at a window boundary.
/// Every decision takes one lock, so [`check`](RateLimiter::check) is an atomic take-a-slot.
/// Memory per key is bounded by the limit; keys idle for a whole window are dropped every 4096
/// new keys.
///
/// One process only: with several instances, give [`AuthBuilder::rate_limiter`](crate::AuthBuilder::rate_limiter)
/// a shared limiter (`auth_storage::RedisStore`), or each instance counts on its own.
///
/// (`governor`'s GCRA limiters fix one quota per limiter and offer no per-key reset or dry run,
/// which the failed-login lockout needs.)
#[derive(Debug)]
pub struct MemoryRateLimiter {
    limits: Mutex<Limits>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

#[derive(Debug, Default)]
struct Limits {
    logs: HashMap<String, HitLog>,
    inserts_since_sweep: u32,
}

/// The counted hits of one key, as milliseconds since the Unix epoch by the limiter's clock.
#[derive(Debug)]
struct HitLog {
    window_ms: i64,
    hits: VecDeque<i64>,
}

impl MemoryRateLimiter {
    /// An empty limiter on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty limiter reading the time from `clock` (a [`ManualClock`](crate::ManualClock) in
    /// tests).
    #[must_use]
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self { limits: Mutex::default(), clock }
    }

    fn limits(&self) -> Result<MutexGuard<'_, Limits>, StoreError> {
        self.limits.lock().map_err(|_| StoreError::backend("rate limiter lock poisoned by a panic"))
    }

    fn decide(&self, key: &str, limit: u32, window: Duration, count: bool) -> Result<RateLimitDecision, StoreError> {
        let now = self.clock.now().timestamp_millis();
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let mut limits = self.limits()?;
        if !limits.logs.contains_key(key) {
            limits.inserts_since_sweep += 1;
            if limits.inserts_since_sweep >= 4096 {
                limits.inserts_since_sweep = 0;
                limits.logs.retain(|_, log| log.hits.back().is_some_and(|last| now - last < log.window_ms));
            }
        }
        let log = limits.logs.entry(key.to_owned()).or_insert_with(|| HitLog { window_ms, hits: VecDeque::new() });
        log.window_ms = window_ms;
        while log.hits.front().is_some_and(|first| now - first >= window_ms) {
            log.hits.pop_front();
        }
        let used = u32::try_from(log.hits.len()).unwrap_or(u32::MAX);
        if used >= limit {
            let oldest = log.hits.front().copied().unwrap_or(now);
            let wait_ms = (window_ms - (now - oldest)).max(0);
            let retry_after_seconds = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
            return Ok(RateLimitDecision::Limited { retry_after_seconds });
        }
        if count {
            log.hits.push_back(now);
        }
        Ok(RateLimitDecision::Allowed { remaining: limit - used - u32::from(count) })
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError> {
        self.decide(key, limit, window, true)
    }

    async fn peek(&self, key: &str, limit: u32, window: Duration) -> Result<RateLimitDecision, StoreError> {
        self.decide(key, limit, window, false)
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.limits()?.logs.remove(key);
        Ok(())
    }
}
