//! Helpers for tests that run the `auth-example-server` binary.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_auth-example-server");
pub const SECRET: &str = "binary-test-secret-0123456789-abcdefghijklmnop";
pub const PASSWORD: &str = "violet-Kettle-93-orbit";

/// The binary with a clean environment plus `vars`.
pub fn command(vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("AUTH_JWT_SECRET", SECRET)
        .env("AUTH_BIND", "127.0.0.1:0")
        .env("AUTH_LOG", "info")
        .kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// A running server process.
pub struct Instance {
    pub child: Child,
    pub base: String,
    pub log: Lines<BufReader<ChildStderr>>,
}

impl Instance {
    /// Starts `serve` and waits (30 s at most) for its listening line.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let mut child = command(vars).stderr(Stdio::piped()).spawn().unwrap();
        let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = log.next_line().await.unwrap() {
                if let Some(rest) = line.split("address=").nth(1) {
                    return rest.split_whitespace().next().unwrap().to_owned();
                }
            }
            panic!("server exited before listening")
        })
        .await
        .expect("server did not start within 30 s");
        Self { child, base: format!("http://{address}"), log }
    }

    /// `http://…/api/auth{path}`.
    pub fn auth(&self, path: &str) -> String {
        format!("{}/api/auth{path}", self.base)
    }
}

/// Runs `cmd` with `args`, `stdin` written to its standard input, and waits for it.
pub async fn run(mut cmd: Command, args: &[&str], stdin: &str) -> std::process::Output {
    use tokio::io::AsyncWriteExt as _;
    let mut child = cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

#[allow(unused_imports)] // Not every suite uses every fixture.
pub use auth_test_support::{free_port, fresh_database, service_url};

/// The repository root (for scripts/).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
