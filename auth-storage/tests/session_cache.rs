//! `CachedSessionStore` over each backend with a revocation feed: several wrappers (server
//! instances) over one database answer repeat session checks from memory, and every revocation
//! reaches every cache (Redis pub/sub, PostgreSQL LISTEN/NOTIFY, SQLite's change log); and
//! `CachedUserStore` the same way for user changes. These tests wait on real time on purpose:
//! what they prove is how fast an announcement travels between processes.

use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    NewUser, Role, RotationOutcome, RotationRequest, SessionStore, TokenHash, UserStatus, UserStore, UserUpdate,
};
use auth_storage::{CachedSessionStore, CachedUserStore, SessionCacheOptions, SingleProcess};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use uuid::Uuid;

use auth_test_support::new_session;

type Cached = CachedSessionStore<dyn SessionStore>;
type CachedUsers = CachedUserStore<dyn UserStore>;

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Rotating `presented` into `successor` at `at`, with no grace window.
fn rotation(presented: &str, successor: &str, at: DateTime<Utc>) -> RotationRequest {
    RotationRequest {
        presented: TokenHash::of(presented),
        successor: Some(TokenHash::of(successor)),
        now: at,
        reuse_grace: TimeDelta::seconds(0),
        idle_timeout: TimeDelta::days(7),
    }
}

async fn create(store: &Cached, user_id: Uuid, refresh: &str) -> Uuid {
    let session = new_session(user_id, refresh, now());
    let id = session.session.id;
    store.create_session(session).await.unwrap();
    id
}

/// Checks `sid` on `store` until an answer comes from its cache (the subscription is confirmed
/// within milliseconds of subscribing); panics after 3 s.
async fn until_cached(store: &Cached, sid: Uuid, user_id: Uuid) {
    for _ in 0..300 {
        let hits = store.statistics().hits;
        assert!(store.session_is_live(sid, user_id, now()).await.unwrap());
        if store.statistics().hits > hits {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the session was never answered from the cache");
}

/// Whether `store` reports `sid` revoked within `within`, polling every 5 ms.
async fn refused_within(store: &Cached, sid: Uuid, user_id: Uuid, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if !store.session_is_live(sid, user_id, now()).await.unwrap() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// Waits until `store` has dropped at least `count` entries in all (3 s at most).
async fn until_invalidated(store: &Cached, count: u64) {
    for _ in 0..600 {
        if store.statistics().invalidations >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the cache never dropped its entries");
}

// The bound is far below the 10 s entry age, so passing proves the feed; in practice the first
// check after the revocation already refuses.
const PROPAGATION: Duration = Duration::from_millis(500);

async fn a_logout_on_one_instance_reaches_the_other_instances_cache(a: Cached, b: Cached) {
    let user = Uuid::new_v4();
    let sid = create(&a, user, "r1").await;
    until_cached(&a, sid, user).await;
    until_cached(&b, sid, user).await;

    assert!(a.revoke_session(sid, now()).await.unwrap());
    assert!(!a.session_is_live(sid, user, now()).await.unwrap(), "the revoking instance at once");
    assert!(refused_within(&b, sid, user, PROPAGATION).await, "the other instance through the feed");
    assert_eq!(b.statistics().invalidations, 1, "dropped by the announcement, not aged out");
}

async fn revoking_all_of_a_users_sessions_and_refresh_reuse_reach_the_other_cache(a: Cached, b: Cached) {
    let user = Uuid::new_v4();
    let (kept, first, second) = (create(&a, user, "k").await, create(&a, user, "f").await, create(&a, user, "s").await);
    for sid in [kept, first, second] {
        until_cached(&b, sid, user).await;
    }
    // Password change: every session but the current one.
    assert_eq!(a.revoke_user_sessions(user, Some(kept), now()).await.unwrap(), 2);
    assert!(refused_within(&b, first, user, PROPAGATION).await);
    assert!(refused_within(&b, second, user, PROPAGATION).await);
    assert!(b.session_is_live(kept, user, now()).await.unwrap(), "the kept session stays live");

    // A refresh token spent twice after the grace window: the session dies everywhere.
    assert!(matches!(a.rotate_refresh_token(rotation("k", "k2", now())).await.unwrap(), RotationOutcome::Rotated(_)));
    let later = now() + TimeDelta::seconds(5);
    assert!(matches!(a.rotate_refresh_token(rotation("k", "k3", later)).await.unwrap(), RotationOutcome::Reused(_)));
    assert!(!a.session_is_live(kept, user, now()).await.unwrap(), "the detecting instance at once");
    assert!(refused_within(&b, kept, user, PROPAGATION).await);
    assert_eq!(b.statistics().invalidations, 3);
}

/// After `kill` drops every subscription to the backend, a revocation made meanwhile (and so
/// never announced to B) still gets no stale answer from B, and B resubscribes by itself.
async fn a_lost_subscription_empties_the_cache_until_it_is_back<F>(a: Cached, b: Cached, kill: F)
where
    F: std::future::Future<Output = ()>,
{
    let user = Uuid::new_v4();
    let sid = create(&a, user, "r").await;
    until_cached(&b, sid, user).await;

    kill.await;
    until_invalidated(&b, 1).await;
    assert!(a.revoke_session(sid, now()).await.unwrap());
    assert!(!b.session_is_live(sid, user, now()).await.unwrap(), "no stale answer after a lost subscription");

    let other = create(&a, user, "o").await;
    until_cached(&b, other, user).await;
}

async fn with_a_capacity_of_zero_every_check_asks_the_store(store: Arc<dyn SessionStore>) {
    let mut options = SessionCacheOptions::default();
    options.capacity = 0;
    let cached: Cached = CachedSessionStore::with_options(store, SingleProcess, options);
    let user = Uuid::new_v4();
    let sid = create(&cached, user, "r").await;
    for _ in 0..3 {
        assert!(cached.session_is_live(sid, user, now()).await.unwrap());
    }
    assert_eq!(cached.statistics().hits, 0);
    assert!(cached.revoke_session(sid, now()).await.unwrap());
    assert!(!cached.session_is_live(sid, user, now()).await.unwrap());
}

#[tokio::test]
async fn single_process_revocations_through_the_wrapper_reach_its_cache_at_once() {
    let cached: Cached = CachedSessionStore::new(Arc::new(auth_storage::MemoryStore::new()), SingleProcess);
    let user = Uuid::new_v4();
    let sid = create(&cached, user, "r").await;
    until_cached(&cached, sid, user).await;
    assert!(cached.session_is_live(sid, user, now() + TimeDelta::days(29)).await.unwrap());
    assert!(!cached.session_is_live(sid, user, now() + TimeDelta::days(31)).await.unwrap(), "its own expiry");
    assert!(!cached.session_is_live(sid, Uuid::new_v4(), now()).await.unwrap(), "another user's claim");
    assert!(cached.revoke_session(sid, now()).await.unwrap());
    assert!(!cached.session_is_live(sid, user, now()).await.unwrap());

    let (kept, other) = (create(&cached, user, "k").await, create(&cached, user, "o").await);
    until_cached(&cached, kept, user).await;
    until_cached(&cached, other, user).await;
    assert_eq!(cached.revoke_user_sessions(user, Some(kept), now()).await.unwrap(), 1);
    assert!(!cached.session_is_live(other, user, now()).await.unwrap(), "every other session at once");
    assert!(cached.session_is_live(kept, user, now()).await.unwrap());

    assert!(matches!(
        cached.rotate_refresh_token(rotation("k", "k2", now())).await.unwrap(),
        RotationOutcome::Rotated(_)
    ));
    let later = now() + TimeDelta::seconds(5);
    assert!(matches!(
        cached.rotate_refresh_token(rotation("k", "k3", later)).await.unwrap(),
        RotationOutcome::Reused(_)
    ));
    assert!(!cached.session_is_live(kept, user, now()).await.unwrap(), "a reused refresh token's session at once");
}

/// A memory store whose revocations commit and then never return: a caller that gives up
/// (a client disconnecting) cancels the call after the store has revoked.
struct CommitsThenHangs(auth_storage::MemoryStore);

#[async_trait::async_trait]
impl SessionStore for CommitsThenHangs {
    async fn create_session(&self, session: auth_core::NewSession) -> Result<(), auth_core::StoreError> {
        self.0.create_session(session).await
    }
    async fn session(&self, id: Uuid) -> Result<Option<auth_core::Session>, auth_core::StoreError> {
        self.0.session(id).await
    }
    async fn rotate_refresh_token(&self, r: RotationRequest) -> Result<RotationOutcome, auth_core::StoreError> {
        self.0.rotate_refresh_token(r).await?;
        std::future::pending().await
    }
    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, auth_core::StoreError> {
        self.0.revoke_session(id, at).await?;
        std::future::pending().await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, auth_core::StoreError> {
        self.0.revoke_user_sessions(user_id, except, at).await?;
        std::future::pending().await
    }
    async fn delete_user_sessions(&self, user_id: Uuid, at: DateTime<Utc>) -> Result<u64, auth_core::StoreError> {
        self.0.delete_user_sessions(user_id, at).await?;
        std::future::pending().await
    }
    async fn user_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<auth_core::Session>, auth_core::StoreError> {
        self.0.user_sessions(user_id, now).await
    }
    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, auth_core::StoreError> {
        self.0.purge_expired_sessions(now).await
    }
}

#[tokio::test]
async fn a_revocation_whose_caller_gives_up_after_the_store_committed_is_not_answered_from_the_cache() {
    let cached: Cached =
        CachedSessionStore::new(Arc::new(CommitsThenHangs(auth_storage::MemoryStore::new())), SingleProcess);
    let user = Uuid::new_v4();
    let give_up = Duration::from_millis(50);
    let (one, all, reused) =
        (create(&cached, user, "1").await, create(&cached, user, "2").await, create(&cached, user, "3").await);
    for sid in [one, all, reused] {
        until_cached(&cached, sid, user).await;
    }
    assert!(tokio::time::timeout(give_up, cached.revoke_session(one, now())).await.is_err(), "cancelled");
    assert!(!cached.session_is_live(one, user, now()).await.unwrap(), "logout");
    assert!(tokio::time::timeout(give_up, cached.revoke_user_sessions(user, Some(reused), now())).await.is_err());
    assert!(!cached.session_is_live(all, user, now()).await.unwrap(), "log out everywhere");
    let _ = tokio::time::timeout(give_up, cached.rotate_refresh_token(rotation("3", "3b", now()))).await;
    until_cached(&cached, reused, user).await;
    let later = now() + TimeDelta::seconds(5);
    assert!(tokio::time::timeout(give_up, cached.rotate_refresh_token(rotation("3", "3c", later))).await.is_err());
    assert!(!cached.session_is_live(reused, user, now()).await.unwrap(), "refresh-token reuse");
}

/// Reads `id` on `store` until the answer comes from its cache; panics after 3 s.
async fn until_user_cached(store: &CachedUsers, id: Uuid) {
    for _ in 0..300 {
        let hits = store.statistics().hits;
        assert!(store.user_by_id(id).await.unwrap().is_some());
        if store.statistics().hits > hits {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the user was never answered from the cache");
}

/// Whether `store` answers `check` for user `id` within `within`, polling every 5 ms.
async fn user_within(
    store: &CachedUsers,
    id: Uuid,
    within: Duration,
    check: impl Fn(Option<&auth_core::UserRecord>) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check(store.user_by_id(id).await.unwrap().as_ref()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// A role change, a disable and a deletion made through instance A reach instance B's user
/// cache through the feed (A's own cache at once), so `CurrentUser` on B never serves the old
/// user for longer than the announcement takes.
async fn user_changes_on_one_instance_reach_the_other_instances_user_cache(a: CachedUsers, b: CachedUsers) {
    let new = NewUser {
        id: Uuid::now_v7(),
        username: Some(format!("u{}", Uuid::new_v4().simple())),
        email: None,
        email_verified: false,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        role: Role::user(),
        created_at: now(),
    };
    let id = new.id;
    a.create_user(new).await.unwrap();
    until_user_cached(&a, id).await;
    until_user_cached(&b, id).await;

    let mut promote = UserUpdate::default();
    promote.role = Some(Role::admin());
    a.update_user(id, promote, now()).await.unwrap().expect("updated");
    let is_admin = |u: Option<&auth_core::UserRecord>| u.is_some_and(|u| u.user.role == Role::admin());
    assert!(is_admin(a.user_by_id(id).await.unwrap().as_ref()), "the changing instance at once");
    assert!(user_within(&b, id, PROPAGATION, is_admin).await, "the other instance through the feed");
    until_user_cached(&b, id).await;

    let mut disable = UserUpdate::default();
    disable.status = Some(UserStatus::Disabled);
    a.update_user(id, disable, now()).await.unwrap().expect("updated");
    let disabled = |u: Option<&auth_core::UserRecord>| u.is_some_and(|u| u.user.status == UserStatus::Disabled);
    assert!(user_within(&b, id, PROPAGATION, disabled).await);
    until_user_cached(&b, id).await;

    assert!(a.delete_user(id, false).await.unwrap());
    assert!(a.user_by_id(id).await.unwrap().is_none());
    assert!(user_within(&b, id, PROPAGATION, |u| u.is_none()).await, "a deleted user is gone everywhere");
}

#[tokio::test]
async fn memory_with_a_capacity_of_zero_every_check_asks_the_store() {
    with_a_capacity_of_zero_every_check_asks_the_store(Arc::new(auth_storage::MemoryStore::new())).await;
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use auth_storage::{RedisOptions, RedisStore};
    use auth_test_support::{service_url, OwnRedis};

    /// Two stores on `url` sharing one fresh prefix, as two server instances would, each wrapped.
    async fn two_instances(url: &str) -> (Cached, Cached) {
        let mut options = RedisOptions::default();
        options.prefix = format!("cache-test:{}:", Uuid::new_v4().simple());
        let a = Arc::new(RedisStore::connect_with(url, options.clone()).await.expect("connect"));
        let b = Arc::new(RedisStore::connect_with(url, options).await.expect("connect"));
        let feeds = (a.revocations(), b.revocations());
        (CachedSessionStore::new(a, feeds.0), CachedSessionStore::new(b, feeds.1))
    }

    #[tokio::test]
    async fn a_logout_on_one_instance_reaches_the_other_instances_cache() {
        let Some(url) = service_url("AUTH_TEST_REDIS_URL") else { return eprintln!("skipped: no Redis URL") };
        let (a, b) = two_instances(&url).await;
        super::a_logout_on_one_instance_reaches_the_other_instances_cache(a, b).await;
    }

    #[tokio::test]
    async fn revoking_all_of_a_users_sessions_and_refresh_reuse_reach_the_other_cache() {
        let Some(url) = service_url("AUTH_TEST_REDIS_URL") else { return eprintln!("skipped: no Redis URL") };
        let (a, b) = two_instances(&url).await;
        super::revoking_all_of_a_users_sessions_and_refresh_reuse_reach_the_other_cache(a, b).await;
    }

    #[tokio::test]
    async fn a_lost_subscription_empties_the_cache_until_it_is_back() {
        // A server of its own, so killing its pub/sub clients disturbs no other test.
        let Some(redis) = OwnRedis::start(&[]).await else { return eprintln!("skipped: no redis-server") };
        let url = redis.url();
        let (a, b) = two_instances(&url).await;
        let kill = async {
            let client = ::redis::Client::open(url.as_str()).unwrap();
            let mut admin = client.get_multiplexed_async_connection().await.unwrap();
            let killed: i64 =
                ::redis::cmd("CLIENT").arg(&["KILL", "TYPE", "pubsub"]).query_async(&mut admin).await.unwrap();
            assert_eq!(killed, 2, "A's and B's subscriptions");
        };
        super::a_lost_subscription_empties_the_cache_until_it_is_back(a, b, kill).await;
    }

    #[tokio::test]
    async fn with_a_capacity_of_zero_every_check_asks_redis() {
        let Some(url) = service_url("AUTH_TEST_REDIS_URL") else { return eprintln!("skipped: no Redis URL") };
        let mut options = RedisOptions::default();
        options.prefix = format!("cache-test:{}:", Uuid::new_v4().simple());
        let store = RedisStore::connect_with(&url, options).await.unwrap();
        with_a_capacity_of_zero_every_check_asks_the_store(Arc::new(store)).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use auth_storage::PostgresStore;
    use auth_test_support::fresh_postgres_database;
    use sqlx::Connection as _;

    /// Two stores on one fresh database, as two server instances would, each wrapped; and the
    /// database's URL.
    async fn two_instances() -> Option<(Cached, Cached, String)> {
        let url = fresh_postgres_database().await?;
        let a = Arc::new(PostgresStore::connect(&url).await.expect("connect"));
        let b = Arc::new(PostgresStore::connect(&url).await.expect("connect"));
        let feeds = (a.revocations(), b.revocations());
        Some((CachedSessionStore::new(a, feeds.0), CachedSessionStore::new(b, feeds.1), url))
    }

    #[tokio::test]
    async fn a_logout_on_one_instance_reaches_the_other_instances_cache() {
        let Some((a, b, _)) = two_instances().await else { return eprintln!("skipped: no PostgreSQL URL") };
        super::a_logout_on_one_instance_reaches_the_other_instances_cache(a, b).await;
    }

    #[tokio::test]
    async fn revoking_all_of_a_users_sessions_and_refresh_reuse_reach_the_other_cache() {
        let Some((a, b, _)) = two_instances().await else { return eprintln!("skipped: no PostgreSQL URL") };
        super::revoking_all_of_a_users_sessions_and_refresh_reuse_reach_the_other_cache(a, b).await;
    }

    #[tokio::test]
    async fn a_lost_subscription_empties_the_cache_until_it_is_back() {
        let Some((a, b, url)) = two_instances().await else { return eprintln!("skipped: no PostgreSQL URL") };
        let kill = async {
            let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
            let killed: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'auth-storage revocations' AND datname = current_database()",
            )
            .fetch_all(&mut admin)
            .await
            .unwrap();
            assert_eq!(killed, [true, true], "A's and B's LISTEN connections");
        };
        super::a_lost_subscription_empties_the_cache_until_it_is_back(a, b, kill).await;
    }

    #[tokio::test]
    async fn a_live_session_deleted_by_hand_is_announced_too() {
        let Some((a, b, url)) = two_instances().await else { return eprintln!("skipped: no PostgreSQL URL") };
        let user = Uuid::new_v4();
        let sid = create(&a, user, "r").await;
        until_cached(&b, sid, user).await;
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1").bind(sid).execute(&mut admin).await.unwrap();
        assert!(refused_within(&b, sid, user, PROPAGATION).await);
    }

    #[tokio::test]
    async fn truncating_the_sessions_empties_every_cache() {
        let Some((a, b, url)) = two_instances().await else { return eprintln!("skipped: no PostgreSQL URL") };
        let user = Uuid::new_v4();
        let sid = create(&a, user, "r").await;
        until_cached(&b, sid, user).await;
        let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("TRUNCATE auth_sessions CASCADE").execute(&mut admin).await.unwrap();
        assert!(refused_within(&b, sid, user, PROPAGATION).await);
    }

    #[tokio::test]
    async fn with_a_capacity_of_zero_every_check_asks_postgres() {
        let Some(url) = fresh_postgres_database().await else { return eprintln!("skipped: no PostgreSQL URL") };
        let store = PostgresStore::connect(&url).await.unwrap();
        with_a_capacity_of_zero_every_check_asks_the_store(Arc::new(store)).await;
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use auth_storage::SqliteStore;
    use sqlx::Connection as _;

    /// Two stores on one fresh database file, as two processes would (each its own pool and
    /// change-log reader), each wrapped; and the file's URL.
    async fn two_stores() -> (Arc<SqliteStore>, Arc<SqliteStore>, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("auth.db").display());
        let a = Arc::new(SqliteStore::connect(&url).await.expect("open"));
        let b = Arc::new(SqliteStore::connect(&url).await.expect("open"));
        (a, b, url, dir)
    }

    async fn two_instances() -> (Cached, Cached, String, tempfile::TempDir) {
        let (a, b, url, dir) = two_stores().await;
        let feeds = (a.changes(), b.changes());
        (CachedSessionStore::new(a, feeds.0), CachedSessionStore::new(b, feeds.1), url, dir)
    }

    #[tokio::test]
    async fn a_logout_on_one_instance_reaches_the_other_instances_cache() {
        let (a, b, _, _dir) = two_instances().await;
        super::a_logout_on_one_instance_reaches_the_other_instances_cache(a, b).await;
    }

    #[tokio::test]
    async fn revoking_all_of_a_users_sessions_and_refresh_reuse_reach_the_other_cache() {
        let (a, b, _, _dir) = two_instances().await;
        super::revoking_all_of_a_users_sessions_and_refresh_reuse_reach_the_other_cache(a, b).await;
    }

    #[tokio::test]
    async fn user_changes_on_one_instance_reach_the_other_instances_user_cache() {
        let (a, b, _, _dir) = two_stores().await;
        let feeds = (a.changes(), b.changes());
        super::user_changes_on_one_instance_reach_the_other_instances_user_cache(
            CachedUserStore::new(a, feeds.0),
            CachedUserStore::new(b, feeds.1),
        )
        .await;
    }

    /// An in-memory database (`sqlite::memory:`): sqlx opens it as a shared-cache database, so the
    /// feed's own connection reads the same change log; the cache is used and revocations reach
    /// it.
    #[tokio::test]
    async fn an_in_memory_database_is_cached_as_a_single_process() {
        let store = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());
        let feed = store.changes();
        let cached: Cached = CachedSessionStore::new(store, feed);
        let user = Uuid::new_v4();
        let sid = create(&cached, user, "r").await;
        until_cached(&cached, sid, user).await;
        assert!(cached.revoke_session(sid, now()).await.unwrap());
        assert!(!cached.session_is_live(sid, user, now()).await.unwrap());
    }

    /// What another program does to the file (the `users` command, or `sqlite3` by hand) is in
    /// the change log too: the triggers write it, not our code.
    #[tokio::test]
    async fn a_change_made_by_hand_on_the_file_reaches_the_cache() {
        let (a, b, url, _dir) = two_instances().await;
        let user = Uuid::new_v4();
        let (revoked, deleted) = (create(&a, user, "r").await, create(&a, user, "d").await);
        until_cached(&b, revoked, user).await;
        until_cached(&b, deleted, user).await;
        let mut admin = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE auth_sessions SET revoked_at = 1 WHERE id = $1")
            .bind(revoked.to_string())
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query("DELETE FROM auth_sessions WHERE id = $1")
            .bind(deleted.to_string())
            .execute(&mut admin)
            .await
            .unwrap();
        assert!(refused_within(&b, revoked, user, PROPAGATION).await);
        assert!(refused_within(&b, deleted, user, PROPAGATION).await);
    }

    /// A follower that missed entries (purged while it was not reading) cannot know what they
    /// said: it empties its cache instead of trusting it.
    #[tokio::test]
    async fn a_gap_in_the_change_log_empties_the_cache() {
        let (a, b, url, _dir) = two_instances().await;
        let user = Uuid::new_v4();
        let sid = create(&a, user, "r").await;
        until_cached(&b, sid, user).await;
        let mut admin = sqlx::SqliteConnection::connect(&url).await.unwrap();
        // An entry appended and purged between two reads: B sees the next number only.
        let mut tx = admin.begin().await.unwrap();
        sqlx::query("INSERT INTO auth_changes (kind, id) VALUES ('user', $1)")
            .bind(Uuid::new_v4().to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("DELETE FROM auth_changes").execute(&mut *tx).await.unwrap();
        sqlx::query("INSERT INTO auth_changes (kind, id) VALUES ('user', $1)")
            .bind(Uuid::new_v4().to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        until_invalidated(&b, 1).await;
        assert!(b.session_is_live(sid, user, now()).await.unwrap(), "still live: asked the store again");
    }
}

#[cfg(feature = "postgres")]
mod postgres_users {
    use super::*;
    use auth_storage::PostgresStore;
    use auth_test_support::fresh_postgres_database;

    #[tokio::test]
    async fn user_changes_on_one_instance_reach_the_other_instances_user_cache() {
        let Some(url) = fresh_postgres_database().await else { return eprintln!("skipped: no PostgreSQL URL") };
        let a = Arc::new(PostgresStore::connect(&url).await.expect("connect"));
        let b = Arc::new(PostgresStore::connect(&url).await.expect("connect"));
        let feeds = (a.revocations(), b.revocations());
        super::user_changes_on_one_instance_reach_the_other_instances_user_cache(
            CachedUserStore::new(a, feeds.0),
            CachedUserStore::new(b, feeds.1),
        )
        .await;
    }
}
