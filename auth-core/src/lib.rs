//! # auth-core
//!
//! The framework-agnostic core of an embeddable authentication service: users, login sessions,
//! JWT access tokens, rotating refresh tokens, Argon2id passwords, and the traits that stores,
//! captcha providers and mailers implement. It names no HTTP framework and no database driver:
//! `auth-http` renders it as HTTP (in any `Dialect`), `auth-axum` serves that, `auth-storage`
//! provides the backends.
//!
//! - [`Auth`]: the service. Every flow of the HTTP API (`register`, `login`, `refresh`,
//!   `logout`, `me`, preferences, password change, sessions) is one async method taking typed
//!   input and a [`RequestContext`], and returning domain values ([`IssuedTokens`],
//!   [`LoginOutcome`], [`User`], [`Session`]) or an [`AuthError`] with a stable machine code.
//!   [`Auth::authenticate`] is what middleware calls for each request;
//!   [`Auth::issue_session`] starts a session for a user the host authenticated its own way.
//! - Stores: [`UserStore`], [`SessionStore`] (sessions, refresh-token rotation with reuse
//!   detection), [`SecretStore`] (one-time secrets) and [`RateLimiter`], object-safe so a host
//!   can hold `Arc<dyn SessionStore>` and mix backends.
//! - [`CaptchaProvider`] and [`Mailer`]: captcha providers (none, image, Turnstile, reCAPTCHA,
//!   hCaptcha) and mailers (SMTP, log, memory) built in, behind cargo features where they pull
//!   heavy dependencies (`captcha-image`, `captcha-siteverify`, `mail-smtp`).
//! - Email flows: mailed 6-digit codes (registration, email verification, password reset) and
//!   single-use reset links, stored only as keyed hashes, enumeration-safe.
//! - Security defaults (see [`AuthConfig`]): Argon2id m = 19456 KiB, t = 2, p = 1 on threads of
//!   the hasher's own, with a bounded queue; access tokens with `typ: at+jwt` (RFC 9068) and a
//!   `kid`, 3600 s, HS256 by default or EdDSA / ES256 / RS256 with a published JWK Set
//!   ([`keys`]), whose session is checked on every request; 256-bit refresh tokens stored as SHA-256, rotated on
//!   every use with a 10 s reuse grace window; NIST SP 800-63B password policy.
//!
//! ```
//! use auth_core::{Argon2Params, AuthConfig, PasswordHasher, PasswordPolicy, WeakPasswordReason};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The configuration refuses what is unsafe (a JWT secret under 32 bytes) and starts from the
//! // API contract's defaults: Argon2id m = 19456 KiB, t = 2, p = 1, every rate limit on, …
//! let config = AuthConfig::new(b"a secret of at least thirty-two bytes!".to_vec())?;
//! assert_eq!(config.argon2, Argon2Params::default());
//!
//! // The password rules (NIST SP 800-63B) and the hasher the service runs them with.
//! let policy = PasswordPolicy::default();
//! assert_eq!(policy.check("password1", &[]), Err(vec![WeakPasswordReason::TooCommon]));
//! let hasher = PasswordHasher::new(Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 }, 1, 8)?;
//! let phc = hasher.hash("violet-Kettle-93").await?;
//! assert!(phc.starts_with("$argon2id$"));
//! assert!(hasher.verify("violet-Kettle-93", Some(&phc)).await?.valid);
//! # Ok(()) }
//! ```
//!
//! The whole service over a store (`Auth::builder(config).stores(…).build()`) is shown in the
//! `auth-storage` crate, whose backends implement the traits; the HTTP API is `auth-axum`.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
pub mod browser;
pub mod cache;
pub mod captcha;
pub mod clock;
pub mod config;
pub mod context;
pub mod error;
pub mod events;
pub mod input;
pub mod keys;
mod limit;
pub mod mail;
pub mod mfa;
pub mod outcome;
pub mod password;
pub mod rotation;
pub mod secret;
mod service;
pub mod store;
pub mod token;
pub mod user;
pub mod validate;

pub use async_trait::async_trait;
pub use audit::{AuditEvent, AuditEventType, AuditOutcome, AuditQuery, AuditStore, Cursor, Page};
pub use browser::{AllowedOrigins, BrowserConfig, CookieSameSite, TokenTransport};
pub use captcha::{CaptchaAction, CaptchaChallenge, CaptchaProof, CaptchaProvider, CaptchaStatus, NoCaptcha};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AuthConfig, ConfigError, IntrospectionClient, MfaConfig, RateLimits, RateRule, RateRuleName, RegistrationPolicy,
    MIN_JWT_SECRET_BYTES,
};
pub use context::{ClientIpHeader, RequestContext};
pub use error::{AuthError, BoxError, FieldError, StoreError, WeakPasswordReason};
pub use events::{AuthEvents, LoginFailure, NoEvents};
pub use input::{
    AdminCreateUserRequest, AdminUpdateUserRequest, ChangePasswordRequest, DeleteAccountRequest,
    EmailChangeConfirmRequest, EmailChangeRequest, EmailCodePurpose, EmailCodeRequest, ForgotPasswordRequest,
    ListAuditRequest, ListUsersRequest, LoginRequest, LogoutRequest, MfaConfirmRequest, MfaLoginRequest,
    PreferencesUpdate, RefreshRequest, RegisterRequest, ResetPasswordRequest, TotpConfirmRequest, TotpEnrollRequest,
    VerifyEmailRequest,
};
pub use ipnet;
pub use limit::MemoryRateLimiter;
pub use mail::{
    DefaultTemplates, EmailMessage, LogMailer, MailKind, MailTemplates, Mailer, MemoryMailer, RenderedMail,
    SecondFactorChange,
};
pub use mfa::{MfaKey, MfaStore};
pub use outcome::{
    AccountExport, IssuedTokens, LoginOutcome, MfaStatus, SecondFactorChallenge, TotpConfirmation, TotpEnrollment,
};
pub use password::{Argon2Params, PasswordHasher, PasswordPolicy, Verified};
pub use secret::{random_token, SecretString, TokenHash};
pub use service::{Admin, Auth, AuthBuilder};
pub use store::{
    AuthMethod, NewSecret, NewSession, OnMismatch, RateLimitDecision, RateLimiter, RotationOutcome, RotationRequest,
    SecretCheck, SecretStore, Session, SessionStore, UserStore,
};
pub use token::Claims;
pub use user::{NewUser, Preferences, Role, Theme, User, UserQuery, UserRecord, UserStatus, UserUpdate};
