//! The HTTP API router: [`AuthRouter`] and [`auth_router`].

use auth_core::{
    Auth, AuthError, CaptchaResponse, CaptchaStatus, ChangePasswordRequest, EmailCodeRequest, ForgotPasswordRequest,
    LoginRequest, LogoutRequest, PreferencesResponse, PreferencesUpdate, RefreshRequest, RegisterRequest,
    ResetPasswordRequest, SentResponse, SessionsResponse, TokenResponse, User, VerifyEmailRequest,
};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use tower_http::set_header::SetResponseHeaderLayer;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{AuthClaims, ClientContext, JsonBody, OptionalJsonBody};
use crate::middleware::RequireAuth;

/// Default largest request body: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Builds the router of the HTTP API (`docs/API.md`), to be nested by the host, usually at
/// `/api/auth`.
///
/// Unknown routes answer 404 `not_found` and wrong methods 405 `method_not_allowed`, in the
/// API's error body. Every response, success or error, carries `Cache-Control: no-store` and
/// `Pragma: no-cache` (RFC 6749 §5.1): bodies hold tokens and account data that no browser or
/// shared cache may keep. Serve the app with
/// `into_make_service_with_connect_info::<SocketAddr>()` so sessions record the client IP.
///
/// ```
/// use auth_axum::AuthRouter;
/// use axum::Router;
///
/// fn app(auth: auth_core::Auth) -> Router {
///     Router::new().nest("/api/auth", AuthRouter::new(auth).body_limit(32 * 1024).build())
/// }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthRouter {
    auth: Auth,
    body_limit: usize,
}

impl AuthRouter {
    /// A router serving `auth`, with the default 64 KiB body limit.
    pub fn new(auth: Auth) -> Self {
        Self { auth, body_limit: DEFAULT_BODY_LIMIT }
    }

    /// Largest accepted request body in bytes; larger ones get 413 `payload_too_large`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The router, for any host state `S`.
    pub fn build<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let protected = Router::new()
            .route("/logout", post(logout))
            .route("/me", get(me))
            .route("/me/preferences", put(update_preferences))
            .route("/password/change", post(change_password))
            .route("/sessions", get(sessions))
            .route("/sessions/{id}", delete(revoke_session))
            .route("/email/verify", post(verify_email))
            .route_layer(RequireAuth::new(self.auth.clone()));
        // Routes without a rate rule of their own share "every other route" (per IP); it runs
        // before authentication. `/password/reset` is one of them: the core does not count reset
        // attempts per account (that would let anyone block a victim's recovery), so they are
        // limited here per IP.
        let other = Router::new()
            .route("/captcha/status", get(captcha_status))
            .route("/captcha", get(captcha))
            .route("/refresh", post(refresh))
            .route("/password/reset", post(reset_password))
            .merge(protected)
            .route_layer(middleware::from_fn_with_state(self.auth.clone(), limit_other_routes));
        Router::new()
            .route("/register", post(register))
            .route("/login", post(login))
            .route("/email/code", post(email_code))
            .route("/password/forgot", post(forgot_password))
            .merge(other)
            .fallback(|| async { ApiError::route_not_found() })
            .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
            .layer(DefaultBodyLimit::max(self.body_limit))
            // Outermost, so that rejections, rate-limit answers and fallbacks carry them too.
            .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .layer(SetResponseHeaderLayer::overriding(header::PRAGMA, HeaderValue::from_static("no-cache")))
            .with_state(self.auth)
    }
}

async fn limit_other_routes(
    State(auth): State<Auth>,
    ClientContext(ctx): ClientContext,
    request: Request,
    next: Next,
) -> Response {
    match auth.limit_other_request(&ctx).await {
        Ok(()) => next.run(request).await,
        Err(err) => ApiError::from(err).into_response(),
    }
}

/// [`AuthRouter::new(auth).build()`](AuthRouter::build).
pub fn auth_router<S: Clone + Send + Sync + 'static>(auth: Auth) -> Router<S> {
    AuthRouter::new(auth).build()
}

type ApiResult<T> = Result<T, ApiError>;

async fn captcha_status(State(auth): State<Auth>) -> Json<CaptchaStatus> {
    Json(auth.captcha_status())
}

async fn captcha(State(auth): State<Auth>) -> ApiResult<Json<CaptchaResponse>> {
    Ok(Json(auth.captcha_challenge().await?))
}

async fn register(
    State(auth): State<Auth>,
    ClientContext(ctx): ClientContext,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    Ok((StatusCode::CREATED, Json(auth.register(req, &ctx).await?)))
}

async fn login(
    State(auth): State<Auth>,
    ClientContext(ctx): ClientContext,
    JsonBody(req): JsonBody<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    Ok(Json(auth.login(req, &ctx).await?))
}

async fn refresh(State(auth): State<Auth>, JsonBody(req): JsonBody<RefreshRequest>) -> ApiResult<Json<TokenResponse>> {
    Ok(Json(auth.refresh(&req.refresh_token).await?))
}

async fn logout(
    State(auth): State<Auth>,
    claims: AuthClaims,
    OptionalJsonBody(req): OptionalJsonBody<LogoutRequest>,
) -> ApiResult<StatusCode> {
    auth.logout(&claims, req.all).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(State(auth): State<Auth>, claims: AuthClaims) -> ApiResult<Json<User>> {
    Ok(Json(auth.me(&claims).await?))
}

async fn update_preferences(
    State(auth): State<Auth>,
    claims: AuthClaims,
    JsonBody(update): JsonBody<PreferencesUpdate>,
) -> ApiResult<Json<PreferencesResponse>> {
    Ok(Json(auth.update_preferences(&claims, update).await?))
}

async fn change_password(
    State(auth): State<Auth>,
    claims: AuthClaims,
    ClientContext(ctx): ClientContext,
    JsonBody(req): JsonBody<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    auth.change_password(&claims, req, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sessions(State(auth): State<Auth>, claims: AuthClaims) -> ApiResult<Json<SessionsResponse>> {
    Ok(Json(SessionsResponse { sessions: auth.sessions(&claims).await? }))
}

async fn revoke_session(State(auth): State<Auth>, claims: AuthClaims, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| AuthError::NotFound)?;
    auth.revoke_session(&claims, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn email_code(
    State(auth): State<Auth>,
    ClientContext(ctx): ClientContext,
    JsonBody(req): JsonBody<EmailCodeRequest>,
) -> ApiResult<(StatusCode, Json<SentResponse>)> {
    auth.send_email_code(req, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(SentResponse { sent: true })))
}

async fn verify_email(
    State(auth): State<Auth>,
    claims: AuthClaims,
    JsonBody(req): JsonBody<VerifyEmailRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(auth.verify_email(&claims, req).await?))
}

async fn forgot_password(
    State(auth): State<Auth>,
    ClientContext(ctx): ClientContext,
    JsonBody(req): JsonBody<ForgotPasswordRequest>,
) -> ApiResult<(StatusCode, Json<SentResponse>)> {
    auth.forgot_password(req, &ctx).await?;
    Ok((StatusCode::ACCEPTED, Json(SentResponse { sent: true })))
}

async fn reset_password(
    State(auth): State<Auth>,
    ClientContext(ctx): ClientContext,
    JsonBody(req): JsonBody<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    auth.reset_password(req, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
