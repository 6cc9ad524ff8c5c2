//! [`ImageCaptcha`]: a PNG text captcha drawn by `captcha-rs`, its answer kept in the
//! [`SecretStore`] as a keyed hash.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::TimeDelta;
use rand::Rng as _;

use crate::captcha::{CaptchaAction, CaptchaChallenge, CaptchaProof, CaptchaProvider};
use crate::clock::{Clock, SystemClock};
use crate::context::RequestContext;
use crate::error::AuthError;
use crate::secret::{random_token, HmacKey, TokenHash};
use crate::store::{NewSecret, OnMismatch, SecretCheck, SecretStore};

/// The [`SecretStore`] purpose under which image-captcha answers are kept.
pub const CAPTCHA_PURPOSE: &str = "captcha";

/// Size and difficulty of image captchas.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImageCaptchaOptions {
    /// Characters in an answer (default 5).
    pub length: usize,
    /// Characters answers are drawn from (default: lower-case letters and digits without the
    /// look-alikes `0 o 1 l i`). Answers are compared case-insensitively.
    pub alphabet: Vec<char>,
    /// Image width in pixels (default 150).
    pub width: u32,
    /// Image height in pixels (default 50).
    pub height: u32,
    /// Noise and distortion, 1 (readable) to 10 (hard) (default 2).
    pub complexity: u32,
    /// How long a challenge can be answered (default 300 s).
    pub ttl: Duration,
    /// Where expiry reads the time (default [`SystemClock`]; the service's clock in tests).
    pub clock: Arc<dyn Clock>,
}

impl Default for ImageCaptchaOptions {
    fn default() -> Self {
        Self {
            length: 5,
            alphabet: "23456789abcdefghjkmnpqrstuvwxyz".chars().collect(),
            width: 150,
            height: 50,
            complexity: 2,
            ttl: Duration::from_secs(300),
            clock: Arc::new(SystemClock),
        }
    }
}

/// An image captcha: `GET /captcha` draws a PNG of a random answer; the answer's keyed hash is
/// stored as a one-time secret for `ttl` and spent by the first attempt, right or wrong.
///
/// The answer is stored as `HMAC-SHA-256(key, captcha_id ‖ 0x00 ‖ lowercase(answer))`, not in
/// plain text: answers are short, so a plain hash would fall to brute force, and a keyed one
/// means a leaked database reveals no live answer. Any instance sharing the store and the key
/// can verify a challenge another instance drew.
pub struct ImageCaptcha {
    store: Arc<dyn SecretStore>,
    key: HmacKey,
    options: ImageCaptchaOptions,
}

impl std::fmt::Debug for ImageCaptcha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageCaptcha").field("options", &self.options).finish_non_exhaustive()
    }
}

impl ImageCaptcha {
    /// A provider keeping answers in `store`, keyed from `secret` (for example the JWT secret:
    /// a dedicated subkey is derived from it).
    ///
    /// # Panics
    /// If `options.alphabet` is empty or `options.length` is 0.
    #[must_use]
    pub fn new(store: Arc<dyn SecretStore>, secret: &[u8], options: ImageCaptchaOptions) -> Self {
        assert!(!options.alphabet.is_empty() && options.length > 0, "image captcha needs an alphabet and a length");
        Self { store, key: HmacKey::derive(secret, "auth-core/image-captcha/v1"), options }
    }

    /// The stored hash of `answer` for `captcha_id` (see the type's docs).
    #[must_use]
    pub fn answer_hash(&self, captcha_id: &str, answer: &str) -> TokenHash {
        let mut data = Vec::with_capacity(captcha_id.len() + 1 + answer.len());
        data.extend_from_slice(captcha_id.as_bytes());
        data.push(0);
        data.extend_from_slice(answer.trim().to_lowercase().as_bytes());
        self.key.digest(&data)
    }

    fn draw(options: &ImageCaptchaOptions, answer: String) -> Result<Vec<u8>, AuthError> {
        let captcha = captcha_rs::CaptchaBuilder::new()
            .text(answer)
            .width(options.width)
            .height(options.height)
            .complexity(options.complexity.clamp(1, 10))
            .build();
        let mut png = Cursor::new(Vec::new());
        captcha
            .image
            .write_to(&mut png, ::image::ImageFormat::Png)
            .map_err(|e| AuthError::internal(format!("PNG encoding of the captcha failed: {e}")))?;
        Ok(png.into_inner())
    }
}

#[async_trait]
impl CaptchaProvider for ImageCaptcha {
    fn name(&self) -> &'static str {
        "image"
    }

    async fn challenge(&self) -> Result<Option<CaptchaChallenge>, AuthError> {
        let alphabet = &self.options.alphabet;
        let answer: String = {
            let mut rng = rand::rngs::OsRng;
            (0..self.options.length).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect()
        };
        let captcha_id = random_token();
        let hash = self.answer_hash(&captcha_id, &answer);
        // Drawing costs about a millisecond of CPU: keep it off the executor.
        let options = self.options.clone();
        let png =
            tokio::task::spawn_blocking(move || Self::draw(&options, answer)).await.map_err(AuthError::internal)??;
        let ttl = self.options.ttl;
        let now = self.options.clock.now();
        let secret = NewSecret {
            purpose: CAPTCHA_PURPOSE.to_owned(),
            key: captcha_id.clone(),
            hash,
            expires_at: now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
            max_attempts: 1,
        };
        self.store.put_secret(secret, now).await?;
        Ok(Some(CaptchaChallenge {
            captcha_id,
            image: format!("data:image/png;base64,{}", STANDARD.encode(png)),
            expires_in: ttl.as_secs(),
        }))
    }

    async fn verify(&self, proof: &CaptchaProof, _: CaptchaAction, _: &RequestContext) -> Result<(), AuthError> {
        let non_empty = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let (Some(id), Some(answer)) = (non_empty(&proof.captcha_id), non_empty(&proof.captcha)) else {
            return Err(AuthError::CaptchaRequired);
        };
        if id.len() > 128 || answer.len() > 64 {
            return Err(AuthError::CaptchaInvalid);
        }
        let hash = self.answer_hash(&id, &answer);
        match self.store.take_secret(CAPTCHA_PURPOSE, &id, &hash, OnMismatch::Spend, self.options.clock.now()).await? {
            SecretCheck::Valid => Ok(()),
            SecretCheck::Invalid { .. } | SecretCheck::Missing => Err(AuthError::CaptchaInvalid),
        }
    }
}
