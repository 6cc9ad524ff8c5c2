//! Access tokens: JWTs per RFC 9068 / RFC 8725, header `typ: at+jwt` and the signing key's
//! `kid`, signed with the service's [`KeySet`] (HS256 by default).

use std::hash::{BuildHasher as _, RandomState};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;
use crate::keys::{check_times, KeySet, Signer, TokenVerifier};
use crate::user::Role;

/// The `typ` header of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token, and what the middleware hands to handlers.
///
/// Times are seconds since the Unix epoch (RFC 7519 NumericDate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the user id.
    pub sub: Uuid,
    /// Session id; checked against the session store on every request.
    pub sid: Uuid,
    /// The user's role when the token was issued.
    pub role: Role,
    /// Issued at.
    pub iat: i64,
    /// Not before (= `iat`).
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Unique token id.
    pub jti: Uuid,
    /// How the session was authenticated (RFC 8176 values: `pwd`, `otp`), from its
    /// [`AuthMethod::amr`](crate::AuthMethod::amr); absent when none is known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// Signs access tokens with a key set's signer and verifies them against all of its keys.
pub(crate) struct JwtCodec {
    signer: Signer,
    verifier: TokenVerifier,
    issuer: String,
    audience: String,
}

impl JwtCodec {
    pub(crate) fn new(keys: &KeySet, issuer: &str, audience: &str, leeway_seconds: u64) -> Self {
        Self {
            signer: Signer::new(keys),
            verifier: TokenVerifier::new(keys.keys(), issuer, audience, leeway_seconds),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// Issues a token for `sid`; returns it with its claims.
    pub(crate) fn issue(
        &self,
        user_id: Uuid,
        sid: Uuid,
        role: &Role,
        amr: &[&str],
        now: DateTime<Utc>,
        ttl_seconds: i64,
    ) -> Result<(String, Claims), AuthError> {
        let iat = now.timestamp();
        let claims = Claims {
            sub: user_id,
            sid,
            role: role.clone(),
            iat,
            nbf: iat,
            exp: iat + ttl_seconds,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4(),
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
        };
        let token = self.signer.sign(&claims)?;
        Ok((token, claims))
    }

    /// See [`TokenVerifier::verify`].
    pub(crate) fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        self.verifier.verify(token, now)
    }

    /// See [`TokenVerifier::verify_ignoring_times`].
    pub(crate) fn verify_ignoring_times(&self, token: &str) -> Result<Claims, AuthError> {
        self.verifier.verify_ignoring_times(token)
    }
}

/// A verified token's entry: the SHA-256 digest of the whole token, and its claims (shared with
/// the requests that hit it).
type VerifiedEntry = ([u8; 32], Arc<Claims>);

/// Tokens that already passed [`JwtCodec::verify`], so a client's requests don't re-verify the
/// same JWT (about 5 µs of base64, JSON and HMAC for HS256, 40–300 µs for the asymmetric
/// algorithms) each time. Only verified tokens enter, so the cache cannot be filled without
/// valid tokens; `exp` and `nbf` are re-checked on every hit; the session check still runs on
/// every request. Bounded: a [`quick_cache`] cache of `capacity` entries, which evicts the
/// coldest (see [`crate::cache`]), never all of it.
///
/// A lookup hashes only the token's signature segment with a randomly keyed SipHash (so the slot
/// cannot be aimed at), then compares the SHA-256 digest of the whole token with the one stored
/// there in constant time, so a lookup leaks nothing about other users' tokens and a collision
/// is a miss, never another token's claims. An entry keeps the 32-byte digest, not the token.
pub(crate) struct VerifiedTokens {
    /// `None` when the capacity is 0 (the cache is off).
    map: Option<quick_cache::sync::Cache<u64, VerifiedEntry>>,
    keys: RandomState,
    leeway: i64,
}

impl VerifiedTokens {
    pub(crate) fn new(capacity: usize, leeway_seconds: u64) -> Self {
        Self {
            map: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
            keys: RandomState::new(),
            leeway: i64::try_from(leeway_seconds).unwrap_or(i64::MAX),
        }
    }

    fn slot(&self, token: &str) -> u64 {
        let signature = token.rsplit_once('.').map_or(token, |(_, signature)| signature);
        self.keys.hash_one(signature)
    }

    /// The claims of a token verified before: `None` if unknown; `TokenExpired` /
    /// `Unauthorized` if it is past `exp` / before `nbf` now (with the leeway).
    /// A hit allocates nothing: the claims are shared, not copied.
    pub(crate) fn get(&self, token: &str, now: i64) -> Option<Result<Arc<Claims>, AuthError>> {
        let map = self.map.as_ref()?;
        let (stored, claims) = map.get(&self.slot(token))?;
        if !crate::secret::bytes_eq(&stored, &digest(token)) {
            return None;
        }
        Some(check_times(&claims, now, self.leeway).map(|()| claims))
    }

    /// Remembers a token that just passed verification.
    pub(crate) fn insert(&self, token: &str, claims: &Arc<Claims>) {
        if let Some(map) = &self.map {
            map.insert(self.slot(token), (digest(token), Arc::clone(claims)));
        }
    }
}

/// SHA-256 of the whole token: what a cache entry is compared by.
fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    use super::*;
    use crate::keys::JwtKey;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn codec() -> JwtCodec {
        codec_with(SECRET, "aud")
    }

    fn codec_with(secret: &[u8], audience: &str) -> JwtCodec {
        JwtCodec::new(&KeySet::new(JwtKey::hs256(secret).unwrap()).unwrap(), "iss", audience, 0)
    }

    fn hs256_header() -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(JwtKey::hs256(SECRET).unwrap().kid().to_owned());
        header
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_header_and_claims() {
        let (token, claims) =
            codec().issue(Uuid::new_v4(), Uuid::new_v4(), &Role::user(), &["pwd"], Utc::now(), 60).unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "HS256");
        assert_eq!(header["kid"], JwtKey::hs256(SECRET).unwrap().kid());
        assert_eq!(codec().verify(&token, Utc::now().timestamp()).unwrap(), claims);
    }

    #[test]
    fn alg_none_is_refused() {
        let (_, claims) =
            codec().issue(Uuid::new_v4(), Uuid::new_v4(), &Role::admin(), &["pwd"], Utc::now(), 60).unwrap();
        let token = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg":"none","typ":"at+jwt","kid":JwtKey::hs256(SECRET).unwrap().kid()})),
            b64(&serde_json::to_value(&claims).unwrap())
        );
        assert!(matches!(codec().verify(&token, Utc::now().timestamp()), Err(AuthError::Unauthorized)));
    }

    #[test]
    fn another_key_or_a_tampered_payload_is_refused() {
        let (token, mut claims) =
            codec().issue(Uuid::new_v4(), Uuid::new_v4(), &Role::user(), &["pwd"], Utc::now(), 60).unwrap();
        let other = codec_with(b"another-secret-another-secret-xx", "aud");
        assert!(matches!(other.verify(&token, Utc::now().timestamp()), Err(AuthError::Unauthorized)));
        claims.role = Role::admin();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = b64(&serde_json::to_value(&claims).unwrap());
        assert!(matches!(codec().verify(&parts.join("."), Utc::now().timestamp()), Err(AuthError::Unauthorized)));
    }

    #[test]
    fn expired_tokens_report_token_expired() {
        let then = Utc::now() - chrono::TimeDelta::seconds(120);
        let (token, _) = codec().issue(Uuid::new_v4(), Uuid::new_v4(), &Role::user(), &["pwd"], then, 60).unwrap();
        assert!(matches!(codec().verify(&token, Utc::now().timestamp()), Err(AuthError::TokenExpired)));
    }

    #[test]
    fn the_verified_cache_rechecks_expiry_and_tells_tokens_apart() {
        let cache = VerifiedTokens::new(16, 0);
        let now = Utc::now();
        let (token, claims) = codec().issue(Uuid::new_v4(), Uuid::new_v4(), &Role::user(), &["pwd"], now, 60).unwrap();
        assert!(cache.get(&token, now.timestamp()).is_none());
        cache.insert(&token, &Arc::new(claims.clone()));
        assert_eq!(*cache.get(&token, now.timestamp()).unwrap().unwrap(), claims);
        assert!(matches!(cache.get(&token, now.timestamp() + 61), Some(Err(AuthError::TokenExpired))));
        assert!(matches!(cache.get(&token, now.timestamp() - 5), Some(Err(AuthError::Unauthorized))));
        // A one-character change is another token.
        let mut other = token.clone();
        other.pop();
        assert!(cache.get(&other, now.timestamp()).is_none());
        // Same signature segment (same slot), other payload: a miss, not the stored claims.
        let (_, signature) = token.rsplit_once('.').unwrap();
        assert!(cache.get(&format!("eyJhbGciOiJub25lIn0.e30.{signature}"), now.timestamp()).is_none());
        assert!(VerifiedTokens::new(0, 0).get("c", now.timestamp()).is_none(), "capacity 0: off");
    }

    #[test]
    fn a_full_verified_cache_stays_bounded_and_never_empties() {
        let cache = VerifiedTokens::new(64, 0);
        let now = Utc::now();
        let issue = || codec().issue(Uuid::new_v4(), Uuid::new_v4(), &Role::user(), &["pwd"], now, 60).unwrap();
        let tokens: Vec<_> = (0..1000).map(|_| issue()).collect();
        for (token, claims) in &tokens {
            cache.insert(token, &Arc::new(claims.clone()));
        }
        let held = cache.map.as_ref().unwrap().len();
        assert!((32..=64).contains(&held), "bounded by its capacity, not emptied: {held}");
        let (newest, claims) = issue();
        cache.insert(&newest, &Arc::new(claims));
        assert!(cache.get(&newest, now.timestamp()).is_some(), "the newest is in");
    }

    #[test]
    fn wrong_typ_wrong_audience_and_string_nbf_are_refused() {
        let claims = |nbf: serde_json::Value| {
            let now = Utc::now().timestamp();
            serde_json::json!({"sub": Uuid::new_v4(), "sid": Uuid::new_v4(), "role": "user", "iat": now,
                "nbf": nbf, "exp": now + 60, "iss": "iss", "aud": "aud", "jti": Uuid::new_v4()})
        };
        let key = EncodingKey::from_secret(SECRET);
        let plain_jwt = jsonwebtoken::encode(&hs256_header(), &claims(Utc::now().timestamp().into()), &key).unwrap();
        assert!(
            matches!(codec().verify(&plain_jwt, Utc::now().timestamp()), Err(AuthError::Unauthorized)),
            "typ JWT must be refused"
        );
        let mut header = hs256_header();
        header.typ = Some("at+jwt".into());
        // CVE-2026-25537: a string nbf must not skip the nbf check.
        let string_nbf = jsonwebtoken::encode(&header, &claims("99999999999".into()), &key).unwrap();
        assert!(matches!(codec().verify(&string_nbf, Utc::now().timestamp()), Err(AuthError::Unauthorized)));
        let other_aud = codec_with(SECRET, "other");
        let (token, _) =
            codec().issue(Uuid::new_v4(), Uuid::new_v4(), &Role::user(), &["pwd"], Utc::now(), 60).unwrap();
        assert!(matches!(other_aud.verify(&token, Utc::now().timestamp()), Err(AuthError::Unauthorized)));
    }
}
