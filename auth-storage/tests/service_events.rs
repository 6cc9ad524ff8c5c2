//! Failed logins, lockouts and rate-limited requests reach the `AuthEvents` hook, without the
//! password.

use std::sync::{Arc, Mutex};

use auth_core::{AuthConfig, AuthEvents, LoginFailure, LoginRequest, RateRule, RequestContext};
use auth_storage::MemoryStore;

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl AuthEvents for Recorder {
    fn login_failed(&self, identifier: &str, reason: LoginFailure, _: &RequestContext) {
        self.0.lock().unwrap().push(format!("failed {identifier} {reason:?}"));
    }
    fn login_locked(&self, identifier: &str, _: &RequestContext) {
        self.0.lock().unwrap().push(format!("locked {identifier}"));
    }
    fn rate_limited(&self, rule: &'static str, _: u64, _: &RequestContext) {
        self.0.lock().unwrap().push(format!("limited {rule}"));
    }
}

fn login(username: &str, password: &str) -> LoginRequest {
    serde_json::from_value(serde_json::json!({"username": username, "password": password})).unwrap()
}

#[tokio::test]
async fn failed_logins_lockouts_and_429s_are_reported_to_the_hook() {
    let mut config = AuthConfig::new(vec![1u8; 32]).unwrap();
    config.argon2 = auth_core::Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    config.rate_limits.login_per_ip = Some(RateRule::new(3, 60));
    config.rate_limits.login_failures_per_account = Some(RateRule::new(2, 60));
    let store = Arc::new(MemoryStore::new());
    let events = Arc::new(Recorder::default());
    let auth = auth_core::Auth::builder(config)
        .stores(store.clone())
        .rate_limiter(store)
        .events(events.clone())
        .build()
        .unwrap();
    let ctx = RequestContext::new(Some("192.0.2.1".parse().unwrap()), None);
    for _ in 0..2 {
        assert_eq!(auth.login(login("Zed", "secret-guess-1"), &ctx).await.unwrap_err().code(), "invalid_credentials");
    }
    assert_eq!(auth.login(login("zed", "secret-guess-1"), &ctx).await.unwrap_err().code(), "rate_limited");
    assert_eq!(auth.login(login("other", "secret-guess-1"), &ctx).await.unwrap_err().code(), "rate_limited");
    let seen = events.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "failed Zed UnknownAccount",
            "failed Zed UnknownAccount",
            "limited login_failures_per_account",
            "locked zed",
            "limited login_per_ip",
        ]
    );
    assert!(!seen.iter().any(|e| e.contains("secret-guess")), "no password reaches the hook");
}
