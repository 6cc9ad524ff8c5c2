//! [`JwksAuth`]: protects a resource server's routes with the access tokens of an auth server
//! it only knows by its published JWK Set — no secret, no store, no [`Auth`](auth_core::Auth).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use auth_core::keys::{JwkSet, JwtKey, TokenVerifier};
use auth_core::{AuthError, Claims, Clock, SystemClock};
use auth_http::{bearer_token, ErrorBody};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tower::{Layer, Service};

use crate::error::ApiError;
use crate::extract::AuthClaims;

/// Largest JWK Set accepted, in bytes (64 KiB: hundreds of keys).
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// A tower layer that requires an access token signed by a key of a remote JWK Set: for the
/// services of a system that trust an auth server built with this library (or any issuer of
/// RFC 9068 tokens with `kid`) without holding a key that can mint tokens.
///
/// Per request it reads `Authorization: Bearer`, picks the key by the token's `kid`, and checks
/// the signature with that key's own algorithm (`EdDSA`, `ES256` or `RS256`, from the JWK's
/// `alg`: never the token's choice), `typ: at+jwt`, `iss`, `aud`, `exp` and `nbf` (with
/// [`leeway`](Self::leeway)), as the auth server does ([`TokenVerifier`]). On success it inserts
/// [`AuthClaims`] for the handler.
///
/// Keys: fetched on first use (or [`refresh`](Self::refresh) at startup), kept
/// [`max_age`](Self::max_age) (default 600 s, the auth server's `Cache-Control`), fetched again
/// at once for a token whose `kid` is unknown (a rotation) but at most once per
/// [`min_refetch_interval`](Self::min_refetch_interval) (default 30 s), so tokens with made-up
/// `kid`s cannot turn the layer into a flood of requests to the auth server; a failed fetch is
/// retried once per interval too. When a refetch fails or answers no usable key, the keys it
/// has stay in use, for at most [`max_stale`](Self::max_stale) (24 h) past `max_age`. Fetches
/// follow no redirect, time out after 5 s and read at most 64 KiB; a plain `http://` URL to
/// another host than the loopback is warned about (anyone on the path could substitute keys).
///
/// What it cannot know: revocation. A token whose session was ended (logout, password change,
/// disabled account) stays valid here until its `exp`. Keep access tokens short-lived, or ask
/// the auth server with token introspection (`POST /introspect`, RFC 7662) where that matters.
///
/// Rejections use the API's error body: 401 `unauthorized` (missing, unknown `kid`, bad),
/// `token_expired`; 503 `keys_unavailable` when no key could be fetched yet, or the held ones
/// are too old.
/// [`CurrentUser`](crate::CurrentUser) needs the auth service and does not work behind it; use
/// [`AuthClaims`].
///
/// ```
/// use auth_axum::{AuthClaims, JwksAuth};
/// use axum::{routing::get, Router};
///
/// let jwks = JwksAuth::new("https://auth.example.com/.well-known/jwks.json", "auth", "api");
/// let app: Router = Router::new()
///     .route("/orders", get(|AuthClaims(claims): AuthClaims| async move { claims.sub.to_string() }))
///     .route_layer(jwks);
/// ```
#[derive(Clone)]
#[must_use]
pub struct JwksAuth {
    url: Arc<str>,
    issuer: Arc<str>,
    audience: Arc<str>,
    leeway: Duration,
    max_age: Duration,
    max_stale: Duration,
    min_refetch_interval: Duration,
    clock: Arc<dyn Clock>,
    /// What clones share: the keys and the fetcher.
    shared: Arc<Shared>,
}

struct Shared {
    /// `None` if it could not be built (logged): every fetch fails.
    http: Option<reqwest::Client>,
    keys: RwLock<Keys>,
    /// One fetch at a time; the others wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Keys {
    /// Shared, so a request takes a reference count, not a copy of the keys.
    verifier: Option<Arc<TokenVerifier>>,
    /// When the held keys were fetched.
    fetched_at: Option<DateTime<Utc>>,
    /// When a fetch was last tried, whatever its outcome.
    last_attempt: Option<DateTime<Utc>>,
    /// When a token's unknown `kid` last caused a fetch.
    last_kid_fetch: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for JwksAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksAuth")
            .field("url", &self.url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Why a JWK Set could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The request failed, timed out, or the answer was not 200.
    #[error("fetching the JWK Set failed: {0}")]
    Fetch(String),
    /// The answer is not a JWK Set, is over 64 KiB, or holds no usable key.
    #[error("the JWK Set is unusable: {0}")]
    Invalid(String),
}

impl JwksAuth {
    /// A layer accepting tokens with `iss` = `issuer` and `aud` = `audience` (the auth server's
    /// `AuthConfig::issuer` / `audience`, default `auth` / `api`) signed by a key of the JWK Set
    /// at `jwks_url` (`https://auth.example.com/.well-known/jwks.json`).
    pub fn new(jwks_url: impl Into<String>, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        // No redirects: the keys come from the configured URL or from nowhere.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| tracing::error!(error = %err, "JwksAuth: the HTTP client cannot be built"))
            .ok();
        let url: String = jwks_url.into();
        let plain_http = url.strip_prefix("http://").map(|rest| rest.split(['/', ':']).next().unwrap_or_default());
        if plain_http.is_some_and(|host| !matches!(host, "127.0.0.1" | "localhost" | "[")) {
            tracing::warn!(url = %url, "JwksAuth fetches the signing keys over plain HTTP: anyone on the path can \
                substitute keys and mint tokens; use https");
        }
        Self {
            url: url.into(),
            issuer: issuer.into().into(),
            audience: audience.into().into(),
            leeway: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
            max_stale: Duration::from_secs(24 * 3600),
            min_refetch_interval: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            shared: Arc::new(Shared {
                http,
                keys: RwLock::new(Keys::default()),
                fetching: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Clock skew tolerated on `exp` and `nbf` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How long fetched keys are used before they are fetched again (default 600 s).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How long past `max_age` held keys stay in use while they cannot be fetched again (default
    /// 24 h); after that, requests get 503 `keys_unavailable`, so a retired or leaked key is not
    /// trusted forever by a resource server cut off from the auth server.
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = max_stale;
        self
    }

    /// The shortest time between two fetches caused by unknown `kid`s, and between retries of a
    /// failed fetch (default 30 s, at least 1 s).
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval.max(Duration::from_secs(1));
        self
    }

    /// The clock for `exp`/`nbf` and the fetch schedule (default the system's; tests move a
    /// [`ManualClock`](auth_core::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Fetches the JWK Set now (at startup, to fail early or warm the cache).
    ///
    /// # Errors
    /// [`JwksError`] when the fetch fails or the set holds no usable key; the keys held before
    /// stay in use then (within [`max_stale`](Self::max_stale)).
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let _one = self.shared.fetching.lock().await;
        self.fetch().await
    }

    async fn fetch(&self) -> Result<(), JwksError> {
        let now = self.clock.now();
        if let Ok(mut keys) = self.shared.keys.write() {
            keys.last_attempt = Some(now);
        }
        let http = self.shared.http.as_ref().ok_or_else(|| JwksError::Fetch("no HTTP client".into()))?;
        let mut response = http.get(&*self.url).send().await.map_err(|e| JwksError::Fetch(e.to_string()))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(JwksError::Fetch(format!("{} answered {}", self.url, response.status())));
        }
        let too_big = || JwksError::Invalid("over 64 KiB".into());
        if response.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
            return Err(too_big());
        }
        // Read piece by piece: a body without Content-Length is cut off at the limit too.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| JwksError::Fetch(e.to_string()))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| JwksError::Invalid(e.to_string()))?;
        let mut usable = Vec::new();
        for jwk in &set.keys {
            match JwtKey::from_jwk(jwk) {
                Ok(key) => usable.push(key),
                // An auth server may publish keys for other uses; they are not ours to trust.
                Err(err) => tracing::warn!(url = %self.url, error = %err, "skipping a key of the JWK Set"),
            }
        }
        if usable.is_empty() {
            // The held keys (if any) stay: an empty answer is an error, not a revocation of all.
            return Err(JwksError::Invalid("no EdDSA, ES256 or RS256 key with kid, alg and use sig".into()));
        }
        let verifier = TokenVerifier::new(&usable, &self.issuer, &self.audience, self.leeway.as_secs());
        if let Ok(mut keys) = self.shared.keys.write() {
            keys.verifier = Some(Arc::new(verifier));
            keys.fetched_at = Some(now);
        }
        Ok(())
    }

    /// Verifies `token` against the remote keys, fetching them when needed (see the type's
    /// docs). Usable without the layer, e.g. in another framework.
    ///
    /// # Errors
    /// [`AuthError::Unauthorized`] / [`AuthError::TokenExpired`] as [`TokenVerifier::verify`];
    /// [`JwksRejection::KeysUnavailable`] when no key was ever fetched, or the held ones are past
    /// `max_age` + `max_stale`.
    pub async fn verify(&self, token: &str) -> Result<Claims, JwksRejection> {
        let kid = TokenVerifier::kid_of(token).ok_or(JwksRejection::Token(AuthError::Unauthorized))?;
        let now = self.clock.now();
        if let Some(verifier) = self.usable_keys(&kid, now) {
            return verifier.verify(token, now.timestamp()).map_err(JwksRejection::Token);
        }
        {
            let _one = self.shared.fetching.lock().await;
            // Another request may have fetched while this one waited.
            if self.should_fetch(&kid, now) {
                if let Err(err) = self.fetch().await {
                    tracing::warn!(url = %self.url, error = %err, "the JWK Set could not be fetched");
                }
            }
        }
        // Held keys, unless they are older than max-age plus max-stale.
        let limit = delta(self.max_age).checked_add(&delta(self.max_stale)).unwrap_or(chrono::TimeDelta::MAX);
        let verifier = self.shared.keys.read().ok().and_then(|keys| {
            let usable = keys.fetched_at.is_some_and(|at| now - at <= limit);
            keys.verifier.clone().filter(|_| usable)
        });
        match verifier {
            Some(verifier) => verifier.verify(token, now.timestamp()).map_err(JwksRejection::Token),
            None => Err(JwksRejection::KeysUnavailable),
        }
    }

    /// The held keys, when they know `kid` and are not older than `max_age`.
    fn usable_keys(&self, kid: &str, now: DateTime<Utc>) -> Option<Arc<TokenVerifier>> {
        let keys = self.shared.keys.read().ok()?;
        let verifier = keys.verifier.as_ref()?;
        (keys.is_fresh(now, self.max_age) && verifier.knows(kid)).then(|| verifier.clone())
    }

    /// Whether to fetch now for a token naming `kid`, once per `min_refetch_interval` for each
    /// reason: no keys yet, or held keys past `max_age` (a fetch was last *tried* that long
    /// ago, so an auth server that is down is asked once per interval, not per request); a
    /// `kid` the held keys lack (a fetch for an unknown `kid` was that long ago, so made-up
    /// kids cannot flood the auth server, while a rotation right after a scheduled fetch is
    /// still seen at once). Records the unknown-`kid` fetch.
    fn should_fetch(&self, kid: &str, now: DateTime<Utc>) -> bool {
        let Ok(mut keys) = self.shared.keys.write() else { return false };
        let interval = delta(self.min_refetch_interval);
        let waited = |at: Option<DateTime<Utc>>| at.is_none_or(|at| now - at >= interval);
        let Some(held) = keys.verifier.as_ref() else { return waited(keys.last_attempt) };
        let for_kid = !held.knows(kid) && waited(keys.last_kid_fetch);
        let for_age = !keys.is_fresh(now, self.max_age) && waited(keys.last_attempt);
        if for_kid {
            keys.last_kid_fetch = Some(now);
        }
        for_kid || for_age
    }
}

impl Keys {
    fn is_fresh(&self, now: DateTime<Utc>, max_age: Duration) -> bool {
        self.fetched_at.is_some_and(|at| now - at <= delta(max_age))
    }
}

fn delta(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// Why [`JwksAuth::verify`] refused a token.
#[derive(Debug)]
#[non_exhaustive]
pub enum JwksRejection {
    /// The token is not acceptable (401).
    Token(AuthError),
    /// No key could be fetched yet (503 `keys_unavailable`).
    KeysUnavailable,
}

impl IntoResponse for JwksRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Token(err) => ApiError::from(err).into_response(),
            Self::KeysUnavailable => ApiError::from(ErrorBody::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "keys_unavailable",
                "the auth server's signing keys cannot be fetched",
            ))
            .into_response(),
        }
    }
}

impl<S> Layer<S> for JwksAuth {
    type Service = JwksAuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        JwksAuthService { inner, jwks: self.clone() }
    }
}

/// The service of [`JwksAuth`].
#[derive(Debug, Clone)]
pub struct JwksAuthService<S> {
    inner: S,
    jwks: JwksAuth,
}

impl<S> Service<Request> for JwksAuthService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let jwks = self.jwks.clone();
        Box::pin(async move {
            let Some(token) = bearer_token(req.headers()).ok().flatten().map(str::to_owned) else {
                return Ok(ApiError::from(AuthError::Unauthorized).into_response());
            };
            match jwks.verify(&token).await {
                Ok(claims) => {
                    req.extensions_mut().insert(AuthClaims(std::sync::Arc::new(claims)));
                    inner.call(req).await
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}
