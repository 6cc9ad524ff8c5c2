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
//!   `NOTIFY` from a trigger on `auth_sessions.revoked_at`, [`SqliteStore`](crate::SqliteStore)
//!   appends to its change log from a trigger. Every cache follows the feed and drops the ids as
//!   they arrive (well under a millisecond on a LAN with `NOTIFY` and pub/sub, within 20 ms with
//!   SQLite's log);
//! - a revocation made through the wrapper is dropped from its own cache before the call returns;
//! - a check that was on its way to the store while a revocation arrived, or while the
//!   subscription was being (re)established, is not remembered;
//! - expiry is checked against the session's own `expires_at` on every hit;
//! - if the subscription drops, the cache is emptied and bypassed until it is back; if it stalls
//!   silently, a ping every second notices, and no cached answer is used more than 3 s after the
//!   last answered ping (both backends deliver every announcement made before a ping ahead of
//!   its answer);
//! - an entry is used for at most [`SessionCacheOptions::max_age`] (default 60 s): the bound for
//!   changes made behind the backend's back, such as a `DELETE` by hand with the trigger
//!   disabled.
//!
//! SQLite has no `NOTIFY`: triggers append every revocation and user change to a change log in
//! the database file, which [`SqliteStore::changes`](crate::SqliteStore::changes) reads every
//! 20 ms, so a second process on the same file (another server, the example server's `users`
//! command, `sqlite3` by hand) reaches this process's caches too. The memory store can be
//! wrapped with [`SingleProcess`]: only this process changes it, so revocations reach the cache
//! through the wrapper alone.
//!
//! [`CachedUserStore`] applies the same rules to the user behind `CurrentUser` and `/me`: the
//! feeds announce changed and deleted users ([`Revocation::Users`]) as well as revoked sessions.
//!
//! Both caches are bounded ([`SessionCacheOptions::capacity`], [`UserCacheOptions::capacity`],
//! 131 072 each by default): [`quick_cache`] caches, whose full state evicts the coldest
//! entries, never everything (compared with random eviction by `auth-bench --scale`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use auth_core::{
    async_trait, NewSession, NewUser, RotationOutcome, RotationRequest, Session, SessionStore, StoreError, User,
    UserQuery, UserRecord, UserStore, UserUpdate,
};
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
    /// How many sessions are remembered as live (default
    /// [`DEFAULT_CACHE_CAPACITY`](auth_core::cache::DEFAULT_CACHE_CAPACITY), 131 072, about 80
    /// bytes each); when full, the coldest go ([`auth_core::cache`]), never the whole cache.
    pub capacity: usize,
    /// The longest a cached answer is used (default 60 s). Revocations reach the cache through
    /// the feed at once; this only bounds changes the feed cannot see (a trigger disabled by
    /// hand). Every entry is read again from the store once per `max_age`: 100 000 sessions at
    /// 10 s cost 10 000 reads a second, at 60 s under 1 700.
    pub max_age: Duration,
    /// Timeout of subscribing and of each ping (default 2 s).
    pub timeout: Duration,
}

impl Default for SessionCacheOptions {
    fn default() -> Self {
        Self {
            capacity: auth_core::cache::DEFAULT_CACHE_CAPACITY,
            max_age: Duration::from_secs(60),
            timeout: Duration::from_secs(2),
        }
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
    /// These sessions were revoked (or deleted while live).
    Sessions(Vec<Uuid>),
    /// These users were changed (any column: role, status, profile, password, last login) or
    /// deleted: a [`CachedUserStore`] drops them.
    Users(Vec<Uuid>),
    /// Something changed but the announcement cannot be read: every cache empties itself.
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
        if let Some(live) = self.cache.session(id, user_id, now.timestamp()) {
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
            self.cache.remember_session(id, user_id, expires_at.timestamp(), epoch);
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

/// Settings of a [`CachedUserStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UserCacheOptions {
    /// How many users are remembered (default
    /// [`DEFAULT_CACHE_CAPACITY`](auth_core::cache::DEFAULT_CACHE_CAPACITY), 131 072; a user
    /// with short profile fields takes about 0.5 KiB); when full, the coldest go, never the
    /// whole cache.
    pub capacity: usize,
    /// The longest a cached user is used (default 60 s). Changes reach the cache through the
    /// feed at once; this only bounds changes the feed cannot see.
    pub max_age: Duration,
    /// Timeout of subscribing and of each ping (default 2 s).
    pub timeout: Duration,
}

impl Default for UserCacheOptions {
    fn default() -> Self {
        Self {
            capacity: auth_core::cache::DEFAULT_CACHE_CAPACITY,
            max_age: Duration::from_secs(60),
            timeout: Duration::from_secs(2),
        }
    }
}

/// A [`UserStore`] that answers repeat [`user_by_id`](UserStore::user_by_id) lookups (the one
/// behind `CurrentUser`, `/me` and every signed-in request that needs the user) from memory,
/// exact by the same rules as [`CachedSessionStore`]: a change made through the wrapper drops
/// the user before the call returns, a change made by another process arrives through the
/// `feed` ([`Revocation::Users`]: `PostgresStore`'s trigger `NOTIFY`, `SqliteStore`'s change
/// log), an answer fetched across a change is not kept, nothing is answered while the feed is
/// unconfirmed. Lookups by username or email (login, registration, recovery) and everything
/// else go to the wrapped store.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use auth_storage::{CachedUserStore, SqliteStore};
///
/// let store = Arc::new(SqliteStore::connect("sqlite://auth.db").await?);
/// let users = CachedUserStore::new(store.clone(), store.changes());
/// # let _ = users; Ok(()) }
/// ```
pub struct CachedUserStore<S: ?Sized> {
    inner: Arc<S>,
    cache: Arc<Followed<UserRecord>>,
}

impl<S: std::fmt::Debug + ?Sized> std::fmt::Debug for CachedUserStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedUserStore")
            .field("inner", &self.inner)
            .field("statistics", &self.cache.statistics())
            .finish_non_exhaustive()
    }
}

impl<S: UserStore + ?Sized> CachedUserStore<S> {
    /// Wraps `inner`, following `feed`, with [`UserCacheOptions::default`].
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn new(inner: Arc<S>, feed: impl RevocationFeed) -> Self {
        Self::with_options(inner, feed, UserCacheOptions::default())
    }

    /// [`new`](Self::new) with explicit options; a capacity of 0 caches nothing.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn with_options(inner: Arc<S>, feed: impl RevocationFeed, options: UserCacheOptions) -> Self {
        let cache = Followed::new(options.capacity, options.max_age);
        if options.capacity > 0 {
            follow(feed, &cache, options.timeout);
        }
        Self { inner, cache }
    }

    /// The cache's counters (`invalidations`: users dropped).
    #[must_use]
    pub fn statistics(&self) -> SessionCacheStatistics {
        self.cache.statistics()
    }

    /// Whether answers may come from the cache now (the feed's subscription is confirmed).
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

/// Drops a user from the cache when dropped: when a changing call returns, fails or is
/// cancelled, since the store may have committed the change in each case.
struct ForgetUser<'a> {
    cache: &'a Followed<UserRecord>,
    id: Uuid,
}

impl Drop for ForgetUser<'_> {
    fn drop(&mut self) {
        self.cache.forget(&[self.id]);
    }
}

#[async_trait]
impl<S: UserStore + ?Sized> UserStore for CachedUserStore<S> {
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.inner.create_user(user).await
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        if let Some(record) = self.cache.lookup(id, Some) {
            return Ok(Some(record));
        }
        if !self.cache.caching() {
            return self.inner.user_by_id(id).await;
        }
        // Read before asking: a change arriving meanwhile bumps it and the answer is not kept.
        let epoch = self.cache.epoch();
        let record = self.inner.user_by_id(id).await?;
        if let Some(record) = &record {
            self.cache.remember(id, record.clone(), epoch);
        }
        Ok(record)
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner.user_by_username(username).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner.user_by_email(email).await
    }

    async fn update_user(&self, id: Uuid, update: UserUpdate, at: DateTime<Utc>) -> Result<Option<User>, StoreError> {
        let _forget = ForgetUser { cache: &self.cache, id };
        self.inner.update_user(id, update, at).await
    }

    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, StoreError> {
        self.inner.list_users(query).await
    }

    async fn delete_user(&self, id: Uuid, keep_an_admin: bool) -> Result<bool, StoreError> {
        let _forget = ForgetUser { cache: &self.cache, id };
        self.inner.delete_user(id, keep_an_admin).await
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

/// What a [`Followed`] cache keeps per id, and which announcements concern it.
trait Kind: Send + Sync + 'static {
    /// The ids an announcement drops from this kind of cache (`None`: not this kind).
    fn concerned(revocation: &Revocation) -> Option<&[Uuid]>;
}

/// A session known to be live.
#[derive(Clone, Copy)]
struct SessionEntry {
    user_id: Uuid,
    /// The session's absolute expiry, Unix seconds.
    expires_at: i64,
}

impl Kind for SessionEntry {
    fn concerned(revocation: &Revocation) -> Option<&[Uuid]> {
        match revocation {
            Revocation::Sessions(ids) => Some(ids),
            _ => None,
        }
    }
}

impl Kind for UserRecord {
    fn concerned(revocation: &Revocation) -> Option<&[Uuid]> {
        match revocation {
            Revocation::Users(ids) => Some(ids),
            _ => None,
        }
    }
}

/// The sessions known to be live.
type LiveSessions = Followed<SessionEntry>;

/// Answers known to be current, by id, with the rules of the [module docs](self): kept exact by
/// a [`RevocationFeed`] (through [`follow`]) and by the wrapper's own changes. One rule for the
/// session cache and the user cache. The entries are a [`quick_cache`] cache (sharded, evicts
/// the coldest; see [`auth_core::cache`]); the epoch is a lock of its own.
struct Followed<V> {
    /// `None` when the capacity is 0.
    entries: Option<quick_cache::sync::Cache<Uuid, Entry<V>>>,
    /// Bumped by every invalidation, under its write lock: an answer fetched across one is not
    /// remembered. [`remember`](Self::remember) checks it and inserts under the read lock, so no
    /// invalidation falls between the check and the insert.
    epoch: RwLock<u64>,
    max_age: Duration,
    origin: Instant,
    /// Milliseconds after `origin` until which cached answers may be used; 0 while unsubscribed.
    trusted_until_ms: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

#[derive(Clone)]
struct Entry<V> {
    value: V,
    cached_at: Instant,
}

impl<V: Kind + Clone> Followed<V> {
    fn new(capacity: usize, max_age: Duration) -> Arc<Self> {
        Arc::new(Self {
            entries: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
            epoch: RwLock::new(0),
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
        self.entries.is_some() && self.trusted_at(Instant::now())
    }

    /// `answer` applied to the cached value of `id`, counting a hit or a miss; `None` when the
    /// cache has no usable value or `answer` declines it.
    fn lookup<T>(&self, id: Uuid, answer: impl FnOnce(V) -> Option<T>) -> Option<T> {
        let found = self.cached(id, Instant::now(), answer);
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn cached<T>(&self, id: Uuid, at: Instant, answer: impl FnOnce(V) -> Option<T>) -> Option<T> {
        if !self.trusted_at(at) {
            return None;
        }
        let entry = self.entries.as_ref()?.get(&id)?;
        if at.saturating_duration_since(entry.cached_at) >= self.max_age {
            return None;
        }
        answer(entry.value)
    }

    /// The current epoch; read it before asking the store, hand it to [`remember`](Self::remember).
    fn epoch(&self) -> u64 {
        *self.epoch.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers what the store answered, unless an invalidation arrived since `epoch`.
    fn remember(&self, id: Uuid, value: V, epoch: u64) {
        let current = self.epoch.read().unwrap_or_else(PoisonError::into_inner);
        if *current != epoch || !self.caching() {
            return;
        }
        if let Some(entries) = &self.entries {
            entries.insert(id, Entry { value, cached_at: Instant::now() });
        }
    }

    /// Drops these ids.
    fn forget(&self, ids: &[Uuid]) {
        let mut epoch = self.epoch.write().unwrap_or_else(PoisonError::into_inner);
        *epoch += 1;
        let Some(entries) = &self.entries else { return };
        let dropped = ids.iter().filter(|id| entries.remove(*id).is_some()).count();
        self.invalidations.fetch_add(dropped as u64, Ordering::Relaxed);
    }

    /// Drops everything, for when it is unknown what changed.
    fn forget_all(&self) {
        let mut epoch = self.epoch.write().unwrap_or_else(PoisonError::into_inner);
        *epoch += 1;
        let Some(entries) = &self.entries else { return };
        let dropped = entries.len();
        entries.clear();
        self.invalidations.fetch_add(dropped as u64, Ordering::Relaxed);
    }

    fn forget_where(&self, changed: impl Fn(&Uuid, &V) -> bool) {
        let mut epoch = self.epoch.write().unwrap_or_else(PoisonError::into_inner);
        *epoch += 1;
        let Some(entries) = &self.entries else { return };
        let before = entries.len();
        entries.retain(|id, entry| !changed(id, &entry.value));
        let dropped = before.saturating_sub(entries.len());
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
        if let Some(ids) = V::concerned(revocation) {
            self.forget(ids);
        } else if *revocation == Revocation::Unreadable {
            tracing::warn!("unreadable change announcement; emptying the cache");
            self.forget_all();
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

impl Followed<SessionEntry> {
    /// Whether session `sid` of `user_id` is live at `now` (Unix s), if the cache knows.
    fn session(&self, sid: Uuid, user_id: Uuid, now: i64) -> Option<bool> {
        self.lookup(sid, |entry| (entry.user_id == user_id).then_some(entry.expires_at > now))
    }

    /// Remembers a session the store reported live.
    fn remember_session(&self, sid: Uuid, user_id: Uuid, expires_at: i64, epoch: u64) {
        self.remember(sid, SessionEntry { user_id, expires_at }, epoch);
    }

    /// Drops every session of `user_id` but `except`.
    fn forget_user(&self, user_id: Uuid, except: Option<Uuid>) {
        self.forget_where(|sid, entry| entry.user_id == user_id && Some(*sid) != except);
    }
}

/// Spawns the task that follows `feed` and applies its revocations to `cache`, for as long as
/// the cache exists; it subscribes again after a failure (backing off up to 5 s).
fn follow<F: RevocationFeed, V: Kind + Clone>(feed: F, cache: &Arc<Followed<V>>, timeout: Duration) {
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
async fn listen<S: RevocationSubscription, V: Kind + Clone>(
    mut subscription: S,
    cache: &Weak<Followed<V>>,
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
        assert_eq!(cache.session(sid, user, 100), None);
        cache.remember_session(sid, user, 200, cache.epoch());
        assert_eq!(cache.session(sid, user, 100), Some(true));
        assert_eq!(cache.session(sid, user, 200), Some(false), "expired by its own expiry");
        assert_eq!(cache.session(sid, Uuid::new_v4(), 100), None, "another user's claim goes to the store");
        cache.forget(&[sid]);
        assert_eq!(cache.session(sid, user, 100), None);
        assert_eq!(cache.statistics(), SessionCacheStatistics { hits: 2, misses: 3, invalidations: 1 });
    }

    #[test]
    fn a_full_cache_stays_bounded_and_never_empties() {
        let cache = trusted(64);
        let user = Uuid::new_v4();
        for _ in 0..1000 {
            cache.remember_session(Uuid::new_v4(), user, 200, cache.epoch());
        }
        let held = cache.entries.as_ref().unwrap().len();
        assert!((32..=64).contains(&held), "bounded by its capacity, not emptied: {held}");
        let newest = Uuid::new_v4();
        cache.remember_session(newest, user, 200, cache.epoch());
        assert_eq!(cache.session(newest, user, 100), Some(true), "the newest is in");
    }

    #[test]
    fn forgetting_a_user_drops_all_their_sessions_but_the_kept_one() {
        let cache = trusted(10);
        let (user, other) = (Uuid::new_v4(), Uuid::new_v4());
        let (kept, gone, others) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        for (sid, owner) in [(kept, user), (gone, user), (others, other)] {
            cache.remember_session(sid, owner, 200, cache.epoch());
        }
        cache.forget_user(user, Some(kept));
        assert_eq!(cache.session(kept, user, 100), Some(true));
        assert_eq!(cache.session(gone, user, 100), None);
        assert_eq!(cache.session(others, other, 100), Some(true));
    }

    #[test]
    fn an_answer_fetched_across_a_revocation_is_not_remembered() {
        let cache = trusted(10);
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        let before = cache.epoch();
        // The revocation arrives while the lookup is in flight…
        cache.forget(&[sid]);
        // …so the "live" it brings back is stale and must not be cached.
        cache.remember_session(sid, user, 200, before);
        assert_eq!(cache.session(sid, user, 100), None);
    }

    #[test]
    fn nothing_is_answered_or_remembered_while_the_subscription_is_unconfirmed() {
        let cache = trusted(10);
        let (sid, user) = (Uuid::new_v4(), Uuid::new_v4());
        cache.remember_session(sid, user, 200, cache.epoch());
        cache.distrust();
        assert_eq!(cache.session(sid, user, 100), None);
        cache.remember_session(sid, user, 200, cache.epoch());
        cache.trusted_until_ms.store(u64::MAX, Ordering::Release);
        assert_eq!(cache.session(sid, user, 100), None, "emptied, and nothing remembered meanwhile");
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
        cache.remember_session(sid, user, 200, before);
        assert_eq!(cache.session(sid, user, 100), None);
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
        cache.remember_session(sid, user, 200, cache.epoch());
        assert_eq!(cache.session(sid, user, 100), None, "older than max_age");

        let cache = trusted(0);
        cache.remember_session(sid, user, 200, cache.epoch());
        assert_eq!(cache.session(sid, user, 100), None, "capacity 0 caches nothing");
    }
}
