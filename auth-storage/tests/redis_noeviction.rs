//! The Redis store's start-up check of `maxmemory-policy`: a Redis that may evict keys could drop
//! revoked sessions and lockout counters, so anything but `noeviction` is a warning, or an error
//! with `RedisOptions::require_noeviction`; so is a policy that cannot be read (`CONFIG` refused).
//! Each test runs a `redis-server` of its own with the setting under test.
#![cfg(feature = "redis")]

use std::time::Duration;

use auth_core::{RateLimitDecision, RateLimiter as _, StoreError};
use auth_storage::{RedisOptions, RedisStore};
use tracing::Level;

use auth_test_support::{EventRecorder, OwnRedis};

/// Records the warnings `auth_storage` logs while the guard lives (on this thread, where
/// `#[tokio::test]` polls the test).
fn capture_warnings() -> (EventRecorder, tracing::subscriber::DefaultGuard) {
    let warnings = EventRecorder::new(|metadata| {
        *metadata.level() == Level::WARN && metadata.target().starts_with("auth_storage")
    });
    let guard = warnings.set_default();
    (warnings, guard)
}

fn options(require_noeviction: bool) -> RedisOptions {
    let mut options = RedisOptions::default();
    options.require_noeviction = require_noeviction;
    options
}

/// The message of a refused connect, which must be a backend error.
async fn refused(url: &str, options: RedisOptions) -> String {
    match RedisStore::connect_with(url, options).await {
        Ok(_) => panic!("connected, but require_noeviction should have refused"),
        Err(err @ StoreError::Backend(_)) => err.to_string(),
        Err(other) => panic!("not a backend error: {other:?}"),
    }
}

/// The store works: a rate-limit check counts a hit in Redis.
async fn works(store: &RedisStore) {
    let key = format!("noeviction-test:{}", uuid::Uuid::new_v4().simple());
    let decision = store.check(&key, 5, Duration::from_secs(60)).await.unwrap();
    assert_eq!(decision, RateLimitDecision::Allowed { remaining: 4 });
}

#[tokio::test]
async fn an_evicting_policy_is_a_warning_by_default_and_an_error_when_noeviction_is_required() {
    let Some(redis) = OwnRedis::start(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]).await else {
        return eprintln!("skipped: no redis-server");
    };
    let (warnings, _guard) = capture_warnings();

    let store = RedisStore::connect_with(&redis.url(), options(false)).await.expect("a warning only");
    works(&store).await;
    let logged = warnings.take();
    assert!(
        logged.iter().any(|w| w.contains("maxmemory-policy") && w.contains("allkeys-lru") && w.contains("noeviction")),
        "a warning naming the policy found and the one to set: {logged:?}"
    );

    let err = refused(&redis.url(), options(true)).await;
    for needle in ["maxmemory-policy", "allkeys-lru", "noeviction"] {
        assert!(err.contains(needle), "{needle:?} missing from {err:?}");
    }
}

#[tokio::test]
async fn noeviction_passes_without_a_warning() {
    let Some(redis) = OwnRedis::start(&["--maxmemory", "64mb", "--maxmemory-policy", "noeviction"]).await else {
        return eprintln!("skipped: no redis-server");
    };
    let (warnings, _guard) = capture_warnings();
    for require in [true, false] {
        let store = RedisStore::connect_with(&redis.url(), options(require)).await.expect("noeviction is fine");
        works(&store).await;
    }
    assert_eq!(warnings.take(), Vec::<String>::new());
}

/// Managed services often rename `CONFIG` away; the policy cannot be read then.
#[tokio::test]
async fn with_config_renamed_away_the_policy_cannot_be_checked() {
    let Some(redis) = OwnRedis::start(&["--rename-command", "CONFIG", ""]).await else {
        return eprintln!("skipped: no redis-server");
    };
    let (warnings, _guard) = capture_warnings();
    unchecked(&redis.url(), &warnings).await;
}

/// The same when the store's Redis user may not run `CONFIG` (an ACL without `+config`).
#[tokio::test]
async fn with_config_denied_by_an_acl_the_policy_cannot_be_checked() {
    let Some(redis) = OwnRedis::start(&[]).await else { return eprintln!("skipped: no redis-server") };
    let client = redis::Client::open(redis.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "app", "on", ">app-password", "~*", "&*", "+@all", "-config"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let (warnings, _guard) = capture_warnings();
    unchecked(&format!("redis://app:app-password@127.0.0.1:{}/", redis.port), &warnings).await;
}

/// Without `require_noeviction` a warning and a working store; with it an error telling the
/// operator to confirm the policy some other way and turn the option off.
async fn unchecked(url: &str, warnings: &EventRecorder) {
    let store = RedisStore::connect_with(url, options(false)).await.expect("a warning only");
    works(&store).await;
    let logged = warnings.take();
    assert!(
        logged.iter().any(|w| w.contains("could not check") && w.contains("maxmemory-policy")),
        "a warning that the policy could not be checked: {logged:?}"
    );

    let err = refused(url, options(true)).await;
    for needle in ["maxmemory-policy", "noeviction", "require_noeviction"] {
        assert!(err.contains(needle), "{needle:?} missing from {err:?}");
    }
}
