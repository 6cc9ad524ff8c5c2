//! Extractors: [`Claims`], [`CurrentUser`], [`OptionalUser`] for host routes behind
//! [`RequireAuth`](crate::RequireAuth) / [`OptionalAuth`](crate::OptionalAuth); [`ClientContext`]
//! and the JSON body extractors used by the router.

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;

use auth_core::ipnet::IpNet;
use auth_core::{Auth, AuthError, FieldError, RequestContext, User};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The verified claims of the request's access token, put in the request extensions by
/// [`RequireAuth`](crate::RequireAuth) (or by [`OptionalAuth`](crate::OptionalAuth) when a token
/// was sent). Costs nothing beyond the layer's check.
///
/// Rejects with 500 `internal` (and logs why) on a route without either layer: a route that
/// asks for claims must never run unauthenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims(pub auth_core::Claims);

impl Deref for Claims {
    type Target = auth_core::Claims;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Claims>().cloned().ok_or_else(|| {
            ApiError::misconfigured("the Claims/CurrentUser extractor needs the RequireAuth layer on this route")
        })
    }
}

/// The authenticated user, loaded from the user store (one lookup per request). Needs
/// [`RequireAuth`](crate::RequireAuth) on the route.
///
/// Rejects with 401 `unauthorized` if the user no longer exists, 503 `store_unavailable`, or
/// 500 `internal` without the layer.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl Deref for CurrentUser {
    type Target = User;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let claims = Claims::from_request_parts(parts, state).await?;
        let auth = auth_of(parts)?;
        Ok(Self(auth.me(&claims).await?))
    }
}

/// The user if the request carried a valid access token, else `None`. Needs
/// [`OptionalAuth`](crate::OptionalAuth) (or [`RequireAuth`](crate::RequireAuth)) on the route.
#[derive(Debug, Clone)]
pub struct OptionalUser(pub Option<User>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let auth = auth_of(parts)?;
        match parts.extensions.get::<Claims>() {
            Some(claims) => Ok(Self(Some(auth.me(claims).await?))),
            None => Ok(Self(None)),
        }
    }
}

fn auth_of(parts: &Parts) -> Result<Auth, ApiError> {
    parts.extensions.get::<Auth>().cloned().ok_or_else(|| {
        ApiError::misconfigured("CurrentUser/OptionalUser need the RequireAuth or OptionalAuth layer on this route")
    })
}

/// The client of the request as a [`RequestContext`]: its IP and `User-Agent`.
///
/// The IP is the socket peer (from `ConnectInfo<SocketAddr>`: serve with
/// `into_make_service_with_connect_info::<SocketAddr>()`). Only when the peer is one of
/// [`AuthConfig::trusted_proxies`](auth_core::AuthConfig::trusted_proxies) are forwarding headers
/// read: the right-most address of `Forwarded` (RFC 7239), or else `X-Forwarded-For`, that is not
/// itself a trusted proxy. Needs `Auth` from the router state.
#[derive(Debug, Clone)]
pub struct ClientContext(pub RequestContext);

impl<S> FromRequestParts<S> for ClientContext
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Auth::from_ref(state);
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let ip = client_ip(peer, &parts.headers, &auth.config().trusted_proxies);
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
        Ok(Self(RequestContext::new(ip, user_agent)))
    }
}

/// The client's IP: `peer`, unless `peer` is a trusted proxy; then the right-most address of the
/// forwarding chain that is not a trusted proxy (all trusted: the left-most). An entry that is not
/// an IP address (`unknown`, an obfuscated identifier) ends the walk at the hop that added it.
#[must_use]
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer?;
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<String> = headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim().eq_ignore_ascii_case("for").then(|| value.trim().to_owned())
            })
        })
        .collect();
    let chain: Vec<String> = if forwarded.is_empty() {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        forwarded
    };
    let mut client = peer;
    for node in chain.iter().rev() {
        match parse_node(node) {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return Some(ip),
            None => return Some(client),
        }
    }
    Some(client)
}

/// An address of a forwarding header: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `"[2001:db8::1]:80"`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.parse()
        .ok()
        .or_else(|| node.rsplit_once(':').and_then(|(host, _)| host.parse::<std::net::Ipv4Addr>().ok()).map(IpAddr::V4))
}

/// A JSON request body with the API's errors: 415 `unsupported_media_type` unless the
/// `Content-Type` is `application/json` (or `application/*+json`), 413 `payload_too_large` over
/// the body limit, and 400 `invalid_request` naming the offending fields for malformed JSON,
/// missing or ill-typed fields. Field values are never echoed back.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(Self)
    }
}

/// Like [`JsonBody`], but an empty body (no `Content-Type` needed) gives `T::default()`.
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.is_empty() {
            return Ok(Self(T::default()));
        }
        if !json {
            return Err(ApiError::unsupported_media_type());
        }
        parse_json(&bytes).map(Self)
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            AuthError::invalid_field("body", "could not be read").into()
        }
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of the API is an object; serde would also build structs from arrays.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let message = if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
            "must be a JSON object"
        } else {
            "is not valid JSON"
        };
        return Err(AuthError::invalid_field("body", message).into());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let path = (path != "." && !path.is_empty()).then_some(path);
        reject(path, err.inner())
    })?;
    de.end().map_err(|err| reject(None, &err))?;
    Ok(value)
}

/// An `invalid_request` naming the field at `path`, with our own words: serde's messages can
/// quote the client's values, which may be secrets.
fn reject(path: Option<String>, err: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let error = match err.classify() {
        Category::Syntax | Category::Eof | Category::Io => FieldError::new("body", "is not valid JSON"),
        Category::Data => {
            let text = err.to_string();
            match missing_field(&text) {
                Some(name) => FieldError::new(prefixed(path.as_deref(), name), "is required"),
                None => FieldError::new(path.unwrap_or_else(|| "body".into()), "has an invalid type or value"),
            }
        }
    };
    AuthError::InvalidRequest { fields: vec![error] }.into()
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

fn prefixed(path: Option<&str>, name: &str) -> String {
    match path {
        Some(p) => format!("{p}.{name}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        password: String,
        #[serde(default)]
        theme: Option<auth_core::Theme>,
    }

    fn field_of(bytes: &[u8]) -> (String, String) {
        let ApiError(body) = parse_json::<Body>(bytes).unwrap_err();
        let fields = body.details.unwrap()["fields"].as_object().unwrap().clone();
        let (k, v) = fields.into_iter().next().unwrap();
        (k, v.as_str().unwrap().to_owned())
    }

    #[test]
    fn malformed_json_names_the_body() {
        assert_eq!(field_of(b"{\"password\":"), ("body".into(), "is not valid JSON".into()));
        assert_eq!(field_of(b"{\"password\":\"x\"} trailing"), ("body".into(), "is not valid JSON".into()));
        assert_eq!(field_of(b"[1,2]"), ("body".into(), "must be a JSON object".into()));
    }

    #[test]
    fn missing_and_ill_typed_fields_are_named_without_echoing_values() {
        assert_eq!(field_of(b"{}"), ("password".into(), "is required".into()));
        let (field, message) = field_of(b"{\"password\":\"x\",\"theme\":\"s3cr3t-value\"}");
        assert_eq!(field, "theme");
        assert!(!message.contains("s3cr3t"));
        assert_eq!(field_of(b"{\"password\":12345}").0, "password");
    }

    fn forwarded(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarding_headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let h = forwarded(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(client_ip(Some(peer), &h, &[]), Some(peer));
        let other: IpNet = "192.168.0.0/16".parse().unwrap();
        assert_eq!(client_ip(Some(peer), &h, &[other]), Some(peer));
        assert_eq!(client_ip(None, &h, &[other]), None);
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "2001:db8:1::/48".parse().unwrap()];
        let peer = Some("10.0.0.5".parse().unwrap());
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // A client that forges the left-most entry does not get to choose its address.
        let h = forwarded(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("203.0.113.7"));
        // Several headers form one list; ports are dropped.
        let h = forwarded(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.8:4711")]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("203.0.113.8"));
        // RFC 7239 wins over X-Forwarded-For, with quoted IPv6 and ports.
        let h = forwarded(&[
            ("forwarded", r#"for=198.51.100.1;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.1"#),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("2001:db8:cafe::17"));
        // All trusted: the left-most; an unparsable entry stops at the hop that added it.
        let h = forwarded(&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("10.1.1.1"));
        let h = forwarded(&[("forwarded", "for=unknown, for=10.3.3.3")]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("10.3.3.3"));
        // No forwarding header from a trusted peer: the peer.
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }
}
