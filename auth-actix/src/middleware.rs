//! [`RequireAuth`] and [`OptionalAuth`]: actix-web middleware that authenticates
//! `Authorization: Bearer` access tokens (or a dialect's other schemes, see
//! [`RequireAuth::schemes`]) for a host's routes.

use std::fmt;
use std::future::{ready, Ready};
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::{HttpMessage as _, ResponseError as _};
use auth_core::{Auth, Role};
use auth_http::browser::{authorize, Access, AUTHORIZE_HEADERS};
use futures_util::future::LocalBoxFuture;

use crate::convert::{http_headers_named, http_method};
use crate::error::ApiError;
use crate::extract::AuthClaims;

/// Requires a valid access token (and optionally a role) on every request to the wrapped
/// resources, scopes or app: actix-web middleware ([`Transform`]), the counterpart of
/// `auth_axum::RequireAuth`.
///
/// The access token is the `Authorization` header's (`Bearer`, RFC 6750 §2.1); without one, and
/// when the service sets the access-token cookie (`AuthConfig::browser`), the cookie's, and then
/// a request of an unsafe method must come from the API's own site or an allowed origin (403
/// `csrf_rejected`; see `auth_http::browser`).
///
/// Per request it verifies the JWT (RFC 9068 `typ` `at+jwt`; the signature with the key its `kid`
/// names, in that key's algorithm; `exp`, `nbf`, `iss`, `aud`) and then that its session is still
/// live in the session store, so logout, password change and disabled accounts take effect at
/// once. On success it inserts [`AuthClaims`] and the [`Auth`] handle into the request extensions
/// for the [`AuthClaims`], [`CurrentUser`](crate::CurrentUser) and
/// [`OptionalUser`](crate::OptionalUser) extractors.
///
/// Rejections are the API's error responses, in the canonical envelope and carrying their
/// [`ErrorBody`](auth_http::ErrorBody) (wrap the app with [`dialect_errors`](crate::dialect_errors)
/// to answer in another dialect): 401 `unauthorized` (missing or bad token, with
/// `WWW-Authenticate: Bearer`), `token_expired`, `session_revoked` (with
/// `WWW-Authenticate: Bearer error="invalid_token"`); 403 `forbidden` (role), `csrf_rejected`;
/// 503 `store_unavailable`.
///
/// ```
/// use actix_web::{web, App, HttpResponse};
/// use auth_actix::{CurrentUser, RequireAuth};
///
/// fn routes(auth: auth_core::Auth, cfg: &mut web::ServiceConfig) {
///     cfg.service(
///         web::resource("/api/me/name")
///             .wrap(RequireAuth::new(auth.clone()))
///             .get(|CurrentUser(user): CurrentUser| async move { user.name().to_owned() }),
///     )
///     .service(
///         web::resource("/api/admin/ping")
///             .wrap(RequireAuth::new(auth).with_role("admin"))
///             .get(|| async { HttpResponse::Ok().body("pong") }),
///     );
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

    /// The `Authorization` schemes whose token is taken as an access token (default `Bearer`;
    /// compared case-insensitively, RFC 9110 §11.1), e.g. a dialect's
    /// [`auth_schemes`](auth_http::Dialect::auth_schemes) so that its clients'
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
/// cookie as for [`RequireAuth`]), and lets it through anonymously if it does not. A token that is
/// sent but invalid is still rejected (401), so clients learn that their session died. Pair with
/// [`OptionalUser`](crate::OptionalUser).
///
/// ```
/// use actix_web::web;
/// use auth_actix::{OptionalAuth, OptionalUser};
///
/// fn routes(auth: auth_core::Auth, cfg: &mut web::ServiceConfig) {
///     cfg.service(web::resource("/api/greeting").wrap(OptionalAuth::new(auth)).get(
///         |OptionalUser(user): OptionalUser| async move {
///             format!("hello {}", user.as_ref().map_or("stranger", |u| u.name()))
///         },
///     ));
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct OptionalAuth {
    auth: Auth,
    schemes: &'static [&'static str],
}

impl OptionalAuth {
    /// Middleware authenticating with `auth`.
    pub fn new(auth: Auth) -> Self {
        Self { auth, schemes: BEARER }
    }

    /// As [`RequireAuth::schemes`].
    pub fn schemes(mut self, schemes: &'static [&'static str]) -> Self {
        self.schemes = schemes;
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireAuth
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = AuthMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AuthMiddleware {
            service: Rc::new(service),
            auth: self.auth.clone(),
            mode: Access::Required(self.role.clone()),
            schemes: self.schemes,
        }))
    }
}

impl<S, B> Transform<S, ServiceRequest> for OptionalAuth
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = AuthMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AuthMiddleware {
            service: Rc::new(service),
            auth: self.auth.clone(),
            mode: Access::Optional,
            schemes: self.schemes,
        }))
    }
}

/// The service of [`RequireAuth`] and [`OptionalAuth`].
pub struct AuthMiddleware<S> {
    service: Rc<S>,
    auth: Auth,
    mode: Access,
    schemes: &'static [&'static str],
}

impl<S> fmt::Debug for AuthMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthMiddleware")
            .field("mode", &self.mode)
            .field("schemes", &self.schemes)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for AuthMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let (auth, mode, schemes) = (self.auth.clone(), self.mode.clone(), self.schemes);
        Box::pin(async move {
            let method = http_method(req.method());
            // Only what the check reads: actix-web's `http` 0.2 headers are copied, not shared.
            let headers = http_headers_named(req.headers(), AUTHORIZE_HEADERS);
            match authorize(&auth, &mode, schemes, &method, &headers).await.map(|c| c.map(AuthClaims)) {
                Ok(claims) => {
                    {
                        let mut extensions = req.extensions_mut();
                        if let Some(claims) = claims {
                            extensions.insert(claims);
                        }
                        extensions.insert(auth);
                    }
                    Ok(service.call(req).await?.map_into_left_body())
                }
                Err(err) => {
                    let response = ApiError::from(err).error_response();
                    Ok(req.into_response(response).map_into_right_body())
                }
            }
        })
    }
}
