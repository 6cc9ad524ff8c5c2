//! The command line of the example servers, shared by the axum one (`auth-example-server`) and
//! the actix-web one (`auth-actix-server`), which differ only in how they serve the app:
//! `PROGRAM` serves; `PROGRAM create-admin --username NAME` with the password on standard input;
//! `PROGRAM users …` manages users. The configuration is [`ServerConfig::from_env`].

use std::future::Future;
use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;
use std::sync::Arc;

use auth_core::{Auth, SecretString};
use auth_http::Dialect;
use tracing_subscriber::EnvFilter;

use crate::{build_auth, users_command, ServerConfig, USERS_USAGE};

/// Runs the command line of `args` (without the program name) for `program`, serving with
/// `serve(listener, auth, dialect)`, which must return when the process is asked to stop
/// ([`shutdown_signal`](crate::shutdown_signal)). Exit codes: 0, 1 on an error, 2 on a
/// configuration or usage error (the message on standard error, naming what is wrong).
///
/// Log lines go to standard error through a thread of their own (`tracing-appender`), so a slow
/// stderr never stalls a request; not lossy: when its buffer is full, logging waits rather than
/// dropping a security event. What is left is flushed before this returns.
pub fn run<S, F>(program: &str, args: &[String], serve: S) -> ExitCode
where
    S: FnOnce(tokio::net::TcpListener, Auth, Arc<dyn Dialect>) -> F,
    F: Future<Output = std::io::Result<()>>,
{
    let usage = format!(
        "usage:
  {program}                              serve (configuration: AUTH_* environment variables)
  {program} create-admin --username NAME create an admin, or promote NAME; password on stdin
  {program} users list|disable|enable|set-role …   manage users (`users --help`)"
    );
    let config = match ServerConfig::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("configuration error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, _flush_on_exit) =
        tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
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
        [] | ["serve"] => runtime.block_on(serve_until_stopped(program, config, serve)),
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
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{usage}");
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

async fn serve_until_stopped<S, F>(program: &str, config: ServerConfig, serve: S) -> anyhow::Result<()>
where
    S: FnOnce(tokio::net::TcpListener, Auth, Arc<dyn Dialect>) -> F,
    F: Future<Output = std::io::Result<()>>,
{
    if config.jwt_secret.is_none() && config.jwt_algorithm.is_symmetric() {
        tracing::warn!("AUTH_JWT_SECRET is not set: using a random secret; every token dies when the server restarts");
    } else if config.jwt_secret.is_none() {
        tracing::warn!(
            "AUTH_JWT_SECRET is not set: using a random master secret; mailed codes, captcha answers and (without \
             AUTH_MFA_ENCRYPTION_KEY) second factors die when the server restarts"
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
    let database = config.database_url.split(':').next().unwrap_or_default();
    let tokens = if config.redis_url.is_some() { "redis" } else { database };
    tracing::info!(address = %listener.local_addr()?, database, tokens, program, "auth example server listening");
    serve(listener, auth.clone(), config.api_dialect.clone()).await?;
    // Audit events of the last requests are written before the process ends.
    auth.flush_audit().await;
    tracing::info!("stopped");
    Ok(())
}

/// Deletes dead sessions and expired secrets once an hour.
async fn purge_hourly(auth: Auth) {
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
    // Its audit event is written in the background: before the process ends.
    auth.flush_audit().await;
    let user = created.map_err(|err| match err {
        auth_core::AuthError::WeakPassword { reasons } => anyhow::anyhow!("the password was refused: {reasons:?}"),
        other => anyhow::anyhow!("{other}"),
    })?;
    println!("admin {} ({}) is ready", user.name(), user.id);
    Ok(())
}
