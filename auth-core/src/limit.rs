//! [`MemoryRateLimiter`]: the in-process sliding-window limiter that [`Auth`](crate::Auth)
//! installs when rate limits are on and no shared limiter was given.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

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
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    limits: Mutex<Limits>,
}

#[derive(Debug, Default)]
struct Limits {
    logs: HashMap<String, HitLog>,
    inserts_since_sweep: u32,
}

#[derive(Debug)]
struct HitLog {
    window: Duration,
    hits: VecDeque<Instant>,
}

impl MemoryRateLimiter {
    /// An empty limiter.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn limits(&self) -> Result<MutexGuard<'_, Limits>, StoreError> {
        self.limits.lock().map_err(|_| StoreError::backend("rate limiter lock poisoned by a panic"))
    }

    fn decide(&self, key: &str, limit: u32, window: Duration, count: bool) -> Result<RateLimitDecision, StoreError> {
        let now = Instant::now();
        let mut limits = self.limits()?;
        if !limits.logs.contains_key(key) {
            limits.inserts_since_sweep += 1;
            if limits.inserts_since_sweep >= 4096 {
                limits.inserts_since_sweep = 0;
                limits.logs.retain(|_, log| log.hits.back().is_some_and(|last| now.duration_since(*last) < log.window));
            }
        }
        let log = limits.logs.entry(key.to_owned()).or_insert_with(|| HitLog { window, hits: VecDeque::new() });
        log.window = window;
        while log.hits.front().is_some_and(|first| now.duration_since(*first) >= window) {
            log.hits.pop_front();
        }
        let used = u32::try_from(log.hits.len()).unwrap_or(u32::MAX);
        if used >= limit {
            let oldest = log.hits.front().copied().unwrap_or(now);
            let wait = window.saturating_sub(now.duration_since(oldest));
            return Ok(RateLimitDecision::Limited { retry_after_seconds: (wait.as_secs_f64().ceil() as u64).max(1) });
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
