//! Passwords: [`PasswordPolicy`] (what is accepted) and [`PasswordHasher`] (Argon2id on the
//! blocking pool, bounded).

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OnceCell, Semaphore};

use crate::error::{AuthError, WeakPasswordReason};

/// Which passwords are accepted. Defaults follow NIST SP 800-63B §3.1.1.2 and OWASP ASVS 6.2:
/// 8–128 characters, no composition rules, common and easily guessed passwords refused.
///
/// Lengths count Unicode scalar values, not bytes. Seed 003's composition rules (upper, lower,
/// digit, symbol) are available as options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasswordPolicy {
    /// Minimum length in characters (default 8).
    pub min_length: usize,
    /// Maximum length in characters (default 128).
    pub max_length: usize,
    /// Require an upper-case letter (default `false`).
    pub require_uppercase: bool,
    /// Require a lower-case letter (default `false`).
    pub require_lowercase: bool,
    /// Require an ASCII digit (default `false`).
    pub require_digit: bool,
    /// Require a character that is neither a letter nor a digit (default `false`).
    pub require_symbol: bool,
    /// Refuse passwords that zxcvbn guesses in under 10^6 tries (score 0–1): common passwords,
    /// dictionary words, keyboard patterns, and variants of the user's username or email
    /// (default `true`).
    pub reject_common: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_symbol: false,
            reject_common: true,
        }
    }
}

impl PasswordPolicy {
    /// Seed 003's rules: at least 8 characters with an upper-case letter, a lower-case letter, a
    /// digit and a symbol, plus the common-password check.
    #[must_use]
    pub fn with_composition_rules() -> Self {
        Self {
            require_uppercase: true,
            require_lowercase: true,
            require_digit: true,
            require_symbol: true,
            ..Self::default()
        }
    }

    /// Checks `password`; `user_inputs` (username, email) count as known words for the
    /// common-password check.
    ///
    /// This runs zxcvbn, which costs up to a few milliseconds: call it off the async executor
    /// (the [`Auth`](crate::Auth) service does).
    ///
    /// # Errors
    /// Every [`WeakPasswordReason`] that applies, in a stable order.
    pub fn check(&self, password: &str, user_inputs: &[&str]) -> Result<(), Vec<WeakPasswordReason>> {
        let mut reasons = Vec::new();
        let length = password.chars().count();
        if length < self.min_length {
            reasons.push(WeakPasswordReason::TooShort);
        }
        if length > self.max_length {
            reasons.push(WeakPasswordReason::TooLong);
        }
        if self.require_uppercase && !password.chars().any(char::is_uppercase) {
            reasons.push(WeakPasswordReason::MissingUppercase);
        }
        if self.require_lowercase && !password.chars().any(char::is_lowercase) {
            reasons.push(WeakPasswordReason::MissingLowercase);
        }
        if self.require_digit && !password.chars().any(|c| c.is_ascii_digit()) {
            reasons.push(WeakPasswordReason::MissingDigit);
        }
        if self.require_symbol && !password.chars().any(|c| !c.is_alphanumeric()) {
            reasons.push(WeakPasswordReason::MissingSymbol);
        }
        // zxcvbn's cost grows with length; a password over the maximum is refused anyway.
        if self.reject_common
            && length <= self.max_length
            && !password.is_empty()
            && zxcvbn::zxcvbn(password, user_inputs).score() <= zxcvbn::Score::One
        {
            reasons.push(WeakPasswordReason::TooCommon);
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }
}

/// Argon2id cost parameters (RFC 9106). Defaults are OWASP's: m = 19456 KiB, t = 2, p = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism (lanes).
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

/// The outcome of [`PasswordHasher::verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Whether the password matched.
    pub valid: bool,
    /// Whether the stored hash used other parameters than the configured ones and should be
    /// replaced with a fresh hash (only meaningful when `valid`).
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords with Argon2id, producing PHC strings.
///
/// Every hash and verify runs on tokio's blocking pool, never on the async executor, and at most
/// `max_concurrent` run at once (each holds `memory_kib` of memory), so a login flood queues
/// instead of exhausting memory. Verifies reuse their Argon2 memory instead of allocating and
/// zeroing `memory_kib` each time (about a tenth of a verify's cost), so the hasher keeps up to
/// `max_concurrent × memory_kib` KiB allocated once it has been busy. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<HasherInner>,
}

struct HasherInner {
    argon2: Argon2<'static>,
    params: Argon2Params,
    permits: Semaphore,
    dummy_hash: OnceCell<String>,
    /// Argon2 working memory for verifies, one buffer per verify running; never more than
    /// `max_concurrent` buffers, as the semaphore admits no more verifies.
    memory: Mutex<Vec<Vec<Block>>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.inner.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with `params`, running at most `max_concurrent` (≥ 1) hashes at once.
    ///
    /// # Errors
    /// `internal` if the parameters are out of Argon2's range.
    pub fn new(params: Argon2Params, max_concurrent: usize) -> Result<Self, AuthError> {
        let argon2_params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| AuthError::internal(format!("invalid Argon2 parameters: {e}")))?;
        Ok(Self {
            inner: Arc::new(HasherInner {
                argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params),
                params,
                permits: Semaphore::new(max_concurrent.max(1)),
                dummy_hash: OnceCell::new(),
                memory: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The configured parameters.
    #[must_use]
    pub fn params(&self) -> Argon2Params {
        self.inner.params
    }

    /// Hashes `password` with a fresh 128-bit salt; returns the PHC string.
    ///
    /// # Errors
    /// `internal` if hashing fails or the blocking pool is gone.
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let password = password.to_owned();
        self.blocking(move |inner| {
            let salt = SaltString::generate(&mut OsRng);
            inner
                .argon2
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AuthError::internal(format!("Argon2 hashing failed: {e}")))
        })
        .await
    }

    /// Verifies `password` against the PHC string `hash`. With `hash: None` (unknown user) it
    /// verifies against a dummy hash of the same cost and returns `valid: false`, so an unknown
    /// account costs the same time as a wrong password.
    ///
    /// # Errors
    /// `internal` if the blocking pool is gone. A malformed stored hash counts as a mismatch
    /// (and is logged).
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<Verified, AuthError> {
        let (hash, known) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash().await?, false),
        };
        let password = password.to_owned();
        let params = self.inner.params;
        self.blocking(move |inner| {
            let parsed = match PasswordHash::new(&hash) {
                Ok(parsed) => parsed,
                Err(e) => {
                    tracing::error!(error = %e, "stored password hash is not a valid PHC string");
                    return Ok(Verified { valid: false, needs_rehash: false });
                }
            };
            let valid = match inner.verify_phc(password.as_bytes(), &parsed) {
                Ok(valid) => valid && known,
                Err(e) => {
                    tracing::error!(error = %e, "stored password hash cannot be checked");
                    false
                }
            };
            Ok(Verified { valid, needs_rehash: valid && !matches_params(&parsed, params) })
        })
        .await
    }

    async fn dummy_hash(&self) -> Result<String, AuthError> {
        self.inner
            .dummy_hash
            .get_or_try_init(|| async { self.hash("dummy password for unknown accounts").await })
            .await
            .cloned()
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        T: Send + 'static,
        F: FnOnce(&HasherInner) -> Result<T, AuthError> + Send + 'static,
    {
        let _permit = self.inner.permits.acquire().await.map_err(AuthError::internal)?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner)).await.map_err(AuthError::internal)?
    }
}

impl HasherInner {
    /// What `PasswordVerifier::verify_password` does (the PHC string's algorithm, version,
    /// parameters and salt; a constant-time comparison of the output), but in pooled memory.
    fn verify_phc(&self, password: &[u8], phc: &PasswordHash<'_>) -> argon2::password_hash::Result<bool> {
        let algorithm = Algorithm::try_from(phc.algorithm)?;
        let version = phc.version.map(Version::try_from).transpose()?.unwrap_or_default();
        let params = Params::try_from(phc)?;
        let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
            return Err(argon2::password_hash::Error::PhcStringField);
        };
        let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
        let salt = salt.decode_b64(&mut salt_bytes)?;
        let mut output = [0u8; Output::MAX_LENGTH];
        let output = output.get_mut(..expected.len()).ok_or(argon2::password_hash::Error::OutputSize {
            provided: std::cmp::Ordering::Greater,
            expected: Output::MAX_LENGTH,
        })?;

        let blocks = params.block_count();
        let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password,
            salt,
            output,
            memory.get_mut(..blocks).unwrap_or_default(),
        );
        // Keep buffers of the configured size; one for another cost (an old hash) is dropped.
        if memory.len() == self.argon2.params().block_count() {
            self.memory.lock().unwrap_or_else(PoisonError::into_inner).push(memory);
        }
        hashed?;
        Ok(crate::secret::bytes_eq(output, expected.as_bytes()))
    }
}

/// Whether a parsed PHC hash was made with Argon2id and exactly `params`.
fn matches_params(hash: &PasswordHash<'_>, params: Argon2Params) -> bool {
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    match Params::try_from(hash) {
        Ok(p) => p.m_cost() == params.memory_kib && p.t_cost() == params.iterations && p.p_cost() == params.parallelism,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 }, 2).unwrap()
    }

    #[test]
    fn default_policy_accepts_a_strong_passphrase() {
        assert_eq!(PasswordPolicy::default().check("violet-Kettle-93-orbit", &[]), Ok(()));
    }

    #[test]
    fn default_policy_refuses_short_and_common_passwords() {
        let policy = PasswordPolicy::default();
        assert_eq!(policy.check("abc", &[]), Err(vec![WeakPasswordReason::TooShort, WeakPasswordReason::TooCommon]));
        assert_eq!(policy.check("password123", &[]), Err(vec![WeakPasswordReason::TooCommon]));
        assert_eq!(policy.check("qwertyuiop", &[]), Err(vec![WeakPasswordReason::TooCommon]));
    }

    #[test]
    fn the_username_counts_as_a_known_word() {
        let policy = PasswordPolicy::default();
        assert!(policy.check("zanzibarcat", &[]).is_ok());
        assert_eq!(policy.check("zanzibarcat", &["zanzibarcat"]), Err(vec![WeakPasswordReason::TooCommon]));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let policy = PasswordPolicy { reject_common: false, ..PasswordPolicy::default() };
        // 8 characters, 24 bytes.
        assert_eq!(policy.check("日本語のパスワ一", &[]), Ok(()));
        assert_eq!(policy.check(&"x".repeat(129), &[]), Err(vec![WeakPasswordReason::TooLong]));
    }

    #[test]
    fn composition_rules_name_every_missing_class() {
        let policy = PasswordPolicy { reject_common: false, ..PasswordPolicy::with_composition_rules() };
        assert_eq!(
            policy.check("alllowercase", &[]),
            Err(vec![
                WeakPasswordReason::MissingUppercase,
                WeakPasswordReason::MissingDigit,
                WeakPasswordReason::MissingSymbol
            ])
        );
        assert_eq!(policy.check("Abcdefg1!", &[]), Ok(()));
    }

    #[tokio::test]
    async fn hash_then_verify_round_trips_as_argon2id_phc() {
        let hasher = cheap();
        let phc = hasher.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert_eq!(
            hasher.verify("correct horse", Some(&phc)).await.unwrap(),
            Verified { valid: true, needs_rehash: false }
        );
        assert!(!hasher.verify("wrong horse", Some(&phc)).await.unwrap().valid);
    }

    #[tokio::test]
    async fn unknown_user_never_verifies_even_with_the_dummy_password() {
        let hasher = cheap();
        let out = hasher.verify("dummy password for unknown accounts", None).await.unwrap();
        assert!(!out.valid);
    }

    #[tokio::test]
    async fn changed_parameters_ask_for_a_rehash() {
        let old = cheap().hash("correct horse").await.unwrap();
        let new = PasswordHasher::new(Argon2Params { memory_kib: 128, iterations: 1, parallelism: 1 }, 1).unwrap();
        assert_eq!(
            new.verify("correct horse", Some(&old)).await.unwrap(),
            Verified { valid: true, needs_rehash: true }
        );
    }

    #[tokio::test]
    async fn verifies_in_reused_memory_agree_with_the_argon2_crate() {
        use argon2::password_hash::PasswordVerifier as _;
        // One worker, so every verify reuses the same (dirty) buffer; hashes of other costs,
        // Argon2i/d, a 16-byte output and a 32-byte salt, made by the argon2 crate itself.
        let hasher = PasswordHasher::new(Argon2Params { memory_kib: 256, iterations: 2, parallelism: 1 }, 1).unwrap();
        let mut hashes = vec![hasher.hash("correct horse").await.unwrap()];
        for (algorithm, m, t, p, len) in [
            (Algorithm::Argon2id, 64, 1, 1, 32),
            (Algorithm::Argon2id, 512, 1, 2, 16),
            (Algorithm::Argon2i, 128, 3, 1, 32),
            (Algorithm::Argon2d, 256, 1, 1, 64),
        ] {
            let argon2 = Argon2::new(algorithm, Version::V0x13, Params::new(m, t, p, Some(len)).unwrap());
            let salt = SaltString::encode_b64(&[7u8; 32]).unwrap();
            hashes.push(argon2.hash_password(b"correct horse", &salt).unwrap().to_string());
        }
        for phc in &hashes {
            for (password, expected) in [("correct horse", true), ("correct horsE", false), ("correct horse", true)] {
                let reference =
                    Argon2::default().verify_password(password.as_bytes(), &PasswordHash::new(phc).unwrap());
                assert_eq!(reference.is_ok(), expected, "{phc}");
                assert_eq!(hasher.verify(password, Some(phc)).await.unwrap().valid, expected, "{phc} {password}");
            }
        }
        let pooled = hasher.inner.memory.lock().unwrap();
        assert_eq!(pooled.len(), 1, "one buffer for one worker");
        assert_eq!(pooled[0].len(), 256, "of the configured size");
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_a_mismatch_not_an_error() {
        let out = cheap().verify("x", Some("not-a-phc-string")).await.unwrap();
        assert!(!out.valid);
    }
}
