//! Captcha: the [`CaptchaProvider`] trait, the proof a client sends, and the providers: `none`
//! ([`NoCaptcha`]), `image` ([`ImageCaptcha`], feature `captcha-image`) and the token providers
//! Turnstile, reCAPTCHA v2/v3 and hCaptcha ([`SiteverifyCaptcha`], feature
//! `captcha-siteverify`).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::context::RequestContext;
use crate::error::AuthError;

#[cfg(feature = "captcha-image")]
mod image;
#[cfg(feature = "captcha-siteverify")]
mod siteverify;

#[cfg(feature = "captcha-image")]
#[cfg_attr(docsrs, doc(cfg(feature = "captcha-image")))]
pub use image::{ImageCaptcha, ImageCaptchaOptions, CAPTCHA_PURPOSE};
#[cfg(feature = "captcha-siteverify")]
#[cfg_attr(docsrs, doc(cfg(feature = "captcha-siteverify")))]
pub use siteverify::{SiteverifyCaptcha, SiteverifyOptions, SiteverifyProvider};

/// The routes a captcha can guard, by their action name (also the expected `action` of token
/// providers that report one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptchaAction {
    /// `POST /register`.
    Register,
    /// `POST /login`.
    Login,
    /// `POST /email/code`.
    EmailCode,
    /// `POST /password/forgot`.
    PasswordForgot,
}

impl CaptchaAction {
    /// Every action, the default set a captcha guards.
    pub const ALL: [Self; 4] = [Self::Register, Self::Login, Self::EmailCode, Self::PasswordForgot];

    /// `register`, `login`, `email_code` or `password_forgot`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::EmailCode => "email_code",
            Self::PasswordForgot => "password_forgot",
        }
    }

    /// Parses an action name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// The captcha fields of a request: `captcha_id` + `captcha` for the image provider,
/// `captcha_token` for Turnstile, reCAPTCHA and hCaptcha. `Debug` redacts the answers.
#[derive(Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct CaptchaProof {
    /// Image captcha id from `GET /captcha`.
    pub captcha_id: Option<String>,
    /// The user's answer to the image captcha.
    pub captcha: Option<String>,
    /// The widget's response token (token providers).
    pub captcha_token: Option<String>,
}

impl fmt::Debug for CaptchaProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptchaProof")
            .field("captcha_id", &self.captcha_id)
            .field("captcha", &self.captcha.as_ref().map(|_| "[redacted]"))
            .field("captcha_token", &self.captcha_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// What the service's captcha and related protections are (`GET /captcha/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaptchaStatus {
    /// Whether a captcha provider is enabled.
    pub captcha_enabled: bool,
    /// The provider's name: `none`, `image`, `turnstile`, `recaptcha` or `hcaptcha`.
    pub provider: &'static str,
    /// The public site key for the browser widget, if any.
    pub site_key: Option<String>,
    /// Whether login attempts are rate limited.
    pub login_rate_limit_enabled: bool,
    /// Whether registration needs a mailed code.
    pub email_verification_required: bool,
}

/// A fresh image challenge (`GET /captcha`).
#[derive(Debug, Clone, Serialize)]
pub struct CaptchaChallenge {
    /// The id to send back as `captcha_id`.
    pub captcha_id: String,
    /// `data:image/png;base64,…`.
    pub image: String,
    /// Seconds until the challenge expires.
    pub expires_in: u64,
}

/// A captcha provider: `none`, `image`, `turnstile`, `recaptcha` or `hcaptcha`.
///
/// Providers that call a remote siteverify endpoint map "unreachable, timed out or 5xx" to
/// [`AuthError::CaptchaUnavailable`] (502) and a refused proof to [`AuthError::CaptchaInvalid`].
#[async_trait]
pub trait CaptchaProvider: Send + Sync + 'static {
    /// The provider's name as reported by `GET /captcha/status`.
    fn name(&self) -> &'static str;

    /// Whether this provider checks anything (`false` only for `none`).
    fn enabled(&self) -> bool {
        true
    }

    /// The public site key a browser widget needs, if any.
    fn site_key(&self) -> Option<&str> {
        None
    }

    /// A fresh image challenge; `None` for providers without one.
    ///
    /// # Errors
    /// `store_unavailable` if the challenge cannot be stored.
    async fn challenge(&self) -> Result<Option<CaptchaChallenge>, AuthError> {
        Ok(None)
    }

    /// Checks `proof` for `action`. Called before anything else of the request is done.
    ///
    /// # Errors
    /// `captcha_required`, `captcha_invalid`, `captcha_unavailable`, `store_unavailable`.
    async fn verify(&self, proof: &CaptchaProof, action: CaptchaAction, ctx: &RequestContext) -> Result<(), AuthError>;
}

/// No captcha: every proof passes. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCaptcha;

#[async_trait]
impl CaptchaProvider for NoCaptcha {
    fn name(&self) -> &'static str {
        "none"
    }

    fn enabled(&self) -> bool {
        false
    }

    async fn verify(&self, _: &CaptchaProof, _: CaptchaAction, _: &RequestContext) -> Result<(), AuthError> {
        Ok(())
    }
}
