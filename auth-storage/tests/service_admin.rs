//! Admin operations and account deletion when a store fails part-way: nothing is left half done
//! in a way that keeps a credential alive or makes the operation impossible to finish, and the
//! user-facing audit views hide the admin's client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use auth_core::{
    async_trait, AuditEventType, AuditQuery, Auth, AuthConfig, AuthError, DeleteAccountRequest, ListAuditRequest,
    LoginOutcome, ManualClock, NewSession, RegisterRequest, RequestContext, Role, RotationOutcome, RotationRequest,
    Session, SessionStore, StoreError, User, UserStatus,
};
use auth_storage::MemoryStore;
use chrono::{DateTime, Utc};
use uuid::Uuid;

const PASSWORD: &str = "violet-Kettle-93";

/// The memory store's sessions, with revocation and deletion failing while `fail` is set.
struct Flaky {
    inner: Arc<MemoryStore>,
    /// Revocations, deletions and purges fail.
    fail: AtomicBool,
    /// Deletions fail.
    fail_deletes: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(StoreError::backend("the session store is down"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl SessionStore for Flaky {
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        self.inner.create_session(session).await
    }
    async fn session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
        self.inner.session(id).await
    }
    async fn rotate_refresh_token(&self, rotation: RotationRequest) -> Result<RotationOutcome, StoreError> {
        self.inner.rotate_refresh_token(rotation).await
    }
    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.revoke_session(id, at).await
    }
    async fn revoke_user_sessions(
        &self,
        user: Uuid,
        except: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.revoke_user_sessions(user, except, at).await
    }
    async fn delete_user_sessions(&self, user: Uuid, at: DateTime<Utc>) -> Result<u64, StoreError> {
        self.check()?;
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(StoreError::backend("the session store is down"));
        }
        self.inner.delete_user_sessions(user, at).await
    }
    async fn user_sessions(&self, user: Uuid, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        self.inner.user_sessions(user, now).await
    }
    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge_expired_sessions(now).await
    }
}

struct Fixture {
    auth: Auth,
    sessions: Arc<Flaky>,
    clock: Arc<ManualClock>,
}

fn fixture() -> Fixture {
    let mut config = AuthConfig::new(vec![7u8; 32]).unwrap();
    config.argon2 = auth_core::Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    let store = Arc::new(MemoryStore::new());
    let sessions =
        Arc::new(Flaky { inner: store.clone(), fail: AtomicBool::new(false), fail_deletes: AtomicBool::new(false) });
    let clock = Arc::new(ManualClock::new());
    let auth =
        Auth::builder(config).stores(store).session_store(sessions.clone()).clock(clock.clone()).build().unwrap();
    Fixture { auth, sessions, clock }
}

async fn login(auth: &Auth, name: &str, ctx: &RequestContext) -> String {
    let req = serde_json::from_value(serde_json::json!({"username": name, "password": PASSWORD})).unwrap();
    match auth.login(req, ctx).await.unwrap() {
        LoginOutcome::Authenticated(tokens) => tokens.access_token,
        other => panic!("{other:?}"),
    }
}

fn client() -> RequestContext {
    RequestContext::new(Some("198.51.100.4".parse().unwrap()), Some("host-app/1.0"))
}

/// Registers `name`; returns the user and the access token of the new session.
async fn register(auth: &Auth, name: &str) -> (User, String) {
    let req: RegisterRequest =
        serde_json::from_value(serde_json::json!({"username": name, "password": PASSWORD})).unwrap();
    let tokens = auth.register(req, &client()).await.unwrap();
    (tokens.user, tokens.access_token)
}

#[tokio::test]
async fn a_disable_whose_revocation_fails_changes_nothing_and_a_retry_completes_it() {
    let f = fixture();
    let (user, token) = register(&f.auth, "vera").await;
    f.sessions.fail.store(true, Ordering::SeqCst);
    let err = f.auth.admin().set_status(user.id, UserStatus::Disabled).await.unwrap_err();
    assert!(matches!(err, AuthError::StoreUnavailable(_)), "{err:?}");
    let stored = f.auth.user_store().user_by_id(user.id).await.unwrap().unwrap().user;
    assert_eq!(stored.status, UserStatus::Active, "no disabled user with live sessions");
    assert!(f.auth.authenticate(&token).await.is_ok());

    f.sessions.fail.store(false, Ordering::SeqCst);
    f.auth.admin().set_status(user.id, UserStatus::Disabled).await.unwrap();
    assert_eq!(f.auth.authenticate(&token).await.unwrap_err().code(), "session_revoked");
}

#[tokio::test]
async fn a_deletion_that_fails_part_way_leaves_a_dead_account_an_admin_can_finish() {
    let f = fixture();
    let (user, token) = register(&f.auth, "walt").await;
    let claims = f.auth.authenticate(&token).await.unwrap();
    let delete = DeleteAccountRequest { password: PASSWORD.into(), mfa_code: None };
    // The first revocation fails: nothing changed.
    f.sessions.fail.store(true, Ordering::SeqCst);
    let err = f.auth.delete_account(&claims, delete.clone(), &client()).await.unwrap_err();
    assert!(matches!(err, AuthError::StoreUnavailable(_)), "{err:?}");
    let stored = f.auth.user_store().user_by_id(user.id).await.unwrap().unwrap().user;
    assert_eq!(stored.status, UserStatus::Active);
    assert!(f.auth.authenticate(&token).await.is_ok());
    // Sessions revoked and the account disabled, then the session store fails: the account
    // stays, dead (no session, no login), for an admin to finish.
    f.sessions.fail_deletes.store(true, Ordering::SeqCst);
    f.sessions.fail.store(false, Ordering::SeqCst);
    let err = f.auth.delete_account(&claims, delete, &client()).await.unwrap_err();
    assert!(matches!(err, AuthError::StoreUnavailable(_)), "{err:?}");
    let stored = f.auth.user_store().user_by_id(user.id).await.unwrap().unwrap().user;
    assert_eq!(stored.status, UserStatus::Disabled);
    assert_eq!(f.auth.authenticate(&token).await.unwrap_err().code(), "session_revoked");
    let login = serde_json::from_value(serde_json::json!({"username": "walt", "password": PASSWORD})).unwrap();
    assert_eq!(f.auth.login(login, &client()).await.unwrap_err().code(), "account_disabled");

    f.sessions.fail_deletes.store(false, Ordering::SeqCst);
    f.auth.admin().delete_user(user.id).await.unwrap();
    assert!(f.auth.user_store().user_by_id(user.id).await.unwrap().is_none());
}

#[tokio::test]
async fn users_see_their_own_clients_in_their_audit_log_but_not_an_admins() {
    let f = fixture();
    let (admin, _) = register(&f.auth, "xena").await;
    f.auth.admin().set_role(admin.id, &Role::admin()).await.unwrap();
    let (user, _) = register(&f.auth, "yuri").await;
    let console = RequestContext::new(Some("203.0.113.7".parse().unwrap()), Some("admin-console"));
    let admin_claims = f.auth.authenticate(&login(&f.auth, "xena", &console).await).await.unwrap();
    let as_admin = f.auth.admin_as(&admin_claims, &console).unwrap();
    as_admin.revoke_user_sessions(user.id).await.unwrap();
    let claims = f.auth.authenticate(&login(&f.auth, "yuri", &client()).await).await.unwrap();
    // An event with no actor (refresh-token reuse) is the user's own client.
    let tokens = {
        let req = serde_json::from_value(serde_json::json!({"username": "yuri", "password": PASSWORD})).unwrap();
        match f.auth.login(req, &client()).await.unwrap() {
            LoginOutcome::Authenticated(tokens) => tokens,
            other => panic!("{other:?}"),
        }
    };
    let spent = tokens.refresh_token.clone().into();
    f.auth.refresh(&spent, &client()).await.unwrap();
    f.clock.advance(std::time::Duration::from_secs(11));
    assert_eq!(f.auth.refresh(&spent, &client()).await.unwrap_err().code(), "refresh_token_reused");
    f.auth.flush_audit().await;

    let query = ListAuditRequest { user_id: Some(user.id.to_string()), ..ListAuditRequest::default() };
    let seen_by_admin = as_admin.audit_log(&query).await.unwrap().items;
    let revoked = seen_by_admin.iter().find(|e| e.kind == AuditEventType::AdminSessionsRevoked).unwrap();
    assert_eq!(revoked.ip.as_deref(), Some("203.0.113.7"), "admins see who acted from where");

    let mine = f.auth.my_audit_log(&claims, &ListAuditRequest::default()).await.unwrap().items;
    let revoked = mine.iter().find(|e| e.kind == AuditEventType::AdminSessionsRevoked).unwrap();
    assert_eq!((revoked.actor_id, revoked.ip.as_deref(), revoked.user_agent.as_deref()), (Some(admin.id), None, None));
    let own = mine.iter().find(|e| e.kind == AuditEventType::LoginSucceeded).unwrap();
    assert_eq!(own.ip.as_deref(), Some("198.51.100.4"), "their own client stays");
    let reused = mine.iter().find(|e| e.kind == AuditEventType::RefreshTokenReused).unwrap();
    assert_eq!((reused.actor_id, reused.ip.as_deref()), (None, Some("198.51.100.4")));
    let export = f.auth.export_account(&claims, &client()).await.unwrap();
    assert!(export.audit.iter().any(|e| e.kind == AuditEventType::AdminSessionsRevoked));
    assert!(export.audit.iter().filter(|e| e.actor_id == Some(admin.id)).all(|e| e.ip.is_none()));
}

#[tokio::test]
async fn the_purge_prunes_the_audit_log_even_when_the_session_store_fails() {
    let f = fixture();
    let (user, _) = register(&f.auth, "zoe").await;
    f.auth.flush_audit().await;
    let audit = f.auth.audit_log_store().unwrap().clone();
    let mut query = AuditQuery::new(10);
    query.user_id = Some(user.id);
    assert_eq!(audit.audit_events(&query).await.unwrap().len(), 1, "registered");
    f.clock.advance(std::time::Duration::from_secs(89 * 24 * 3600));
    f.auth.purge_expired().await.unwrap();
    assert_eq!(audit.audit_events(&query).await.unwrap().len(), 1, "kept within the 90 days");
    f.clock.advance(std::time::Duration::from_secs(2 * 24 * 3600));
    f.sessions.fail.store(true, Ordering::SeqCst);
    assert!(f.auth.purge_expired().await.is_err(), "the session store's failure is reported");
    assert!(audit.audit_events(&query).await.unwrap().is_empty(), "and the audit log was pruned anyway");
}

/// The memory store's users; when armed, a login of `name` runs inside the next status change,
/// just before it is stored: the login passes its own check on the old status.
struct LoginDuringChange {
    inner: Arc<MemoryStore>,
    auth: std::sync::OnceLock<Auth>,
    armed: AtomicBool,
    token: std::sync::Mutex<Option<String>>,
}

#[async_trait]
impl auth_core::UserStore for LoginDuringChange {
    async fn create_user(&self, user: auth_core::NewUser) -> Result<User, StoreError> {
        self.inner.create_user(user).await
    }
    async fn user_by_id(&self, id: Uuid) -> Result<Option<auth_core::UserRecord>, StoreError> {
        self.inner.user_by_id(id).await
    }
    async fn user_by_username(&self, name: &str) -> Result<Option<auth_core::UserRecord>, StoreError> {
        self.inner.user_by_username(name).await
    }
    async fn user_by_email(&self, email: &str) -> Result<Option<auth_core::UserRecord>, StoreError> {
        self.inner.user_by_email(email).await
    }
    async fn update_user(
        &self,
        id: Uuid,
        update: auth_core::UserUpdate,
        at: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        if update.status.is_some() && self.armed.swap(false, Ordering::SeqCst) {
            let auth = self.auth.get().expect("set after build");
            *self.token.lock().unwrap() = Some(login(auth, "racer", &client()).await);
        }
        self.inner.update_user(id, update, at).await
    }
    async fn list_users(&self, query: &auth_core::UserQuery) -> Result<Vec<User>, StoreError> {
        self.inner.list_users(query).await
    }
    async fn delete_user(&self, id: Uuid, keep_an_admin: bool) -> Result<bool, StoreError> {
        self.inner.delete_user(id, keep_an_admin).await
    }
}

#[tokio::test]
async fn a_login_racing_a_disable_or_a_deletion_keeps_no_live_session() {
    let mut config = AuthConfig::new(vec![7u8; 32]).unwrap();
    config.argon2 = auth_core::Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    let store = Arc::new(MemoryStore::new());
    let users = Arc::new(LoginDuringChange {
        inner: store.clone(),
        auth: std::sync::OnceLock::new(),
        armed: AtomicBool::new(false),
        token: std::sync::Mutex::new(None),
    });
    let auth = Auth::builder(config).stores(store).user_store(users.clone()).build().unwrap();
    assert!(users.auth.set(auth.clone()).is_ok());
    let (racer, _) = register(&auth, "racer").await;

    users.armed.store(true, Ordering::SeqCst);
    auth.admin().set_status(racer.id, UserStatus::Disabled).await.unwrap();
    let token = users.token.lock().unwrap().take().expect("the login ran during the change");
    assert_eq!(auth.authenticate(&token).await.unwrap_err().code(), "session_revoked");

    auth.admin().set_status(racer.id, UserStatus::Active).await.unwrap();
    users.armed.store(true, Ordering::SeqCst);
    auth.admin().delete_user(racer.id).await.unwrap();
    let token = users.token.lock().unwrap().take().expect("the login ran during the deletion");
    assert_eq!(auth.authenticate(&token).await.unwrap_err().code(), "session_revoked");
}
