//! The Redis store's session cache: several stores (server instances) sharing one Redis answer
//! repeat session checks locally, and every revocation reaches every cache through pub/sub.
#![cfg(feature = "redis")]

use std::time::Duration;

use auth_core::{NewSession, RotationOutcome, RotationRequest, Session, SessionStore, TokenHash};
use auth_storage::{RedisOptions, RedisStore, SessionCacheStatistics};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use uuid::Uuid;

use auth_test_support::{service_url, OwnRedis};

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Two stores on `url` sharing one fresh prefix, as two server instances would.
async fn two_instances(url: &str) -> (RedisStore, RedisStore) {
    let mut options = RedisOptions::default();
    options.prefix = format!("cache-test:{}:", Uuid::new_v4().simple());
    let a = RedisStore::connect_with(url, options.clone()).await.expect("connect");
    let b = RedisStore::connect_with(url, options).await.expect("connect");
    (a, b)
}

async fn new_session(store: &RedisStore, user_id: Uuid, refresh: &str) -> Uuid {
    let at = now();
    let id = Uuid::new_v4();
    let session = Session {
        id,
        user_id,
        created_at: at,
        last_used_at: at,
        expires_at: at + TimeDelta::days(1),
        ip: None,
        user_agent: None,
        auth_method: auth_core::AuthMethod::Password,
        revoked_at: None,
    };
    store.create_session(NewSession { session, refresh_token_hash: TokenHash::of(refresh) }).await.unwrap();
    id
}

fn stats(store: &RedisStore) -> SessionCacheStatistics {
    store.session_cache_statistics().expect("the cache is on by default")
}

/// Checks `sid` on `store` until an answer comes from its cache (the subscription is confirmed
/// within a few milliseconds of connecting); panics after 3 s.
async fn until_cached(store: &RedisStore, sid: Uuid, user_id: Uuid) {
    for _ in 0..300 {
        let hits = stats(store).hits;
        assert!(store.session_is_live(sid, user_id, now()).await.unwrap());
        if stats(store).hits > hits {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the session was never answered from the cache");
}

/// Whether `store` reports `sid` revoked within `within`, polling every 5 ms.
async fn refused_within(store: &RedisStore, sid: Uuid, user_id: Uuid, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if !store.session_is_live(sid, user_id, now()).await.unwrap() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

// The bound is far below the 10 s entry age, so passing proves the pub/sub path; in practice the
// first check after the revocation already refuses.
const PROPAGATION: Duration = Duration::from_millis(500);

#[tokio::test]
async fn a_logout_on_one_instance_reaches_the_other_instances_cache() {
    let Some(url) = service_url("AUTH_TEST_REDIS_URL") else { return eprintln!("skipped: no Redis URL") };
    let (a, b) = two_instances(&url).await;
    let user = Uuid::new_v4();
    let sid = new_session(&a, user, "r1").await;
    until_cached(&a, sid, user).await;
    until_cached(&b, sid, user).await;

    assert!(a.revoke_session(sid, now()).await.unwrap());
    assert!(!a.session_is_live(sid, user, now()).await.unwrap(), "the revoking instance at once");
    assert!(refused_within(&b, sid, user, PROPAGATION).await, "the other instance through pub/sub");
    assert_eq!(stats(&b).invalidations, 1, "dropped by the message, not aged out");
}

#[tokio::test]
async fn revoking_all_of_a_users_sessions_and_refresh_reuse_reach_the_other_cache() {
    let Some(url) = service_url("AUTH_TEST_REDIS_URL") else { return eprintln!("skipped: no Redis URL") };
    let (a, b) = two_instances(&url).await;
    let user = Uuid::new_v4();
    let (kept, first, second) =
        (new_session(&a, user, "k").await, new_session(&a, user, "f").await, new_session(&a, user, "s").await);
    for sid in [kept, first, second] {
        until_cached(&b, sid, user).await;
    }
    // Password change: every session but the current one.
    assert_eq!(a.revoke_user_sessions(user, Some(kept), now()).await.unwrap(), 2);
    assert!(refused_within(&b, first, user, PROPAGATION).await);
    assert!(refused_within(&b, second, user, PROPAGATION).await);
    assert!(b.session_is_live(kept, user, now()).await.unwrap(), "the kept session stays live");

    // A refresh token spent twice after the grace window: the session dies everywhere.
    let rotation = |presented: &str, successor: &str, at: DateTime<Utc>| RotationRequest {
        presented: TokenHash::of(presented),
        successor: TokenHash::of(successor),
        now: at,
        reuse_grace: TimeDelta::seconds(0),
        idle_timeout: TimeDelta::days(7),
    };
    assert!(matches!(a.rotate_refresh_token(rotation("k", "k2", now())).await.unwrap(), RotationOutcome::Rotated(_)));
    let later = now() + TimeDelta::seconds(5);
    assert!(matches!(a.rotate_refresh_token(rotation("k", "k3", later)).await.unwrap(), RotationOutcome::Reused(_)));
    assert!(refused_within(&b, kept, user, PROPAGATION).await);
    assert_eq!(stats(&b).invalidations, 3);
}

#[tokio::test]
async fn a_lost_subscription_empties_the_cache_until_it_is_back() {
    // A server of its own, so killing its pub/sub clients disturbs no other test.
    let Some(redis) = OwnRedis::start(&[]).await else { return eprintln!("skipped: no redis-server") };
    let url = redis.url();
    let (a, b) = two_instances(&url).await;
    let user = Uuid::new_v4();
    let sid = new_session(&a, user, "r").await;
    until_cached(&b, sid, user).await;

    // The subscription drops; a revocation published meanwhile never reaches B…
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT").arg(&["KILL", "TYPE", "pubsub"]).query_async(&mut admin).await.unwrap();
    assert_eq!(killed, 2, "A's and B's subscriptions");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(a.revoke_session(sid, now()).await.unwrap());
    // …but B emptied its cache when the connection closed, so it asks Redis.
    assert!(!b.session_is_live(sid, user, now()).await.unwrap(), "no stale answer after a lost subscription");

    // B resubscribes by itself and answers from its cache again.
    let other = new_session(&a, user, "o").await;
    until_cached(&b, other, user).await;
}

#[tokio::test]
async fn with_the_cache_off_every_check_asks_redis() {
    let Some(url) = service_url("AUTH_TEST_REDIS_URL") else { return eprintln!("skipped: no Redis URL") };
    let mut options = RedisOptions::default();
    options.prefix = format!("cache-test:{}:", Uuid::new_v4().simple());
    options.session_cache_capacity = 0;
    let store = RedisStore::connect_with(&url, options).await.unwrap();
    assert_eq!(store.session_cache_statistics(), None);
    let user = Uuid::new_v4();
    let sid = new_session(&store, user, "r").await;
    assert!(store.session_is_live(sid, user, now()).await.unwrap());
    assert!(store.revoke_session(sid, now()).await.unwrap());
    assert!(!store.session_is_live(sid, user, now()).await.unwrap());
}
