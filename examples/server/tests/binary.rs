//! The `auth-example-server` binary itself: configuration errors, `create-admin` over stdin,
//! serving with one log line per request, graceful shutdown on SIGTERM.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Instance, PASSWORD};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
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

async fn create_admin(dir: &std::path::Path, username: &str, password: &str) -> std::process::Output {
    let mut child = command(dir)
        .args(["create-admin", "--username", username])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{password}\n").as_bytes()).await.unwrap();
    drop(stdin);
    child.wait_with_output().await.unwrap()
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
    let Instance { mut child, base, log: mut lines } = Instance::start(&[("AUTH_DATABASE_URL", &db)]).await;
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
    let request_lines: Vec<&str> = log.lines().filter(|l| l.contains("finished processing request")).collect();
    let ping_line = request_lines.iter().find(|l| l.contains("path=/api/admin/ping")).expect("a line for the ping");
    assert!(ping_line.contains("method=GET") && ping_line.contains("status=200") && ping_line.contains("latency="));
    assert!(!ping_line.contains("probe=1"), "no query strings in logs");
    for secret in [token.as_str(), PASSWORD, login["refresh_token"].as_str().unwrap()] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    assert!(log.contains("shutdown signal received"));

    let promoted = create_admin(dir.path(), "SAM", PASSWORD).await;
    assert!(promoted.status.success(), "{}", String::from_utf8_lossy(&promoted.stderr));
    assert!(String::from_utf8_lossy(&promoted.stdout).contains("admin sam"));
}
