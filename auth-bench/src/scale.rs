//! `auth-bench --scale`: the example server as a user runs it, on each backend, at scale, next
//! to better-auth.
//!
//! Every server is the real `auth-example-server` binary (built next to this one:
//! `cargo build --release -p auth-bench -p auth-example-server`), started with its `AUTH_*`
//! variables and driven over loopback by the same load generator as the rest of the bench:
//! memory (at the default log level and with `AUTH_LOG=off`), SQLite (a file in a temporary
//! directory: the default deployment) and, with `AUTH_BENCH_POSTGRES_URL`, PostgreSQL (a fresh
//! database, two instances, no Redis). better-auth runs on Node from `peer/better-auth` (its
//! memory adapter) when `node` and `npm` are there.
//!
//! Phases, in this order:
//! 1. rounds of every throughput variant, interleaved and alternating direction: each backend's
//!    protected route (`GET /api/protected`: `RequireAuth` + `CurrentUser`) and open route
//!    (`GET /api/health`) of the same server, refresh on each backend, login, better-auth's
//!    protected route (`auth.api.getSession`) and sign-in;
//! 2. login p99, `GET /admin/users` first-page p99 and a prefix search's p99 at 1 000 users,
//!    then users bulk-loaded with one precomputed hash (the benchmark user's PHC string) by SQL
//!    up to 1 000 000, then all three again;
//! 3. 100 000 sessions (one per user, issued through `Auth::issue_session` by this process on
//!    the same SQLite file) whose access tokens the load generator cycles through, against the
//!    open route, and the server's resident memory before and after it has seen them all;
//! 4. PostgreSQL: under load on instance B, a logout on instance A, then B polled until it
//!    refuses the token: the time a revocation takes to reach another instance.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use auth_core::{AuthMethod, RequestContext, SecretString, UserStore as _};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{
    connect, median, median_ratio, percentile, request, round3, send, throughput, Load, EMAIL, PASSWORD, SECRET, USER,
};

/// The administrator that lists users.
const ADMIN: &str = "benchadmin";
/// Users after the bulk loads.
const USERS_SMALL: u32 = 1_000;
const USERS_LARGE: u32 = 1_000_000;
/// Distinct live sessions (and access tokens) of phase 3.
const SESSIONS: u32 = 100_000;

/// A running example server (or better-auth), killed when dropped.
struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `exe` with `env` on a free loopback port and waits until `health` answers 200.
    async fn start(
        name: &str,
        command: &mut tokio::process::Command,
        port_var: &str,
        port_value: impl Fn(SocketAddr) -> String,
        health: &str,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::File::create(log)?;
        let child = command
            .env(port_var, port_value(addr))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the {name} server"))?;
        let server = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut sender) = connect(addr).await {
                if let Ok((200, _, _)) = send(&mut sender, request("GET", health, None, None)).await {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                bail!("the {name} server did not answer {health} within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident memory of the server process (`VmRSS`), bytes.
    fn rss_bytes(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("server exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .context("no VmRSS")?
            .parse()?;
        Ok(kib * 1024)
    }
}

/// The settings every example server of the run shares: one master secret (so this process's
/// `Auth` on the same database issues tokens they accept), no rate limits, a data directory.
fn example_env(dir: &Path, database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AUTH_DATABASE_URL", database_url.to_owned()),
        ("AUTH_JWT_SECRET", String::from_utf8_lossy(SECRET).into_owned()),
        ("AUTH_RATE_LIMITS", "off".to_owned()),
        ("AUTH_DATA_DIR", dir.display().to_string()),
    ]
}

async fn start_example(exe: &Path, dir: &Path, name: &str, env: &[(&str, String)]) -> anyhow::Result<Server> {
    let mut command = tokio::process::Command::new(exe);
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        command.env(k, v);
    }
    Server::start(name, &mut command, "AUTH_BIND", |a| a.to_string(), "/api/health", &dir.join(format!("{name}.log")))
        .await
}

/// One request; status and JSON body.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    header: Option<(&str, &str)>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut sender = connect(addr).await?;
    let (status, body, _) = send(&mut sender, request(method, path, header, body)).await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

async fn login(addr: SocketAddr, username: &str) -> anyhow::Result<Value> {
    let (status, body) =
        call(addr, "POST", "/api/auth/login", None, Some(&json!({"username": username, "password": PASSWORD}))).await?;
    if status != 200 {
        bail!("login of {username} on {addr}: status {status}: {body}");
    }
    Ok(body)
}

fn bearer(tokens: &Value) -> (&'static str, String) {
    ("authorization", format!("Bearer {}", tokens["access_token"].as_str().unwrap_or_default()))
}

/// Latencies of `n` sequential requests, each must answer `status`.
async fn sequential_latencies(
    addr: SocketAddr,
    n: usize,
    status: u16,
    make: impl Fn() -> hyper::Request<http_body_util::Full<axum::body::Bytes>>,
) -> anyhow::Result<Vec<Duration>> {
    let mut sender = connect(addr).await?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let (got, body, _) = send(&mut sender, make()).await?;
        samples.push(start.elapsed());
        if got != status {
            bail!("status {got}, expected {status}: {}", String::from_utf8_lossy(&body));
        }
    }
    Ok(samples)
}

/// A SQL database the example servers of one backend share, with bulk loading.
enum Database {
    Sqlite { url: String },
    Postgres { url: String, admin_url: String, name: String },
}

impl Database {
    fn url(&self) -> &str {
        match self {
            Self::Sqlite { url } | Self::Postgres { url, .. } => url,
        }
    }

    /// A fresh database on the server of `base` (dropped at the end of the run).
    async fn fresh_postgres(base: &str) -> anyhow::Result<Self> {
        use sqlx::Connection as _;
        let name = format!("auth_bench_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(base).await.context("AUTH_BENCH_POSTGRES_URL")?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
        let (prefix, _) = base.rsplit_once('/').context("AUTH_BENCH_POSTGRES_URL has no database name")?;
        Ok(Self::Postgres { url: format!("{prefix}/{name}"), admin_url: base.to_owned(), name })
    }

    async fn drop_database(&self) {
        use sqlx::Connection as _;
        if let Self::Postgres { admin_url, name, .. } = self {
            if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
            }
        }
    }

    /// Users `bulk<from>` … `bulk<to - 1>`, each with the benchmark user's password hash, role
    /// `user`, ids `00000000-0000-7000-8000-<n as 12 hex digits>`: one statement.
    async fn bulk_load(&self, from: u32, to: u32) -> anyhow::Result<()> {
        use sqlx::Connection as _;
        if from >= to {
            return Ok(());
        }
        let start = Instant::now();
        match self {
            Self::Sqlite { url } => {
                let mut c = sqlx::SqliteConnection::connect(url).await?;
                sqlx::query(
                    "WITH RECURSIVE n(x) AS (SELECT $1 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < $2) \
                     INSERT INTO auth_users (id, username, username_key, email, email_key, email_verified, \
                     password_hash, role, status, preferences, metadata, created_at, updated_at) \
                     SELECT printf('00000000-0000-7000-8000-%012x', x), printf('bulk%07d', x), printf('bulk%07d', x), \
                     NULL, NULL, 0, u.password_hash, 'user', 'active', u.preferences, u.metadata, u.created_at, \
                     u.updated_at FROM n, (SELECT * FROM auth_users WHERE username_key = 'bench') AS u",
                )
                .bind(i64::from(from))
                .bind(i64::from(to))
                .execute(&mut c)
                .await?;
            }
            Self::Postgres { url, .. } => {
                let mut c = sqlx::PgConnection::connect(url).await?;
                sqlx::query(
                    "INSERT INTO auth_users (id, username, username_key, email, email_key, email_verified, \
                     password_hash, role, status, preferences, metadata, created_at, updated_at) \
                     SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(x), 12, '0'))::uuid, \
                     'bulk' || lpad(x::text, 7, '0'), 'bulk' || lpad(x::text, 7, '0'), NULL, NULL, false, \
                     u.password_hash, 'user', 'active', u.preferences, u.metadata, u.created_at, u.updated_at \
                     FROM generate_series($1::int, $2::int - 1) AS x, \
                     (SELECT * FROM auth_users WHERE username_key = 'bench') AS u",
                )
                .bind(i32::try_from(from)?)
                .bind(i32::try_from(to)?)
                .execute(&mut c)
                .await?;
                sqlx::query("ANALYZE auth_users").execute(&mut c).await?;
            }
        }
        eprintln!("bulk-loaded users {from}..{to} in {:.1} s", start.elapsed().as_secs_f64());
        Ok(())
    }
}

fn bulk_id(n: u32) -> Uuid {
    Uuid::parse_str(&format!("00000000-0000-7000-8000-{n:012x}")).expect("uuid")
}

/// The `auth-example-server` binary: `AUTH_BENCH_EXAMPLE_SERVER`, else next to this binary.
fn example_server() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("AUTH_BENCH_EXAMPLE_SERVER") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("auth-example-server");
    if !path.exists() {
        bail!(
            "--scale runs the example server: build it next to auth-bench (`cargo build --release -p auth-bench -p \
             auth-example-server`) or set AUTH_BENCH_EXAMPLE_SERVER"
        );
    }
    Ok(path)
}

/// better-auth on Node, or why it cannot run here.
async fn start_better_auth(dir: &Path) -> Result<Server, String> {
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("peer/better-auth");
    if !peer.join("node_modules").exists() {
        let status = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&peer)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .map_err(|e| format!("npm is not available: {e}"))?;
        if !status.success() {
            return Err(format!("`npm ci` in {} failed ({status})", peer.display()));
        }
    }
    let mut command = tokio::process::Command::new("node");
    command.arg("server.mjs").current_dir(&peer).env("NODE_ENV", "production");
    Server::start("better-auth", &mut command, "PORT", |a| a.port().to_string(), "/open", &dir.join("better-auth.log"))
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Runs phases 1-4 and adds their figures to `results`.
#[allow(clippy::too_many_lines)] // One phase after another, each a few lines.
pub(crate) async fn run(quick: bool, results: &mut Value) -> anyhow::Result<()> {
    let (rounds, duration, conns) =
        if quick { (6, Duration::from_secs(2), 16) } else { (12, Duration::from_millis(2500), 16) };
    let exe = example_server()?;
    let dir = std::env::temp_dir().join(format!("auth-bench-scale-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = Database::Sqlite { url: format!("sqlite://{}", dir.join("auth.db").display()) };
    let postgres = match std::env::var("AUTH_BENCH_POSTGRES_URL") {
        Ok(base) => Some(Database::fresh_postgres(&base).await?),
        Err(_) => None,
    };
    let result = phases(&exe, &dir, &sqlite, postgres.as_ref(), rounds, duration, conns, results).await;
    if let Some(pg) = &postgres {
        pg.drop_database().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[allow(clippy::too_many_arguments, clippy::too_many_lines)]
async fn phases(
    exe: &Path,
    dir: &Path,
    sqlite: &Database,
    postgres: Option<&Database>,
    rounds: usize,
    duration: Duration,
    conns: usize,
    results: &mut Value,
) -> anyhow::Result<()> {
    let memory_env = example_env(dir, "memory");
    let mut log_off_env = memory_env.clone();
    log_off_env.push(("AUTH_LOG", "off".to_owned()));
    let memory = start_example(exe, dir, "memory", &memory_env).await?;
    let memory_log_off = start_example(exe, dir, "memory-log-off", &log_off_env).await?;
    let sqlite_server = start_example(exe, dir, "sqlite", &example_env(dir, sqlite.url())).await?;
    let (pg_a, pg_b) = match postgres {
        Some(db) => (
            Some(start_example(exe, dir, "postgres-a", &example_env(dir, db.url())).await?),
            Some(start_example(exe, dir, "postgres-b", &example_env(dir, db.url())).await?),
        ),
        None => (None, None),
    };
    let better_auth = start_better_auth(dir).await;
    if let Err(why) = &better_auth {
        eprintln!("better-auth is not measured: {why}");
    }

    // The benchmark account on every server (PostgreSQL instances share one database).
    let register = json!({"username": USER, "email": EMAIL, "password": PASSWORD});
    let mut servers: Vec<(&str, SocketAddr)> =
        vec![("memory", memory.addr), ("memory_log_off", memory_log_off.addr), ("sqlite", sqlite_server.addr)];
    if let Some(a) = &pg_a {
        servers.push(("postgres", a.addr));
    }
    let mut tokens = std::collections::HashMap::new();
    for (name, addr) in &servers {
        let (status, body) = call(*addr, "POST", "/api/auth/register", None, Some(&register)).await?;
        if status != 201 {
            bail!("register on {name}: status {status}: {body}");
        }
        tokens.insert(*name, body);
    }

    let get = |path: &'static str, tokens: &Value| Load::Get { path, header: Some(bearer(tokens)) };
    let mut variants: Vec<(&str, SocketAddr, Load)> = vec![
        ("scale_open_memory_rps", memory.addr, get("/api/health", &tokens["memory"])),
        ("scale_protected_memory_rps", memory.addr, get("/api/protected", &tokens["memory"])),
        ("scale_open_memory_log_off_rps", memory_log_off.addr, get("/api/health", &tokens["memory_log_off"])),
        ("scale_open_sqlite_rps", sqlite_server.addr, get("/api/health", &tokens["sqlite"])),
        ("scale_protected_sqlite_rps", sqlite_server.addr, get("/api/protected", &tokens["sqlite"])),
        ("scale_refresh_memory_rps", memory.addr, Load::Refresh { path: "/api/auth/refresh" }),
        ("scale_refresh_sqlite_rps", sqlite_server.addr, Load::Refresh { path: "/api/auth/refresh" }),
        (
            "scale_login_memory_rps",
            memory.addr,
            Load::Login { path: "/api/auth/login", body: json!({"username": USER, "password": PASSWORD}) },
        ),
    ];
    if let Some(a) = &pg_a {
        variants.push(("scale_open_postgres_rps", a.addr, get("/api/health", &tokens["postgres"])));
        variants.push(("scale_protected_postgres_rps", a.addr, get("/api/protected", &tokens["postgres"])));
        variants.push(("scale_refresh_postgres_rps", a.addr, Load::Refresh { path: "/api/auth/refresh" }));
    }
    if let Ok(peer) = &better_auth {
        let mut sender = connect(peer.addr).await?;
        let body = json!({"email": EMAIL, "password": PASSWORD});
        let (status, reply, cookie) =
            send(&mut sender, request("POST", "/api/auth/sign-in/email", None, Some(&body))).await?;
        let cookie = cookie
            .filter(|_| status == 200)
            .with_context(|| format!("better-auth sign-in: status {status}: {}", String::from_utf8_lossy(&reply)))?;
        variants.push(("better_auth_open_rps", peer.addr, Load::Get { path: "/open", header: None }));
        variants.push((
            "better_auth_protected_rps",
            peer.addr,
            Load::Get { path: "/protected", header: Some(("cookie", cookie)) },
        ));
        variants.push(("better_auth_login_rps", peer.addr, Load::Login { path: "/api/auth/sign-in/email", body }));
    }
    // One refresh chain per connection on each backend.
    let mut chains: std::collections::HashMap<&str, Vec<String>> = std::collections::HashMap::new();
    for (name, addr, load) in &variants {
        if let Load::Refresh { .. } = load {
            let mut chain = Vec::new();
            for _ in 0..conns {
                chain.push(login(*addr, USER).await?["refresh_token"].as_str().context("refresh_token")?.to_owned());
            }
            chains.insert(name, chain);
        }
    }

    // Phase 1.
    let mut samples: std::collections::HashMap<&str, Vec<f64>> = std::collections::HashMap::new();
    for round in 1..=rounds {
        let order: Vec<_> = if round % 2 == 0 { variants.iter().rev().collect() } else { variants.iter().collect() };
        for (name, addr, load) in order {
            let chain = chains.entry(name).or_default();
            let rps = throughput(*addr, load, conns, duration, chain).await?;
            eprintln!("scale round {round}/{rounds} {name}: {rps:.0}/s");
            samples.entry(name).or_default().push(rps);
        }
    }

    // Phase 2 at 1 000 users, with an admin to list them.
    let mut p99s: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    let mut sql_servers: Vec<(&str, &Database, SocketAddr)> = vec![("sqlite", sqlite, sqlite_server.addr)];
    if let (Some(db), Some(a)) = (postgres, &pg_a) {
        sql_servers.push(("postgres", db, a.addr));
    }
    let mut admins = Vec::new();
    for (name, db, addr) in &sql_servers {
        let auth = service_on(dir, db.url()).await?;
        auth.create_admin(ADMIN, &SecretString::new(PASSWORD)).await?;
        auth.flush_audit().await;
        admins.push(login(*addr, ADMIN).await?);
        db.bulk_load(1, USERS_SMALL - 1).await?;
        measure_p99s(name, *addr, admins.last().expect("admin"), USERS_SMALL, &mut p99s).await?;
    }

    // Phase 3 on SQLite: 100 000 users, one session each.
    sqlite.bulk_load(USERS_SMALL - 1, SESSIONS).await?;
    let access = issue_sessions(dir, sqlite.url(), SESSIONS).await?;
    let rss_before = sqlite_server.rss_bytes()?;
    let many = Load::GetMany { path: "/api/protected", headers: Arc::new(access) };
    // One pass over every token: each session, user and verified token is now cached.
    let warm = Instant::now();
    let seen = crate::requests(sqlite_server.addr, &many, conns, SESSIONS as usize).await?;
    let rss_after = sqlite_server.rss_bytes()?;
    eprintln!(
        "first pass over {seen} tokens in {:.1} s; RSS {rss_before} -> {rss_after} bytes",
        warm.elapsed().as_secs_f64()
    );
    let open_sqlite = get("/api/health", &tokens["sqlite"]);
    for round in 1..=rounds {
        let pair = [("scale_open_sqlite_100k_rps", &open_sqlite), ("scale_protected_sqlite_100k_sessions_rps", &many)];
        let order: Vec<_> = if round % 2 == 0 { pair.iter().rev().collect() } else { pair.iter().collect() };
        for (name, load) in order {
            let rps = throughput(sqlite_server.addr, load, conns, duration, &mut []).await?;
            eprintln!("scale round {round}/{rounds} {name}: {rps:.0}/s");
            samples.entry(name).or_default().push(rps);
        }
    }

    // Phase 2 again at 1 000 000 users.
    for ((name, db, addr), admin) in sql_servers.iter().zip(&admins) {
        let have = if *name == "sqlite" { SESSIONS } else { USERS_SMALL - 1 };
        db.bulk_load(have, USERS_LARGE).await?;
        measure_p99s(name, *addr, admin, USERS_LARGE, &mut p99s).await?;
    }

    // Phase 4.
    let revocation = match (postgres, &pg_a, &pg_b) {
        (Some(db), Some(a), Some(b)) => Some(revocation_delays(dir, db.url(), a.addr, b.addr, conns).await?),
        _ => None,
    };

    // Figures.
    let ratio = |a: &str, b: &str| -> Option<f64> {
        let (Some(a), Some(b)) = (samples.get(a), samples.get(b)) else { return None };
        Some(round3(median_ratio(a, b)))
    };
    let put = |results: &mut Value, key: &str, value: Option<f64>| {
        if let Some(v) = value {
            results[key] = json!(v);
        }
    };
    put(results, "protected_ratio_memory_example", ratio("scale_protected_memory_rps", "scale_open_memory_rps"));
    put(results, "protected_ratio_sqlite", ratio("scale_protected_sqlite_rps", "scale_open_sqlite_rps"));
    put(results, "protected_ratio_postgres", ratio("scale_protected_postgres_rps", "scale_open_postgres_rps"));
    put(
        results,
        "protected_ratio_100k_sessions",
        ratio("scale_protected_sqlite_100k_sessions_rps", "scale_open_sqlite_100k_rps"),
    );
    put(results, "logging_ratio", ratio("scale_open_memory_rps", "scale_open_memory_log_off_rps"));
    put(results, "refresh_ratio_sqlite", ratio("scale_refresh_sqlite_rps", "scale_refresh_memory_rps"));
    put(results, "refresh_ratio_postgres", ratio("scale_refresh_postgres_rps", "scale_refresh_memory_rps"));
    put(results, "ratio_vs_better_auth_protected", ratio("scale_protected_memory_rps", "better_auth_protected_rps"));
    put(results, "ratio_vs_better_auth_login", ratio("scale_login_memory_rps", "better_auth_login_rps"));
    put(results, "better_auth_protected_ratio", ratio("better_auth_protected_rps", "better_auth_open_rps"));
    for (name, values) in &mut samples {
        results[*name] = json!(median(values).round());
    }
    let rss_per_session = rss_after.saturating_sub(rss_before) / u64::from(SESSIONS);
    results["rss_bytes_per_session"] = json!(rss_per_session);
    let worst = |suffix: &str| {
        sql_servers
            .iter()
            .filter_map(|(name, _, _)| {
                Some(p99s.get(&format!("{name}_{suffix}_1m"))? / p99s.get(&format!("{name}_{suffix}_1k"))?)
            })
            .fold(f64::NAN, f64::max)
    };
    results["users_1m_login_p99_ratio"] = json!(round3(worst("login_p99_ms")));
    results["users_1m_admin_list_p99_ratio"] = json!(round3(worst("admin_list_p99_ms")));
    results["users_1m_admin_search_p99_ratio"] = json!(round3(worst("admin_search_p99_ms")));
    let admin_1m = sql_servers
        .iter()
        .filter_map(|(name, _, _)| p99s.get(&format!("{name}_admin_list_p99_ms_1m")).copied())
        .fold(f64::NAN, f64::max);
    results["admin_list_1m_p99_ms"] = json!(round3(admin_1m));
    for (key, value) in &p99s {
        results[key.as_str()] = json!(round3(*value));
    }
    if let Some(mut delays) = revocation {
        results["revocation_visible_p99_ms"] = json!(round3(percentile(&mut delays, 0.99).as_secs_f64() * 1000.0));
        results["revocation_visible_median_ms"] = json!(round3(percentile(&mut delays, 0.5).as_secs_f64() * 1000.0));
    }
    if let Err(why) = better_auth {
        results["better_auth"] = json!(format!("not measured: {why}"));
    }
    Ok(())
}

/// An `Auth` of this process on `database_url`, with the servers' secret: what it issues, they
/// accept.
async fn service_on(dir: &Path, database_url: &str) -> anyhow::Result<auth_core::Auth> {
    let env: std::collections::HashMap<&str, String> = example_env(dir, database_url).into_iter().collect();
    let config = auth_example_server::ServerConfig::from_lookup(|k| env.get(k).cloned())?;
    auth_example_server::build_auth(&config).await
}

/// On `addr` with `users` users: the p99 of a login (a bulk user near the end), of the first page
/// of `GET /admin/users`, and of a search by a username prefix that 100 users match, the ones
/// created last (so neither an id-order scan nor luck finds them early). Keyed
/// `<name>_login_p99_ms_1k`, `<name>_admin_list_p99_ms_1k`, `<name>_admin_search_p99_ms_1k`
/// (`_1m` at 1 000 000 users).
async fn measure_p99s(
    name: &str,
    addr: SocketAddr,
    admin: &Value,
    users: u32,
    p99s: &mut std::collections::HashMap<String, f64>,
) -> anyhow::Result<()> {
    let scale = if users >= USERS_LARGE { "1m" } else { "1k" };
    let username = format!("bulk{:07}", users - 2);
    let body = json!({"username": username, "password": PASSWORD});
    let mut login =
        sequential_latencies(addr, 40, 200, || request("POST", "/api/auth/login", None, Some(&body))).await?;
    let (header, value) = bearer(admin);
    let page = "/api/auth/admin/users?limit=50";
    let mut list = sequential_latencies(addr, 500, 200, || request("GET", page, Some((header, &value)), None)).await?;
    // `bulk00009` at 1 000 users (bulk0000900-999), `bulk09999` at 1 000 000.
    let search = format!("/api/auth/admin/users?limit=50&query=bulk{:05}", (users - 100) / 100);
    let mut found =
        sequential_latencies(addr, 500, 200, || request("GET", &search, Some((header, &value)), None)).await?;
    let ms = |samples: &mut [Duration]| percentile(samples, 0.99).as_secs_f64() * 1000.0;
    let (login_p99, list_p99, search_p99) = (ms(&mut login), ms(&mut list), ms(&mut found));
    eprintln!(
        "{name} at {users} users: login p99 {login_p99:.1} ms, admin list p99 {list_p99:.2} ms, search p99 \
         {search_p99:.2} ms"
    );
    p99s.insert(format!("{name}_login_p99_ms_{scale}"), login_p99);
    p99s.insert(format!("{name}_admin_list_p99_ms_{scale}"), list_p99);
    p99s.insert(format!("{name}_admin_search_p99_ms_{scale}"), search_p99);
    Ok(())
}

/// One session for each of the bulk users `bulk0000001`… (`count` in all, the benchmark user's
/// id stands in for user 0), issued by an `Auth` of this process on the same database; their
/// `Authorization` header values.
async fn issue_sessions(dir: &Path, database_url: &str, count: u32) -> anyhow::Result<Vec<String>> {
    let auth = service_on(dir, database_url).await?;
    let store = Arc::new(auth_storage::SqliteStore::connect(database_url).await?);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 8;
    for w in 0..workers {
        let (auth, store) = (auth.clone(), store.clone());
        tasks.spawn(async move {
            let mut out = Vec::new();
            let mut n = 1 + w;
            while n < count {
                let user = store.user_by_id(bulk_id(n)).await?.with_context(|| format!("no bulk user {n}"))?.user;
                let issued = auth.issue_session(&user, AuthMethod::External, &RequestContext::default()).await?;
                out.push(format!("Bearer {}", issued.access_token));
                n += workers;
            }
            anyhow::Ok(out)
        });
    }
    let mut headers = Vec::with_capacity(count as usize);
    while let Some(done) = tasks.join_next().await {
        headers.extend(done??);
    }
    auth.flush_audit().await;
    eprintln!("issued {} sessions in {:.1} s", headers.len(), start.elapsed().as_secs_f64());
    Ok(headers)
}

/// Under load on instance B, 100 times: a session seen live (and so cached) by B is logged out
/// on A; B is then asked every 0.2 ms until it refuses. The delays from A's answer to B's first
/// 401.
async fn revocation_delays(
    dir: &Path,
    database_url: &str,
    a: SocketAddr,
    b: SocketAddr,
    conns: usize,
) -> anyhow::Result<Vec<Duration>> {
    let auth = service_on(dir, database_url).await?;
    let store = auth_storage::PostgresStore::connect(database_url).await?;
    let user = store.user_by_id(bulk_id(1)).await?.context("no bulk user 1")?.user;
    let background = auth.issue_session(&user, AuthMethod::External, &RequestContext::default()).await?;
    let load = Load::Get {
        path: "/api/protected",
        header: Some(("authorization", format!("Bearer {}", background.access_token))),
    };
    let samples = 100;
    let stop = Instant::now() + Duration::from_secs(120);
    let busy = tokio::spawn(async move {
        let mut none = [];
        while Instant::now() < stop {
            if throughput(b, &load, conns / 2, Duration::from_millis(500), &mut none).await.is_err() {
                break;
            }
        }
    });
    let mut delays = Vec::with_capacity(samples);
    let mut probe = connect(b).await?;
    for _ in 0..samples {
        let issued = auth.issue_session(&user, AuthMethod::External, &RequestContext::default()).await?;
        let header = format!("Bearer {}", issued.access_token);
        for _ in 0..2 {
            let (status, _, _) =
                send(&mut probe, request("GET", "/api/protected", Some(("authorization", &header)), None)).await?;
            if status != 200 {
                bail!("instance B refused a live session: {status}");
            }
        }
        let (status, _) = call(a, "POST", "/api/auth/logout", Some(("authorization", &header)), None).await?;
        if status != 204 {
            bail!("logout on instance A: status {status}");
        }
        let logged_out = Instant::now();
        loop {
            let (status, _, _) =
                send(&mut probe, request("GET", "/api/protected", Some(("authorization", &header)), None)).await?;
            if status == 401 {
                delays.push(logged_out.elapsed());
                break;
            }
            if logged_out.elapsed() > Duration::from_secs(5) {
                bail!("instance B still accepted a logged-out session after 5 s");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    busy.abort();
    let mut sorted = delays.clone();
    eprintln!(
        "revocation visible on B: median {:.2} ms, p99 {:.2} ms",
        percentile(&mut sorted, 0.5).as_secs_f64() * 1000.0,
        percentile(&mut sorted, 0.99).as_secs_f64() * 1000.0
    );
    Ok(delays)
}

/// An SVG bar chart of protected and open-route throughput per setup, from `results`.
pub(crate) fn svg(results: &Value) -> String {
    let bars: Vec<(&str, &str, &str)> = vec![
        ("memory", "scale_open_memory_rps", "scale_protected_memory_rps"),
        ("SQLite", "scale_open_sqlite_rps", "scale_protected_sqlite_rps"),
        ("PostgreSQL", "scale_open_postgres_rps", "scale_protected_postgres_rps"),
        ("SQLite, 100k sessions", "scale_open_sqlite_100k_rps", "scale_protected_sqlite_100k_sessions_rps"),
        ("better-auth (memory)", "better_auth_open_rps", "better_auth_protected_rps"),
    ];
    let value = |key: &str| results.get(key).and_then(Value::as_f64);
    let rows: Vec<(&str, f64, f64)> =
        bars.iter().filter_map(|(label, open, protected)| Some((*label, value(open)?, value(protected)?))).collect();
    let max = rows.iter().map(|(_, o, p)| o.max(*p)).fold(1.0, f64::max);
    let (width, left, row_h) = (760.0, 190.0, 46.0);
    let height = 70.0 + row_h * rows.len() as f64;
    let scale = (width - left - 90.0) / max;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" \
         font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" \
         font-size=\"14\">Requests/s on one 2-core machine (auth-bench --quick --scale): open route vs protected route \
         (CurrentUser)</text>\n<rect x=\"{left}\" y=\"32\" width=\"12\" height=\"10\" fill=\"#b0b0b0\"/><text x=\"{}\" \
         y=\"41\">open route</text><rect x=\"{}\" y=\"32\" width=\"12\" height=\"10\" fill=\"#2b6cb0\"/><text \
         x=\"{}\" y=\"41\">protected route</text>\n",
        left + 16.0,
        left + 110.0,
        left + 126.0
    );
    for (i, (label, open, protected)) in rows.iter().enumerate() {
        let y = 55.0 + row_h * i as f64;
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{label}</text>\n<rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" \
             height=\"16\" fill=\"#b0b0b0\"/><text x=\"{:.1}\" y=\"{}\">{open:.0}</text>\n<rect x=\"{left}\" y=\"{}\" \
             width=\"{:.1}\" height=\"16\" fill=\"#2b6cb0\"/><text x=\"{:.1}\" y=\"{}\">{protected:.0} ({:.2})</text>\n",
            left - 8.0,
            y + 20.0,
            open * scale,
            left + open * scale + 4.0,
            y + 12.0,
            y + 18.0,
            protected * scale,
            left + protected * scale + 4.0,
            y + 30.0,
            protected / open,
        ));
    }
    out.push_str("</svg>\n");
    out
}
