//! The README's "On actix-web": the auth API, protected routes and an admin-only route on
//! actix-web, over SQLite. `AUTH_JWT_SECRET=… cargo run -p auth-actix --example embed`.

use actix_web::{web, App, HttpServer};
use auth_actix::{AuthClaims, AuthScope, CurrentUser, RequireAuth};
use auth_core::{Auth, AuthConfig};
use auth_storage::SqliteStore;
use std::sync::Arc; // features = ["sqlite"]

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = AuthConfig::new(std::env::var("AUTH_JWT_SECRET")?)?; // ≥ 32 bytes
    let store = Arc::new(SqliteStore::connect("sqlite://auth.db").await?);
    // Built on this runtime, the service runs its background work (audit writes, mail) here,
    // not on actix-web's per-worker runtimes, which end with the server.
    let auth = Auth::builder(config).stores(store).build()?;

    let api = AuthScope::new(auth.clone()); // `.dialect(…)`, `.body_limit(…)` as AuthRouter
    let host_auth = auth.clone();
    HttpServer::new(move || {
        App::new()
            // the auth API
            .service(api.scope("/api/auth"))
            // your routes, protected
            .service(
                web::resource("/api/orders")
                    .wrap(RequireAuth::new(host_auth.clone()))
                    .get(|claims: AuthClaims| async move { format!("orders of {}", claims.sub) }),
            )
            .service(
                web::resource("/api/profile")
                    .wrap(RequireAuth::new(host_auth.clone()))
                    .get(|CurrentUser(user): CurrentUser| async move { web::Json(user) }),
            )
            // admin only
            .service(
                web::resource("/api/admin/stats")
                    .wrap(RequireAuth::new(host_auth.clone()).with_role("admin"))
                    .get(|| async { "…" }),
            )
    })
    .bind("127.0.0.1:8080")?
    .run()
    .await?;
    auth.flush_audit().await; // the last audit events, before the process ends
    Ok(())
}
