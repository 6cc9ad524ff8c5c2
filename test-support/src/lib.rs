//! # auth-test-support
//!
//! The fixtures every test suite of this workspace needs, in one place (not published):
//!
//! - [`service_url`], [`fresh_postgres_database`], [`fresh_database`], [`free_port`]: the
//!   PostgreSQL and Redis that `scripts/test.sh` starts (`AUTH_TEST_*` URLs; a test skips
//!   without them outside CI and fails without them under CI).
//! - [`OwnRedis`]: a `redis-server` of a test's own, for tests that disturb the server.
//! - [`smtp::SmtpSink`]: a real SMTP server on loopback that keeps every message.
//! - [`siteverify::Siteverify`]: a local Turnstile / reCAPTCHA / hCaptcha siteverify endpoint.
//! - [`new_session`], [`recording::RecordingSecretStore`]: store fixtures.
//! - [`EventRecorder`]: a `tracing` subscriber that keeps log lines, to assert on what is logged
//!   (and that secrets are not).

pub mod recording;
pub mod siteverify;
pub mod smtp;

/// The URL in `var`; `None` (skip) outside CI, a failure under CI, where `scripts/test.sh` sets
/// every `AUTH_TEST_*` URL.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("CI is set but {var} is not: run scripts/test.sh"),
        _ => None,
    }
}

/// A new, empty database on the test PostgreSQL server (`AUTH_TEST_POSTGRES_URL`); `None` as
/// [`service_url`] says.
pub async fn fresh_postgres_database() -> Option<String> {
    let base = service_url("AUTH_TEST_POSTGRES_URL")?;
    Some(fresh_database(&base).await)
}

/// A new, empty database, named `test_<random>`, on the PostgreSQL server of `base` (a
/// PostgreSQL URL whose role may `CREATE DATABASE`); its URL.
///
/// # Panics
/// If the server cannot be reached or refuses.
pub async fn fresh_database(base: &str) -> String {
    use sqlx::Connection as _;
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(base).await.expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let (server, _) = base.rsplit_once('/').expect("a database URL");
    format!("{server}/{name}")
}

/// A free loopback port (free when asked: another process may take it before it is bound).
///
/// # Panics
/// If no port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` of the test's own on a free loopback port, without persistence, killed when
/// dropped: for tests that disturb the server (killing clients) or need their own settings.
pub struct OwnRedis {
    child: std::process::Child,
    /// The port it listens on, at 127.0.0.1.
    pub port: u16,
}

impl OwnRedis {
    /// Starts `redis-server` with `args` added to its command line and waits until it answers
    /// `PING`. `None` (skip) when `redis-server` is not installed, outside CI; a failure under CI.
    pub async fn start(args: &[&str]) -> Option<Self> {
        // The free port is released before redis-server binds it: if another process took it
        // meanwhile, the server exits and the next attempt picks another port.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let spawned = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(args)
                .stdout(std::process::Stdio::null())
                .spawn();
            let child = match spawned {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "CI is set but redis-server is not installed (apt-get install redis-server)"
                    );
                    return None;
                }
                Err(e) => panic!("cannot start redis-server: {e}"),
            };
            let mut server = Self { child, port };
            if server.answers_ping().await {
                return Some(server);
            }
        }
        panic!("redis-server {args:?} did not start");
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn answers_ping(&mut self) -> bool {
        let client = redis::Client::open(self.url()).unwrap();
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok() {
                    return true;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A session of `user_id` created, last used at `at` and expiring 30 days later, whose refresh
/// token is `refresh`.
pub fn new_session(user_id: uuid::Uuid, refresh: &str, at: chrono::DateTime<chrono::Utc>) -> auth_core::NewSession {
    auth_core::NewSession {
        session: auth_core::Session {
            id: uuid::Uuid::new_v4(),
            user_id,
            created_at: at,
            last_used_at: at,
            expires_at: at + chrono::TimeDelta::days(30),
            ip: Some("127.0.0.1".into()),
            user_agent: Some("auth-storage tests".into()),
            auth_method: auth_core::AuthMethod::Password,
            revoked_at: None,
        },
        refresh_token_hash: auth_core::TokenHash::of(refresh),
    }
}

/// A `tracing` subscriber that records every event its filter lets through as one line, its
/// fields `name=value` joined by spaces. Clones share the lines.
#[derive(Clone)]
pub struct EventRecorder {
    filter: fn(&tracing::Metadata<'_>) -> bool,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl EventRecorder {
    /// Records the events whose metadata `filter` accepts, once installed.
    pub fn new(filter: fn(&tracing::Metadata<'_>) -> bool) -> Self {
        Self { filter, lines: Default::default() }
    }

    /// Records the events of this thread until the guard is dropped: under a current-thread
    /// runtime (`#[tokio::test]`), those of the test, and not those of tests running alongside.
    pub fn set_default(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(self.clone())
    }

    /// Records the events of every thread without a default of its own, for the rest of the
    /// process; panics if a global subscriber is already set, so call it once per process.
    pub fn set_global_default(&self) {
        tracing::subscriber::set_global_default(self.clone()).expect("no other global subscriber");
    }

    /// The lines recorded so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The lines recorded so far, which are forgotten.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

/// Collects an event's fields as `name=value` joined by spaces.
struct FieldsLine(String);

impl tracing::field::Visit for FieldsLine {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.push(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}

impl FieldsLine {
    fn push(&mut self, field: &tracing::field::Field, value: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        let separator = if self.0.is_empty() { "" } else { " " };
        write!(self.0, "{separator}{}={value}", field.name()).unwrap();
    }
}

impl tracing::Subscriber for EventRecorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        (self.filter)(metadata)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = FieldsLine(String::new());
        event.record(&mut line);
        self.lines.lock().unwrap().push(line.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}
