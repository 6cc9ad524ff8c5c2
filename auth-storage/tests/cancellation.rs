//! A cancelled request never leaves a transaction open on a pooled connection (SQLite and
//! PostgreSQL).
//!
//! axum drops a handler's future when its client disconnects, so any store call can be cancelled
//! at any await point. Here many tasks run the multi-statement operations (`create_session`,
//! `rotate_refresh_token`, `take_secret`) together with single-statement writes, each under a
//! random deadline of 0–3 ms; then every connection of the store's pool is checked for an open
//! transaction, PostgreSQL must not have warned of a `BEGIN` inside a transaction or a `COMMIT`
//! outside one meanwhile, and the store must still make its writes visible to another client and
//! rotate a token exactly once.
#![cfg(any(feature = "sqlite", feature = "postgres"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    NewSecret, NewUser, OnMismatch, Role, RotationOutcome, RotationRequest, SecretStore, SessionStore, TokenHash,
    UserStore,
};
use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use uuid::Uuid;

use auth_test_support::new_session;

trait Store: UserStore + SessionStore + SecretStore {}
impl<T: UserStore + SessionStore + SecretStore> Store for T {}

/// Tasks running operations at once; more than the pool's connections.
const TASKS: u64 = 12;
/// Operations per task.
const OPERATIONS: u64 = 30;
/// Connections in the store's pool.
const MAX_CONNECTIONS: u32 = 8;
/// The storm of cancelled operations must end within this (a stalled one means locks held by a
/// transaction nobody ends).
const STORM_LIMIT: Duration = Duration::from_secs(10);

/// splitmix64: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn seed() -> u64 {
    let seed = match std::env::var("AUTH_TEST_SEED") {
        Ok(s) => s.parse().expect("AUTH_TEST_SEED is a u64"),
        Err(_) => Uuid::new_v4().as_u64_pair().0,
    };
    eprintln!("cancellation storm seed: {seed} (AUTH_TEST_SEED={seed} repeats it)");
    seed
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn rotation(presented: &str, successor: &str) -> RotationRequest {
    RotationRequest {
        presented: TokenHash::of(presented),
        successor: Some(TokenHash::of(successor)),
        now: now(),
        reuse_grace: TimeDelta::seconds(10),
        idle_timeout: TimeDelta::days(7),
    }
}

#[derive(Default)]
struct Tally {
    cancelled: AtomicUsize,
    completed: AtomicUsize,
    failed: AtomicUsize,
}

/// One task's operations, each under a random deadline: 0 (cancelled at its first await) a
/// quarter of the time, none (runs to completion) a quarter, else up to 3 ms.
async fn run_task(store: Arc<dyn Store>, user: Uuid, task: u64, seed: u64, tally: Arc<Tally>) {
    let mut rng = Rng(seed ^ task.wrapping_mul(0x2545_F491_4F6C_DD1D));
    // Sessions and refresh tokens known to be committed: only those are presented, as a client
    // only holds a token once the request creating it has answered.
    let mut sessions: Vec<(Uuid, String)> = Vec::new();
    let key = format!("task-{task}");
    for i in 0..OPERATIONS {
        let fresh = format!("refresh-{seed}-{task}-{i}");
        let deadline = match rng.below(4) {
            0 => Some(Duration::ZERO),
            1 => None,
            _ => Some(Duration::from_micros(rng.below(3_000))),
        };
        let pick = (!sessions.is_empty()).then(|| sessions[rng.below(sessions.len() as u64) as usize].clone());
        let (choice, right_answer) = (rng.below(6), rng.below(2) == 0);
        let store = &store;
        // Ok(Some(session and its current token)) when the operation committed one.
        let operation = async {
            match (choice, pick) {
                (0 | 1, _) | (_, None) => {
                    let new = new_session(user, &fresh, now());
                    let id = new.session.id;
                    store.create_session(new).await.map(|()| Some((id, fresh)))
                }
                (2, Some((id, presented))) => match store.rotate_refresh_token(rotation(&presented, &fresh)).await? {
                    RotationOutcome::Rotated(_) => Ok(Some((id, fresh))),
                    _ => Ok(None),
                },
                (3, _) => {
                    let secret = NewSecret {
                        purpose: "email_code:register".into(),
                        key: key.clone(),
                        hash: TokenHash::of("123456"),
                        expires_at: now() + TimeDelta::hours(1),
                        max_attempts: 5,
                    };
                    store.put_secret(secret, now()).await.map(|()| None)
                }
                (4, _) => {
                    let answer = TokenHash::of(if right_answer { "123456" } else { "654321" });
                    let purpose = "email_code:register";
                    store.take_secret(purpose, &key, &answer, OnMismatch::CountAttempt, now()).await.map(|_| None)
                }
                (_, Some((id, _))) => store.revoke_session(id, now()).await.map(|_| None),
            }
        };
        let outcome = match deadline {
            Some(deadline) => tokio::time::timeout(deadline, operation).await,
            None => Ok(operation.await),
        };
        match outcome {
            Err(_) => tally.cancelled.fetch_add(1, Ordering::Relaxed),
            Ok(Ok(committed)) => {
                sessions.extend(committed);
                tally.completed.fetch_add(1, Ordering::Relaxed)
            }
            Ok(Err(e)) => {
                eprintln!("task {task} operation {i} failed: {e}");
                tally.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Runs the storm and asserts it ended in time, cancelled some operations, and that every
/// operation that completed succeeded.
async fn storm(store: Arc<dyn Store>, user: Uuid) {
    let seed = seed();
    let tally = Arc::new(Tally::default());
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        tasks.spawn(run_task(store.clone(), user, task, seed, tally.clone()));
    }
    let all = async {
        while let Some(joined) = tasks.join_next().await {
            joined.expect("storm task");
        }
    };
    let in_time = tokio::time::timeout(STORM_LIMIT, all).await.is_ok();
    tasks.abort_all();
    let (cancelled, completed, failed) = (
        tally.cancelled.load(Ordering::Relaxed),
        tally.completed.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    eprintln!("storm: {cancelled} cancelled, {completed} completed, {failed} failed");
    assert!(in_time, "the operations stalled (seed {seed}): locks held by a transaction nobody ends?");
    assert!(cancelled > 0, "nothing was cancelled: the test tests nothing");
    assert_eq!(failed, 0, "operations failed after cancellations (seed {seed})");
    // Let the pool's release tasks (which drain and ping a returned connection) run.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// After the storm the store works: a write it acknowledges is visible to another client (not
/// stuck in an open transaction), and of concurrent rotations of one token exactly one rotates.
async fn still_works(store: Arc<dyn Store>, other_client: Arc<dyn Store>, user: Uuid) {
    for n in 0..2 * MAX_CONNECTIONS {
        let new = new_session(user, &format!("after-{}-{n}", Uuid::new_v4()), now());
        let id = new.session.id;
        store.create_session(new).await.unwrap();
        assert!(store.revoke_session(id, now()).await.unwrap());
        let seen = other_client.session(id).await.unwrap().expect("a committed session is visible");
        assert!(seen.revoked_at.is_some(), "an acknowledged revocation is not visible to another client");
    }

    let token = format!("final-{}", Uuid::new_v4());
    store.create_session(new_session(user, &token, now())).await.unwrap();
    let mut rotations = tokio::task::JoinSet::new();
    for n in 0..MAX_CONNECTIONS {
        let (store, token) = (store.clone(), token.clone());
        rotations.spawn(async move { store.rotate_refresh_token(rotation(&token, &format!("{token}-{n}"))).await });
    }
    let mut rotated = 0;
    while let Some(joined) = rotations.join_next().await {
        if let RotationOutcome::Rotated(_) = joined.unwrap().unwrap() {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1, "concurrent rotations of one token: exactly one rotates");
}

async fn create_user(store: &dyn Store) -> Uuid {
    let user = NewUser {
        id: Uuid::now_v7(),
        username: Some("cancelled".into()),
        email: None,
        email_verified: false,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        role: Role::user(),
        created_at: now(),
    };
    store.create_user(user).await.unwrap().id
}

/// Records the warnings by which PostgreSQL tells a client that its idea of the transaction state
/// is wrong: `there is already a transaction in progress` (a `BEGIN` inside a transaction left
/// open) and `there is no transaction in progress` (a `COMMIT`/`ROLLBACK` outside one). sqlx
/// reports them as `tracing` events of target `sqlx::postgres::notice`, on whichever thread runs
/// the connection, hence a global subscriber; a left-open transaction is usually ended by the next
/// `BEGIN`…`COMMIT` on its connection, so these catch it even when the pool looks clean at the end.
#[cfg(feature = "postgres")]
mod notices {
    use std::sync::OnceLock;

    use auth_test_support::EventRecorder;

    static NOTICES: OnceLock<EventRecorder> = OnceLock::new();

    /// Starts recording (once per process).
    pub fn install() {
        NOTICES.get_or_init(|| {
            let notices = EventRecorder::new(|metadata| metadata.target() == "sqlx::postgres::notice");
            notices.set_global_default();
            notices
        });
    }

    /// The warnings so far.
    pub fn wrong_transaction_state() -> usize {
        let notices = NOTICES.get().map(EventRecorder::lines).unwrap_or_default();
        let wrong: Vec<_> = notices.into_iter().filter(|notice| notice.contains("transaction in progress")).collect();
        for notice in &wrong {
            eprintln!("PostgreSQL warned: {notice}");
        }
        wrong.len()
    }
}

/// A database whose connections can be asked whether they are inside a transaction.
trait InTransaction: sqlx::Database {
    async fn in_transaction(connection: &mut Self::Connection) -> bool;
}

/// There `now()` is the transaction's start, not the current statement's. (By the simple query
/// protocol: with the extended one, Bind starts the implicit transaction and Execute restarts the
/// statement clock, so the two differ outside any transaction too.)
#[cfg(feature = "postgres")]
impl InTransaction for sqlx::Postgres {
    async fn in_transaction(connection: &mut sqlx::PgConnection) -> bool {
        use sqlx::Row as _;
        let row = sqlx::raw_sql("SELECT now() = statement_timestamp()").fetch_one(connection).await.unwrap();
        !row.get::<bool, _>(0)
    }
}

/// SQLite has no query for it, but `BEGIN` fails inside one; outside, the probe's own transaction
/// is rolled back at once.
#[cfg(feature = "sqlite")]
impl InTransaction for sqlx::Sqlite {
    async fn in_transaction(connection: &mut sqlx::SqliteConnection) -> bool {
        match sqlx::raw_sql("BEGIN").execute(&mut *connection).await {
            Ok(_) => {
                sqlx::raw_sql("ROLLBACK").execute(connection).await.unwrap();
                false
            }
            Err(e) => {
                eprintln!("BEGIN on a pooled connection: {e}");
                true
            }
        }
    }
}

/// Checks that [`InTransaction`] tells a transaction from none on `pool`, the pool of `store`,
/// then creates a user and runs the [`storm`] of its operations; the user.
async fn checked_storm<DB: InTransaction>(store: Arc<dyn Store>, pool: &sqlx::Pool<DB>) -> Uuid {
    use sqlx::Connection as _;

    let user = create_user(&*store).await;
    {
        let mut connection = pool.acquire().await.unwrap();
        assert!(!DB::in_transaction(&mut connection).await, "the probe is wrong outside a transaction");
        let mut tx = connection.begin().await.unwrap();
        assert!(DB::in_transaction(&mut tx).await, "the probe is wrong inside a transaction");
        tx.rollback().await.unwrap();
    }
    storm(store, user).await;
    user
}

/// Every connection of `pool` at once, and how many of them are inside a transaction.
async fn every_connection<DB: InTransaction>(pool: &sqlx::Pool<DB>) -> (Vec<sqlx::pool::PoolConnection<DB>>, usize) {
    let mut connections = Vec::new();
    for _ in 0..pool.options().get_max_connections() {
        let acquired = tokio::time::timeout(Duration::from_secs(5), pool.acquire()).await;
        connections.push(acquired.expect("a pooled connection was never returned").unwrap());
    }
    let mut in_transaction = 0;
    for connection in &mut connections {
        in_transaction += usize::from(DB::in_transaction(connection).await);
    }
    (connections, in_transaction)
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cancelled_operations_leave_no_transaction_open() {
    use auth_storage::{PostgresOptions, PostgresStore};

    let Some(url) = auth_test_support::fresh_postgres_database().await else { return };
    notices::install();
    let mut options = PostgresOptions::default();
    options.max_connections = MAX_CONNECTIONS;
    let store = Arc::new(PostgresStore::connect_with(&url, options).await.unwrap());
    let user = checked_storm(store.clone(), store.pool()).await;
    let warnings = notices::wrong_transaction_state();

    let (mut connections, in_transaction) = every_connection(store.pool()).await;
    let idle_in_transaction: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut *connections[0])
    .await
    .unwrap();
    drop(connections);
    assert_eq!(
        (warnings, in_transaction, idle_in_transaction),
        (0, 0, 0),
        "after cancelled requests: (warnings of a BEGIN inside a transaction or a COMMIT/ROLLBACK outside one, \
         pooled connections inside a transaction by now(), by pg_stat_activity)"
    );

    let other_client = Arc::new(PostgresStore::connect(&url).await.unwrap());
    still_works(store, other_client, user).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cancelled_operations_leave_no_transaction_open() {
    use auth_storage::{SqliteOptions, SqliteStore};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("auth.db").display());
    let mut options = SqliteOptions::default();
    options.max_connections = MAX_CONNECTIONS;
    let store = Arc::new(SqliteStore::connect_with(&url, options).await.unwrap());
    let user = checked_storm(store.clone(), store.pool()).await;

    let (connections, in_transaction) = every_connection(store.pool()).await;
    drop(connections);
    assert_eq!(in_transaction, 0, "pooled connections inside a transaction after cancelled requests");

    let other_client = Arc::new(SqliteStore::connect(&url).await.unwrap());
    still_works(store, other_client, user).await;
}
