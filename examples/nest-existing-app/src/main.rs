//! Nesting the auth router into an existing axum app that has its own state and routes, and
//! protecting some of those routes.
//!
//! Run: `AUTH_JWT_SECRET=$(openssl rand -base64 48) cargo run -p auth-example-nest`, then
//! register at `POST http://127.0.0.1:3000/api/auth/register` and call
//! `GET /api/notes` with the access token.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use auth_axum::{auth_router, AuthClaims, CurrentUser, OptionalAuth, OptionalUser, RequireAuth};
use auth_core::{Auth, AuthConfig};
use auth_storage::MemoryStore;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The host's own state, unrelated to auth.
#[derive(Clone, Default)]
struct AppState {
    /// (owner's user id, text)
    notes: Arc<Mutex<Vec<(String, String)>>>,
}

/// Public: no login needed.
async fn health() -> &'static str {
    "ok"
}

/// Public, but personalised when a valid token is sent.
async fn greeting(OptionalUser(user): OptionalUser) -> String {
    match user {
        Some(user) => format!("hello, {}", user.name()),
        None => "hello, stranger".to_owned(),
    }
}

/// Protected: the claims identify the caller without a database lookup.
async fn list_notes(State(state): State<AppState>, claims: AuthClaims) -> Json<Value> {
    let me = claims.sub.to_string();
    let notes: Vec<String> =
        state.notes.lock().unwrap().iter().filter(|(owner, _)| *owner == me).map(|(_, n)| n.clone()).collect();
    Json(json!({ "notes": notes }))
}

/// Protected: loads the full user.
async fn add_note(State(state): State<AppState>, CurrentUser(user): CurrentUser, body: String) -> Json<Value> {
    state.notes.lock().unwrap().push((user.id.to_string(), body));
    Json(json!({ "saved_for": user.name() }))
}

/// Admin only.
async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "notes": state.notes.lock().unwrap().len() }))
}

fn app(auth: Auth) -> Router {
    let protected =
        Router::new().route("/api/notes", get(list_notes).post(add_note)).route_layer(RequireAuth::new(auth.clone()));
    let admin =
        Router::new().route("/api/stats", get(stats)).route_layer(RequireAuth::new(auth.clone()).with_role("admin"));
    let public = Router::new()
        .route("/health", get(health))
        .route("/api/greeting", get(greeting).route_layer(OptionalAuth::new(auth.clone())));
    Router::new()
        .merge(public)
        .merge(protected)
        .merge(admin)
        .with_state(AppState::default())
        .nest("/api/auth", auth_router(auth))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("AUTH_JWT_SECRET").map_err(|_| "set AUTH_JWT_SECRET (at least 32 bytes)")?;
    let store = Arc::new(MemoryStore::new());
    let auth = Auth::builder(AuthConfig::new(secret)?).stores(store).build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(auth).into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into())))
    }

    #[tokio::test]
    async fn the_host_keeps_its_state_and_public_routes_and_gains_protected_ones() {
        let auth = Auth::builder(AuthConfig::new(vec![9u8; 32]).unwrap())
            .stores(Arc::new(MemoryStore::new()))
            .build()
            .unwrap();
        let app = app(auth);
        let (status, _) = call(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(&app, Request::get("/api/notes").body(Body::empty()).unwrap()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
        let (_, greeting) = call(&app, Request::get("/api/greeting").body(Body::empty()).unwrap()).await;
        assert_eq!(greeting, "hello, stranger");

        let register = Request::post("/api/auth/register")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"username":"zoe","password":"violet-Kettle-93-orbit"}"#))
            .unwrap();
        let (status, tokens) = call(&app, register).await;
        assert_eq!(status, StatusCode::CREATED, "{tokens}");
        let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
        let add = Request::post("/api/notes").header("authorization", &bearer).body(Body::from("buy milk")).unwrap();
        assert_eq!(call(&app, add).await.1["saved_for"], "zoe");
        let list = Request::get("/api/notes").header("authorization", &bearer).body(Body::empty()).unwrap();
        assert_eq!(call(&app, list).await.1, json!({"notes": ["buy milk"]}));
        let greet = Request::get("/api/greeting").header("authorization", &bearer).body(Body::empty()).unwrap();
        assert_eq!(call(&app, greet).await.1, "hello, zoe");
        let stats = Request::get("/api/stats").header("authorization", &bearer).body(Body::empty()).unwrap();
        assert_eq!(call(&app, stats).await.0, StatusCode::FORBIDDEN);
    }
}
