//! [`RequireAuth`] and [`OptionalAuth`]: tower layers that authenticate `Authorization: Bearer`
//! access tokens (or a dialect's other schemes, see [`RequireAuth::schemes`]) for a host's
//! routes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use auth_core::{Auth, Role};
use auth_http::browser::{authorize, Access};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::error::ApiError;
use crate::extract::AuthClaims;

/// Requires a valid access token (and optionally a role) on every request to the wrapped routes.
///
/// The access token is the `Authorization` header's; without one, and when the service sets the
/// access-token cookie (`AuthConfig::browser`), the cookie's, and then a request of an unsafe
/// method must come from the API's own site or an allowed origin (403 `csrf_rejected`; see
/// `auth_http::browser`).
///
/// Per request it verifies the JWT (the signature with the key its `kid` names, in that key's
/// algorithm; `typ` `at+jwt`, `exp`, `nbf`, `iss`, `aud`) and then
/// that its session is still live in the session store, so logout, password change and disabled
/// accounts take effect at once. On success it inserts [`AuthClaims`] and the [`Auth`] handle into
/// the request extensions for the [`AuthClaims`], [`CurrentUser`](crate::CurrentUser) and
/// [`OptionalUser`](crate::OptionalUser) extractors.
///
/// Rejections use the API's error body: 401 `unauthorized` (missing or bad token),
/// `token_expired`, `session_revoked`; 403 `forbidden` (role), `csrf_rejected`; 503
/// `store_unavailable`.
///
/// ```
/// use auth_axum::{RequireAuth, CurrentUser};
/// use axum::{routing::get, Router};
///
/// fn routes(auth: auth_core::Auth) -> Router {
///     Router::new()
///         .route("/api/me/name", get(|CurrentUser(user): CurrentUser| async move { user.name().to_owned() }))
///         .route_layer(RequireAuth::new(auth.clone()))
///         .merge(
///             Router::new()
///                 .route("/api/admin/ping", get(|| async { "pong" }))
///                 .route_layer(RequireAuth::new(auth).with_role("admin")),
///         )
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RequireAuth {
    auth: Auth,
    role: Option<Role>,
    schemes: &'static [&'static str],
}

/// The `Authorization` schemes accepted unless told otherwise.
const BEARER: &[&str] = &["Bearer"];

impl RequireAuth {
    /// Any authenticated user.
    pub fn new(auth: Auth) -> Self {
        Self { auth, role: None, schemes: BEARER }
    }

    /// The `Authorization` schemes whose token is taken as an access token (default `Bearer`),
    /// e.g. a dialect's [`auth_schemes`](auth_http::Dialect::auth_schemes) so that its clients'
    /// `Authorization: Customize …` works on the host's routes too.
    pub fn schemes(mut self, schemes: &'static [&'static str]) -> Self {
        self.schemes = schemes;
        self
    }

    /// Only users whose access token carries exactly `role` (e.g. `admin`); others get 403
    /// `forbidden`. The role is the one the token was issued with; changing a user's role
    /// ([`Admin::set_role`](auth_core::Admin::set_role)) ends their sessions, so a live session's
    /// token carries the current role.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(Role::new(role));
        self
    }
}

/// Authenticates the request if it carries an access token (`Authorization`, or the access-token
/// cookie as for [`RequireAuth`]), and lets it through anonymously if it does not. A token that is sent but invalid is still rejected (401), so clients learn that
/// their session died. Pair with [`OptionalUser`](crate::OptionalUser).
#[derive(Debug, Clone)]
#[must_use]
pub struct OptionalAuth {
    auth: Auth,
    schemes: &'static [&'static str],
}

impl OptionalAuth {
    /// A layer authenticating with `auth`.
    pub fn new(auth: Auth) -> Self {
        Self { auth, schemes: BEARER }
    }

    /// As [`RequireAuth::schemes`].
    pub fn schemes(mut self, schemes: &'static [&'static str]) -> Self {
        self.schemes = schemes;
        self
    }
}

impl<S> Layer<S> for RequireAuth {
    type Service = AuthMiddleware<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthMiddleware {
            inner,
            auth: self.auth.clone(),
            mode: Access::Required(self.role.clone()),
            schemes: self.schemes,
        }
    }
}

impl<S> Layer<S> for OptionalAuth {
    type Service = AuthMiddleware<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthMiddleware { inner, auth: self.auth.clone(), mode: Access::Optional, schemes: self.schemes }
    }
}

/// The service of [`RequireAuth`] and [`OptionalAuth`].
#[derive(Debug, Clone)]
pub struct AuthMiddleware<S> {
    inner: S,
    auth: Auth,
    mode: Access,
    schemes: &'static [&'static str],
}

impl<S> Service<Request> for AuthMiddleware<S>
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
        // The clone is not ready; keep the ready service for this request (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        let mode = self.mode.clone();
        let schemes = self.schemes;
        Box::pin(async move {
            match authorize(&auth, &mode, schemes, req.method(), req.headers()).await.map(|c| c.map(AuthClaims)) {
                Ok(claims) => {
                    if let Some(claims) = claims {
                        req.extensions_mut().insert(claims);
                    }
                    req.extensions_mut().insert(auth);
                    inner.call(req).await
                }
                Err(err) => Ok(ApiError::from(err).into_response()),
            }
        })
    }
}
