//! [`SiteverifyCaptcha`]: Cloudflare Turnstile, Google reCAPTCHA v2/v3 and hCaptcha, verified
//! server-side through each provider's documented `siteverify` endpoint.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::captcha::{CaptchaAction, CaptchaProof, CaptchaProvider};
use crate::context::RequestContext;
use crate::error::AuthError;

/// Which token provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SiteverifyProvider {
    /// Cloudflare Turnstile.
    Turnstile,
    /// Google reCAPTCHA v2 (checkbox / invisible) or v3 (score).
    Recaptcha,
    /// hCaptcha.
    Hcaptcha,
}

impl SiteverifyProvider {
    /// `turnstile`, `recaptcha` or `hcaptcha`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Turnstile => "turnstile",
            Self::Recaptcha => "recaptcha",
            Self::Hcaptcha => "hcaptcha",
        }
    }

    /// The provider's documented siteverify URL.
    #[must_use]
    pub fn default_verify_url(self) -> &'static str {
        match self {
            Self::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            Self::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
            Self::Hcaptcha => "https://api.hcaptcha.com/siteverify",
        }
    }
}

/// Settings of a [`SiteverifyCaptcha`].
#[derive(Clone)]
#[non_exhaustive]
pub struct SiteverifyOptions {
    /// The provider.
    pub provider: SiteverifyProvider,
    /// The secret key (sent to siteverify as `secret`; never logged).
    pub secret: String,
    /// The public site key, reported by `GET /captcha/status` for the browser widget.
    pub site_key: Option<String>,
    /// Where to POST (default: the provider's documented URL; point it at a proxy or a test
    /// server).
    pub verify_url: String,
    /// Timeout of the whole siteverify call (default 5 s); past it: `captcha_unavailable`.
    pub timeout: Duration,
    /// If set, the `hostname` siteverify reports must equal it (case-insensitively).
    pub allowed_hostname: Option<String>,
    /// reCAPTCHA v3: the lowest accepted `score`, 0.0–1.0 (default 0.5). Applied to any
    /// provider whose answer carries a score.
    pub min_score: f64,
}

impl std::fmt::Debug for SiteverifyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteverifyOptions")
            .field("provider", &self.provider)
            .field("secret", &"[redacted]")
            .field("site_key", &self.site_key)
            .field("verify_url", &self.verify_url)
            .field("timeout", &self.timeout)
            .field("allowed_hostname", &self.allowed_hostname)
            .field("min_score", &self.min_score)
            .finish()
    }
}

impl SiteverifyOptions {
    /// Defaults for `provider` with the secret key `secret`.
    pub fn new(provider: SiteverifyProvider, secret: impl Into<String>) -> Self {
        Self {
            provider,
            secret: secret.into(),
            site_key: None,
            verify_url: provider.default_verify_url().to_owned(),
            timeout: Duration::from_secs(5),
            allowed_hostname: None,
            min_score: 0.5,
        }
    }
}

/// The fields of a siteverify answer this provider reads. All three providers answer JSON with
/// `success` and `error-codes`; Turnstile and reCAPTCHA v3 add `action`, reCAPTCHA v3 (and
/// hCaptcha Enterprise) `score`, all of them `hostname`.
#[derive(Debug, Deserialize)]
struct SiteverifyAnswer {
    success: bool,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    score: Option<f64>,
}

/// Error codes that mean our configuration or the provider is broken, not the user's token.
const SERVER_SIDE_CODES: [&str; 4] =
    ["missing-input-secret", "invalid-input-secret", "internal-error", "sitekey-secret-mismatch"];

/// A token captcha (Turnstile, reCAPTCHA, hCaptcha) checked by a POST to siteverify with
/// `secret`, `response` (the client's `captcha_token`) and `remoteip`, form-encoded as all three
/// document.
///
/// Verdicts: no token → `captcha_required`; `success: false` (including `timeout-or-duplicate`),
/// a `hostname` other than the allowed one, an `action` other than the route's, or a score
/// below the minimum → `captcha_invalid`; unreachable, past the timeout, an HTTP error or an
/// unreadable answer, or an error code that blames the secret → `captcha_unavailable` (502).
#[derive(Debug)]
pub struct SiteverifyCaptcha {
    options: SiteverifyOptions,
    client: reqwest::Client,
}

impl SiteverifyCaptcha {
    /// A provider with `options`.
    ///
    /// # Errors
    /// `internal` if the HTTP client cannot be built (no TLS roots).
    pub fn new(options: SiteverifyOptions) -> Result<Self, AuthError> {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .user_agent(concat!("auth-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(AuthError::internal)?;
        Ok(Self { options, client })
    }

    fn unavailable(&self, why: String) -> AuthError {
        tracing::error!(provider = self.options.provider.name(), "captcha verification unavailable: {why}");
        AuthError::CaptchaUnavailable(why.into())
    }
}

#[async_trait]
impl CaptchaProvider for SiteverifyCaptcha {
    fn name(&self) -> &'static str {
        self.options.provider.name()
    }

    fn site_key(&self) -> Option<&str> {
        self.options.site_key.as_deref()
    }

    async fn verify(&self, proof: &CaptchaProof, action: CaptchaAction, ctx: &RequestContext) -> Result<(), AuthError> {
        let token = proof.captcha_token.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(AuthError::CaptchaRequired);
        };
        // Turnstile tokens are at most 2048 characters; the others are shorter.
        if token.len() > 4096 {
            return Err(AuthError::CaptchaInvalid);
        }
        let mut form = vec![("secret", self.options.secret.clone()), ("response", token.to_owned())];
        if let Some(ip) = ctx.ip {
            form.push(("remoteip", ip.to_string()));
        }
        if let (SiteverifyProvider::Hcaptcha, Some(site_key)) = (self.options.provider, &self.options.site_key) {
            form.push(("sitekey", site_key.clone()));
        }
        let response = self
            .client
            .post(&self.options.verify_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.unavailable(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.unavailable(format!("siteverify answered HTTP {status}")));
        }
        let answer: SiteverifyAnswer =
            response.json().await.map_err(|e| self.unavailable(format!("unreadable answer: {}", e.without_url())))?;
        if !answer.success {
            if answer.error_codes.iter().any(|c| SERVER_SIDE_CODES.contains(&c.as_str())) {
                return Err(self.unavailable(format!("siteverify refused our request: {:?}", answer.error_codes)));
            }
            tracing::info!(provider = self.name(), codes = ?answer.error_codes, action = action.as_str(), "captcha refused");
            return Err(AuthError::CaptchaInvalid);
        }
        if let Some(allowed) = &self.options.allowed_hostname {
            if !answer.hostname.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(allowed)) {
                tracing::info!(provider = self.name(), hostname = ?answer.hostname, "captcha solved on another hostname");
                return Err(AuthError::CaptchaInvalid);
            }
        }
        if let Some(got) = answer.action.as_deref().filter(|a| !a.is_empty()) {
            if got != action.as_str() {
                tracing::info!(provider = self.name(), got, expected = action.as_str(), "captcha action mismatch");
                return Err(AuthError::CaptchaInvalid);
            }
        }
        if let Some(score) = answer.score {
            if score < self.options.min_score {
                tracing::info!(provider = self.name(), score, "captcha score below the minimum");
                return Err(AuthError::CaptchaInvalid);
            }
        }
        Ok(())
    }
}
