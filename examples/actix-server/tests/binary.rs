//! The `auth-actix-server` binary: serves the API and the host routes on the `AUTH_*`
//! configuration it shares with `auth-example-server`, `create-admin` over stdin, and a graceful
//! stop on SIGTERM that flushes the audit log.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_auth-actix-server");
const PASSWORD: &str = "violet-Kettle-93-orbit";

fn command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("AUTH_JWT_SECRET", "actix-binary-test-secret-0123456789-abcdefgh")
        .env("AUTH_BIND", "127.0.0.1:0")
        .env("AUTH_LOG", "info")
        .env("AUTH_DATABASE_URL", format!("sqlite://{}", dir.join("auth.db").display()))
        .env("AUTH_DATA_DIR", dir)
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn it_serves_the_api_and_the_host_routes_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // An admin made by the shared command line, before the server starts.
    let mut admin = command(dir.path())
        .args(["create-admin", "--username", "root"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    admin.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).await.unwrap();
    let out = admin.wait_with_output().await.unwrap();
    assert!(out.status.success(), "create-admin: {}", String::from_utf8_lossy(&out.stdout));

    let mut child = command(dir.path()).stderr(Stdio::piped()).spawn().unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = log.next_line().await.unwrap() {
            if let Some(rest) = line.split("address=").nth(1) {
                assert!(line.contains("auth-actix-server"), "{line}");
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("the server exited before listening")
    })
    .await
    .expect("listening within 30 s");
    let base = format!("http://{address}");
    let client = reqwest::Client::new();

    let login = json!({"username": "root", "password": PASSWORD});
    let response = client.post(format!("{base}/api/auth/login")).json(&login).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    for path in ["/api/protected", "/api/admin/ping", "/api/health"] {
        let response = client.get(format!("{base}{path}")).header("authorization", &bearer).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let anonymous = client.get(format!("{base}/api/protected")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");

    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
    let status = tokio::time::timeout(Duration::from_secs(35), child.wait()).await.expect("exits").unwrap();
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    while let Some(line) = log.next_line().await.unwrap() {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(rest.contains("stopped"), "a graceful stop:\n{rest}");
}
