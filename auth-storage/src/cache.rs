//! [`CachedSessionStore`]: a layer over any [`SessionStore`] that answers repeat session checks
//! from process memory and stays exact through a [`RevocationFeed`].
//!
//! Every request behind `RequireAuth` asks [`SessionStore::session_is_live`]. Against Redis or
//! PostgreSQL that is a network round trip per request (about half the throughput of a route
//! without auth on the benchmark machine). The wrapper remembers the sessions it has seen live,
//! up to [`SessionCacheOptions::capacity`] of them, and answers repeat checks locally.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use auth_core::{Auth, AuthConfig};
//! use auth_storage::{CachedSessionStore, PostgresStore};
//!
//! let store = Arc::new(PostgresStore::connect("postgres://auth@db/app").await?);
//! // Revocations made by any instance arrive through PostgreSQL LISTEN/NOTIFY.
//! let sessions = CachedSessionStore::new(store.clone(), store.revocations());
//! let auth = Auth::builder(AuthConfig::new(vec![7u8; 32])?)
//!     .user_store(store.clone())
//!     .session_store(Arc::new(sessions))
//!     .secret_store(store)
//!     .build()?;
//! # let _ = auth; Ok(()) }
//! ```
//!
//! # Why it stays exact
//!
//! Liveness only ever goes from live to revoked or expired, and:
//! - every revocation (logout, password change or reset, disabling an account, refresh-token
//!   reuse) is announced by the backend in the same atomic step: [`RedisStore`](crate::RedisStore)
//!   publishes the ids from its Lua scripts, [`PostgresStore`](crate::PostgresStore) sends a
//!   `NOTIFY` from a trigger on `auth_sessions.revoked_at`. Every cache follows the feed and drops
//!   the ids as they arrive (well under a millisecond on a LAN);
//! - a revocation made through the wrapper is dropped from its own cache before the call returns;
//! - a check that was on its way to the store while a revocation arrived, or while the
//!   subscription was being (re)established, is not remembered;
//! - expiry is checked against the session's own `expires_at` on every hit;
//! - if the subscription drops, the cache is emptied and bypassed until it is back; if it stalls
//!   silently, a ping every second notices, and no cached answer is used more than 3 s after the
//!   last answered ping (both backends deliver every announcement made before a ping ahead of
//!   its answer);
//! - an entry is used for at most [`SessionCacheOptions::max_age`] (default 10 s): the bound for
//!   changes made behind the backend's back, such as a `DELETE` by hand with the trigger
//!   disabled.
//!
//! A backend with no feed (SQLite, the memory store) can be wrapped with [`SingleProcess`] when
//! this process is the only one that changes its sessions; revocations then reach the cache
//! through the wrapper alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use auth_core::{async_trait, NewSession, RotationOutcome, RotationRequest, Session, SessionStore, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How often the subscription is checked with a ping.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long after a ping that was answered cached answers may still be used.
const TRUSTED_FOR: Duration = Duration::from_secs(3);

/// Settings of a [`CachedSessionStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionCacheOptions {
    /// How many sessions are remembered as live (default 10 000, about 60 bytes each); when full,
    /// answers older than `max_age` go first, then an arbitrary eighth
    /// ([`auth_core::cache::make_room`]), never the whole cache.
    pub capacity: usize,
    /// The longest a cached answer is used (default 10 s). Revocations reach the cache through
    /// the feed at once; this only bounds changes made behind the backend's back.
    pub max_age: Duration,
    /// Timeout of subscribing and of each ping (default 2 s).
    pub timeout: Duration,
}

impl Default for SessionCacheOptions {
    fn default() -> Self {
        Self { capacity: 10_000, max_age: Duration::from_secs(10), timeout: Duration::from_secs(2) }
    }
}

/// Counters of a [`CachedSessionStore`] since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCacheStatistics {
    /// Session checks answered from the cache.
    pub hits: u64,
    /// Session checks that went to the wrapped store.
    pub misses: u64,
    /// Sessions dropped from the cache: revoked here or by another instance, or dropped with
    /// everything else when the subscription was (re)established or lost, a rotation failed, or
    /// an announcement could not be read.
    pub invalidations: u64,
}

/// One announcement read from a [`RevocationSubscription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// These sessions were revoked.
    Sessions(Vec<Uuid>),
    /// Something was revoked but the announcement cannot be read: the cache empties itself.
    Unreadable,
}

/// Where a [`CachedSessionStore`] learns of revocations made by other processes: Redis pub/sub
/// ([`RedisStore::revocations`](crate::RedisStore::revocations)), PostgreSQL `LISTEN`
/// ([`PostgresStore::revocations`](crate::PostgresStore::revocations)), or nobody
/// ([`SingleProcess`]).
#[async_trait]
pub trait RevocationFeed: Send + Sync + 'static {
    /// A live subscription.
    type Subscription: RevocationSubscription;

    /// Subscribes; called again (backing off up to 5 s) whenever a subscription fails.
    async fn subscribe(&self) -> Result<Self::Subscription, StoreError>;
}

/// A subscription to revocation announcements, on a connection of its own.
#[async_trait]
pub trait RevocationSubscription: Send + 'static {
    /// Waits for the next announcement. Must be cancel-safe: the cache drops the future to ping.
    /// An error means the subscription is lost.
    async fn next(&mut self) -> Result<Revocation, StoreError>;

    /// A round trip on the subscription's connection. When it returns, every announcement made
    /// before it was sent has been received, and [`buffered`](Self::buffered) or
    /// [`next`](Self::next) hands it out before anything announced later.
    async fn ping(&mut self) -> Result<(), StoreError>;

    /// An announcement already received, without waiting; `None` when there is none.
    fn buffered(&mut self) -> Option<Result<Revocation, StoreError>>;
}

/// The feed of a backend that only this process changes (SQLite, the memory store): nothing to
/// follow, so revocations reach the cache through the wrapper alone. Never use it when another
/// process revokes sessions in the same store: its revocations would go unseen for up to
/// [`SessionCacheOptions::max_age`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

#[async_trait]
impl RevocationFeed for SingleProcess {
    type Subscription = SingleProcess;

    async fn subscribe(&self) -> Result<Self::Subscription, StoreError> {
        Ok(Self)
    }
}

#[async_trait]
impl RevocationSubscription for SingleProcess {
    async fn next(&mut self) -> Result<Revocation, StoreError> {
        std::future::pending().await
    }

    async fn ping(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn buffered(&mut self) -> Option<Result<Revocation, StoreError>> {
        None
    }
}

/// A [`SessionStore`] that answers repeat [`session_is_live`](SessionStore::session_is_live)
/// checks from memory; see the [module docs](self) for why the answers stay exact. Everything
/// else goes to the wrapped store `S` (a backend, or `dyn SessionStore`) unchanged.
///
/// Create it inside a Tokio runtime: it spawns the task that follows the feed, which ends when
/// the store is dropped.
pub struct CachedSessionStore<S: ?Sized> {
    inner: Arc<S>,
    cache: Arc<LiveSessions>,
}

impl<S: std::fmt::Debug + ?Sized> std::fmt::Debug for CachedSessionStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedSessionStore")
            .field("inner", &self.inner)
            .field("statistics", &self.cache.statistics())
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore + ?Sized> CachedSessionStore<S> {
    /// Wraps `inner`, following `feed`, with [`SessionCacheOptions::default`].
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn new(inner: Arc<S>, feed: impl RevocationFeed) -> Self {
        Self::with_options(inner, feed, SessionCacheOptions::default())
    }

    /// [`new`](Self::new) with explicit options; a capacity of 0 caches nothing.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn with_options(inner: Arc<S>, feed: impl RevocationFeed, options: SessionCacheOptions) -> Self {
        let cache = LiveSessions::new(options.capacity, options.max_age);
        if options.capacity > 0 {
            follow(feed, &cache, options.timeout);
        }
        Self { inner, cache }
    }

    /// The cache's counters.
    #[must_use]
    pub fn statistics(&self) -> SessionCacheStatistics {
        self.cache.statistics()
    }

    /// Whether answers may come from the cache now: the feed's subscription is confirmed (a ping
    /// answered within the last 3 s). While it is not, every check goes to the store; a health
    /// check may report it.
    #[must_use]
    pub fn is_following(&self) -> bool {
        self.cache.caching()
    }

    /// The wrapped store.
    #[must_use]
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }
}

#[async_trait]
impl<S: SessionStore + ?Sized> SessionStore for CachedSessionStore<S> {
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        self.inner.create_session(session).await
    }

    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        self.inner.session(id).await
    }

    async fn session_is_live(&self, id: Uuid, user_id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if let Some(live) = self.cache.lookup(id, user_id, now.timestamp()) {
            return Ok(live);
        }
        if !self.cache.caching() {
            // Nothing would be remembered: the store's own (cheaper) check.
            return self.inner.session_is_live(id, user_id, now).await;
        }
        // Read before asking: a revocation arriving meanwhile bumps it and the answer is not kept.
        let epoch = self.cache.epoch();
        let expiry = self.inner.live_session_expiry(id, user_id, now).await?;
        if let Some(expires_at) = expiry {
            self.cache.remember(id, user_id, expires_at.timestamp(), epoch);
        }
        Ok(expiry.is_some())
    }

    async fn live_session_expiry(
        &self,
        id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.inner.live_session_expiry(id, user_id, now).await
    }

    async fn rotate_refresh_token(&self, rotation: RotationRequest) -> Result<RotationOutcome, StoreError> {
        // Failed or cancelled, the store may still have revoked a session (SQL stores finish a
        // rotation detached from the caller): forget everything then.
        let mut forget = Forget { cache: &self.cache, what: Forgotten::All };
        let outcome = self.inner.rotate_refresh_token(rotation).await?;
        forget.what = match &outcome {
            RotationOutcome::Reused(session) => Forgotten::Session(session.id),
            _ => Forgotten::Nothing,
        };
        Ok(outcome)
    }

    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let _forget = Forget { cache: &self.cache, what: Forgotten::Session(id) };
        self.inner.revoke_session(id, at).await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let _forget = Forget { cache: &self.cache, what: Forgotten::User(user_id, except) };
        self.inner.revoke_user_sessions(user_id, except, at).await
    }

    async fn delete_user_sessions(&self, user_id: Uuid, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let _forget = Forget { cache: &self.cache, what: Forgotten::User(user_id, None) };
        self.inner.delete_user_sessions(user_id, at).await
    }

    async fn user_sessions(&self, user_id: Uuid, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        self.inner.user_sessions(user_id, now).await
    }

    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        // Only revoked or expired sessions go; neither is ever answered live from the cache.
        self.inner.purge_expired_sessions(now).await
    }
}

/// Drops sessions from the cache when dropped: when a revoking call returns, fails or is
/// cancelled (a client that disconnects), since the store may have committed the revocation in
/// each case.
struct Forget<'a> {
    cache: &'a LiveSessions,
    what: Forgotten,
}

enum Forgotten {
    Nothing,
    Session(Uuid),
    /// Every session of the user but the one kept.
    User(Uuid, Option<Uuid>),
    All,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        match self.what {
            Forgotten::Nothing => {}
            Forgotten::Session(id) => self.cache.forget(&[id]),
            Forgotten::User(user_id, except) => self.cache.forget_user(user_id, except),
            Forgotten::All => self.cache.forget_all(),
        }
    }
}

/// The sessions known to be live, with the rules of the [module docs](self).
struct LiveSessions {
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
    fn new(capacity: usize, max_age: Duration) -> Arc<Self> {
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

    /// Whether an answer fetched now could be remembered.
    fn caching(&self) -> bool {
        self.capacity > 0 && self.trusted_at(Instant::now())
    }

    /// Whether session `sid` of `user_id` is live at `now` (Unix s), if the cache knows.
    fn lookup(&self, sid: Uuid, user_id: Uuid, now: i64) -> Option<bool> {
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

    /// The current epoch; read it before asking the store, hand it to [`remember`](Self::remember).
    fn epoch(&self) -> u64 {
        self.state.read().unwrap_or_else(PoisonError::into_inner).epoch
    }

    /// Remembers a session the store reported live, unless a revocation arrived since `epoch`.
    fn remember(&self, sid: Uuid, user_id: Uuid, expires_at: i64, epoch: u64) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.epoch != epoch || !self.caching() {
            return;
        }
        // Full: stale answers go first, then an arbitrary eighth; never the whole cache.
        let (at, max_age) = (Instant::now(), self.max_age);
        auth_core::cache::make_room(&mut state.entries, self.capacity, |entry| {
            at.saturating_duration_since(entry.cached_at) < max_age
        });
        state.entries.insert(sid, Entry { user_id, expires_at, cached_at: at });
    }

    /// Drops revoked sessions.
    fn forget(&self, sids: &[Uuid]) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.epoch += 1;
        let dropped = sids.iter().filter(|sid| state.entries.remove(sid).is_some()).count();
        self.invalidations.fetch_add(dropped as u64, Ordering::Relaxed);
    }

    /// Drops every session of `user_id` but `except`.
    fn forget_user(&self, user_id: Uuid, except: Option<Uuid>) {
        self.forget_where(|sid, entry| entry.user_id == user_id && Some(*sid) != except);
    }

    /// Drops everything, for when it is unknown which sessions were revoked.
    fn forget_all(&self) {
        self.forget_where(|_, _| true);
    }

    fn forget_where(&self, revoked: impl Fn(&Uuid, &Entry) -> bool) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.epoch += 1;
        let before = state.entries.len();
        state.entries.retain(|sid, entry| !revoked(sid, entry));
        let dropped = before - state.entries.len();
        self.invalidations.fetch_add(dropped as u64, Ordering::Relaxed);
    }

    /// Stops answering from the cache until the subscription is confirmed again.
    fn distrust(&self) {
        self.trusted_until_ms.store(0, Ordering::Release);
        self.forget_all();
    }

    /// Every announcement made before `sent` has been applied: answers may be used until
    /// [`TRUSTED_FOR`] after it.
    fn confirm(&self, sent: Instant) {
        self.trusted_until_ms.store(self.millis(sent + TRUSTED_FOR), Ordering::Release);
    }

    fn apply(&self, revocation: &Revocation) {
        match revocation {
            Revocation::Sessions(ids) => self.forget(ids),
            Revocation::Unreadable => {
                tracing::warn!("unreadable revocation announcement; emptying the session cache");
                self.forget_all();
            }
        }
    }

    fn statistics(&self) -> SessionCacheStatistics {
        SessionCacheStatistics {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
        }
    }
}

/// Spawns the task that follows `feed` and applies its revocations to `cache`, for as long as
/// the cache exists; it subscribes again after a failure (backing off up to 5 s).
fn follow<F: RevocationFeed>(feed: F, cache: &Arc<LiveSessions>, timeout: Duration) {
    let cache = Arc::downgrade(cache);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match tokio::time::timeout(timeout, feed.subscribe()).await {
                Ok(Ok(subscription)) => {
                    backoff = Duration::from_millis(100);
                    // A check that reached the store before the subscription did may have
                    // missed a revocation announced meanwhile: the epoch bump keeps its answer out.
                    match cache.upgrade() {
                        Some(cache) => cache.forget_all(),
                        None => return,
                    }
                    match listen(subscription, &cache, timeout).await {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "revocation subscription lost; session checks go to the store until it is back")
                        }
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot subscribe to revocations"),
                Err(_) => tracing::warn!("subscribing to revocations timed out"),
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

/// Applies announcements and pings every [`HEARTBEAT`]. Returns `Ok` when the cache is gone, the
/// error when the subscription failed.
async fn listen<S: RevocationSubscription>(
    mut subscription: S,
    cache: &Weak<LiveSessions>,
    timeout: Duration,
) -> Result<(), StoreError> {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            revocation = subscription.next() => {
                let revocation = revocation?;
                let Some(cache) = cache.upgrade() else { return Ok(()) };
                cache.apply(&revocation);
                continue;
            }
            _ = heartbeat.tick() => {}
        }
        let sent = Instant::now();
        match tokio::time::timeout(timeout, subscription.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(StoreError::backend(std::io::Error::from(std::io::ErrorKind::TimedOut))),
        }
        let Some(cache) = cache.upgrade() else { return Ok(()) };
        // The backend sent every announcement made before the ping ahead of its answer: apply
        // those before trusting the cache up to then.
        while let Some(revocation) = subscription.buffered() {
            cache.apply(&revocation?);
        }
        cache.confirm(sent);
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
        assert_eq!(cache.lookup(sid, Uuid::new_v4(), 100), None, "another user's claim goes to the store");
        cache.forget(&[sid]);
        assert_eq!(cache.lookup(sid, user, 100), None);
        assert_eq!(cache.statistics(), SessionCacheStatistics { hits: 2, misses: 3, invalidations: 1 });
    }

    #[test]
    fn a_full_cache_drops_stale_entries_first_and_never_empties() {
        let cache = LiveSessions::new(16, Duration::from_millis(500));
        cache.trusted_until_ms.store(u64::MAX, Ordering::Release);
        let user = Uuid::new_v4();
        let stale: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
        for sid in &stale {
            cache.remember(*sid, user, 200, cache.epoch());
        }
        // Answered a while ago: older than max-age (set, not slept through).
        for entry in cache.state.write().unwrap().entries.values_mut() {
            entry.cached_at = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        }
        let fresh: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
        for sid in &fresh {
            cache.remember(*sid, user, 200, cache.epoch());
        }
        let newest = Uuid::new_v4();
        cache.remember(newest, user, 200, cache.epoch());
        let state = cache.state.read().unwrap();
        assert_eq!(state.entries.len(), 9, "the 8 stale answers went, nothing else");
        assert!(fresh.iter().chain([&newest]).all(|sid| state.entries.contains_key(sid)));
        drop(state);
        // Full of fresh answers: two go (an eighth), not all sixteen.
        let more: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
        for sid in &more {
            cache.remember(*sid, user, 200, cache.epoch());
        }
        cache.remember(Uuid::new_v4(), user, 200, cache.epoch());
        assert_eq!(cache.state.read().unwrap().entries.len(), 15);
    }

    #[test]
    fn forgetting_a_user_drops_all_their_sessions_but_the_kept_one() {
        let cache = trusted(10);
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (kept, gone, others) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        for (sid, owner) in [(kept, user), (gone, user), (others, other)] {
            cache.remember(sid, owner, 200, cache.epoch());
        }
        cache.forget_user(user, Some(kept));
        assert_eq!(cache.lookup(kept, user, 100), Some(true));
        assert_eq!(cache.lookup(gone, user, 100), None);
        assert_eq!(cache.lookup(others, other, 100), Some(true));
    }

    #[test]
    fn an_answer_fetched_across_a_revocation_is_not_remembered() {
        let cache = trusted(10);
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        let before = cache.epoch();
        // The revocation arrives while the lookup is in flight…
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
        // Asked while unsubscribed: a revocation announced now would never reach the cache…
        let before = cache.epoch();
        // …so (re)subscribing bumps the epoch before the cache is trusted again.
        cache.forget_all();
        cache.confirm(Instant::now());
        cache.remember(sid, user, 200, before);
        assert_eq!(cache.lookup(sid, user, 100), None);
    }

    #[test]
    fn a_confirmation_is_trusted_for_three_seconds_only() {
        let cache = LiveSessions::new(10, Duration::from_secs(60));
        let sent = Instant::now();
        cache.confirm(sent);
        assert!(cache.trusted_at(sent + TRUSTED_FOR - Duration::from_millis(1)));
        assert!(!cache.trusted_at(sent + TRUSTED_FOR), "a stalled subscription stops being trusted");
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
