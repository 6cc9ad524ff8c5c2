//! The `auth-example-server` binary itself: configuration errors, `create-admin` over stdin,
//! serving with one log line per request, graceful shutdown on SIGTERM.

mod common;

use std::time::Duration;

use common::{Instance, PASSWORD};
use serde_json::{json, Value};
use tokio::process::Command;

fn command(dir: &std::path::Path) -> Command {
    common::command(&[("AUTH_DATABASE_URL", &format!("sqlite://{}", dir.join("auth.db").display()))])
}

#[tokio::test]
async fn a_jwt_secret_under_32_bytes_refuses_to_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path()).env("AUTH_JWT_SECRET", "short-secret").output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AUTH_JWT_SECRET must be at least 32 bytes"), "{stderr}");
    assert!(!stderr.contains("short-secret"));
}

#[tokio::test]
async fn at_the_default_level_requests_write_no_log_line_but_security_events_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("auth.db").display());
    // `common::command` sets AUTH_LOG=info, the default.
    let Instance { mut child, base, log: mut lines } = Instance::start(&[("AUTH_DATABASE_URL", &db)]).await;
    let client = reqwest::Client::new();
    for _ in 0..20 {
        assert_eq!(client.get(format!("{base}/api/auth/captcha/status")).send().await.unwrap().status(), 200);
    }
    let wrong = json!({"username": "nobody-here", "password": "wrong-password-123"});
    assert_eq!(client.post(format!("{base}/api/auth/login")).json(&wrong).send().await.unwrap().status(), 401);
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("exits").unwrap();
    let mut log = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(!log.contains("captcha/status"), "a per-request line at the default level:\n{log}");
    assert!(!log.contains("latency_us"), "{log}");
    assert!(log.contains("login failed"), "the failed login is a security event:\n{log}");
    assert!(log.contains("shutdown signal received"), "the last lines are flushed at exit:\n{log}");
}

#[tokio::test]
async fn a_bad_signing_key_file_refuses_to_start_naming_the_file_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing.pem");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n").unwrap();
    let out = command(dir.path())
        .env("AUTH_JWT_ALGORITHM", "EdDSA")
        .env("AUTH_JWT_PRIVATE_KEY_FILE", &key)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AUTH_JWT_PRIVATE_KEY_FILE"), "{stderr}");
    assert!(stderr.contains(&key.display().to_string()), "{stderr}");
    assert!(stderr.contains("not a PEM EdDSA key"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("not a key"), "the file's content is not echoed: {stderr}");
}

async fn create_admin(dir: &std::path::Path, username: &str, password: &str) -> std::process::Output {
    common::run(command(dir), &["create-admin", "--username", username], &format!("{password}\n")).await
}

/// `auth-example-server users …` on the SQLite file in `dir`: (success, stdout, stderr).
async fn users(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = common::run(command(dir), &[&["users"], args].concat(), "").await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn the_users_subcommands_list_disable_and_change_roles_through_the_admin_code() {
    let dir = tempfile::tempdir().unwrap();
    assert!(create_admin(dir.path(), "root", PASSWORD).await.status.success());
    assert!(create_admin(dir.path(), "tess", PASSWORD).await.status.success());
    let (ok, out, err) = users(dir.path(), &["set-role", "tess", "user"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("tess") && out.contains("\tuser\tactive"), "{out}");
    let (ok, out, _) = users(dir.path(), &["list", "--role", "admin"]).await;
    assert!(ok);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with(char::is_alphanumeric) && out.contains("\troot\t"), "{out}");
    let (ok, out, _) = users(dir.path(), &["disable", "tess"]).await;
    assert!(ok && out.contains("\tdisabled"), "{out}");
    let (ok, out, _) = users(dir.path(), &["list", "--status", "disabled", "--query", "TE"]).await;
    assert!(ok && out.contains("tess") && !out.contains("root"), "{out}");
    // The guard rails and validation of the API hold here too.
    let (ok, _, err) = users(dir.path(), &["disable", "root"]).await;
    assert!(!ok && err.contains("no active admin"), "{err}");
    let (ok, _, err) = users(dir.path(), &["set-role", "tess", "wizard"]).await;
    assert!(!ok && err.contains("role: must be one of admin, user"), "{err}");
    let (ok, _, err) = users(dir.path(), &["disable", "nobody"]).await;
    assert!(!ok && err.contains("no user \"nobody\""), "{err}");
    let (ok, _, err) = users(dir.path(), &["list", "--limit"]).await;
    assert!(!ok && err.contains("usage"), "{err}");
    // Each change is in the audit log, with no actor (the operator).
    let db = format!("sqlite://{}", dir.path().join("auth.db").display());
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT type, actor_id FROM auth_audit_log ORDER BY id").fetch_all(&pool).await.unwrap();
    let kinds: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["admin_user_created", "admin_user_created", "role_changed", "status_changed"]);
    assert!(rows.iter().all(|(_, actor)| actor.is_none()));
}

#[tokio::test]
async fn create_admin_reads_the_password_from_stdin_and_the_admin_can_use_admin_routes() {
    let dir = tempfile::tempdir().unwrap();
    let weak = create_admin(dir.path(), "root", "password").await;
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("TooCommon"), "{}", String::from_utf8_lossy(&weak.stderr));
    let out = create_admin(dir.path(), "root", PASSWORD).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin root"));

    let db = format!("sqlite://{}", dir.path().join("auth.db").display());
    // Per-request lines on (they are at debug, target `http`).
    let Instance { mut child, base, log: mut lines } =
        Instance::start(&[("AUTH_DATABASE_URL", &db), ("AUTH_LOG", "info,http=debug")]).await;
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(login["user"]["role"], "admin");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let ping = client.get(format!("{base}/api/admin/ping?probe=1")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ping.status(), 200);

    // Promoting an existing user: register, then create-admin with the same name.
    let reg = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"username": "sam", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201);

    // Graceful shutdown on SIGTERM, exit status 0.
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait()).await.expect("exits").unwrap();
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        log.push_str(&line);
        log.push('\n');
    }
    let request_lines: Vec<&str> = log.lines().filter(|l| l.contains(" http: response")).collect();
    let ping_line = request_lines.iter().find(|l| l.contains("path=/api/admin/ping")).expect("a line for the ping");
    assert!(ping_line.contains("method=GET") && ping_line.contains("status=200") && ping_line.contains("latency_us="));
    assert!(!ping_line.contains("probe=1"), "no query strings in logs");
    for secret in [token.as_str(), PASSWORD, login["refresh_token"].as_str().unwrap()] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    assert!(log.contains("shutdown signal received"));

    let promoted = create_admin(dir.path(), "SAM", PASSWORD).await;
    assert!(promoted.status.success(), "{}", String::from_utf8_lossy(&promoted.stderr));
    assert!(String::from_utf8_lossy(&promoted.stdout).contains("admin sam"));
}

/// An operator removes the second factor of a user who lost their authenticator: their next
/// login needs the password alone. Without a factor, `reset-mfa` says so and fails.
#[tokio::test]
async fn users_reset_mfa_removes_a_lost_second_factor() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("auth.db").display());
    let server = Instance::start(&[("AUTH_DATABASE_URL", &db), ("AUTH_RATE_LIMITS", "off")]).await;
    let c = reqwest::Client::new();
    let post = |url: String, token: Option<&str>, body: Value| {
        let mut req = c.post(url).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let login = json!({"username": "lost", "password": PASSWORD});
    let reg = post(server.auth("/register"), None, login.clone()).await;
    let token = reg["access_token"].as_str().unwrap();
    let enrollment = post(server.auth("/mfa/totp/enroll"), Some(token), json!({"password": PASSWORD})).await;
    let totp = totp_rs::TOTP::from_url(enrollment["otpauth_uri"].as_str().unwrap()).unwrap();
    let code = totp.generate_current().unwrap();
    let confirmed = post(server.auth("/mfa/totp/confirm"), Some(token), json!({"code": code})).await;
    assert_eq!(confirmed["recovery_codes"].as_array().map(Vec::len), Some(10), "{confirmed}");
    assert_eq!(post(server.auth("/login"), None, login.clone()).await["mfa_required"], true);

    let (ok, out, err) = users(dir.path(), &["reset-mfa", "lost"]).await;
    assert!(ok && out.contains("second factor removed"), "{out}{err}");
    assert!(post(server.auth("/login"), None, login).await["access_token"].is_string());
    let (ok, _, err) = users(dir.path(), &["reset-mfa", "lost"]).await;
    assert!(!ok && err.contains("not found"), "{err}");
}

/// The default deployment caches sessions and users (SQLite): what another process does to the
/// same file still reaches the server at once, through the file's change log. The `users`
/// command disabling an account ends its sessions on the running server; a change written to
/// the file by hand (a rename) is what `CurrentUser` shows next.
#[tokio::test]
async fn the_running_server_sees_what_another_process_changes_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("auth.db").display());
    let Instance { child: _server, base, log: _log } =
        Instance::start(&[("AUTH_DATABASE_URL", &db), ("AUTH_RATE_LIMITS", "off")]).await;
    let client = reqwest::Client::new();
    let mut tokens = Vec::new();
    for name in ["tess", "uma"] {
        let body = json!({"username": name, "password": PASSWORD});
        let res = client.post(format!("{base}/api/auth/register")).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 201);
        tokens.push(res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned());
    }
    let protected = |token: &str| client.get(format!("{base}/api/protected")).bearer_auth(token.to_owned()).send();
    // Answered from the caches after the first request.
    for _ in 0..3 {
        assert_eq!(protected(&tokens[0]).await.unwrap().status(), 200);
        assert_eq!(protected(&tokens[1]).await.unwrap().status(), 200);
    }

    let (ok, _, err) = users(dir.path(), &["disable", "tess"]).await;
    assert!(ok, "{err}");
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let status = protected(&tokens[0]).await.unwrap().status();
        if status == 401 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {status} 500 ms after `users disable`");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    sqlx::query("UPDATE auth_users SET username = 'ursula', username_key = 'ursula' WHERE username_key = 'uma'")
        .execute(&pool)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let me: Value = protected(&tokens[1]).await.unwrap().json().await.unwrap();
        if me["username"] == "ursula" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {me} 500 ms after the rename");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
