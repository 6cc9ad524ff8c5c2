//! The session cache: sessions known to be live, remembered locally and kept exact by Redis
//! pub/sub. See [the module docs](super#session-cache) for what it guarantees.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use futures_util::{FutureExt as _, StreamExt as _};
use redis::aio::{PubSubSink, PubSubStream};
use uuid::Uuid;

/// How often the subscription is checked with a `PING`.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long after a `PING` that was answered cached answers may still be used.
const TRUSTED_FOR: Duration = Duration::from_secs(3);

/// Counters of a [`RedisStore`](super::RedisStore)'s session cache since it connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCacheStatistics {
    /// Session checks answered from the cache.
    pub hits: u64,
    /// Session checks that went to Redis.
    pub misses: u64,
    /// Sessions dropped from the cache because they were revoked (here or on another instance).
    pub invalidations: u64,
}

pub(crate) struct LiveSessions {
    state: RwLock<State>,
    capacity: usize,
    max_age: Duration,
    origin: Instant,
    /// Milliseconds after `origin` until which cached answers may be used; 0 while unsubscribed.
    trusted_until_ms: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

struct State {
    entries: HashMap<Uuid, Entry>,
    /// Bumped by every invalidation: an answer fetched across one is not remembered.
    epoch: u64,
}

struct Entry {
    user_id: Uuid,
    /// The session's absolute expiry, Unix seconds.
    expires_at: i64,
    cached_at: Instant,
}

impl LiveSessions {
    pub(crate) fn new(capacity: usize, max_age: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: RwLock::new(State { entries: HashMap::new(), epoch: 0 }),
            capacity,
            max_age,
            origin: Instant::now(),
            trusted_until_ms: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
        })
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    fn trusted_at(&self, at: Instant) -> bool {
        self.millis(at) < self.trusted_until_ms.load(Ordering::Acquire)
    }

    fn trusted(&self) -> bool {
        self.trusted_at(Instant::now())
    }

    /// Whether session `sid` of `user_id` is live at `now` (Unix s), if the cache knows.
    pub(crate) fn lookup(&self, sid: Uuid, user_id: Uuid, now: i64) -> Option<bool> {
        let answer = self.cached(sid, user_id, now, Instant::now());
        let counter = if answer.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        answer
    }

    fn cached(&self, sid: Uuid, user_id: Uuid, now: i64, at: Instant) -> Option<bool> {
        if !self.trusted_at(at) {
            return None;
        }
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let entry = state.entries.get(&sid)?;
        let fresh = at.saturating_duration_since(entry.cached_at) < self.max_age;
        (entry.user_id == user_id && fresh).then_some(entry.expires_at > now)
    }

    /// The current epoch; read it before asking Redis, hand it to [`remember`](Self::remember).
    pub(crate) fn epoch(&self) -> u64 {
        self.state.read().unwrap_or_else(PoisonError::into_inner).epoch
    }

    /// Remembers a session Redis reported live, unless a revocation arrived since `epoch`.
    pub(crate) fn remember(&self, sid: Uuid, user_id: Uuid, expires_at: i64, epoch: u64) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.epoch != epoch || !self.trusted() {
            return;
        }
        if state.entries.len() >= self.capacity {
            state.entries.clear();
        }
        state.entries.insert(sid, Entry { user_id, expires_at, cached_at: Instant::now() });
    }

    /// Drops revoked sessions.
    pub(crate) fn forget(&self, sids: &[Uuid]) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.epoch += 1;
        let dropped = sids.iter().filter(|sid| state.entries.remove(sid).is_some()).count();
        self.invalidations.fetch_add(dropped as u64, Ordering::Relaxed);
    }

    /// Drops everything, for when it is unknown which sessions were revoked.
    pub(crate) fn forget_all(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.epoch += 1;
        let dropped = state.entries.len();
        state.entries.clear();
        self.invalidations.fetch_add(dropped as u64, Ordering::Relaxed);
    }

    /// Stops answering from the cache until the subscription is confirmed again.
    fn distrust(&self) {
        self.trusted_until_ms.store(0, Ordering::Release);
        self.forget_all();
    }

    pub(crate) fn statistics(&self) -> SessionCacheStatistics {
        SessionCacheStatistics {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
        }
    }

    /// Applies one revocation message: comma-separated session ids.
    fn apply(&self, message: &redis::Msg) {
        let ids: Option<Vec<Uuid>> = message
            .get_payload::<String>()
            .ok()
            .and_then(|payload| payload.split(',').map(|id| Uuid::parse_str(id).ok()).collect());
        match ids {
            Some(ids) => self.forget(&ids),
            None => {
                tracing::warn!("unreadable revocation message on Redis; emptying the session cache");
                self.forget_all();
            }
        }
    }
}

/// Spawns the task that subscribes to `channel` and applies its revocations to `cache`, for as
/// long as the cache exists; it resubscribes after a failure (backing off up to 5 s).
pub(crate) fn follow(client: redis::Client, channel: String, cache: &Arc<LiveSessions>, timeout: Duration) {
    let cache = Arc::downgrade(cache);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match tokio::time::timeout(timeout, subscribe(&client, &channel)).await {
                Ok(Ok((sink, stream))) => {
                    backoff = Duration::from_millis(100);
                    // A check that reached Redis before the subscription did may have missed a
                    // revocation published meanwhile: the epoch bump keeps its answer out.
                    match cache.upgrade() {
                        Some(cache) => cache.forget_all(),
                        None => return,
                    }
                    if !listen(sink, stream, &cache, timeout).await {
                        return;
                    }
                    tracing::warn!("Redis revocation subscription lost; session checks go to Redis until it is back");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot subscribe to Redis revocations"),
                Err(_) => tracing::warn!("subscribing to Redis revocations timed out"),
            }
            match cache.upgrade() {
                Some(cache) => cache.distrust(),
                None => return,
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
}

async fn subscribe(client: &redis::Client, channel: &str) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
    let (mut sink, stream) = client.get_async_pubsub().await?.split();
    sink.subscribe(channel).await?;
    Ok((sink, stream))
}

/// Applies messages and checks the connection every [`HEARTBEAT`]. Returns `true` when the
/// connection failed, `false` when the store is gone.
async fn listen(mut sink: PubSubSink, mut stream: PubSubStream, cache: &Weak<LiveSessions>, timeout: Duration) -> bool {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return true };
                let Some(cache) = cache.upgrade() else { return false };
                cache.apply(&message);
            }
            _ = heartbeat.tick() => {
                let sent = Instant::now();
                if !matches!(tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await, Ok(Ok(_))) {
                    return true;
                }
                let Some(cache) = cache.upgrade() else { return false };
                // Redis sent every message published before the PING ahead of its answer: apply
                // those before trusting the cache up to then.
                while let Some(next) = stream.next().now_or_never() {
                    let Some(message) = next else { return true };
                    cache.apply(&message);
                }
                let until = cache.millis(sent + TRUSTED_FOR);
                cache.trusted_until_ms.store(until, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(capacity: usize) -> Arc<LiveSessions> {
        let cache = LiveSessions::new(capacity, Duration::from_secs(60));
        cache.trusted_until_ms.store(u64::MAX, Ordering::Release);
        cache
    }

    #[test]
    fn a_remembered_session_is_answered_until_it_expires_or_is_forgotten() {
        let cache = trusted(10);
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(cache.lookup(sid, user, 100), None);
        cache.remember(sid, user, 200, cache.epoch());
        assert_eq!(cache.lookup(sid, user, 100), Some(true));
        assert_eq!(cache.lookup(sid, user, 200), Some(false), "expired by its own expiry");
        assert_eq!(cache.lookup(sid, Uuid::new_v4(), 100), None, "another user's claim goes to Redis");
        cache.forget(&[sid]);
        assert_eq!(cache.lookup(sid, user, 100), None);
        assert_eq!(cache.statistics(), SessionCacheStatistics { hits: 2, misses: 3, invalidations: 1 });
    }

    #[test]
    fn an_answer_fetched_across_a_revocation_is_not_remembered() {
        let cache = trusted(10);
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        let before = cache.epoch();
        // The revocation message arrives while the lookup is in flight…
        cache.forget(&[sid]);
        // …so the "live" it brings back is stale and must not be cached.
        cache.remember(sid, user, 200, before);
        assert_eq!(cache.lookup(sid, user, 100), None);
    }

    #[test]
    fn nothing_is_answered_or_remembered_while_the_subscription_is_unconfirmed() {
        let cache = trusted(10);
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        cache.remember(sid, user, 200, cache.epoch());
        cache.distrust();
        assert_eq!(cache.lookup(sid, user, 100), None);
        cache.remember(sid, user, 200, cache.epoch());
        cache.trusted_until_ms.store(u64::MAX, Ordering::Release);
        assert_eq!(cache.lookup(sid, user, 100), None, "emptied, and nothing remembered meanwhile");
    }

    #[test]
    fn an_answer_fetched_before_a_resubscription_is_not_remembered() {
        let cache = LiveSessions::new(10, Duration::from_secs(60));
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        // Asked while unsubscribed: a revocation published now would never reach the cache…
        let before = cache.epoch();
        // …so (re)subscribing bumps the epoch before the cache is trusted again.
        cache.forget_all();
        cache.trusted_until_ms.store(u64::MAX, Ordering::Release);
        cache.remember(sid, user, 200, before);
        assert_eq!(cache.lookup(sid, user, 100), None);
    }

    #[test]
    fn entries_age_out_and_the_cache_stays_bounded() {
        let cache = LiveSessions::new(2, Duration::ZERO);
        cache.trusted_until_ms.store(u64::MAX, Ordering::Release);
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        cache.remember(sid, user, 200, cache.epoch());
        assert_eq!(cache.lookup(sid, user, 100), None, "older than max_age");

        let cache = trusted(2);
        for _ in 0..5 {
            cache.remember(Uuid::new_v4(), user, 200, cache.epoch());
        }
        assert!(cache.state.read().unwrap().entries.len() <= 2);
    }
}
