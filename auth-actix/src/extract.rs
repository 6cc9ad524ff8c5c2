//! Extractors ([`FromRequest`]): [`AuthClaims`], [`CurrentUser`], [`OptionalUser`] for host
//! routes behind [`RequireAuth`](crate::RequireAuth) / [`OptionalAuth`](crate::OptionalAuth), and
//! [`ClientContext`].

use std::future::{ready, Ready};
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage as _, HttpRequest};
use auth_core::{Auth, RequestContext, User};
use auth_http::request_context;
use futures_util::future::LocalBoxFuture;

use crate::convert::http_headers;
use crate::error::ApiError;

/// The verified [`auth_core::Claims`] of the request's access token (named apart from them so
/// both can be in scope, as in `auth-axum`; it derefs to them), put in the request extensions by
/// [`RequireAuth`](crate::RequireAuth) (or by [`OptionalAuth`](crate::OptionalAuth) when a token
/// was sent). Costs nothing beyond the middleware's check: the claims are shared (an [`Arc`])
/// with the service's verified-token cache, so extracting them copies and allocates nothing.
///
/// Rejects with 500 `internal` (and logs why) on a route without either middleware: a route that
/// asks for claims must never run unauthenticated.
///
/// ```
/// use auth_actix::AuthClaims;
///
/// async fn whoami(claims: AuthClaims) -> String {
///     format!("{} ({})", claims.sub, claims.role)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthClaims(pub Arc<auth_core::Claims>);

impl Deref for AuthClaims {
    type Target = auth_core::Claims;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FromRequest for AuthClaims {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(claims_of(req))
    }
}

fn claims_of(req: &HttpRequest) -> Result<AuthClaims, ApiError> {
    req.extensions().get::<AuthClaims>().cloned().ok_or_else(|| {
        ApiError::misconfigured("the AuthClaims/CurrentUser extractor needs the RequireAuth middleware on this route")
    })
}

/// The authenticated user, loaded from the user store (one lookup per request). Needs
/// [`RequireAuth`](crate::RequireAuth) on the route.
///
/// Rejects with 401 `unauthorized` if the user no longer exists, 503 `store_unavailable`, or
/// 500 `internal` without the middleware.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl Deref for CurrentUser {
    type Target = User;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = claims_of(req).and_then(|claims| Ok((claims, auth_of(req)?)));
        Box::pin(async move {
            let (AuthClaims(claims), auth) = found?;
            Ok(Self(auth.me(&claims).await?))
        })
    }
}

/// The user if the request carried a valid access token, else `None`. Needs
/// [`OptionalAuth`](crate::OptionalAuth) (or [`RequireAuth`](crate::RequireAuth)) on the route.
///
/// Rejects with 401 `unauthorized` if the token's user no longer exists, 503
/// `store_unavailable`, or 500 `internal` without the middleware.
#[derive(Debug, Clone)]
pub struct OptionalUser(pub Option<User>);

impl FromRequest for OptionalUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = auth_of(req).map(|auth| (auth, req.extensions().get::<AuthClaims>().cloned()));
        Box::pin(async move {
            match found? {
                (auth, Some(AuthClaims(claims))) => Ok(Self(Some(auth.me(&claims).await?))),
                (_, None) => Ok(Self(None)),
            }
        })
    }
}

fn auth_of(req: &HttpRequest) -> Result<Auth, ApiError> {
    req.extensions().get::<Auth>().cloned().ok_or_else(|| {
        ApiError::misconfigured(
            "CurrentUser/OptionalUser need the RequireAuth or OptionalAuth middleware on this route",
        )
    })
}

/// The client of the request as a [`RequestContext`]: its IP, `User-Agent` and step-up code
/// (`X-MFA-Code`).
///
/// The IP is the connection's peer ([`HttpRequest::peer_addr`]). Only when the peer is one of
/// [`AuthConfig::trusted_proxies`](auth_core::AuthConfig::trusted_proxies) is a forwarding header
/// read, and only the one of
/// [`AuthConfig::client_ip_header`](auth_core::AuthConfig::client_ip_header) (default
/// `X-Forwarded-For`); see [`auth_http::client_ip`]. actix-web's own
/// `ConnectionInfo::realip_remote_addr`, which believes any client's `Forwarded` and
/// `X-Forwarded-For`, is never used.
///
/// Needs the [`Auth`] service for its configuration: from [`RequireAuth`](crate::RequireAuth) /
/// [`OptionalAuth`](crate::OptionalAuth) on the route, or as app data (`App::app_data(auth)` or
/// `web::Data<Auth>`); without, it rejects with 500 `internal`.
#[derive(Debug, Clone)]
pub struct ClientContext(pub RequestContext);

impl FromRequest for ClientContext {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req
            .extensions()
            .get::<Auth>()
            .cloned()
            .or_else(|| req.app_data::<Auth>().cloned())
            .or_else(|| req.app_data::<web::Data<Auth>>().map(|data| data.get_ref().clone()));
        ready(match auth {
            Some(auth) => {
                let peer = req.peer_addr().map(|addr| addr.ip());
                Ok(Self(request_context(auth.config(), peer, &http_headers(req.headers()))))
            }
            None => Err(ApiError::misconfigured(
                "ClientContext needs Auth as app data, or the RequireAuth or OptionalAuth middleware on this route",
            )),
        })
    }
}
