//! Starts the actix-web example app in-process on `127.0.0.1:0` as the e2e harness starts the
//! axum one (`tokio::spawn(serve(listener, …, stop))` on a current-thread runtime), registers a
//! user and reads `/api/protected` over plain HTTP/1.1, stops it and flushes the audit log.
//!
//! `cargo run -p auth-actix-server --example in_process`

use std::io::{Read as _, Write as _};

use auth_actix_server::{build_auth, serve, ServerConfig};

/// One HTTP/1.1 request on a fresh connection; the status line and body.
fn request(addr: std::net::SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let vars = [
        ("AUTH_JWT_SECRET", "in-process-secret-0123456789-abcdefghijklmnopqrstuvwxyz"),
        ("AUTH_DATABASE_URL", "memory"),
        ("AUTH_BIND", "127.0.0.1:0"),
        ("AUTH_RATE_LIMITS", "off"),
    ];
    let config = ServerConfig::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))?;
    let auth = build_auth(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, auth.clone(), config.api_dialect.clone(), async {
        let _ = stopped.await;
    }));
    let json = "content-type: application/json\r\n";
    let body = r#"{"username":"dora","password":"violet-Kettle-93-orbit"}"#;
    let (status, answer) =
        tokio::task::spawn_blocking(move || request(addr, "POST", "/api/auth/register", json, body)).await?;
    println!("register: {status}");
    let token = serde_json::from_str::<serde_json::Value>(&answer)?["access_token"].as_str().unwrap_or("").to_owned();
    let bearer = format!("authorization: Bearer {token}\r\n");
    let (status, answer) =
        tokio::task::spawn_blocking(move || request(addr, "GET", "/api/protected", &bearer, "")).await?;
    println!("protected: {status} {answer}");
    let _ = stop.send(());
    task.await??;
    let start = std::time::Instant::now();
    auth.flush_audit().await;
    println!("stopped; audit flushed in {:?}", start.elapsed());
    Ok(())
}
