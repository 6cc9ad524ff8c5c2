//! A failing audit store: the request goes on (and the failure is logged) unless the audit is
//! required, and the host's `audited` hook fires either way. Alone in its test binary: the log
//! recorder is the process's subscriber.

use std::sync::Arc;

use auth_core::{
    async_trait, AuditEventType, AuditQuery, Auth, AuthConfig, RegisterRequest, RequestContext, StoreError,
};
use auth_storage::MemoryStore;
use chrono::{DateTime, Utc};
use uuid::Uuid;

const PASSWORD: &str = "violet-Kettle-93";

fn register_request(name: &str) -> RegisterRequest {
    serde_json::from_value(serde_json::json!({"username": name, "password": PASSWORD})).unwrap()
}

/// An audit store that is down, and a hook that sees every event.
struct DownAudit;

#[async_trait]
impl auth_core::AuditStore for DownAudit {
    async fn append_audit(&self, _: auth_core::AuditEvent) -> Result<(), StoreError> {
        Err(StoreError::backend("the audit store is down"))
    }
    async fn audit_events(&self, _: &AuditQuery) -> Result<Vec<auth_core::AuditEvent>, StoreError> {
        Err(StoreError::backend("the audit store is down"))
    }
    async fn purge_audit(&self, _: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn forget_user_audit(&self, _: Uuid) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[derive(Default)]
struct Seen(std::sync::Mutex<Vec<AuditEventType>>);

impl auth_core::AuthEvents for Seen {
    fn audited(&self, event: &auth_core::AuditEvent) {
        self.0.lock().unwrap().push(event.kind);
    }
}

fn with_down_audit(required: bool) -> (Auth, Arc<Seen>) {
    let mut config = AuthConfig::new(vec![7u8; 32]).unwrap();
    config.argon2 = auth_core::Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    config.audit_required = required;
    let seen = Arc::new(Seen::default());
    let auth = Auth::builder(config)
        .stores(Arc::new(MemoryStore::new()))
        .audit_store(Arc::new(DownAudit))
        .events(seen.clone())
        .build()
        .unwrap();
    (auth, seen)
}

#[tokio::test]
async fn a_failing_audit_write_fails_the_request_only_when_the_audit_is_required() {
    let recorder = auth_test_support::EventRecorder::new(|m| m.target().starts_with("auth_core"));
    recorder.set_global_default();
    let (auth, seen) = with_down_audit(false);
    auth.register(register_request("ada"), &RequestContext::default()).await.unwrap();
    auth.flush_audit().await;
    assert_eq!(*seen.0.lock().unwrap(), [AuditEventType::Registered], "the host's hook fires either way");
    let logged = recorder.lines().join("\n");
    assert!(logged.contains("audit event not written") && logged.contains("event_type=registered"), "{logged}");

    let (auth, seen) = with_down_audit(true);
    let err = auth.register(register_request("bea"), &RequestContext::default()).await.unwrap_err();
    assert_eq!(err.code(), "store_unavailable");
    assert_eq!(*seen.0.lock().unwrap(), [AuditEventType::Registered]);
}
