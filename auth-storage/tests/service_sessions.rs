//! `Auth::issue_session` (a host that authenticated a user its own way gets a session like a
//! password login's) and `LoginOutcome` (a password login's outcome carries the session and
//! records how it was made), on the SQLite backend so the method goes through a real store.

#![cfg(feature = "sqlite")]

use std::sync::{Arc, Mutex};

use auth_core::{
    Auth, AuthConfig, AuthEvents, AuthMethod, LoginOutcome, LoginRequest, RegisterRequest, RequestContext, User,
    UserStatus,
};
use auth_storage::SqliteStore;
use uuid::Uuid;

#[derive(Default)]
struct Logins(Mutex<Vec<(Uuid, Uuid)>>);

impl AuthEvents for Logins {
    fn logged_in(&self, user: &User, session_id: Uuid, _: &RequestContext) {
        self.0.lock().unwrap().push((user.id, session_id));
    }
}

struct Fixture {
    auth: Auth,
    logins: Arc<Logins>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let mut config = AuthConfig::new(vec![7u8; 32]).unwrap();
    config.argon2 = auth_core::Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&format!("sqlite://{}", dir.path().join("auth.db").display())).await.unwrap();
    let logins = Arc::new(Logins::default());
    let auth = Auth::builder(config).stores(Arc::new(store)).events(logins.clone()).build().unwrap();
    Fixture { auth, logins, _dir: dir }
}

fn req<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn client() -> RequestContext {
    RequestContext::new(Some("198.51.100.4".parse().unwrap()), Some("host-app/1.0"))
}

async fn register(auth: &Auth, name: &str) -> User {
    let registration: RegisterRequest = req(serde_json::json!({"username": name, "password": "violet-Kettle-93"}));
    auth.register(registration, &client()).await.unwrap().user
}

#[tokio::test]
async fn a_host_authenticated_user_gets_a_working_session_that_records_the_method() {
    let f = fixture().await;
    let user = register(&f.auth, "oidc-user").await;
    f.logins.0.lock().unwrap().clear();

    let tokens = f.auth.issue_session(&user, AuthMethod::External, &client()).await.unwrap();

    let claims = f.auth.authenticate(&tokens.access_token).await.unwrap();
    assert_eq!((claims.sub, claims.sid), (user.id, tokens.session.id));
    let stored = f.auth.session_store().session(tokens.session.id).await.unwrap().unwrap();
    assert_eq!(stored.auth_method, AuthMethod::External);
    assert_eq!(stored.ip.as_deref(), Some("198.51.100.4"));
    assert_eq!(stored.user_agent.as_deref(), Some("host-app/1.0"));
    assert!(tokens.user.last_login_at.is_some(), "the login is recorded on the user");
    assert_eq!(*f.logins.0.lock().unwrap(), [(user.id, tokens.session.id)], "the logged_in event fires");
    // The refresh token rotates like any other, and the session keeps its method.
    let refreshed = f.auth.refresh(&tokens.refresh_token.clone().into(), &client()).await.unwrap();
    assert_eq!(refreshed.session.id, tokens.session.id);
    assert_eq!(refreshed.session.auth_method, AuthMethod::External);
}

#[tokio::test]
async fn no_session_is_issued_for_a_disabled_or_unknown_user() {
    let f = fixture().await;
    let user = register(&f.auth, "disabled-user").await;
    f.auth.admin().set_status(user.id, UserStatus::Disabled).await.unwrap();
    // `user` is the stale, active copy: the store decides.
    let err = f.auth.issue_session(&user, AuthMethod::External, &client()).await.unwrap_err();
    assert_eq!(err.code(), "account_disabled");
    assert!(f.auth.session_store().user_sessions(user.id, chrono::Utc::now()).await.unwrap().is_empty());

    let ghost = User { id: Uuid::now_v7(), ..user };
    let err = f.auth.issue_session(&ghost, AuthMethod::EmailCode, &client()).await.unwrap_err();
    assert_eq!(err.code(), "not_found");
}

#[tokio::test]
async fn a_password_login_is_authenticated_with_a_password_session() {
    let f = fixture().await;
    register(&f.auth, "pw-user").await;
    let login: LoginRequest = req(serde_json::json!({"username": "pw-user", "password": "violet-Kettle-93"}));
    let LoginOutcome::Authenticated(tokens) = f.auth.login(login, &client()).await.unwrap() else {
        panic!("an account without a second factor logs in at once");
    };
    assert_eq!(tokens.session.auth_method, AuthMethod::Password);
    let stored = f.auth.session_store().session(tokens.session.id).await.unwrap().unwrap();
    assert_eq!(stored.auth_method, AuthMethod::Password);
    assert_eq!(tokens.refresh_expires_in(), 30 * 24 * 3600);
}
