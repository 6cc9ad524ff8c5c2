//! Helpers shared by the store test suites.

/// The URL in `var`; `None` (skip) outside CI, a failure under CI, where `scripts/test.sh` sets
/// every `AUTH_TEST_*` URL.
#[allow(dead_code)]
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("CI is set but {var} is not: run scripts/test.sh"),
        _ => None,
    }
}

/// A new, empty database on the test PostgreSQL server (`AUTH_TEST_POSTGRES_URL`); `None` as
/// [`service_url`] says.
#[cfg(feature = "postgres")]
#[allow(dead_code)]
pub async fn fresh_postgres_database() -> Option<String> {
    use sqlx::Connection as _;
    let base = service_url("AUTH_TEST_POSTGRES_URL")?;
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to AUTH_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let (server, _) = base.rsplit_once('/').expect("a database URL");
    Some(format!("{server}/{name}"))
}

/// A `redis-server` of the test's own on a free loopback port, without persistence, killed when
/// dropped: for tests that disturb the server (killing clients) or need their own settings.
#[cfg(feature = "redis")]
#[allow(dead_code)]
pub struct OwnRedis {
    child: std::process::Child,
    /// The port it listens on, at 127.0.0.1.
    pub port: u16,
}

#[cfg(feature = "redis")]
#[allow(dead_code)]
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

#[cfg(feature = "redis")]
impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
