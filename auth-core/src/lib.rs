//! # auth-core
//!
//! The framework-agnostic core of an embeddable authentication service: users, login sessions,
//! JWT access tokens, rotating refresh tokens, Argon2id passwords, and the traits that stores,
//! captcha providers and mailers implement. It names no HTTP framework and no database driver:
//! `auth-axum` serves it over HTTP, `auth-storage` provides the backends.
//!
//! - [`Auth`]: the service. Every flow of the HTTP API (`register`, `login`, `refresh`,
//!   `logout`, `me`, preferences, password change, sessions) is one async method taking typed
//!   input and a [`RequestContext`], and returning typed output or an [`AuthError`] with a stable
//!   machine code. [`Auth::authenticate`] is what middleware calls for each request.
//! - Stores: [`UserStore`], [`TokenStore`] (sessions, refresh-token rotation with reuse
//!   detection, one-time secrets) and [`RateLimiter`], object-safe so a host can hold
//!   `Arc<dyn UserStore>` and mix backends.
//! - [`CaptchaProvider`] and [`Mailer`]: captcha providers (none, image, Turnstile, reCAPTCHA,
//!   hCaptcha) and mailers (SMTP, log, memory) built in, behind cargo features where they pull
//!   heavy dependencies (`captcha-image`, `captcha-siteverify`, `mail-smtp`).
//! - Email flows: mailed 6-digit codes (registration, email verification, password reset) and
//!   single-use reset links, stored only as keyed hashes, enumeration-safe.
//! - Security defaults (see [`AuthConfig`]): Argon2id m = 19456 KiB, t = 2, p = 1 on threads of
//!   the hasher's own, with a bounded queue; HS256 access tokens with `typ: at+jwt` (RFC 9068),
//!   3600 s, whose session is checked on every request; 256-bit refresh tokens stored as SHA-256, rotated on
//!   every use with a 10 s reuse grace window; NIST SP 800-63B password policy.
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::{Auth, AuthConfig, LoginRequest, RegisterRequest, RequestContext};
//! use auth_storage::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AuthConfig::new(b"a secret of at least thirty-two bytes!".to_vec())?;
//! let auth = Auth::builder(config).stores(Arc::new(MemoryStore::new())).build()?;
//! let ctx = RequestContext::default();
//!
//! let register: RegisterRequest =
//!     serde_json::from_value(serde_json::json!({"username": "alice", "password": "violet-Kettle-93"}))?;
//! let tokens = auth.register(register, &ctx).await?;
//!
//! // What a middleware does with `Authorization: Bearer …`:
//! let claims = auth.authenticate(&tokens.access_token).await?;
//! assert_eq!(claims.sub, tokens.user.id);
//!
//! let login: LoginRequest =
//!     serde_json::from_value(serde_json::json!({"username": "ALICE", "password": "wrong password"}))?;
//! let err = auth.login(login, &ctx).await.unwrap_err();
//! assert_eq!(err.code(), "invalid_credentials");
//!
//! // Rotation: the refresh token is spent and its successor returned.
//! let next = auth.refresh(&tokens.refresh_token.as_str().into()).await?;
//! assert_ne!(next.refresh_token, tokens.refresh_token);
//! # Ok(()) }
//! ```

pub mod api;
pub mod captcha;
pub mod clock;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
mod limit;
pub mod mail;
pub mod password;
pub mod rotation;
pub mod secret;
mod service;
pub mod store;
pub mod token;
pub mod user;
pub mod validate;

pub use api::{
    CaptchaResponse, CaptchaStatus, ChangePasswordRequest, EmailCodePurpose, EmailCodeRequest, ForgotPasswordRequest,
    LoginRequest, LogoutRequest, PreferencesResponse, PreferencesUpdate, RefreshRequest, RegisterRequest,
    ResetPasswordRequest, SentResponse, SessionInfo, SessionsResponse, TokenResponse, VerifyEmailRequest,
};
pub use async_trait::async_trait;
pub use captcha::{CaptchaAction, CaptchaChallenge, CaptchaProof, CaptchaProvider, NoCaptcha};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AuthConfig, ConfigError, RateLimits, RateRule, RateRuleName, RegistrationPolicy, MIN_JWT_SECRET_BYTES,
};
pub use context::{ClientIpHeader, RequestContext};
pub use error::{AuthError, BoxError, FieldError, StoreError, WeakPasswordReason};
pub use events::{AuthEvents, LoginFailure, NoEvents};
pub use ipnet;
pub use limit::MemoryRateLimiter;
pub use mail::{
    DefaultTemplates, EmailMessage, LogMailer, MailKind, MailTemplates, Mailer, MemoryMailer, RenderedMail,
};
pub use password::{Argon2Params, PasswordHasher, PasswordPolicy, Verified};
pub use secret::{random_token, SecretString, TokenHash};
pub use service::{Auth, AuthBuilder};
pub use store::{
    NewSecret, NewSession, OnMismatch, RateLimitDecision, RateLimiter, RefreshRotation, Rotation, SecretCheck, Session,
    TokenStore, UserStore,
};
pub use token::Claims;
pub use user::{NewUser, Preferences, Role, Theme, User, UserRecord, UserStatus, UserUpdate};
