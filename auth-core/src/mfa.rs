//! The second factor: TOTP (RFC 6238) with single-use recovery codes. This module holds what
//! the flows of [`Auth`](crate::Auth) and every [`MfaStore`] backend share: the stored shapes
//! ([`TotpFactor`], [`MfaChallenge`]), the store trait, and the pure rules — which time step a
//! code matches ([`matching_step`]), that a step is accepted once ([`step_is_fresh`]), when a
//! challenge is still redeemable ([`challenge_is_live`]) — and the sealing of TOTP secrets at
//! rest ([`SecretBox`], XChaCha20-Poly1305).
//!
//! TOTP parameters are what authenticator apps support: HMAC-SHA-1, 6 digits, 30-second steps
//! ([`TOTP_DIGITS`], [`TOTP_STEP_SECONDS`]); a code is accepted for the current step and one
//! step either side ([`TOTP_SKEW_STEPS`]), and never twice.
//!
//! ```
//! use auth_core::mfa::{matching_step, step_is_fresh};
//!
//! // RFC 6238 Appendix B, SHA-1, with 6 of its 8 digits: at T = 59 s the code is 287082.
//! let secret = b"12345678901234567890";
//! let step = matching_step(secret, "287082", 59).expect("the code of step 1");
//! assert_eq!(step, 1);
//! assert!(step_is_fresh(None, step));
//! assert!(!step_is_fresh(Some(1), step), "a used step is never accepted again");
//! ```

use std::fmt;

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, TimeDelta, Utc};
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::StoreError;
use crate::secret::{bytes_eq, TokenHash};

/// Digits of a TOTP code.
pub const TOTP_DIGITS: usize = 6;
/// Seconds per TOTP time step.
pub const TOTP_STEP_SECONDS: u64 = 30;
/// Steps accepted either side of the current one (clock drift, slow typing).
pub const TOTP_SKEW_STEPS: i64 = 1;
/// Bytes of a new TOTP secret (160 bits, RFC 4226 §4's recommendation).
pub const TOTP_SECRET_BYTES: usize = 20;
/// Recovery codes handed out at once.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Characters of a recovery code (RFC 4648 base32: 5 bits each, 50 bits in all).
pub const RECOVERY_CODE_CHARS: usize = 10;
/// Seconds a login's second-factor challenge (`mfa_token`) lives after the password was verified.
pub const CHALLENGE_TTL_SECONDS: u64 = 300;
/// Wrong codes after which a challenge is dead (a new password login is needed).
pub const CHALLENGE_MAX_ATTEMPTS: u32 = 5;
/// Seconds a started enrollment waits for its confirming code.
pub const ENROLLMENT_TTL_SECONDS: u64 = 600;

/// A user's TOTP factor as stored: pending from `POST /mfa/totp/enroll` until confirmed.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// Whose factor it is.
    pub user_id: Uuid,
    /// The secret sealed by [`SecretBox::seal`]: never stored in clear.
    pub sealed_secret: Vec<u8>,
    /// When the enrollment started.
    pub created_at: DateTime<Utc>,
    /// When the first code confirmed it; `None` while pending.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The last time step a code was accepted for ([`step_is_fresh`]).
    pub last_used_step: Option<i64>,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

impl TotpFactor {
    /// Whether the factor is confirmed (logins need it).
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

impl fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpFactor")
            .field("user_id", &self.user_id)
            .field("sealed_secret", &"[sealed]")
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_used_step", &self.last_used_step)
            .field("recovery_codes_left", &self.recovery_codes_left)
            .finish()
    }
}

/// What a challenge token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChallengePurpose {
    /// Finish a password login with a second factor (`POST /login/mfa`).
    Login,
    /// Only enroll a factor (`POST /mfa/totp/enroll`, `/confirm`): the user's role requires one
    /// and they have none yet.
    Enroll,
}

impl ChallengePurpose {
    /// The stored name: `login` or `enroll`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Enroll => "enroll",
        }
    }

    /// The purpose of a stored name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Login, Self::Enroll].into_iter().find(|p| p.as_str() == name)
    }
}

/// A pending second step of a login: the `mfa_token` a client holds, by hash only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    /// SHA-256 of the opaque token (256 random bits).
    pub token_hash: TokenHash,
    /// The user whose password was verified.
    pub user_id: Uuid,
    /// What the token allows.
    pub purpose: ChallengePurpose,
    /// SHA-256 of the PHC string that was verified: a password change or reset since kills the
    /// challenge.
    pub password_fingerprint: TokenHash,
    /// When the password was verified.
    pub verified_at: DateTime<Utc>,
    /// `verified_at` + [`CHALLENGE_TTL_SECONDS`] (logins) or [`ENROLLMENT_TTL_SECONDS`].
    pub expires_at: DateTime<Utc>,
    /// Wrong codes so far.
    pub attempts: u32,
}

/// What a second-factor step presents to [`MfaStore::use_factor`] and
/// [`MfaStore::redeem_challenge`]. The service decides which it is (it holds the key that opens
/// the TOTP secret); the store makes it single-use, atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorUse {
    /// A code that matched nothing: a failure.
    Wrong,
    /// A TOTP code that matched time step `.0` of the active factor: accepted once
    /// ([`step_is_fresh`] against the stored `last_used_step`, which becomes `.0`).
    TotpStep(i64),
    /// A recovery code, by its keyed hash: accepted once (deleted).
    RecoveryCode(TokenHash),
    /// The first code of a pending enrollment, matching `step` of the secret sealed as
    /// `sealed_secret`: activates the factor if it is still pending with that very secret (not
    /// one a concurrent enrollment put in its place) and started at or after `started_after`,
    /// records `step` as used and stores `recovery_codes` (replacing any), confirmed `at`.
    Confirm {
        /// The matched step.
        step: i64,
        /// Keyed hashes of the new recovery codes.
        recovery_codes: Vec<TokenHash>,
        /// Oldest acceptable `created_at` of the pending factor (enrollments expire).
        started_after: DateTime<Utc>,
        /// When it is confirmed (`confirmed_at`).
        at: DateTime<Utc>,
        /// The sealed secret the code was checked against.
        sealed_secret: Vec<u8>,
    },
}

/// The outcome of [`MfaStore::redeem_challenge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeOutcome {
    /// The factor use was accepted; the challenge is spent. It was this one.
    Redeemed(MfaChallenge),
    /// The factor use was refused (wrong code, replayed step, spent recovery code); one attempt
    /// was counted and `attempts_left` remain (0: the challenge is dead).
    Rejected {
        /// Attempts left.
        attempts_left: u32,
    },
    /// No live challenge of that purpose has this hash (unknown, expired, spent, out of attempts).
    Dead,
}

/// Second factors and login challenges, kept next to the users (memory, SQLite, PostgreSQL), so
/// that every instance sharing the user store sees one state. Every method is atomic; of
/// concurrent uses of one TOTP step, recovery code or challenge exactly one succeeds.
#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    /// The user's TOTP factor, pending or active.
    async fn totp_factor(&self, user_id: Uuid) -> Result<Option<TotpFactor>, StoreError>;

    /// Stores a pending factor (replacing a pending one); `false`, changing nothing, when the
    /// user already has an active factor.
    async fn put_pending_totp(&self, factor: TotpFactor) -> Result<bool, StoreError>;

    /// Applies `factor_use` to the user's factor (see [`FactorUse`]); whether it was accepted.
    /// [`FactorUse::Wrong`] is never accepted and changes nothing.
    async fn use_factor(&self, user_id: Uuid, factor_use: FactorUse) -> Result<bool, StoreError>;

    /// Replaces the recovery codes of the user's active factor; `false` without one.
    async fn replace_recovery_codes(&self, user_id: Uuid, codes: Vec<TokenHash>) -> Result<bool, StoreError>;

    /// Replaces the sealed secret of the user's factor if it is still `current` (a re-seal with
    /// a new key after a rotation); whether it was replaced.
    async fn reseal_totp(&self, user_id: Uuid, current: &[u8], sealed: Vec<u8>) -> Result<bool, StoreError>;

    /// Deletes the user's factor (pending or active) with its recovery codes and challenges;
    /// whether there was one.
    async fn delete_totp(&self, user_id: Uuid) -> Result<bool, StoreError>;

    /// Stores a challenge.
    async fn create_challenge(&self, challenge: MfaChallenge) -> Result<(), StoreError>;

    /// The challenge with this hash if [`challenge_is_live`] at `now` for `purpose`.
    async fn challenge(
        &self,
        token_hash: &TokenHash,
        purpose: ChallengePurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<MfaChallenge>, StoreError>;

    /// In one atomic step: if the challenge [is live](challenge_is_live) for `purpose`, apply
    /// `factor_use` to its user's factor as [`use_factor`](Self::use_factor) does; accepted →
    /// delete the challenge ([`ChallengeOutcome::Redeemed`]), refused → count an attempt
    /// ([`ChallengeOutcome::Rejected`]). A dead challenge changes nothing
    /// ([`ChallengeOutcome::Dead`]), so a dead token never spends a recovery code.
    async fn redeem_challenge(
        &self,
        token_hash: &TokenHash,
        purpose: ChallengePurpose,
        factor_use: FactorUse,
        now: DateTime<Utc>,
    ) -> Result<ChallengeOutcome, StoreError>;

    /// Deletes challenges expired at `now`, and pending factors started before
    /// `pending_before`; returns how many records went.
    async fn purge_expired_mfa(&self, now: DateTime<Utc>, pending_before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The rule of TOTP replay (RFC 6238 §5.2): a step is accepted only if it is later than the last
/// accepted one, so a code, or an older code still inside the window, never works twice.
#[must_use]
pub fn step_is_fresh(last_used: Option<i64>, step: i64) -> bool {
    last_used.is_none_or(|last| step > last)
}

/// Whether `challenge` can still be redeemed for `purpose` at `now`: not expired and fewer than
/// [`CHALLENGE_MAX_ATTEMPTS`] wrong codes.
#[must_use]
pub fn challenge_is_live(challenge: &MfaChallenge, purpose: ChallengePurpose, now: DateTime<Utc>) -> bool {
    challenge.purpose == purpose && challenge.expires_at > now && challenge.attempts < CHALLENGE_MAX_ATTEMPTS
}

/// Whether `factor_use` is accepted by `factor` (read under the store's lock): the one decision
/// every backend's [`MfaStore::use_factor`] carries out. `has_recovery_code` says whether the
/// presented recovery code is among the stored ones. [`FactorUse::Confirm`] needs a pending
/// factor started at or after its bound, holding the secret the code was checked against; the
/// others an active one.
#[must_use]
pub fn accepts(factor: Option<&TotpFactor>, factor_use: &FactorUse, has_recovery_code: bool) -> bool {
    let Some(factor) = factor else { return false };
    match factor_use {
        FactorUse::Wrong => false,
        FactorUse::TotpStep(step) => factor.is_active() && step_is_fresh(factor.last_used_step, *step),
        FactorUse::RecoveryCode(_) => factor.is_active() && has_recovery_code,
        FactorUse::Confirm { started_after, sealed_secret, .. } => {
            !factor.is_active() && factor.created_at >= *started_after && factor.sealed_secret == *sealed_secret
        }
    }
}

/// The TOTP time step of Unix time `unix_seconds`.
#[must_use]
pub fn time_step(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(TOTP_STEP_SECONDS as i64)
}

/// The code of `secret` for time step `step` ([`TOTP_DIGITS`] digits, HMAC-SHA-1), by `totp-rs`.
#[must_use]
pub fn code_for_step(secret: &[u8], step: i64) -> String {
    totp(secret).generate(u64::try_from(step).unwrap_or(0) * TOTP_STEP_SECONDS)
}

fn totp(secret: &[u8]) -> totp_rs::TOTP {
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        TOTP_DIGITS,
        0,
        TOTP_STEP_SECONDS,
        secret.to_vec(),
        None,
        String::new(),
    )
}

/// The time step within [`TOTP_SKEW_STEPS`] of `unix_seconds` whose code is `code` (compared in
/// constant time; spaces ignored), latest first; `None` for a code of another shape or no match.
/// Whether the step was used before is [`step_is_fresh`]'s question, asked by the store.
#[must_use]
pub fn matching_step(secret: &[u8], code: &str, unix_seconds: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = time_step(unix_seconds);
    let totp = totp(secret);
    let mut found = None;
    // Every candidate is computed and compared, so the time taken does not say which matched.
    for step in (now - TOTP_SKEW_STEPS..=now + TOTP_SKEW_STEPS).rev() {
        let Ok(at) = u64::try_from(step) else { continue };
        let expected = totp.generate(at * TOTP_STEP_SECONDS);
        if bytes_eq(expected.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://totp/…` URI authenticator apps scan (Key Uri Format): `issuer:account`,
/// base32 secret, SHA-1, 6 digits, 30 s.
///
/// # Errors
/// A message when `issuer` or `account` contains `:` (the format's separator).
pub fn otpauth_uri(secret: &[u8], issuer: &str, account: &str) -> Result<String, String> {
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        TOTP_DIGITS,
        1,
        TOTP_STEP_SECONDS,
        secret.to_vec(),
        Some(issuer.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| e.to_string())?;
    Ok(totp.get_url())
}

/// `secret` as RFC 4648 base32 without padding: what users type into an app by hand.
#[must_use]
pub fn secret_base32(secret: &[u8]) -> String {
    match totp_rs::Secret::Raw(secret.to_vec()).to_encoded() {
        totp_rs::Secret::Encoded(text) => text,
        totp_rs::Secret::Raw(_) => String::new(),
    }
}

/// A PNG of the QR code of `text` (by the `qrcode` crate), as a `data:image/png;base64,…` URI.
///
/// # Errors
/// A message when `text` does not fit in a QR code or the PNG cannot be written.
pub fn qr_png_data_uri(text: &str) -> Result<String, String> {
    use base64::Engine as _;
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    let image = code.render::<image::Luma<u8>>().min_dimensions(200, 200).build();
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(image)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png)))
}

/// A new TOTP secret: [`TOTP_SECRET_BYTES`] from the OS CSPRNG.
#[must_use]
pub fn new_totp_secret() -> Vec<u8> {
    let mut secret = vec![0u8; TOTP_SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// RFC 4648 base32 alphabet, the characters of recovery codes.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new recovery code: [`RECOVERY_CODE_CHARS`] base32 characters from the OS CSPRNG (50 bits),
/// shown as `XXXXX-XXXXX`.
#[must_use]
pub fn new_recovery_code() -> String {
    let mut bytes = [0u8; RECOVERY_CODE_CHARS];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: String = bytes.iter().map(|b| char::from(BASE32[usize::from(b & 31)])).collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// A typed recovery code in its canonical form (upper case, without `-` and spaces), or `None`
/// when it cannot be one.
#[must_use]
pub fn normalize_recovery_code(code: &str) -> Option<String> {
    let code: String = code.chars().filter(|c| *c != '-' && !c.is_whitespace()).collect::<String>().to_uppercase();
    (code.len() == RECOVERY_CODE_CHARS && code.bytes().all(|b| BASE32.contains(&b))).then_some(code)
}

/// A 32-byte key of [`SecretBox`]. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct MfaKey([u8; 32]);

impl MfaKey {
    /// A key of these 32 bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from base64 (standard or URL-safe, padding optional) of exactly 32 bytes: the format
    /// of `AUTH_MFA_ENCRYPTION_KEY` (`openssl rand -base64 32`).
    ///
    /// # Errors
    /// A message saying what is wrong (never the key).
    pub fn from_base64(text: &str) -> Result<Self, String> {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        use base64::Engine as _;
        let text = text.trim().trim_end_matches('=');
        let bytes = STANDARD_NO_PAD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| "is not base64".to_owned())?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| format!("must decode to 32 bytes (got {})", bytes.len()))
    }

    /// HKDF-SHA-256 (RFC 5869) of `master` with info `auth-core/mfa-secret-encryption/v1` and no
    /// salt: the key used when none is configured, derived from the JWT secret.
    #[must_use]
    pub fn derive(master: &[u8]) -> Self {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, master)
            .expand(b"auth-core/mfa-secret-encryption/v1", &mut key)
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        Self(key)
    }

    /// The first 8 bytes of SHA-256 of `auth-core/mfa-key-id/v1` and the key: names the key in
    /// sealed values without revealing it.
    fn id(&self) -> [u8; 8] {
        let digest = Sha256::new().chain_update(b"auth-core/mfa-key-id/v1").chain_update(self.0).finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        id
    }
}

impl fmt::Debug for MfaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MfaKey([redacted])")
    }
}

/// Seals TOTP secrets at rest with XChaCha20-Poly1305 (AEAD): a current key that seals and
/// opens, and previous keys that only open, so a key can be rotated without re-enrolling anyone.
///
/// A sealed value is `0x01 ‖ key id (8 bytes) ‖ nonce (24 random bytes) ‖ ciphertext ‖ tag`, with
/// the user id as associated data: a value copied onto another user's row does not open.
#[derive(Clone)]
pub struct SecretBox {
    current: (MfaKey, XChaCha20Poly1305),
    previous: Vec<(MfaKey, XChaCha20Poly1305)>,
}

const SEALED_VERSION: u8 = 1;
const SEALED_HEADER: usize = 1 + 8 + 24;

impl SecretBox {
    /// A box sealing with `current` and opening with it or any of `previous`.
    #[must_use]
    pub fn new(current: MfaKey, previous: Vec<MfaKey>) -> Self {
        let cipher = |key: MfaKey| {
            let aead = XChaCha20Poly1305::new(&key.0.into());
            (key, aead)
        };
        Self { current: cipher(current), previous: previous.into_iter().map(cipher).collect() }
    }

    /// `plaintext` sealed for `user_id` with the current key.
    #[must_use]
    pub fn seal(&self, user_id: Uuid, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let (key, aead) = &self.current;
        let ciphertext = aead
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: user_id.as_bytes() })
            .expect("XChaCha20-Poly1305 encryption of a short message cannot fail");
        let mut sealed = Vec::with_capacity(SEALED_HEADER + ciphertext.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&key.id());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// The plaintext of `sealed` for `user_id`, and whether it was sealed with a previous key
    /// (then re-seal it with [`seal`](Self::seal)).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when no configured key opens it (a removed key, another user's
    /// value, tampering).
    pub fn open(&self, user_id: Uuid, sealed: &[u8]) -> Result<(Vec<u8>, bool), StoreError> {
        let corrupt = |why: &str| StoreError::Corrupt(format!("sealed TOTP secret of user {user_id}: {why}"));
        if sealed.len() < SEALED_HEADER || sealed[0] != SEALED_VERSION {
            return Err(corrupt("unknown format"));
        }
        let (id, nonce, ciphertext) = (&sealed[1..9], &sealed[9..SEALED_HEADER], &sealed[SEALED_HEADER..]);
        let keys = std::iter::once((&self.current, false)).chain(self.previous.iter().map(|k| (k, true)));
        for ((key, aead), previous) in keys {
            if key.id() == id {
                let nonce = XNonce::from(<[u8; 24]>::try_from(nonce).map_err(|_| corrupt("bad nonce"))?);
                let plain = aead
                    .decrypt(&nonce, Payload { msg: ciphertext, aad: user_id.as_bytes() })
                    .map_err(|_| corrupt("does not authenticate"))?;
                return Ok((plain, previous));
            }
        }
        Err(corrupt("sealed with a key that is not configured (AUTH_MFA_PREVIOUS_ENCRYPTION_KEYS)"))
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox").field("previous_keys", &self.previous.len()).finish_non_exhaustive()
    }
}

/// `verified_at` plus `seconds`, for challenge expiry.
#[must_use]
pub fn expiry(from: DateTime<Utc>, seconds: u64) -> DateTime<Utc> {
    from + TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 secret and the (time, 8-digit code) table. Our codes are
    /// 6 digits: the last six of each (RFC 4226 §5.3, the truncation is modulo 10^digits).
    const RFC_SECRET: &[u8] = b"12345678901234567890";
    const RFC_VECTORS: [(i64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn codes_match_the_rfc_6238_sha1_test_vectors() {
        for (time, code) in RFC_VECTORS {
            assert_eq!(code_for_step(RFC_SECRET, time_step(time)), code[2..], "T = {time}");
            assert_eq!(matching_step(RFC_SECRET, &code[2..], time), Some(time_step(time)), "T = {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_not_further() {
        let (time, code) = (1_234_567_890, "005924");
        let step = time_step(time);
        assert_eq!(matching_step(RFC_SECRET, code, time + 30), Some(step), "one step late");
        assert_eq!(matching_step(RFC_SECRET, code, time - 30), Some(step), "one step early");
        assert_eq!(matching_step(RFC_SECRET, code, time + 60), None, "two steps late");
        assert_eq!(matching_step(RFC_SECRET, code, time - 60), None, "two steps early");
        assert_eq!(matching_step(RFC_SECRET, "005 924", time), Some(step), "spaces are ignored");
    }

    #[test]
    fn codes_of_another_shape_match_nothing() {
        for bad in ["", "00592", "0059240", "00592a", "٠٠٥٩٢٤", "' OR 1=1"] {
            assert_eq!(matching_step(RFC_SECRET, bad, 1_234_567_890), None, "{bad:?}");
        }
    }

    #[test]
    fn a_step_is_accepted_once_and_older_steps_never_after_it() {
        assert!(step_is_fresh(None, 10));
        assert!(!step_is_fresh(Some(10), 10), "the same code again");
        assert!(!step_is_fresh(Some(10), 9), "an older code still inside the window");
        assert!(step_is_fresh(Some(10), 11));
    }

    #[test]
    fn the_store_rule_needs_an_active_factor_except_to_confirm() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let pending = TotpFactor {
            user_id: Uuid::nil(),
            sealed_secret: vec![1],
            created_at: now,
            confirmed_at: None,
            last_used_step: None,
            recovery_codes_left: 0,
        };
        let active = TotpFactor { confirmed_at: Some(now), last_used_step: Some(5), ..pending.clone() };
        let confirm = |after| FactorUse::Confirm {
            step: 7,
            recovery_codes: vec![],
            started_after: after,
            at: now,
            sealed_secret: vec![1],
        };
        assert!(accepts(Some(&pending), &confirm(now), false));
        let replaced = TotpFactor { sealed_secret: vec![2], ..pending.clone() };
        assert!(!accepts(Some(&replaced), &confirm(now), false), "a concurrent enrollment replaced the secret");
        assert!(!accepts(Some(&pending), &confirm(now + TimeDelta::seconds(1)), false), "enrollment expired");
        assert!(!accepts(Some(&active), &confirm(now), false), "already active");
        assert!(!accepts(Some(&pending), &FactorUse::TotpStep(7), false), "pending cannot log in");
        assert!(accepts(Some(&active), &FactorUse::TotpStep(6), false));
        assert!(!accepts(Some(&active), &FactorUse::TotpStep(5), false), "replay");
        let code = FactorUse::RecoveryCode(TokenHash::of("x"));
        assert!(accepts(Some(&active), &code, true));
        assert!(!accepts(Some(&active), &code, false));
        assert!(!accepts(None, &FactorUse::TotpStep(6), false));
        assert!(!accepts(Some(&active), &FactorUse::Wrong, true));
    }

    #[test]
    fn recovery_codes_have_50_bits_and_normalize() {
        let code = new_recovery_code();
        assert_eq!(code.len(), RECOVERY_CODE_CHARS + 1);
        let canonical = normalize_recovery_code(&code).unwrap();
        assert_eq!(normalize_recovery_code(&code.to_lowercase().replace('-', " ")).as_deref(), Some(&*canonical));
        assert_eq!(normalize_recovery_code("123456"), None);
        assert_eq!(normalize_recovery_code("ABCDE-FGHI1"), None, "1 is not base32");
        assert_ne!(new_recovery_code(), new_recovery_code());
    }

    #[test]
    fn sealed_secrets_open_only_for_their_user_and_keys() {
        let user = Uuid::new_v4();
        let old = MfaKey::new([1; 32]);
        let new = MfaKey::new([2; 32]);
        let sealed = SecretBox::new(old.clone(), vec![]).seal(user, b"totp secret");
        assert!(!sealed.windows(11).any(|w| w == b"totp secret"), "no plaintext in the sealed value");
        let rotated = SecretBox::new(new.clone(), vec![old.clone()]);
        assert_eq!(rotated.open(user, &sealed).unwrap(), (b"totp secret".to_vec(), true));
        assert!(rotated.open(Uuid::new_v4(), &sealed).is_err(), "another user's row");
        assert!(SecretBox::new(new, vec![]).open(user, &sealed).is_err(), "retired key");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(SecretBox::new(old, vec![]).open(user, &tampered).is_err());
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes() {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        assert_eq!(MfaKey::from_base64(&text).unwrap(), MfaKey::new([9; 32]));
        assert!(MfaKey::from_base64("c2hvcnQ=").unwrap_err().contains("32 bytes"));
        assert!(MfaKey::from_base64("not base64!").is_err());
        assert_ne!(MfaKey::derive(b"a"), MfaKey::derive(b"b"));
        assert!(!format!("{:?}", MfaKey::new([7; 32])).contains('7'));
    }

    #[test]
    fn the_otpauth_uri_and_qr_code_carry_issuer_account_and_secret() {
        let uri = otpauth_uri(RFC_SECRET, "Example App", "alice@example.com").unwrap();
        assert!(uri.starts_with("otpauth://totp/Example%20App:alice%40example.com?secret="), "{uri}");
        assert!(uri.contains(&secret_base32(RFC_SECRET)));
        assert!(uri.contains("issuer=Example%20App"));
        assert!(otpauth_uri(RFC_SECRET, "a:b", "alice").is_err());
        let png = qr_png_data_uri(&uri).unwrap();
        assert!(png.starts_with("data:image/png;base64,iVBORw0KGgo"), "a PNG signature");
    }
}
