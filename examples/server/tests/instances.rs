//! Several `auth-example-server` processes sharing one PostgreSQL (and one Redis) act as one
//! service; a store outage gives 503 and the service recovers by itself.

mod common;

use std::time::Duration;

use common::{free_port, fresh_database, repo_root, service_url, Instance, PASSWORD};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

struct Shared {
    database: String,
    redis: String,
    prefix: String,
}

/// A fresh database and Redis key prefix on the test servers; `None` outside CI without them.
async fn shared() -> Option<Shared> {
    let pg = service_url("AUTH_TEST_POSTGRES_URL")?;
    let redis = service_url("AUTH_TEST_REDIS_URL")?;
    Some(Shared {
        database: fresh_database(&pg).await,
        redis,
        prefix: format!("instances:{}:", uuid::Uuid::new_v4().simple()),
    })
}

async fn instance(shared: &Shared, extra: &[(&str, &str)]) -> Instance {
    let mut vars = vec![
        ("AUTH_DATABASE_URL", shared.database.as_str()),
        ("AUTH_REDIS_URL", shared.redis.as_str()),
        ("AUTH_REDIS_PREFIX", shared.prefix.as_str()),
        ("AUTH_RATE_LIMITS", "off"),
    ];
    vars.extend_from_slice(extra);
    Instance::start(&vars).await
}

async fn post(client: &Client, url: String, body: Value) -> (StatusCode, Value) {
    let res = client.post(url).json(&body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn get(client: &Client, url: String, token: &str) -> (StatusCode, Value) {
    let res = client.get(url).bearer_auth(token).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The first answer to `GET url` that is not 200, polling for at most 500 ms: what another
/// instance answers once a change published through Redis has reached it.
async fn until_not_ok(client: &Client, url: &str, token: &str) -> (StatusCode, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let (status, body) = get(client, url.to_owned(), token).await;
        if status != StatusCode::OK || tokio::time::Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn two_instances_sharing_postgres_and_redis_act_as_one_service() {
    let Some(shared) = shared().await else { return eprintln!("skipped: no PostgreSQL/Redis URLs") };
    let (a, b) = (instance(&shared, &[]).await, instance(&shared, &[]).await);
    let c = Client::new();

    let (status, reg) = post(&c, a.auth("/register"), json!({"username": "ana", "password": PASSWORD})).await;
    assert_eq!(status, 201, "{reg}");
    let (status, login) = post(&c, b.auth("/login"), json!({"username": "ana", "password": PASSWORD})).await;
    assert_eq!(status, 200, "registered on A, logged in on B: {login}");
    for token in [&reg["access_token"], &login["access_token"]] {
        for server in [&a, &b] {
            assert_eq!(get(&c, server.auth("/me"), token.as_str().unwrap()).await.0, 200);
        }
    }
    // Logout on A takes effect on B at once: B has the session in its session cache (it answered
    // it above), and the revocation reaches that cache by Redis pub/sub, in well under the 10 s an
    // entry may live.
    let res = c.post(a.auth("/logout")).bearer_auth(reg["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (status, body) = until_not_ok(&c, &b.auth("/me"), reg["access_token"].as_str().unwrap()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));

    // Refresh twice on A; the first token comes back on B. Its successor was spent too, so this
    // is reuse whatever the grace window (no waiting for it to pass): the session dies on both.
    let (status, second) = post(&c, a.auth("/refresh"), json!({"refresh_token": login["refresh_token"]})).await;
    assert_eq!(status, 200);
    let (status, next) = post(&c, a.auth("/refresh"), json!({"refresh_token": second["refresh_token"]})).await;
    assert_eq!(status, 200);
    let (status, body) = post(&c, b.auth("/refresh"), json!({"refresh_token": login["refresh_token"]})).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "refresh_token_reused"));
    let (status, body) = until_not_ok(&c, &a.auth("/me"), next["access_token"].as_str().unwrap()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));

    // Concurrent registration of one name across both: exactly one 201.
    let mut set = tokio::task::JoinSet::new();
    for (i, name) in ["Rival", "rival", "RIVAL", "riVal", "rivAL", "RiVaL"].into_iter().enumerate() {
        let url = if i % 2 == 0 { a.auth("/register") } else { b.auth("/register") };
        let c = c.clone();
        set.spawn(async move { post(&c, url, json!({"username": name, "password": PASSWORD})).await });
    }
    let results = set.join_all().await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, b)| *s == 201 || (*s == 409 && code(b) == "username_taken")), "{results:?}");
}

/// The code of the app holding `uri` for the time step `offset` steps from now.
fn totp_code(uri: &str, offset: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let at = now.checked_add_signed(offset * 30).unwrap();
    totp_rs::TOTP::from_url(uri).unwrap().generate(at)
}

/// A second factor enrolled through instance A works through B, and a TOTP code used on A is
/// refused on B: the last used step is kept in PostgreSQL, beside the user, for every instance.
/// Recovery codes are single use across instances too.
#[tokio::test]
async fn a_totp_code_used_on_one_instance_is_refused_on_the_other() {
    let Some(shared) = shared().await else { return eprintln!("skipped: no PostgreSQL/Redis URLs") };
    let (a, b) = (instance(&shared, &[]).await, instance(&shared, &[]).await);
    let c = Client::new();
    let (status, reg) = post(&c, a.auth("/register"), json!({"username": "mira", "password": PASSWORD})).await;
    assert_eq!(status, 201, "{reg}");
    let token = reg["access_token"].as_str().unwrap();
    let call = |url: String, body: Value| c.post(url).bearer_auth(token).json(&body).send();
    let enroll = call(a.auth("/mfa/totp/enroll"), json!({"password": PASSWORD})).await.unwrap();
    let uri = enroll.json::<Value>().await.unwrap()["otpauth_uri"].as_str().unwrap().to_owned();
    let confirm = call(b.auth("/mfa/totp/confirm"), json!({"code": totp_code(&uri, 0)})).await.unwrap();
    assert_eq!(confirm.status(), 200, "enrolled on A, confirmed on B");
    let recovery = confirm.json::<Value>().await.unwrap()["recovery_codes"].clone();

    let challenge = |server: &Instance| {
        let url = server.auth("/login");
        let c = c.clone();
        async move {
            let (status, body) = post(&c, url, json!({"username": "mira", "password": PASSWORD})).await;
            assert_eq!((status, &body["mfa_required"]), (StatusCode::OK, &json!(true)), "{body}");
            body["mfa_token"].as_str().unwrap().to_owned()
        }
    };
    // The next step's code (one step of drift is accepted) is unused after the confirmation.
    let next = totp_code(&uri, 1);
    let on_a = challenge(&a).await;
    let on_b = challenge(&b).await;
    let (status, body) = post(&c, a.auth("/login/mfa"), json!({"mfa_token": on_a, "code": next})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&c, b.auth("/login/mfa"), json!({"mfa_token": on_b, "code": next})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_mfa_code"), "replayed on B");
    let (status, body) = post(&c, b.auth("/login/mfa"), json!({"mfa_token": on_b, "recovery_code": recovery[0]})).await;
    assert_eq!(status, 200, "{body}");
    let again = challenge(&a).await;
    let (status, body) =
        post(&c, a.auth("/login/mfa"), json!({"mfa_token": again, "recovery_code": recovery[0]})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_mfa_code"), "spent on B");
}

/// An admin on instance A disables a user: the user's access token is refused by instance B on
/// its next request (B had the session in its cache). A user deleting their account through A is
/// refused by B at once, and neither Redis nor PostgreSQL keeps anything of the account but one
/// anonymized audit event.
#[tokio::test]
async fn a_user_disabled_or_deleted_through_one_instance_is_refused_by_the_other_at_once() {
    let Some(shared) = shared().await else { return eprintln!("skipped: no PostgreSQL/Redis URLs") };
    let admin = common::run(
        common::command(&[("AUTH_DATABASE_URL", &shared.database)]),
        &["create-admin", "--username", "root"],
        &format!("{PASSWORD}\n"),
    )
    .await;
    assert!(admin.status.success(), "{}", String::from_utf8_lossy(&admin.stderr));
    let (a, b) = (instance(&shared, &[]).await, instance(&shared, &[]).await);
    let c = Client::new();
    let (_, root) = post(&c, a.auth("/login"), json!({"username": "root", "password": PASSWORD})).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let (status, reg) = post(&c, a.auth("/register"), json!({"username": "uma", "password": PASSWORD})).await;
    assert_eq!(status, 201);
    let id = reg["user"]["id"].as_str().unwrap().to_owned();
    let (_, login) = post(&c, b.auth("/login"), json!({"username": "uma", "password": PASSWORD})).await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&c, b.auth("/me"), &token).await.0, 200, "B caches the live session");

    let res = c.patch(a.auth(&format!("/admin/users/{id}"))).bearer_auth(&root).json(&json!({"status": "disabled"}));
    assert_eq!(res.send().await.unwrap().status(), 200);
    let (status, body) = until_not_ok(&c, &b.auth("/me"), &token).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));

    let res = c.patch(a.auth(&format!("/admin/users/{id}"))).bearer_auth(&root).json(&json!({"status": "active"}));
    assert_eq!(res.send().await.unwrap().status(), 200);
    let (_, login) = post(&c, b.auth("/login"), json!({"username": "uma", "password": PASSWORD})).await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (_, refreshed) = post(&c, b.auth("/refresh"), json!({"refresh_token": login["refresh_token"]})).await;
    let token2 = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&c, b.auth("/me"), &token2).await.0, 200);
    let res = c.delete(a.auth("/me")).bearer_auth(&token).json(&json!({"password": PASSWORD})).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (status, body) = until_not_ok(&c, &b.auth("/me"), &token2).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));

    // Nothing of the account is left in Redis...
    let redis = redis::Client::open(shared.redis.as_str()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", shared.prefix)).query_async(&mut conn).await.unwrap();
    let sessions = [":session:", ":refresh:", ":user_sessions:", ":session_tokens:", ":secret:"];
    let left: Vec<&String> = keys.iter().filter(|k| sessions.iter().any(|p| k.contains(p))).collect();
    assert!(left.iter().all(|k| !k.contains(&id)), "{left:?}");
    // (root's one session with its token and token set, nothing else)
    assert_eq!(left.len(), 4, "{left:?}");
    // ...nor in PostgreSQL, but the anonymized audit event.
    let pool = sqlx::PgPool::connect(&shared.database).await.unwrap();
    let uid = uuid::Uuid::parse_str(&id).unwrap();
    let users: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM auth_users WHERE id = $1").bind(uid).fetch_one(&pool).await.unwrap();
    assert_eq!(users, 0);
    let events: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT type, ip FROM auth_audit_log WHERE user_id = $1")
            .bind(uid)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(events, [("account_deleted".to_owned(), None)]);
}

/// Without Redis, sessions live in PostgreSQL and each instance's session cache follows
/// `LISTEN`/`NOTIFY`: a logout on one instance reaches the other's cache at once.
#[tokio::test]
async fn two_instances_on_postgres_alone_see_each_others_logouts_at_once() {
    let Some(pg) = service_url("AUTH_TEST_POSTGRES_URL") else { return eprintln!("skipped: no PostgreSQL URL") };
    let database = fresh_database(&pg).await;
    let vars = [("AUTH_DATABASE_URL", database.as_str()), ("AUTH_RATE_LIMITS", "off")];
    let (a, b) = (Instance::start(&vars).await, Instance::start(&vars).await);
    let c = Client::new();

    let (status, reg) = post(&c, a.auth("/register"), json!({"username": "pia", "password": PASSWORD})).await;
    assert_eq!(status, 201, "{reg}");
    let token = reg["access_token"].as_str().unwrap();
    // B's first check reads PostgreSQL and remembers the session; later ones are answered from
    // its cache, which would say "live" for up to 10 s if the revocation never reached it.
    for _ in 0..3 {
        assert_eq!(get(&c, b.auth("/me"), token).await.0, 200);
    }
    let res = c.post(a.auth("/logout")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (status, body) = until_not_ok(&c, &b.auth("/me"), token).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "session_revoked"));
}

#[tokio::test]
async fn rate_limits_and_lockouts_hold_across_instances() {
    let Some(shared) = shared().await else { return eprintln!("skipped: no PostgreSQL/Redis URLs") };
    let limits =
        [("AUTH_RATE_LIMITS", "default"), ("AUTH_RATE_LIMIT_LOGIN", "3/60"), ("AUTH_RATE_LIMIT_LOGIN_FAILURES", "off")];
    let (a, b) = (instance(&shared, &limits).await, instance(&shared, &limits).await);
    let c = Client::new();
    post(&c, a.auth("/register"), json!({"username": "bea", "password": PASSWORD})).await;
    let body = json!({"username": "bea", "password": PASSWORD});
    for server in [&a, &b, &a] {
        assert_eq!(post(&c, server.auth("/login"), body.clone()).await.0, 200);
    }
    for server in [&b, &a] {
        let res = c.post(server.auth("/login")).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 429);
        assert!(res.headers().contains_key("retry-after"));
    }

    let lockout =
        [("AUTH_RATE_LIMITS", "default"), ("AUTH_RATE_LIMIT_LOGIN", "off"), ("AUTH_RATE_LIMIT_LOGIN_FAILURES", "2/60")];
    let (a, b) = (instance(&shared, &lockout).await, instance(&shared, &lockout).await);
    let wrong = json!({"username": "bea", "password": "wrong-password-x"});
    assert_eq!(code(&post(&c, a.auth("/login"), wrong.clone()).await.1), "invalid_credentials");
    assert_eq!(code(&post(&c, b.auth("/login"), wrong.clone()).await.1), "invalid_credentials");
    assert_eq!(code(&post(&c, a.auth("/login"), body.clone()).await.1), "rate_limited", "locked on both");
}

/// Whether `GET /api/protected` with `token` answers 200 again within 10 s.
async fn recovers(c: &Client, server: &Instance, token: &str) -> bool {
    for _ in 0..50 {
        if get(c, format!("{}/api/protected", server.base), token).await.0 == 200 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// A Redis server of the test's own, with an append-only file so data survives a restart.
struct OwnRedis {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<tokio::process::Child>,
}

impl OwnRedis {
    async fn start(dir: tempfile::TempDir, port: u16) -> Self {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { dir, port, child: Some(child) }
    }

    async fn stop(mut self) -> (tempfile::TempDir, u16) {
        let mut child = self.child.take().unwrap();
        child.kill().await.unwrap();
        (self.dir, self.port)
    }
}

#[tokio::test]
async fn redis_down_gives_503_and_the_service_recovers_when_it_returns() {
    let Some(shared) = shared().await else { return eprintln!("skipped: no PostgreSQL/Redis URLs") };
    let redis = OwnRedis::start(tempfile::tempdir().unwrap(), free_port()).await;
    let url = format!("redis://127.0.0.1:{}/", redis.port);
    let own = Shared { redis: url, ..shared };
    let server = instance(&own, &[]).await;
    let c = Client::new();
    let (status, tokens) = post(&c, server.auth("/register"), json!({"username": "cyd", "password": PASSWORD})).await;
    assert_eq!(status, 201, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&c, format!("{}/api/protected", server.base), &token).await.0, 200);

    let (dir, port) = redis.stop().await;
    // The session cache is emptied as soon as its subscription connection closes; until that
    // instant no revocation can have happened, as Redis is down.
    let (status, body) = until_not_ok(&c, &format!("{}/api/protected", server.base), &token).await;
    assert_eq!((status, code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"), "never a 500 or a pass");
    let (status, body) = post(&c, server.auth("/login"), json!({"username": "cyd", "password": PASSWORD})).await;
    assert_eq!((status, code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"));

    let _redis = OwnRedis::start(dir, port).await;
    assert!(
        recovers(&c, &server, &token).await,
        "the same server answers again once Redis is back, and the session survived"
    );
    let (status, _) = post(&c, server.auth("/login"), json!({"username": "cyd", "password": PASSWORD})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn postgres_down_gives_503_and_the_service_recovers_when_it_returns() {
    // Its own PostgreSQL cluster (the shared one serves the other tests), sessions in it too.
    if service_url("AUTH_TEST_POSTGRES_URL").is_none() {
        return eprintln!("skipped: no PostgreSQL URL");
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("pg");
    let port = free_port().to_string();
    let script = repo_root().join("scripts/pg-cluster.sh");
    let pg = |args: &[&str]| {
        let status = std::process::Command::new("bash").arg(&script).args(args).status().unwrap();
        assert!(status.success(), "pg-cluster.sh {args:?}");
    };
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    pg(&["start", cluster.to_str().unwrap(), &port]);
    let database = format!("postgres://auth@127.0.0.1:{port}/postgres");
    let server = Instance::start(&[("AUTH_DATABASE_URL", &database), ("AUTH_RATE_LIMITS", "off")]).await;
    let c = Client::new();
    let (status, tokens) = post(&c, server.auth("/register"), json!({"username": "dan", "password": PASSWORD})).await;
    assert_eq!(status, 201, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_owned();

    pg(&["stop", cluster.to_str().unwrap()]);
    let (status, body) = get(&c, format!("{}/api/protected", server.base), &token).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        "the session check failed closed"
    );
    let (status, body) = post(&c, server.auth("/login"), json!({"username": "dan", "password": PASSWORD})).await;
    assert_eq!((status, code(&body)), (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"));

    pg(&["start", cluster.to_str().unwrap(), &port]);
    assert!(recovers(&c, &server, &token).await, "the same server answers again once PostgreSQL is back");
    assert_eq!(post(&c, server.auth("/login"), json!({"username": "dan", "password": PASSWORD})).await.0, 200);
    drop(server);
    pg(&["stop", cluster.to_str().unwrap()]);
}
