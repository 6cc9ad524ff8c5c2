//! Passwords: [`PasswordPolicy`] (what is accepted) and [`PasswordHasher`] (Argon2id on a few
//! threads of its own, bounded).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{oneshot, OnceCell};
use unicode_normalization::UnicodeNormalization as _;

use crate::error::{AuthError, WeakPasswordReason};

/// Which passwords are accepted. Defaults follow NIST SP 800-63B §3.1.1.2 and OWASP ASVS 6.2:
/// 8–128 characters, no composition rules, common and easily guessed passwords refused.
///
/// Lengths count Unicode scalar values, not bytes, of the password as typed. Any printable
/// character is accepted, spaces and emoji included (ASVS 6.2.9); the hasher compares passwords in
/// NFKC form ([`normalize_password`]). Seed 003's composition rules (upper, lower, digit, symbol)
/// are available as options.
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

/// The form in which passwords are hashed and compared: Unicode NFKC (NIST SP 800-63B §5.1.1.2),
/// so that the same password typed on keyboards that produce composed, decomposed or full-width
/// characters verifies the same.
#[must_use]
pub fn normalize_password(password: &str) -> String {
    password.nfkc().collect()
}

/// Hashes and verifies passwords with Argon2id, producing PHC strings.
///
/// Passwords are hashed in NFKC form ([`normalize_password`]). A stored hash made from a
/// password that NFKC changes, before normalization was introduced, still verifies: when the
/// normalized form does not match and differs from the typed one, the typed one is tried too.
///
/// At most `max_queued` jobs wait for a thread beyond the `max_concurrent` running ones; past
/// that, [`hash`](Self::hash) and [`verify`](Self::verify) fail at once with
/// [`AuthError::Overloaded`] (`503` with `Retry-After`) rather than queueing without bound.
///
/// Parameters read from a stored PHC string are capped ([`PasswordHasher::MAX_MEMORY_KIB`] and
/// friends, or the configured cost times four when that is higher): a hash over a cap is a failed
/// verify and a warning, never a huge allocation.
///
/// Every hash and verify runs on one of `max_concurrent` threads of the hasher's own (named
/// `argon2-N`), never on the async executor, so at most `max_concurrent` run at once (each holds
/// `memory_kib` KiB) and a login flood queues instead of exhausting memory. Under load a thread
/// takes the next queued job as soon as it finishes one, so the cores never wait for a hand-off
/// through the executor; a job whose caller has gone (client disconnected) is skipped.
///
/// Verifies reuse their thread's Argon2 memory instead of allocating and zeroing `memory_kib`
/// each time (about a tenth of a verify's cost), so the hasher keeps `max_concurrent ×
/// memory_kib` KiB allocated once it has been busy. The threads end when the last clone is
/// dropped. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<HasherInner>,
}

struct HasherInner {
    argon2: Argon2<'static>,
    params: Argon2Params,
    dummy_hash: OnceCell<String>,
    /// The queue of the Argon2 threads.
    jobs: Sender<Job>,
    /// Jobs sent and not finished (running or waiting).
    in_flight: AtomicUsize,
    /// `max_concurrent + max_queued`: past it, new jobs are refused.
    max_in_flight: usize,
}

/// Counts a job as in flight until dropped (when it has run, been skipped, or panicked).
struct InFlight(Arc<HasherInner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Work for an Argon2 thread, given the thread's reusable working memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// One Argon2 thread: runs queued jobs until every sender is gone.
fn argon2_thread(queue: &Mutex<Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        // A panicking job fails its caller (its result sender is dropped), not the thread.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.inner.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Floor of the memory cap for stored hashes: 64 MiB, in KiB.
    pub const MAX_MEMORY_KIB: u32 = 65_536;
    /// Floor of the iterations cap for stored hashes.
    pub const MAX_ITERATIONS: u32 = 10;
    /// Floor of the parallelism cap for stored hashes.
    pub const MAX_PARALLELISM: u32 = 16;

    /// A hasher with `params`, running at most `max_concurrent` (≥ 1) hashes at once on as many
    /// threads, which it starts now, with at most `max_queued` more waiting.
    ///
    /// # Errors
    /// `internal` if the parameters are out of Argon2's range or a thread cannot be started.
    pub fn new(params: Argon2Params, max_concurrent: usize, max_queued: usize) -> Result<Self, AuthError> {
        let argon2_params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| AuthError::internal(format!("invalid Argon2 parameters: {e}")))?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let max_concurrent = max_concurrent.max(1);
        for n in 0..max_concurrent {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || argon2_thread(&queue))
                .map_err(|e| AuthError::internal(format!("cannot start an Argon2 thread: {e}")))?;
        }
        Ok(Self {
            inner: Arc::new(HasherInner {
                argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params),
                params,
                dummy_hash: OnceCell::new(),
                jobs,
                in_flight: AtomicUsize::new(0),
                max_in_flight: max_concurrent.saturating_add(max_queued),
            }),
        })
    }

    /// The configured parameters.
    #[must_use]
    pub fn params(&self) -> Argon2Params {
        self.inner.params
    }

    /// Hashes the NFKC form of `password` with a fresh 128-bit salt; returns the PHC string.
    ///
    /// # Errors
    /// `overloaded` when the queue is full, `internal` if hashing fails.
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let password = normalize_password(password);
        self.run(move |inner, _| {
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
    /// `overloaded` when the queue is full; `internal` only if an Argon2 thread failed. A
    /// malformed stored hash, or one whose parameters exceed the caps, counts as a mismatch (and
    /// is logged).
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<Verified, AuthError> {
        let (hash, known) = match hash {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash().await?, false),
        };
        let normalized = normalize_password(password);
        let legacy = (known && normalized != password).then(|| password.to_owned());
        let params = self.inner.params;
        self.run(move |inner, memory| {
            let parsed = match PasswordHash::new(&hash) {
                Ok(parsed) => parsed,
                Err(e) => {
                    tracing::error!(error = %e, "stored password hash is not a valid PHC string");
                    return Ok(Verified { valid: false, needs_rehash: false });
                }
            };
            let mut check = |candidate: &str| match inner.verify_phc(candidate.as_bytes(), &parsed, memory) {
                Ok(valid) => valid,
                Err(e) => {
                    tracing::error!(error = %e, "stored password hash cannot be checked");
                    false
                }
            };
            let valid = check(&normalized) && known;
            // A hash made before passwords were normalized: the typed form, then a rehash.
            let legacy_valid = !valid && legacy.as_deref().is_some_and(&mut check);
            let valid = valid || legacy_valid;
            Ok(Verified { valid, needs_rehash: valid && (legacy_valid || !matches_params(&parsed, params)) })
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

    /// Queues `work` for the Argon2 threads and waits for its result; refuses it with
    /// `overloaded` when `max_concurrent + max_queued` jobs are in flight already.
    async fn run<T, F>(&self, work: F) -> Result<T, AuthError>
    where
        T: Send + 'static,
        F: FnOnce(&HasherInner, &mut Vec<Block>) -> Result<T, AuthError> + Send + 'static,
    {
        let inner = &self.inner;
        if inner.in_flight.fetch_add(1, Ordering::AcqRel) >= inner.max_in_flight {
            inner.in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(max_in_flight = inner.max_in_flight, "password hasher queue full; request refused");
            return Err(AuthError::Overloaded { retry_after_seconds: 1 });
        }
        let in_flight = InFlight(Arc::clone(inner));
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // Its caller is gone (the request was dropped while queued): spend no hash on it.
            if !done.is_closed() {
                let result = work(&in_flight.0, memory);
                // No longer in flight by the time the caller has the result.
                drop(in_flight);
                let _ = done.send(result);
            }
        });
        self.inner.jobs.send(job).map_err(|_| AuthError::internal("the Argon2 threads are gone"))?;
        result.await.map_err(|_| AuthError::internal("an Argon2 job panicked"))?
    }
}

impl HasherInner {
    /// Which cap a stored hash's parameters exceed, if any: memory, iterations, parallelism
    /// (each at least the floor constant and at least four times the configured cost).
    fn over_caps(&self, params: &Params) -> Option<&'static str> {
        let own = self.params;
        let cap = |floor: u32, configured: u32| floor.max(configured.saturating_mul(4));
        if params.m_cost() > cap(PasswordHasher::MAX_MEMORY_KIB, own.memory_kib) {
            Some("memory")
        } else if params.t_cost() > cap(PasswordHasher::MAX_ITERATIONS, own.iterations) {
            Some("iterations")
        } else if params.p_cost() > cap(PasswordHasher::MAX_PARALLELISM, own.parallelism) {
            Some("parallelism")
        } else {
            None
        }
    }

    /// What `PasswordVerifier::verify_password` does (the PHC string's algorithm, version,
    /// parameters and salt; a constant-time comparison of the output), but in `memory`, the
    /// calling thread's reusable working memory.
    fn verify_phc(
        &self,
        password: &[u8],
        phc: &PasswordHash<'_>,
        memory: &mut Vec<Block>,
    ) -> argon2::password_hash::Result<bool> {
        let algorithm = Algorithm::try_from(phc.algorithm)?;
        let version = phc.version.map(Version::try_from).transpose()?.unwrap_or_default();
        let params = Params::try_from(phc)?;
        if let Some(over) = self.over_caps(&params) {
            tracing::warn!(over, "stored password hash exceeds the Argon2 caps; refused without computing it");
            return Ok(false);
        }
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
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password,
            salt,
            output,
            memory.get_mut(..blocks).unwrap_or_default(),
        );
        // Memory grown for another cost (an old, larger hash) goes back to the configured size.
        let configured = self.argon2.params().block_count();
        if memory.len() > configured {
            memory.truncate(configured);
            memory.shrink_to_fit();
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
        PasswordHasher::new(Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 }, 2, 16).unwrap()
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
        let new = PasswordHasher::new(Argon2Params { memory_kib: 128, iterations: 1, parallelism: 1 }, 1, 16).unwrap();
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
        let hasher =
            PasswordHasher::new(Argon2Params { memory_kib: 256, iterations: 2, parallelism: 1 }, 1, 16).unwrap();
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
    }

    #[tokio::test]
    async fn a_caller_that_gave_up_costs_no_hash() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let hasher =
            PasswordHasher::new(Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 }, 1, 16).unwrap();
        // Hold the only thread until released.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(move |_, _| Ok(held.recv().is_ok())).await }
        });
        tokio::task::yield_now().await;
        // Queue a job behind it, and give up on it (a client that disconnected).
        let ran = Arc::new(AtomicBool::new(false));
        let abandoned = tokio::spawn({
            let (hasher, ran) = (hasher.clone(), Arc::clone(&ran));
            async move {
                hasher
                    .run(move |_, _| {
                        ran.store(true, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
            }
        });
        tokio::task::yield_now().await;
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled(), "dropped before the thread is free");
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().unwrap());
        // The queue runs in order: once this job is done, the abandoned one has had its turn.
        hasher.run(|_, _| Ok(())).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst), "the abandoned job was skipped");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_and_the_thread_goes_on() {
        let hasher = cheap();
        let failed = hasher.run::<(), _>(|_, _| panic!("a bug in a job")).await;
        assert!(matches!(failed, Err(AuthError::Internal(_))), "{failed:?}");
        let phc = hasher.hash("correct horse").await.unwrap();
        assert!(hasher.verify("correct horse", Some(&phc)).await.unwrap().valid);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_as_overloaded_and_frees_up() {
        // One thread, one waiting slot.
        let hasher = PasswordHasher::new(Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 }, 1, 1).unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(move |_, _| Ok(held.recv().is_ok())).await }
        });
        while hasher.inner.in_flight.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        let waiting = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash("correct horse").await }
        });
        while hasher.inner.in_flight.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.verify("correct horse", None).await;
        assert!(matches!(refused, Err(AuthError::Overloaded { retry_after_seconds: 1 })), "{refused:?}");
        assert_eq!(hasher.inner.in_flight.load(Ordering::SeqCst), 2, "a refused job is not counted");
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().unwrap());
        let phc = waiting.await.unwrap().unwrap();
        assert!(hasher.verify("correct horse", Some(&phc)).await.unwrap().valid, "served again once drained");
        assert_eq!(hasher.inner.in_flight.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn stored_hashes_over_the_caps_fail_without_being_computed() {
        let hasher = cheap();
        // 1 GiB of memory, 1000 passes, 64 lanes: each refused as a mismatch.
        for params in ["m=1048576,t=1,p=1", "m=64,t=1000,p=1", "m=64,t=1,p=64"] {
            let phc =
                format!("$argon2id$v=19${params}$c2FsdHNhbHRzYWx0c2FsdA$dGhpcyBpcyBub3QgYSByZWFsIGhhc2ggYXQgYWxs");
            let started = std::time::Instant::now();
            assert!(!hasher.verify("x", Some(&phc)).await.unwrap().valid, "{phc}");
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "not computed: {phc}");
        }
        // Within the caps (four times the configured cost), an old costlier hash still verifies.
        let costlier = PasswordHasher::new(Argon2Params { memory_kib: 256, iterations: 4, parallelism: 1 }, 1, 16)
            .unwrap()
            .hash("correct horse")
            .await
            .unwrap();
        assert!(hasher.verify("correct horse", Some(&costlier)).await.unwrap().valid);
    }

    #[tokio::test]
    async fn nfkc_equal_passwords_verify_the_same() {
        let hasher = cheap();
        // Full-width letters and a precomposed é, typed another way.
        let phc = hasher.hash("Ｐａｓｓ-café-word").await.unwrap();
        assert!(hasher.verify("Pass-cafe\u{301}-word", Some(&phc)).await.unwrap().valid);
        assert!(hasher.verify("Ｐａｓｓ-café-word", Some(&phc)).await.unwrap().valid);
        assert!(!hasher.verify("Pass-cafe-word", Some(&phc)).await.unwrap().valid);
    }

    #[tokio::test]
    async fn a_hash_of_an_unnormalized_password_still_verifies_and_asks_for_a_rehash() {
        use argon2::password_hash::PasswordHasher as _;
        let hasher = cheap();
        let raw = "Ｐａｓｓｗｏｒｄ";
        let salt = SaltString::encode_b64(&[9u8; 16]).unwrap();
        let legacy = hasher.inner.argon2.hash_password(raw.as_bytes(), &salt).unwrap().to_string();
        assert_eq!(hasher.verify(raw, Some(&legacy)).await.unwrap(), Verified { valid: true, needs_rehash: true });
        assert!(!hasher.verify("Password", Some(&legacy)).await.unwrap().valid);
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_a_mismatch_not_an_error() {
        let out = cheap().verify("x", Some("not-a-phc-string")).await.unwrap();
        assert!(!out.valid);
    }
}
