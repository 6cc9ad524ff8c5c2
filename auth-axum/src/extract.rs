//! Extractors: [`AuthClaims`], [`CurrentUser`], [`OptionalUser`] for host routes behind
//! [`RequireAuth`](crate::RequireAuth) / [`OptionalAuth`](crate::OptionalAuth); [`ClientContext`]
//! and the JSON body extractors used by the router.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use auth_core::{Auth, AuthError, RequestContext, User};
use auth_http::{is_json, json_body, optional_json_body, request_context};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The verified [`auth_core::Claims`] of the request's access token (named apart from them so both
/// can be in scope; it derefs to them), put in the request extensions by
/// [`RequireAuth`](crate::RequireAuth) (or by [`OptionalAuth`](crate::OptionalAuth) when a token
/// was sent). Costs nothing beyond the layer's check: the claims are shared (an [`Arc`]) with
/// the service's verified-token cache, so extracting them copies and allocates nothing.
///
/// Rejects with 500 `internal` (and logs why) on a route without either layer: a route that
/// asks for claims must never run unauthenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthClaims(pub Arc<auth_core::Claims>);

impl Deref for AuthClaims {
    type Target = auth_core::Claims;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthClaims {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AuthClaims>().cloned().ok_or_else(|| {
            ApiError::misconfigured("the AuthClaims/CurrentUser extractor needs the RequireAuth layer on this route")
        })
    }
}

/// The authenticated user, loaded from the user store (one lookup per request). Needs
/// [`RequireAuth`](crate::RequireAuth) on the route.
///
/// Rejects with 401 `unauthorized` if the user no longer exists, 503 `store_unavailable`, or
/// 500 `internal` without the layer.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl Deref for CurrentUser {
    type Target = User;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = AuthClaims::from_request_parts(parts, state).await?;
        let auth = auth_of(parts)?;
        Ok(Self(auth.me(&claims).await?))
    }
}

/// The user if the request carried a valid access token, else `None`. Needs
/// [`OptionalAuth`](crate::OptionalAuth) (or [`RequireAuth`](crate::RequireAuth)) on the route.
#[derive(Debug, Clone)]
pub struct OptionalUser(pub Option<User>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let auth = auth_of(parts)?;
        match parts.extensions.get::<AuthClaims>() {
            Some(claims) => Ok(Self(Some(auth.me(claims).await?))),
            None => Ok(Self(None)),
        }
    }
}

fn auth_of(parts: &Parts) -> Result<Auth, ApiError> {
    parts.extensions.get::<Auth>().cloned().ok_or_else(|| {
        ApiError::misconfigured("CurrentUser/OptionalUser need the RequireAuth or OptionalAuth layer on this route")
    })
}

/// The client of the request as a [`RequestContext`]: its IP and `User-Agent`.
///
/// The IP is the socket peer (from `ConnectInfo<SocketAddr>`: serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`). Only when the peer is one of
/// [`AuthConfig::trusted_proxies`](auth_core::AuthConfig::trusted_proxies) is a forwarding header
/// read, and only the one of
/// [`AuthConfig::client_ip_header`](auth_core::AuthConfig::client_ip_header) (default
/// `X-Forwarded-For`); see [`auth_http::client_ip`]. Needs `Auth` from the router state.
#[derive(Debug, Clone)]
pub struct ClientContext(pub RequestContext);

impl<S> FromRequestParts<S> for ClientContext
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        Ok(Self(request_context(auth.config(), peer, &parts.headers)))
    }
}

/// A JSON request body with the API's errors: 415 `unsupported_media_type` unless the
/// `Content-Type` is `application/json` (or `application/*+json`), 413 `payload_too_large` over
/// the body limit, and 400 `invalid_request` naming the offending fields for malformed JSON,
/// missing or ill-typed fields. Field values are never echoed back.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        let headers = req.headers().clone();
        let bytes = read_body(req, state).await?;
        Ok(Self(json_body(&headers, &bytes)?))
    }
}

/// Like [`JsonBody`], but an empty body (no `Content-Type` needed) gives `T::default()`.
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let bytes = read_body(req, state).await?;
        Ok(Self(optional_json_body(&headers, &bytes)?))
    }
}

/// The body, or 413 `payload_too_large` past the route's `DefaultBodyLimit`.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            AuthError::invalid_field("body", "could not be read").into()
        }
    })
}
