//! Where the service's background work runs: on the runtime it was built on, not on the one of
//! the request that started it, which may end first (actix-web drops each worker's runtime when
//! the server stops); and an audit write dropped unfinished does not hold up `flush_audit`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use auth_core::audit::{AuditEvent, AuditQuery, AuditStore};
use auth_core::mail::{EmailMessage, Mailer};
use auth_core::{Auth, AuthConfig, BoxError, RequestContext, StoreError};
use auth_storage::MemoryStore;
use chrono::{DateTime, Utc};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::{mpsc, Semaphore};
use uuid::Uuid;

fn config() -> AuthConfig {
    let mut config = AuthConfig::new(vec![4u8; 32]).unwrap();
    config.argon2 = auth_core::Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    config.public_url = Some("https://app.example".to_owned());
    config
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// Sends once the test opens the gate, and reports the subject.
struct GatedMailer {
    gate: Arc<Semaphore>,
    sent: mpsc::UnboundedSender<String>,
}

#[async_trait]
impl Mailer for GatedMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), BoxError> {
        let _permit = self.gate.acquire().await?;
        self.sent.send(message.subject.clone())?;
        Ok(())
    }
}

#[test]
fn mail_sent_after_the_answer_outlives_the_runtime_of_the_request() {
    let main = Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let (sent, mut delivered) = mpsc::unbounded_channel();
    let mailer = Arc::new(GatedMailer { gate: gate.clone(), sent });
    let ctx = RequestContext::new(Some("192.0.2.7".parse().unwrap()), None);
    let auth = main.block_on(async {
        let auth = Auth::builder(config()).stores(Arc::new(MemoryStore::new())).mailer(mailer).build().unwrap();
        let register = serde_json::json!({"email": "kim@example.com", "password": "violet-Kettle-93-orbit"});
        auth.register(serde_json::from_value(register).unwrap(), &ctx).await.unwrap();
        auth
    });

    // A request served on a runtime of its own, which ends right after the answer.
    let request = current_thread();
    let forgot = serde_json::json!({"email": "kim@example.com"});
    request.block_on(auth.forgot_password(serde_json::from_value(forgot).unwrap(), &ctx)).unwrap();
    drop(request);

    gate.add_permits(1);
    let subject = main
        .block_on(async { tokio::time::timeout(Duration::from_secs(30), delivered.recv()).await })
        .expect("the reset link was mailed after the request's runtime ended")
        .unwrap();
    assert!(!subject.is_empty());
}

/// An audit log whose writes never finish.
struct StuckAudit;

#[async_trait]
impl AuditStore for StuckAudit {
    async fn append_audit(&self, _: AuditEvent) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn audit_events(&self, _: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(Vec::new())
    }
    async fn purge_audit(&self, _: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(0)
    }
    async fn forget_user_audit(&self, _: Uuid) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[test]
fn an_audit_write_dropped_with_its_runtime_does_not_hold_up_flush_audit() {
    let ctx = RequestContext::new(Some("192.0.2.8".parse().unwrap()), None);
    let first = current_thread();
    let auth = first.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let auth = Auth::builder(config())
            .user_store(store.clone())
            .session_store(store.clone())
            .secret_store(store)
            .audit_store(Arc::new(StuckAudit))
            .build()
            .unwrap();
        // A registration is audited: its write starts in the background and never ends.
        let register = serde_json::json!({"username": "lee", "password": "violet-Kettle-93-orbit"});
        auth.register(serde_json::from_value(register).unwrap(), &ctx).await.unwrap();
        tokio::task::yield_now().await;
        auth
    });
    // The service's runtime ends, and the write with it.
    drop(first);

    // Paused time: a flush that waited for the write would move the clock by its 5 s timeout.
    let later = Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let waited = later.block_on(async {
        let start = tokio::time::Instant::now();
        auth.flush_audit().await;
        start.elapsed()
    });
    assert_eq!(waited, Duration::ZERO, "flush_audit waited for a write that could no longer finish");

    // Used after its runtime is gone, the service still answers; work it leaves in the
    // background is dropped at once (and its ticket with it), never a panic.
    let waited = later.block_on(async {
        let register = serde_json::json!({"username": "kai", "password": "violet-Kettle-93-orbit"});
        auth.register(serde_json::from_value(register).unwrap(), &ctx).await.unwrap();
        let start = tokio::time::Instant::now();
        auth.flush_audit().await;
        start.elapsed()
    });
    assert_eq!(waited, Duration::ZERO);
}
