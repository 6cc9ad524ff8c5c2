//! A password reset, change or disable that lands while a login is verifying the old password
//! wins, on every backend: the login's session is dropped and its rehash never writes back a
//! hash of the old password. Run against memory, SQLite, PostgreSQL, and Redis sessions with
//! PostgreSQL users.
//!
//! The race is made deterministic by a user store that performs the competing change right after
//! the login has read the account, before the password is verified.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use auth_core::{
    Argon2Params, Auth, AuthConfig, AuthError, LoginRequest, NewUser, PasswordHasher, RateLimits, RequestContext,
    SecretStore, SessionStore, StoreError, User, UserRecord, UserStatus, UserStore, UserUpdate,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What lands during the verify.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// A password reset: a new hash, every session revoked.
    Reset,
    /// The account is disabled: every session revoked.
    Disable,
}

/// Delegates to `users`; when armed, `user_by_username` applies `change` after reading.
struct ChangeDuringVerify {
    users: Arc<dyn UserStore>,
    tokens: Arc<dyn SessionStore>,
    change: Change,
    armed: AtomicBool,
    new_hash: String,
}

#[async_trait::async_trait]
impl UserStore for ChangeDuringVerify {
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.users.create_user(user).await
    }
    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        self.users.user_by_id(id).await
    }
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let read = self.users.user_by_username(username).await?;
        if let (true, Some(record)) = (self.armed.swap(false, Ordering::SeqCst), &read) {
            let at = Utc::now();
            let update = match self.change {
                Change::Reset => UserUpdate::new().password_hash(self.new_hash.clone()),
                Change::Disable => UserUpdate::new().status(UserStatus::Disabled),
            };
            self.users.update_user(record.user.id, update, at).await?.expect("user exists");
            self.tokens.revoke_user_sessions(record.user.id, None, at).await?;
        }
        Ok(read)
    }
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.users.user_by_email(email).await
    }
    async fn update_user(&self, id: Uuid, update: UserUpdate, at: DateTime<Utc>) -> Result<Option<User>, StoreError> {
        self.users.update_user(id, update, at).await
    }
    async fn list_users(&self, query: &auth_core::UserQuery) -> Result<Vec<User>, StoreError> {
        self.users.list_users(query).await
    }
    async fn delete_user(&self, id: Uuid, keep_an_admin: bool) -> Result<bool, StoreError> {
        self.users.delete_user(id, keep_an_admin).await
    }
}

const PASSWORD: &str = "violet-Kettle-93-orbit";

fn config(memory_kib: u32) -> AuthConfig {
    let mut config = AuthConfig::new(vec![7u8; 32]).unwrap();
    config.argon2 = Argon2Params { memory_kib, iterations: 1, parallelism: 1 };
    config.rate_limits = RateLimits::off();
    config
}

fn json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// Registers `alice` with one Argon2 cost, then logs in with another (so the login wants to
/// rehash) while `change` lands during the verify.
async fn a_change_during_the_verify_wins<T: SessionStore + SecretStore>(
    users: Arc<dyn UserStore>,
    tokens: Arc<T>,
    change: Change,
) {
    let ctx = RequestContext::default();
    let registrar = Auth::builder(config(64))
        .user_store(users.clone())
        .session_store(tokens.clone())
        .secret_store(tokens.clone())
        .build()
        .unwrap();
    let registered =
        registrar.register(json(serde_json::json!({"username": "alice", "password": PASSWORD})), &ctx).await.unwrap();
    let user_id = registered.user.id;

    let new_hash = PasswordHasher::new(Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 }, 1, 1)
        .unwrap()
        .hash("a-brand-new-Password-42")
        .await
        .unwrap();
    let racing = Arc::new(ChangeDuringVerify {
        users: users.clone(),
        tokens: tokens.clone(),
        change,
        armed: AtomicBool::new(true),
        new_hash: new_hash.clone(),
    });
    let login = Auth::builder(config(128))
        .user_store(racing)
        .session_store(tokens.clone())
        .secret_store(tokens.clone())
        .build()
        .unwrap();
    let request: LoginRequest = json(serde_json::json!({"username": "alice", "password": PASSWORD}));
    let outcome = login.login(request, &ctx).await;
    assert!(
        matches!(outcome, Err(AuthError::InvalidCredentials)),
        "{change:?}: {:?}",
        outcome.map(|o| o.tokens().map(|t| t.user.id))
    );
    assert!(tokens.user_sessions(user_id, Utc::now()).await.unwrap().is_empty(), "{change:?}: no session survives");
    let stored = users.user_by_id(user_id).await.unwrap().unwrap();
    match change {
        Change::Reset => assert_eq!(stored.password_hash, new_hash, "the old password's rehash was not written"),
        Change::Disable => assert_eq!(stored.user.status, UserStatus::Disabled),
    }
    assert_eq!(stored.user.last_login_at, None, "{change:?}: the lost login is not recorded");

    // Without a competing change the same login goes through (and rehashes).
    if let Change::Reset = change {
        let request: LoginRequest =
            json(serde_json::json!({"username": "alice", "password": "a-brand-new-Password-42"}));
        let tokens_now = login.login(request, &ctx).await.unwrap().tokens().expect("no second factor");
        assert_eq!(tokens_now.user.id, user_id);
        let rehashed = users.user_by_id(user_id).await.unwrap().unwrap().password_hash;
        assert!(rehashed.contains("m=128,"), "{rehashed}");
    }
}

macro_rules! backend {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_password_reset_during_the_verify_wins() {
                let Some((users, tokens, _guard)) = $make.await else {
                    eprintln!("skipped: the backend's AUTH_TEST_* URL is not set (scripts/test.sh sets it)");
                    return;
                };
                a_change_during_the_verify_wins(users, tokens, Change::Reset).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn disabling_the_account_during_the_verify_wins() {
                let Some((users, tokens, _guard)) = $make.await else {
                    eprintln!("skipped: the backend's AUTH_TEST_* URL is not set (scripts/test.sh sets it)");
                    return;
                };
                a_change_during_the_verify_wins(users, tokens, Change::Disable).await;
            }
        }
    };
}

backend!(memory, async {
    let store = Arc::new(auth_storage::MemoryStore::new());
    Some((store.clone() as Arc<dyn UserStore>, store, ()))
});

#[cfg(feature = "sqlite")]
backend!(sqlite, async {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("auth.db").display());
    let store = Arc::new(auth_storage::SqliteStore::connect(&url).await.unwrap());
    Some((store.clone() as Arc<dyn UserStore>, store, dir))
});

#[cfg(feature = "postgres")]
backend!(postgres, async {
    let url = auth_test_support::fresh_postgres_database().await?;
    let store = Arc::new(auth_storage::PostgresStore::connect(&url).await.unwrap());
    Some((store.clone() as Arc<dyn UserStore>, store, ()))
});

#[cfg(all(feature = "postgres", feature = "redis"))]
backend!(redis_with_postgres, async {
    let url = auth_test_support::fresh_postgres_database().await?;
    let users = Arc::new(auth_storage::PostgresStore::connect(&url).await.unwrap());
    let redis_url = auth_test_support::service_url("AUTH_TEST_REDIS_URL")?;
    let mut options = auth_storage::RedisOptions::default();
    options.prefix = format!("test:{}:", Uuid::new_v4().simple());
    let tokens = Arc::new(auth_storage::RedisStore::connect_with(&redis_url, options).await.unwrap());
    Some((users as Arc<dyn UserStore>, tokens, ()))
});
