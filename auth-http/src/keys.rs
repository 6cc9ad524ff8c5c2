//! The key endpoints every adapter serves the same way, outside any dialect (their formats are
//! standards, not a service's contract):
//!
//! - `GET <mount>/.well-known/jwks.json` ([`jwks_response`]): the public keys of the service's
//!   [`KeySet`](auth_core::keys::KeySet) as a JWK Set (RFC 7517 §5), cacheable for
//!   [`AuthConfig::jwks_max_age`](auth_core::AuthConfig::jwks_max_age).
//! - `POST <mount>/introspect` ([`introspection_response`]): OAuth 2.0 token introspection
//!   (RFC 7662) for services that must see revocations at once.

use auth_core::{Auth, Claims, RequestContext};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use crate::dialect::{json_response, Canonical, HttpResponse};
use crate::dispatch::error_response;
use crate::error::ErrorBody;

/// The path of the JWK Set under the mount, and at the site root in the example server
/// (RFC 8615 well-known URI).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The path of token introspection under the mount.
pub const INTROSPECTION_PATH: &str = "/introspect";

/// `200` with the service's JWK Set (`{"keys":[…]}`, each key with `kid`, `alg`, `use: sig`;
/// empty with HS256), `Content-Type: application/json` and `Cache-Control: public,
/// max-age=<jwks_max_age seconds>`.
#[must_use]
pub fn jwks_response(auth: &Auth) -> HttpResponse {
    let mut response = json_response(StatusCode::OK, auth.jwks());
    let max_age = auth.config().jwks_max_age.as_secs();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// The form of an introspection request (RFC 7662 §2.1).
#[derive(Deserialize)]
struct IntrospectionRequest {
    token: Option<String>,
    /// Accepted and ignored: only access tokens are ever active here.
    #[serde(rename = "token_type_hint")]
    _token_type_hint: Option<String>,
}

/// An introspection answer (RFC 7662 §2.2): `active`, and for an active token its claims.
#[derive(Serialize)]
struct IntrospectionAnswer<'a> {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    claims: Option<&'a Claims>,
}

/// An OAuth error body (RFC 6749 §5.2) with `status`.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    json_response(status, &serde_json::json!({ "error": error, "error_description": description }))
}

/// The client id and secret of an `Authorization: Basic` header (RFC 7617), as sent.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `s` form-urlencoded-decoded (RFC 6749 §2.3.1 has OAuth clients encode their id and secret so
/// before Basic authentication).
fn form_decode(s: &str) -> String {
    form_urlencoded::parse(s.as_bytes()).next().map(|(k, _)| k.into_owned()).unwrap_or_default()
}

/// Whether the Basic credentials of `headers` are `client`'s: as sent (what `curl -u` and most
/// HTTP clients send), or form-urlencoded as RFC 6749 §2.3.1 asks (so a secret with `+` or `%`
/// works from either kind of client).
fn client_authenticated(client: &auth_core::IntrospectionClient, headers: &HeaderMap) -> bool {
    basic_credentials(headers).is_some_and(|(id, secret)| {
        let raw = client.authenticates(&id, &secret);
        let encoded = client.authenticates(&form_decode(&id), &form_decode(&secret));
        raw | encoded
    })
}

/// `POST /introspect` (RFC 7662): the caller authenticates with HTTP Basic as
/// [`AuthConfig::introspection`](auth_core::AuthConfig::introspection); the form-encoded body
/// names the `token`.
///
/// Answers, all with `Cache-Control: no-store`:
/// - `200 {"active":true,"token_type":"Bearer",<claims>}` for an access token that verifies
///   now and whose session is live ([`Auth::introspect`]); `200 {"active":false}` for any
///   other token (expired, revoked, forged, a refresh token) — the reason is not told.
/// - `401 {"error":"invalid_client"}` with `WWW-Authenticate: Basic` without the right
///   credentials, each such request counted by the per-IP "other routes" rate rule (`ctx`'s
///   address), which answers `429 rate_limited` with `Retry-After` once exhausted; the
///   authenticated client is never limited (a resource server may introspect every request).
///   `404 {"error":"not_found"}` when no client is configured.
/// - `415`/`400 {"error":"invalid_request"}` for a body that is not a form with `token`.
/// - `503 {"error":"temporarily_unavailable"}` when the session store fails.
pub async fn introspection_response(
    auth: &Auth,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
) -> HttpResponse {
    let mut response = introspect(auth, ctx, headers, body).await;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn introspect(auth: &Auth, ctx: &RequestContext, headers: &HeaderMap, body: &[u8]) -> HttpResponse {
    let Some(client) = &auth.config().introspection else {
        return oauth_error(StatusCode::NOT_FOUND, "not_found", "token introspection is not enabled");
    };
    if !client_authenticated(client, headers) {
        if let Err(err) = auth.limit_other_request(ctx).await {
            return error_response(&Canonical, ErrorBody::from_auth_error(&err));
        }
        let mut response =
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "HTTP Basic client authentication is required");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="introspection", charset="UTF-8""#),
        );
        return response;
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        return oauth_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let token = match serde_urlencoded::from_bytes::<IntrospectionRequest>(body) {
        Ok(IntrospectionRequest { token: Some(token), .. }) if !token.is_empty() => token,
        _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the form must have a token parameter"),
    };
    match auth.introspect(&token).await {
        Ok(Some(claims)) => json_response(
            StatusCode::OK,
            &IntrospectionAnswer { active: true, token_type: Some("Bearer"), claims: Some(&claims) },
        ),
        Ok(None) => {
            json_response(StatusCode::OK, &IntrospectionAnswer { active: false, token_type: None, claims: None })
        }
        Err(err) => {
            tracing::warn!(error = %err, "token introspection failed: the session store is unavailable");
            oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "the session store is unavailable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_work_as_sent_and_form_urlencoded() {
        let secret = "a+secret/with=base64+chars%and-more-than-32-bytes";
        let client = auth_core::IntrospectionClient::new("orders", secret).unwrap();
        let header = |credentials: &str| basic(&format!("Basic {}", STANDARD.encode(credentials)));
        // As `curl -u` sends it, and form-urlencoded as RFC 6749 §2.3.1 has OAuth clients send it.
        assert!(client_authenticated(&client, &header(&format!("orders:{secret}"))));
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        assert!(client_authenticated(&client, &header(&format!("orders:{encoded}"))));
        assert!(!client_authenticated(&client, &header("orders:a+secret")));
        assert!(!client_authenticated(&client, &header(&format!("other:{secret}"))));
        assert_eq!(basic_credentials(&header("a:b:c")), Some(("a".into(), "b:c".into())));
        assert_eq!(basic_credentials(&basic(&format!("Bearer {}", STANDARD.encode("a:b")))), None);
        assert_eq!(basic_credentials(&basic("Basic !!!")), None);
        assert_eq!(basic_credentials(&header("no-colon")), None);
    }
}
