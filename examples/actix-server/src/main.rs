//! `auth-actix-server`: serves the example app on actix-web; `create-admin --username NAME`
//! with the password on standard input; `users …`. The configuration is
//! `auth-example-server`'s: the same `AUTH_*` environment variables.

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use auth_actix_server::{build_auth, serve, shutdown_signal, users_command, ServerConfig, USERS_USAGE};
use auth_core::SecretString;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage:
  auth-actix-server                              serve (configuration: AUTH_* environment variables)
  auth-actix-server create-admin --username NAME create an admin, or promote NAME; password on stdin
  auth-actix-server users list|disable|enable|set-role …   manage users (`users --help`)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match ServerConfig::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("configuration error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] | ["serve"] => runtime.block_on(run(config)),
        ["create-admin", "--username", name] => runtime.block_on(create_admin(config, name)),
        ["users"] | ["users", "-h" | "--help" | "help"] => {
            println!("{USERS_USAGE}");
            return ExitCode::SUCCESS;
        }
        ["users", rest @ ..] => runtime.block_on(async {
            let auth = build_auth(&config).await?;
            let out = users_command(&auth, rest).await;
            auth.flush_audit().await;
            println!("{}", out?);
            Ok(())
        }),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: ServerConfig) -> anyhow::Result<()> {
    if config.jwt_secret.is_none() {
        tracing::warn!(
            "AUTH_JWT_SECRET is not set: using a random secret; tokens and codes die when the server restarts"
        );
    }
    if config.smtp_url.is_none() {
        tracing::warn!(
            "AUTH_SMTP_URL is not set: mail (codes and reset links included) is written to this log; development only"
        );
    }
    if config.rate_limits.is_none() {
        tracing::warn!("AUTH_RATE_LIMITS=off: no rate limits or login lockout");
    }
    let auth = build_auth(&config).await?;
    tokio::spawn(purge_hourly(auth.clone()));
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    tracing::info!(address = %listener.local_addr()?, "auth example server (actix-web) listening");
    serve(listener, auth.clone(), config.api_dialect.clone(), shutdown_signal()).await?;
    // Audit events of the last requests are written before the process ends.
    auth.flush_audit().await;
    tracing::info!("stopped");
    Ok(())
}

/// Deletes dead sessions and expired secrets once an hour.
async fn purge_hourly(auth: auth_core::Auth) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match auth.purge_expired().await {
            Ok(purged) => tracing::debug!(purged, "purged revoked and expired sessions, secrets and audit events"),
            Err(err) => tracing::warn!(error = %err, "purging expired sessions failed; retrying in an hour"),
        }
    }
}

async fn create_admin(config: ServerConfig, username: &str) -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() {
        eprintln!("password (typed text is echoed; pipe it in to avoid that):");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = SecretString::new(line.trim_end_matches(['\r', '\n']));
    let auth = build_auth(&config).await?;
    let created = auth.create_admin(username, &password).await;
    auth.flush_audit().await;
    let user = created.map_err(|err| match err {
        auth_core::AuthError::WeakPassword { reasons } => anyhow::anyhow!("the password was refused: {reasons:?}"),
        other => anyhow::anyhow!("{other}"),
    })?;
    println!("admin {} ({}) is ready", user.name(), user.id);
    Ok(())
}
