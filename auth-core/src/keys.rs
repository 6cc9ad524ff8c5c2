//! Signing keys of access tokens: the algorithms (RFC 7518 `HS256`, RFC 8037 `EdDSA`, `ES256`,
//! `RS256`), keys with a key id (`kid`, RFC 7515 §4.1.4), the [`KeySet`] a service signs and
//! verifies with, its public JWK Set (RFC 7517) and the [`TokenVerifier`] that checks a token
//! against a set of keys — the same one for the service itself and for a resource server that
//! only holds the published keys.
//!
//! The cryptography is `jsonwebtoken`'s (RustCrypto: `ed25519-dalek`, `p256`, `rsa`); this module
//! only chooses, loads and names keys, and pins each key to its algorithm (RFC 8725 §3.1: a token
//! whose header names another algorithm than its key's is refused, so no RS256/HS256 confusion).
//!
//! ```
//! use auth_core::keys::{JwtAlgorithm, JwtKey, KeySet};
//!
//! // A new Ed25519 key (normally loaded with `JwtKey::from_pem` from a PKCS#8 file).
//! let (key, pem) = JwtKey::generate(JwtAlgorithm::EdDsa).unwrap();
//! assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
//! // Its `kid` is the RFC 7638 thumbprint of its public key: the same on every instance.
//! assert_eq!(JwtKey::from_pem(JwtAlgorithm::EdDsa, pem.expose().as_bytes()).unwrap().kid(), key.kid());
//! let set = KeySet::new(key).unwrap();
//! assert_eq!(set.jwks().keys.len(), 1);
//! ```

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
/// `jsonwebtoken`'s JWK types (RFC 7517), which [`KeySet::jwks`] returns and
/// [`JwtKey::from_jwk`] reads.
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::config::MIN_JWT_SECRET_BYTES;
use crate::error::AuthError;
use crate::secret::SecretString;
use crate::token::{Claims, ACCESS_TOKEN_TYP};

/// Smallest RSA modulus accepted for `RS256`, in bits (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// The algorithm that signs access tokens (the JWS `alg` header, RFC 7518 §3.1 and RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 and a shared secret (the default): whoever can verify can also sign,
    /// so its keys are never published.
    #[default]
    Hs256,
    /// Ed25519 signatures (RFC 8037): small keys, fast, deterministic. The recommended
    /// asymmetric choice.
    EdDsa,
    /// ECDSA with P-256 and SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of at least [`MIN_RSA_BITS`] bits.
    Rs256,
}

impl JwtAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [Self; 4] = [Self::Hs256, Self::EdDsa, Self::Es256, Self::Rs256];

    /// The `alg` header value: `HS256`, `EdDSA`, `ES256`, `RS256`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    /// Whether verifying needs the signing secret (HS256) rather than a public key.
    #[must_use]
    pub fn is_symmetric(self) -> bool {
        self == Self::Hs256
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JwtAlgorithm {
    type Err = KeyError;

    /// The `alg` name, ignoring ASCII case (`eddsa` is `EdDSA`).
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| KeyError::UnknownAlgorithm(s.to_owned()))
    }
}

/// A key that cannot be used, or a key set that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not one of `HS256`, `EdDSA`, `ES256`, `RS256`.
    #[error("unknown JWT algorithm {0:?}: use HS256, EdDSA, ES256 or RS256")]
    UnknownAlgorithm(String),
    /// The PEM text is not a key of the algorithm (or not PEM at all).
    #[error(
        "not a PEM {0} key (expected \"-----BEGIN PRIVATE KEY-----\" PKCS#8, or \"-----BEGIN PUBLIC KEY-----\" for a \
         verify-only key)"
    )]
    BadPem(JwtAlgorithm),
    /// HS256 keys are secrets, not PEM files.
    #[error("HS256 uses a shared secret (AUTH_JWT_SECRET), not a key file")]
    PemForHs256,
    /// An HS256 secret shorter than [`MIN_JWT_SECRET_BYTES`].
    #[error("the HS256 secret must be at least {MIN_JWT_SECRET_BYTES} bytes (got {0})")]
    SecretTooShort(usize),
    /// An RSA key under [`MIN_RSA_BITS`].
    #[error("the RSA key has {0} bits; RS256 needs at least {MIN_RSA_BITS}")]
    RsaKeyTooSmall(usize),
    /// The key loaded but cannot sign or verify with its algorithm (for example a P-384 key for
    /// ES256).
    #[error("the key cannot be used for {0}: {1}")]
    Unusable(JwtAlgorithm, String),
    /// A JWK that cannot verify our tokens: no `kid`, no or an unsupported `alg`, a symmetric
    /// key, or parameters that do not match its `alg`.
    #[error("unusable JWK: {0}")]
    BadJwk(String),
    /// A key set's signing key has no private part.
    #[error("the signing key of a key set must have its private part (a PKCS#8 private key)")]
    VerifyOnlySigner,
    /// Two different keys of a set share a `kid`.
    #[error("two different keys of the key set have the kid {0:?}")]
    DuplicateKid(String),
}

/// One key of a [`KeySet`]: its `kid`, its algorithm, its private part when it can sign, and
/// its public JWK (none for HS256). Cheap to clone.
///
/// Asymmetric keys get as `kid` the RFC 7638 SHA-256 thumbprint of their public key
/// (base64url, 43 characters), so every instance that loads the same key file names it the
/// same; HS256 keys get `hs-` and 16 characters of an HMAC of the secret (the secret cannot be
/// recovered from it). [`with_kid`](Self::with_kid) sets another.
#[derive(Clone)]
pub struct JwtKey {
    kid: String,
    algorithm: JwtAlgorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    public: Option<Jwk>,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("can_sign", &self.can_sign())
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    /// An HS256 key from a shared secret of at least [`MIN_JWT_SECRET_BYTES`] bytes.
    ///
    /// # Errors
    /// [`KeyError::SecretTooShort`].
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(KeyError::SecretTooShort(secret.len()));
        }
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|_| KeyError::SecretTooShort(0))?;
        mac.update(b"auth-core/jwt-kid/v1");
        let tag = mac.finalize().into_bytes();
        Ok(Self {
            kid: format!("hs-{}", URL_SAFE_NO_PAD.encode(&tag[..12])),
            algorithm: JwtAlgorithm::Hs256,
            encoding: Some(EncodingKey::from_secret(secret)),
            decoding: DecodingKey::from_secret(secret),
            public: None,
        })
    }

    /// An `EdDSA` (Ed25519), `ES256` (P-256) or `RS256` key from PEM text: a PKCS#8 private key
    /// (`-----BEGIN PRIVATE KEY-----`; for RSA also PKCS#1 `RSA PRIVATE KEY`), which can sign,
    /// or a public key (`-----BEGIN PUBLIC KEY-----`), which only verifies.
    ///
    /// A private key is tried once (a token is signed and verified) so that a key that loads but
    /// cannot work fails here, at startup, not on the first login.
    ///
    /// # Errors
    /// [`KeyError::PemForHs256`], [`KeyError::BadPem`] (not PEM, or a key of another type),
    /// [`KeyError::RsaKeyTooSmall`], [`KeyError::Unusable`].
    pub fn from_pem(algorithm: JwtAlgorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let bad = |_| KeyError::BadPem(algorithm);
        let alg = algorithm.jwt();
        let is_public = std::str::from_utf8(pem).is_ok_and(|s| s.contains("-----BEGIN PUBLIC KEY-----"));
        let (encoding, decoding, jwk) = if is_public {
            let decoding = match algorithm {
                JwtAlgorithm::Hs256 => return Err(KeyError::PemForHs256),
                JwtAlgorithm::EdDsa => DecodingKey::from_ed_pem(pem).map_err(bad)?,
                JwtAlgorithm::Es256 => DecodingKey::from_ec_pem(pem).map_err(bad)?,
                JwtAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem).map_err(bad)?,
            };
            let jwk = Jwk::from_decoding_key(&decoding, Some(alg)).map_err(bad)?;
            check_jwk_matches(algorithm, &jwk)?;
            // Rebuilt from the JWK: the form jsonwebtoken verifies with for every key type.
            let decoding = DecodingKey::from_jwk(&jwk).map_err(bad)?;
            (None, decoding, jwk)
        } else {
            let encoding = match algorithm {
                JwtAlgorithm::Hs256 => return Err(KeyError::PemForHs256),
                JwtAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem).map_err(bad)?,
                JwtAlgorithm::Es256 => EncodingKey::from_ec_pem(pem).map_err(bad)?,
                JwtAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem).map_err(bad)?,
            };
            let jwk = Jwk::from_encoding_key(&encoding, alg).map_err(bad)?;
            check_jwk_matches(algorithm, &jwk)?;
            let decoding = DecodingKey::from_jwk(&jwk).map_err(bad)?;
            (Some(encoding), decoding, jwk)
        };
        let key = Self::with_public(algorithm, encoding, decoding, jwk)?;
        key.probe()?;
        Ok(key)
    }

    /// A verify-only key from a published JWK (a resource server's view of the auth server's
    /// keys). The JWK must carry `kid` and an `alg` of `EdDSA`, `ES256` or `RS256` matching its
    /// key type: the algorithm is taken from the key, never from a token.
    ///
    /// # Errors
    /// [`KeyError::BadJwk`], [`KeyError::RsaKeyTooSmall`].
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let kid = jwk.common.key_id.clone().ok_or_else(|| KeyError::BadJwk("no kid".into()))?;
        if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
            return Err(KeyError::BadJwk(format!("kid {kid:?}: not a signing key (use is not sig)")));
        }
        let algorithm = match jwk.common.key_algorithm {
            Some(KeyAlgorithm::EdDSA) => JwtAlgorithm::EdDsa,
            Some(KeyAlgorithm::ES256) => JwtAlgorithm::Es256,
            Some(KeyAlgorithm::RS256) => JwtAlgorithm::Rs256,
            Some(other) => return Err(KeyError::BadJwk(format!("kid {kid:?}: unsupported alg {other}"))),
            None => return Err(KeyError::BadJwk(format!("kid {kid:?}: no alg"))),
        };
        check_jwk_matches(algorithm, jwk).map_err(|e| match e {
            KeyError::BadPem(_) => KeyError::BadJwk(format!("kid {kid:?}: its key is not a valid {algorithm} key")),
            other => other,
        })?;
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::BadJwk(format!("kid {kid:?}: {e}")))?;
        Ok(Self { kid, algorithm, encoding: None, decoding, public: Some(jwk.clone()) })
    }

    /// A new random key of `algorithm` (not HS256), with its PKCS#8 PEM text to keep (a file of
    /// mode 0600). RSA keys have [`MIN_RSA_BITS`] bits.
    ///
    /// # Errors
    /// [`KeyError::PemForHs256`] for HS256 (use [`random_token`](crate::random_token) as a
    /// secret), [`KeyError::Unusable`] if the system's random source fails.
    pub fn generate(algorithm: JwtAlgorithm) -> Result<(Self, SecretString), KeyError> {
        use rand::RngCore as _;
        let unusable = |e: &dyn fmt::Display| KeyError::Unusable(algorithm, e.to_string());
        let pem: String = match algorithm {
            JwtAlgorithm::Hs256 => return Err(KeyError::PemForHs256),
            JwtAlgorithm::EdDsa => {
                use ed25519_dalek::pkcs8::EncodePrivateKey as _;
                let mut seed = zeroize::Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.try_fill_bytes(seed.as_mut()).map_err(|e| unusable(&e))?;
                // PKCS#8 v1 (RFC 8410 §7: the private key alone), the form jsonwebtoken reads.
                let key = ed25519_dalek::pkcs8::KeypairBytes { secret_key: *seed, public_key: None };
                key.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                    .map_err(|e| unusable(&e))?
                    .to_string()
            }
            JwtAlgorithm::Es256 => {
                use p256::pkcs8::EncodePrivateKey as _;
                let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
                key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).map_err(|e| unusable(&e))?.to_string()
            }
            JwtAlgorithm::Rs256 => {
                use rsa::pkcs8::EncodePrivateKey as _;
                let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, MIN_RSA_BITS).map_err(|e| unusable(&e))?;
                key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| unusable(&e))?.to_string()
            }
        };
        let key = Self::from_pem(algorithm, pem.as_bytes())?;
        Ok((key, SecretString::new(pem)))
    }

    /// The same key under another `kid` (for key ids assigned by a key-management system).
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        if let Some(jwk) = &mut self.public {
            jwk.common.key_id = Some(self.kid.clone());
        }
        self
    }

    /// The key id, sent in the `kid` header of every token it signs.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the key is pinned to.
    #[must_use]
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// Whether the key has its private part (or is an HS256 secret) and so can sign.
    #[must_use]
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    /// The public key as a JWK with `kid`, `alg` and `use: sig`; `None` for HS256.
    #[must_use]
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.public.as_ref()
    }

    /// A key from its parts, named by the thumbprint of its public JWK.
    fn with_public(
        algorithm: JwtAlgorithm,
        encoding: Option<EncodingKey>,
        decoding: DecodingKey,
        mut jwk: Jwk,
    ) -> Result<Self, KeyError> {
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| KeyError::Unusable(algorithm, e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(algorithm.jwt().into());
        Ok(Self { kid, algorithm, encoding, decoding, public: Some(jwk) })
    }

    /// Signs and verifies one token, when the key can sign.
    fn probe(&self) -> Result<(), KeyError> {
        let Some(encoding) = &self.encoding else { return Ok(()) };
        let unusable = |e: jsonwebtoken::errors::Error| KeyError::Unusable(self.algorithm, e.to_string());
        let token = jsonwebtoken::encode(&Header::new(self.algorithm.jwt()), &serde_json::json!({}), encoding)
            .map_err(unusable)?;
        let mut validation = Validation::new(self.algorithm.jwt());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &self.decoding, &validation).map_err(unusable)?;
        Ok(())
    }
}

/// The key type and parameters of `jwk` fit `algorithm`: an Ed25519 point of 32 bytes for
/// EdDSA, a point on P-256 for ES256, an RSA modulus of at least [`MIN_RSA_BITS`] bits and an
/// exponent for RS256. (jsonwebtoken checks the key material only when it verifies, and slices
/// an Ed25519 key without a length check: a malformed published key must be refused here.)
fn check_jwk_matches(algorithm: JwtAlgorithm, jwk: &Jwk) -> Result<(), KeyError> {
    let mismatch = || KeyError::BadPem(algorithm);
    let bytes = |b64: &str| URL_SAFE_NO_PAD.decode(b64).map_err(|_| mismatch());
    match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::OctetKeyPair(p), JwtAlgorithm::EdDsa) if p.curve == EllipticCurve::Ed25519 => {
            let x: [u8; 32] = bytes(&p.x)?.try_into().map_err(|_| mismatch())?;
            ed25519_dalek::VerifyingKey::from_bytes(&x).map(|_| ()).map_err(|_| mismatch())
        }
        (AlgorithmParameters::EllipticCurve(p), JwtAlgorithm::Es256) if p.curve == EllipticCurve::P256 => {
            let (x, y) = (bytes(&p.x)?, bytes(&p.y)?);
            if x.len() != 32 || y.len() != 32 {
                return Err(mismatch());
            }
            let point = [&[0x04][..], &x, &y].concat();
            p256::PublicKey::from_sec1_bytes(&point).map(|_| ()).map_err(|_| mismatch())
        }
        (AlgorithmParameters::RSA(p), JwtAlgorithm::Rs256) => {
            let modulus = bytes(&p.n)?;
            if bytes(&p.e)?.iter().all(|b| *b == 0) {
                return Err(mismatch());
            }
            let bits = rsa_bits(&modulus);
            if bits < MIN_RSA_BITS {
                Err(KeyError::RsaKeyTooSmall(bits))
            } else {
                Ok(())
            }
        }
        _ => Err(mismatch()),
    }
}

/// The bit length of a big-endian unsigned integer.
fn rsa_bits(modulus: &[u8]) -> usize {
    let zeros = modulus.iter().take_while(|b| **b == 0).count();
    let significant = &modulus[zeros..];
    significant.first().map_or(0, |first| significant.len() * 8 - first.leading_zeros() as usize)
}

/// The keys a service signs and verifies access tokens with: one signing key and any number of
/// verify-only keys (the previous signer during a rotation, or the next one before it signs).
///
/// Rotation without logging anyone out (`docs/KEYS.md`): (1) add the new key as verify-only on
/// every instance, and wait until resource servers have it (the JWKS `max-age`); (2) make it the
/// signer, the old one verify-only; (3) after the longest access-token lifetime has passed,
/// drop the old key.
#[derive(Debug, Clone)]
pub struct KeySet {
    signer: JwtKey,
    /// The signer's private part.
    signing: EncodingKey,
    verify_only: Vec<JwtKey>,
}

impl KeySet {
    /// A set that signs with `signer`.
    ///
    /// # Errors
    /// [`KeyError::VerifyOnlySigner`] if `signer` has no private part.
    pub fn new(signer: JwtKey) -> Result<Self, KeyError> {
        let signing = signer.encoding.clone().ok_or(KeyError::VerifyOnlySigner)?;
        Ok(Self { signer, signing, verify_only: Vec::new() })
    }

    /// The set with `key` accepted for verification too. A key already in the set (same `kid`,
    /// same key) is left as it is, so the signer may also be listed as a previous key.
    ///
    /// # Errors
    /// [`KeyError::DuplicateKid`] if another key of the set has the same `kid`.
    pub fn with_verify_only(mut self, key: JwtKey) -> Result<Self, KeyError> {
        // Asymmetric kids are thumbprints and HS256 ones HMACs of the secret: the same kid
        // with the same algorithm and public key is the same key.
        let existing = self.keys().find(|k| k.kid == key.kid).map(|existing| {
            existing.algorithm == key.algorithm
                && existing.public.as_ref().map(|j| &j.algorithm) == key.public.as_ref().map(|j| &j.algorithm)
        });
        match existing {
            Some(true) => return Ok(self),
            Some(false) => return Err(KeyError::DuplicateKid(key.kid)),
            None => {}
        }
        self.verify_only.push(key);
        Ok(self)
    }

    /// The signing key.
    #[must_use]
    pub fn signer(&self) -> &JwtKey {
        &self.signer
    }

    /// Every key, the signer first.
    pub fn keys(&self) -> impl Iterator<Item = &JwtKey> {
        std::iter::once(&self.signer).chain(&self.verify_only)
    }

    /// The public keys of the set as a JWK Set (RFC 7517 §5), signer first; HS256 keys are never
    /// published, so a set of HS256 keys gives `{"keys":[]}`.
    #[must_use]
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.keys().filter_map(|k| k.public.clone()).collect() }
    }
}

/// Checks access tokens against a set of keys: the header's `kid` picks the key (no `kid`, or
/// an unknown one, is refused), the key's own algorithm is the only one accepted, then the
/// signature, `typ: at+jwt` (RFC 9068 §4), `iss`, `aud` and, in [`verify`](Self::verify), `exp`
/// and `nbf` with the leeway. The service verifies with one made from its [`KeySet`]; a
/// resource server with one made from the published JWK Set ([`JwtKey::from_jwk`]).
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Vec<(String, DecodingKey, Validation)>,
    leeway: i64,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("kids", &self.keys.iter().map(|(kid, _, _)| kid.as_str()).collect::<Vec<_>>())
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier accepting tokens of `keys` issued by `issuer` for `audience`, with
    /// `leeway_seconds` of clock skew on `exp` and `nbf`.
    pub fn new<'a>(
        keys: impl IntoIterator<Item = &'a JwtKey>,
        issuer: &str,
        audience: &str,
        leeway_seconds: u64,
    ) -> Self {
        let keys = keys
            .into_iter()
            .map(|key| {
                // One algorithm per key: a token naming another is refused by jsonwebtoken.
                let mut validation = Validation::new(key.algorithm.jwt());
                validation.set_issuer(&[issuer]);
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
                // `exp` and `nbf` are checked against the caller's clock, not the system's.
                validation.validate_exp = false;
                validation.validate_nbf = false;
                (key.kid.clone(), key.decoding.clone(), validation)
            })
            .collect();
        Self { keys, leeway: i64::try_from(leeway_seconds).unwrap_or(i64::MAX) }
    }

    /// Whether a key of the verifier has this `kid`.
    #[must_use]
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|(k, _, _)| k == kid)
    }

    /// The `kid` header of `token`, unverified (to decide whether to fetch keys); `None` if the
    /// token has no readable header or no `kid`.
    #[must_use]
    pub fn kid_of(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).ok()?.kid
    }

    /// Verifies `token` at `now` (Unix seconds).
    ///
    /// # Errors
    /// [`AuthError::TokenExpired`] past `exp` (plus leeway); [`AuthError::Unauthorized`] for
    /// anything else (no or unknown `kid`, another algorithm, bad signature, `typ`, `iss`, `aud`,
    /// before `nbf`).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let claims = self.verify_ignoring_times(token)?;
        check_times(&claims, now, self.leeway)?;
        Ok(claims)
    }

    /// [`verify`](Self::verify) without the `exp` and `nbf` checks: for a token a client
    /// presents as evidence of the session it is refreshing, which has usually expired.
    ///
    /// # Errors
    /// [`AuthError::Unauthorized`].
    pub fn verify_ignoring_times(&self, token: &str) -> Result<Claims, AuthError> {
        let kid = Self::kid_of(token).ok_or(AuthError::Unauthorized)?;
        let (_, decoding, validation) = self.keys.iter().find(|(k, _, _)| *k == kid).ok_or(AuthError::Unauthorized)?;
        let data = jsonwebtoken::decode::<Claims>(token, decoding, validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::TokenExpired,
            _ => AuthError::Unauthorized,
        })?;
        // RFC 9068 §4: reject tokens whose typ is not at+jwt (a refresh token, an ID token, …).
        let typ_ok =
            data.header.typ.as_deref().is_some_and(|t| {
                t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
            });
        if !typ_ok {
            return Err(AuthError::Unauthorized);
        }
        Ok(data.claims)
    }
}

/// `exp` and `nbf` of verified claims at `now` (Unix seconds), with `leeway` seconds of clock
/// skew: past `exp` is [`AuthError::TokenExpired`], before `nbf` [`AuthError::Unauthorized`].
pub(crate) fn check_times(claims: &Claims, now: i64, leeway: i64) -> Result<(), AuthError> {
    if now > claims.exp.saturating_add(leeway) {
        Err(AuthError::TokenExpired)
    } else if claims.nbf > now.saturating_add(leeway) {
        Err(AuthError::Unauthorized)
    } else {
        Ok(())
    }
}

/// Signs access tokens with a key set's signer (header `alg`, `typ: at+jwt`, `kid`).
pub(crate) struct Signer {
    encoding: EncodingKey,
    header: Header,
}

impl Signer {
    pub(crate) fn new(set: &KeySet) -> Self {
        let key = set.signer();
        let mut header = Header::new(key.algorithm.jwt());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(key.kid.clone());
        Self { encoding: set.signing.clone(), header }
    }

    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&self.header, claims, &self.encoding).map_err(AuthError::internal)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::user::Role;

    /// A P-384 key (openssl genpkey): a valid EC key, but not ES256's curve.
    const P384_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDcy5bwva/la5p046FK
V9VUA0lKMO6pZ8oZTrVDbAUUV8vARc9H4fJgX3unFefRunihZANiAAS+V3QO1oJ6
moFDZlsGMogOg16dkMdkPoCQ2Kr/JoDIKDihMz6I+LDkmbjGauIINAS9z+cbStjo
W7pWU0hkpH/u/gHOU/UN1Sr8kC5IErl2I2v2xKCp4EWorZXn0U084Rg=
-----END PRIVATE KEY-----
";

    fn claims(now: i64) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            sid: Uuid::new_v4(),
            role: Role::user(),
            iat: now,
            nbf: now,
            exp: now + 60,
            iss: "iss".into(),
            aud: "aud".into(),
            jti: Uuid::new_v4(),
            amr: vec!["pwd".into()],
        }
    }

    fn sign(set: &KeySet, claims: &Claims) -> String {
        Signer::new(set).sign(claims).unwrap()
    }

    fn verifier<'a>(keys: impl IntoIterator<Item = &'a JwtKey>) -> TokenVerifier {
        TokenVerifier::new(keys, "iss", "aud", 0)
    }

    fn header_of(token: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn each_algorithm_signs_with_its_kid_and_verifies() {
        let now = Utc::now().timestamp();
        for alg in JwtAlgorithm::ALL {
            let key = match alg {
                JwtAlgorithm::Hs256 => JwtKey::hs256(&[7u8; 32]).unwrap(),
                other => JwtKey::generate(other).unwrap().0,
            };
            let set = KeySet::new(key.clone()).unwrap();
            let token = sign(&set, &claims(now));
            let header = header_of(&token);
            assert_eq!(header["alg"], alg.name());
            assert_eq!(header["kid"], key.kid());
            assert_eq!(header["typ"], "at+jwt");
            assert!(verifier(set.keys()).verify(&token, now).is_ok(), "{alg}");
            assert_eq!(set.jwks().keys.len(), usize::from(!alg.is_symmetric()), "{alg}: HS256 is never published");
        }
    }

    #[test]
    fn a_key_loaded_twice_has_the_same_kid_and_its_public_half_verifies() {
        for alg in [JwtAlgorithm::EdDsa, JwtAlgorithm::Es256, JwtAlgorithm::Rs256] {
            let (key, pem) = JwtKey::generate(alg).unwrap();
            let again = JwtKey::from_pem(alg, pem.expose().as_bytes()).unwrap();
            assert_eq!(key.kid(), again.kid());
            assert_eq!(key.kid().len(), 43, "SHA-256 thumbprint, base64url");
            // The published JWK, and nothing private in it.
            let jwk = serde_json::to_value(key.public_jwk().unwrap()).unwrap();
            assert_eq!(jwk["kid"], key.kid());
            assert_eq!(jwk["alg"], alg.name());
            assert_eq!(jwk["use"], "sig");
            assert!(jwk.get("d").is_none() && jwk.get("p").is_none() && jwk.get("k").is_none(), "{jwk}");
            let public = JwtKey::from_jwk(key.public_jwk().unwrap()).unwrap();
            assert!(!public.can_sign());
            let now = Utc::now().timestamp();
            let token = sign(&KeySet::new(key).unwrap(), &claims(now));
            assert!(verifier([&public]).verify(&token, now).is_ok());
        }
    }

    #[test]
    fn unknown_missing_or_retired_kid_is_refused_and_verify_only_keys_verify() {
        let now = Utc::now().timestamp();
        let old = JwtKey::generate(JwtAlgorithm::EdDsa).unwrap().0;
        let new = JwtKey::generate(JwtAlgorithm::EdDsa).unwrap().0;
        let old_set = KeySet::new(old.clone()).unwrap();
        let token = sign(&old_set, &claims(now));
        // Rotated: the new key signs, the old one still verifies.
        let rotated = KeySet::new(new.clone()).unwrap().with_verify_only(old.clone()).unwrap();
        assert!(verifier(rotated.keys()).verify(&token, now).is_ok());
        assert_eq!(rotated.jwks().keys.len(), 2);
        // Retired: unknown kid.
        assert!(matches!(verifier([&new]).verify(&token, now), Err(AuthError::Unauthorized)));
        // No kid at all, though signed by a known key.
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        let no_kid = jsonwebtoken::encode(&header, &claims(now), &old_set.signing).unwrap();
        assert!(matches!(verifier([&old]).verify(&no_kid, now), Err(AuthError::Unauthorized)));
        // A kid naming another known key than the one that signed.
        header.kid = Some(new.kid().into());
        let wrong_kid = jsonwebtoken::encode(&header, &claims(now), &old_set.signing).unwrap();
        assert!(matches!(verifier([&old, &new]).verify(&wrong_kid, now), Err(AuthError::Unauthorized)));
    }

    #[test]
    fn an_hs256_token_made_with_the_public_key_as_secret_is_refused() {
        // The classic RS/HS confusion: the attacker signs HS256 with the published public key.
        let now = Utc::now().timestamp();
        for alg in [JwtAlgorithm::Rs256, JwtAlgorithm::EdDsa, JwtAlgorithm::Es256] {
            let key = JwtKey::generate(alg).unwrap().0;
            let public = serde_json::to_vec(key.public_jwk().unwrap()).unwrap();
            let mut header = Header::new(Algorithm::HS256);
            header.typ = Some(ACCESS_TOKEN_TYP.into());
            header.kid = Some(key.kid().into());
            let forged = jsonwebtoken::encode(&header, &claims(now), &EncodingKey::from_secret(&public)).unwrap();
            assert!(matches!(verifier([&key]).verify(&forged, now), Err(AuthError::Unauthorized)), "{alg}");
        }
        // And an HS256 key's kid with an EdDSA token: the key's algorithm only.
        let hs = JwtKey::hs256(&[1u8; 32]).unwrap();
        let ed = JwtKey::generate(JwtAlgorithm::EdDsa).unwrap().0;
        let token = sign(&KeySet::new(ed.clone()).unwrap(), &claims(now));
        let (_, rest) = token.split_once('.').unwrap();
        let mut header = header_of(&token);
        header["kid"] = hs.kid().into();
        let relabelled = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()));
        assert!(matches!(verifier([&hs, &ed]).verify(&relabelled, now), Err(AuthError::Unauthorized)));
    }

    #[test]
    fn bad_key_material_is_a_clear_error() {
        assert_eq!(
            JwtKey::from_pem(JwtAlgorithm::EdDsa, b"not a key").unwrap_err(),
            KeyError::BadPem(JwtAlgorithm::EdDsa)
        );
        assert_eq!(JwtKey::from_pem(JwtAlgorithm::Hs256, b"x").unwrap_err(), KeyError::PemForHs256);
        // A P-384 key is an EC key, but not ES256's curve; an Ed25519 key is not an RSA key.
        assert!(JwtKey::from_pem(JwtAlgorithm::Es256, P384_PEM.as_bytes()).is_err());
        let (_, ed_pem) = JwtKey::generate(JwtAlgorithm::EdDsa).unwrap();
        assert!(JwtKey::from_pem(JwtAlgorithm::Rs256, ed_pem.expose().as_bytes()).is_err());
        assert!(JwtKey::from_pem(JwtAlgorithm::Es256, ed_pem.expose().as_bytes()).is_err());
        // RSA under 2048 bits.
        use rsa::pkcs8::EncodePrivateKey as _;
        let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
        let small = small.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        assert_eq!(
            JwtKey::from_pem(JwtAlgorithm::Rs256, small.as_bytes()).unwrap_err(),
            KeyError::RsaKeyTooSmall(1024)
        );
        assert_eq!(JwtKey::hs256(&[0u8; 31]).unwrap_err(), KeyError::SecretTooShort(31));
        assert_eq!("rs512".parse::<JwtAlgorithm>().unwrap_err(), KeyError::UnknownAlgorithm("rs512".into()));
        assert_eq!("eddsa".parse::<JwtAlgorithm>().unwrap(), JwtAlgorithm::EdDsa);
    }

    #[test]
    fn a_public_pem_verifies_only_and_cannot_sign_a_set() {
        let (key, pem) = JwtKey::generate(JwtAlgorithm::EdDsa).unwrap();
        let public_pem = {
            use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
            let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.expose()).unwrap();
            signing.verifying_key().to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).unwrap()
        };
        let public = JwtKey::from_pem(JwtAlgorithm::EdDsa, public_pem.as_bytes()).unwrap();
        assert_eq!(public.kid(), key.kid());
        assert!(!public.can_sign());
        assert_eq!(KeySet::new(public.clone()).unwrap_err(), KeyError::VerifyOnlySigner);
        // Listing the signer again as verify-only is harmless; another key under its kid is not.
        let set = KeySet::new(key.clone()).unwrap().with_verify_only(public).unwrap();
        assert_eq!(set.keys().count(), 1);
        let other = JwtKey::generate(JwtAlgorithm::EdDsa).unwrap().0.with_kid(key.kid());
        assert_eq!(set.with_verify_only(other).unwrap_err(), KeyError::DuplicateKid(key.kid().into()));
    }

    #[test]
    fn a_jwk_without_kid_or_alg_or_with_a_secret_is_refused() {
        let key = JwtKey::generate(JwtAlgorithm::Es256).unwrap().0;
        let mut jwk = key.public_jwk().unwrap().clone();
        jwk.common.key_algorithm = None;
        assert!(matches!(JwtKey::from_jwk(&jwk), Err(KeyError::BadJwk(_))));
        let mut jwk = key.public_jwk().unwrap().clone();
        jwk.common.key_id = None;
        assert!(matches!(JwtKey::from_jwk(&jwk), Err(KeyError::BadJwk(_))));
        let mut jwk = key.public_jwk().unwrap().clone();
        jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
        assert!(JwtKey::from_jwk(&jwk).is_err(), "an EC key labelled EdDSA");
        let oct: Jwk =
            serde_json::from_value(serde_json::json!({"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"x"})).unwrap();
        assert!(matches!(JwtKey::from_jwk(&oct), Err(KeyError::BadJwk(_))));
        let mut jwk = key.public_jwk().unwrap().clone();
        jwk.common.public_key_use = Some(PublicKeyUse::Encryption);
        assert!(matches!(JwtKey::from_jwk(&jwk), Err(KeyError::BadJwk(_))), "an encryption key");
    }

    #[test]
    fn a_published_key_with_malformed_material_is_refused_not_a_panic_later() {
        // jsonwebtoken slices an Ed25519 `x` to 32 bytes when it verifies: a shorter one would
        // panic on every token naming it, a longer one would be cut silently.
        let now = Utc::now().timestamp();
        let ed = JwtKey::generate(JwtAlgorithm::EdDsa).unwrap().0;
        for x in ["AAEC", "bxLcITFIgV0nTP2oAX2KdyYahb_i-_AYHT4IkbnydgIAAAA"] {
            let jwk: Jwk = serde_json::from_value(
                serde_json::json!({"kty":"OKP","crv":"Ed25519","x":x,"alg":"EdDSA","kid":ed.kid(),"use":"sig"}),
            )
            .unwrap();
            assert!(matches!(JwtKey::from_jwk(&jwk), Err(KeyError::BadJwk(_))), "x = {x}");
        }
        // A P-256 "point" that is not on the curve, and an RSA key with a 2047-bit modulus.
        let es = JwtKey::generate(JwtAlgorithm::Es256).unwrap().0;
        let mut jwk = serde_json::to_value(es.public_jwk().unwrap()).unwrap();
        jwk["y"] = serde_json::json!(URL_SAFE_NO_PAD.encode([1u8; 32]));
        assert!(JwtKey::from_jwk(&serde_json::from_value(jwk).unwrap()).is_err());
        let rs = JwtKey::generate(JwtAlgorithm::Rs256).unwrap().0;
        let mut jwk = serde_json::to_value(rs.public_jwk().unwrap()).unwrap();
        let mut n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        n[0] = 0x7f;
        jwk["n"] = serde_json::json!(URL_SAFE_NO_PAD.encode(&n));
        assert_eq!(
            JwtKey::from_jwk(&serde_json::from_value(jwk).unwrap()).unwrap_err(),
            KeyError::RsaKeyTooSmall(2047)
        );
        // The well-formed ones verify.
        for key in [ed, es, rs] {
            let public = JwtKey::from_jwk(key.public_jwk().unwrap()).unwrap();
            let token = sign(&KeySet::new(key).unwrap(), &claims(now));
            assert!(verifier([&public]).verify(&token, now).is_ok());
        }
    }
}
