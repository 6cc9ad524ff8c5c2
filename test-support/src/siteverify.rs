//! A local siteverify server speaking the documented wire format of Cloudflare Turnstile,
//! Google reCAPTCHA and hCaptcha: it takes `secret`, `response`, `remoteip` (and hCaptcha's
//! `sitekey`) form-encoded or as JSON, and answers `{"success", "error-codes", "hostname",
//! "action", "score", "challenge_ts"}`.
//!
//! The `response` token chooses the answer:
//!
//! | token | answer |
//! |---|---|
//! | `ok` | success on `app.example.com`, no action or score (reCAPTCHA v2 style) |
//! | `ok-action-NAME` | success with `action: NAME` |
//! | `score-X` | success with `score: X`, `action: login` |
//! | `other-host` | success on `evil.example.net` |
//! | `fail` | failure, `invalid-input-response` |
//! | `dup` | failure, `timeout-or-duplicate` |
//! | `bad-secret` | failure, `invalid-input-secret` |
//! | `http500` | HTTP 500 |
//! | `slow` | success after 3 s |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One request the server received: its fields and how they were encoded.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request fields.
    pub fields: HashMap<String, String>,
    /// `Content-Type` of the request.
    pub content_type: String,
}

/// A running siteverify server.
pub struct Siteverify {
    /// `http://127.0.0.1:PORT/siteverify`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Siteverify {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().route("/siteverify", post(siteverify)).with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/siteverify", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, received }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn siteverify(State(received): State<Arc<Mutex<Vec<Received>>>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let fields: HashMap<String, String> = if content_type.starts_with("application/json") {
        let value: HashMap<String, Value> = serde_json::from_slice(&body).unwrap_or_default();
        value.into_iter().map(|(k, v)| (k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect()
    } else {
        serde_urlencoded::from_bytes(&body).unwrap_or_default()
    };
    received.lock().unwrap().push(Received { fields: fields.clone(), content_type });
    let ts = "2026-11-21T10:00:00Z";
    let ok = |extra: Value| {
        let mut answer = json!({"success": true, "challenge_ts": ts, "hostname": "app.example.com", "error-codes": []});
        answer.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Json(answer).into_response()
    };
    let fail = |code: &str| Json(json!({"success": false, "error-codes": [code]})).into_response();
    if fields.get("secret").is_none_or(String::is_empty) {
        return fail("missing-input-secret");
    }
    let token = fields.get("response").cloned().unwrap_or_default();
    match token.as_str() {
        "" => fail("missing-input-response"),
        "ok" => ok(json!({})),
        "other-host" => ok(json!({"hostname": "evil.example.net"})),
        "fail" => fail("invalid-input-response"),
        "dup" => fail("timeout-or-duplicate"),
        "bad-secret" => fail("invalid-input-secret"),
        "http500" => (StatusCode::INTERNAL_SERVER_ERROR, "upstream error").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            ok(json!({}))
        }
        t if t.starts_with("ok-action-") => ok(json!({"action": &t["ok-action-".len()..]})),
        t if t.starts_with("score-") => {
            ok(json!({"score": t["score-".len()..].parse::<f64>().unwrap(), "action": "login"}))
        }
        _ => fail("invalid-input-response"),
    }
}
