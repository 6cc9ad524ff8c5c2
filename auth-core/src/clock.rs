//! [`Clock`]: where the service and the in-process limiter read the time, so tests can move it
//! instead of sleeping.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// The current time, for the [`Auth`](crate::Auth) service (session and token times, expiry of
/// access tokens, codes and reset links, rotation windows) and the
/// [`MemoryRateLimiter`](crate::MemoryRateLimiter). Backends with a clock of their own (Redis
/// TTLs and its limiter, which reads Redis `TIME`) do not use it.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time (UTC).
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock for tests: the system time plus an offset that only [`advance`](Self::advance) moves.
/// Time still flows as usual; a test moves it forward by a whole window (an access-token
/// lifetime, a rate-limit window, a code's TTL) instead of sleeping through it.
#[derive(Default)]
pub struct ManualClock {
    offset: Mutex<TimeDelta>,
}

impl ManualClock {
    /// A clock at the system time.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *offset += TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = *self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f.debug_struct("ManualClock").field("offset", &offset).finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_forward_by_what_it_is_told() {
        let clock = ManualClock::new();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        let after = clock.now();
        assert!(after - before >= TimeDelta::seconds(3600), "{before} {after}");
        assert!(after - before < TimeDelta::seconds(3660));
    }
}
