//! `auth-example-resource-server`: serves [`auth_example_resource_server::app`].
//!
//! Environment: `RESOURCE_BIND` (default `127.0.0.1:8081`), `AUTH_JWKS_URL` (default
//! `http://127.0.0.1:8080/.well-known/jwks.json`), `AUTH_ISSUER` / `AUTH_AUDIENCE` (default
//! `auth` / `api`), and for introspection `AUTH_INTROSPECTION_URL` (default
//! `http://127.0.0.1:8080/api/auth/introspect`) with `AUTH_INTROSPECTION_CLIENT_ID` and
//! `AUTH_INTROSPECTION_SECRET`. It holds no signing key or secret of the auth server.

use anyhow::Context as _;
use auth_axum::JwksAuth;
use auth_example_resource_server::{app, Introspection};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let bind = var("RESOURCE_BIND").unwrap_or_else(|| "127.0.0.1:8081".into());
    let jwks_url = var("AUTH_JWKS_URL").unwrap_or_else(|| "http://127.0.0.1:8080/.well-known/jwks.json".into());
    let jwks = JwksAuth::new(
        jwks_url.clone(),
        var("AUTH_ISSUER").unwrap_or_else(|| "auth".into()),
        var("AUTH_AUDIENCE").unwrap_or_else(|| "api".into()),
    );
    // Warm the cache; a failure is not fatal (the auth server may start later).
    if let Err(err) = jwks.refresh().await {
        tracing::warn!(url = %jwks_url, error = %err, "no signing keys yet; fetching again on the first request");
    }
    let introspection = match (var("AUTH_INTROSPECTION_CLIENT_ID"), var("AUTH_INTROSPECTION_SECRET")) {
        (Some(id), Some(secret)) => Some(Introspection::new(
            var("AUTH_INTROSPECTION_URL").unwrap_or_else(|| "http://127.0.0.1:8080/api/auth/introspect".into()),
            id,
            secret,
        )?),
        (None, None) => None,
        _ => anyhow::bail!("AUTH_INTROSPECTION_CLIENT_ID and AUTH_INTROSPECTION_SECRET go together"),
    };
    let listener = tokio::net::TcpListener::bind(&bind).await.with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(address = %listener.local_addr()?, jwks = %jwks_url, "resource server listening");
    axum::serve(listener, app(jwks, introspection))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
