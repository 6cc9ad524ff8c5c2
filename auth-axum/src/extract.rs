//! Extractors: [`AuthClaims`], [`CurrentUser`], [`OptionalUser`] for host routes behind
//! [`RequireAuth`](crate::RequireAuth) / [`OptionalAuth`](crate::OptionalAuth); [`ClientContext`]
//! and the JSON body extractors used by the router.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Deref;

use auth_core::ipnet::IpNet;
use auth_core::{Auth, AuthError, ClientIpHeader, FieldError, RequestContext, User};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The verified [`auth_core::Claims`] of the request's access token (named apart from them so both
/// can be in scope; it derefs to them), put in the request extensions by
/// [`RequireAuth`](crate::RequireAuth) (or by [`OptionalAuth`](crate::OptionalAuth) when a token
/// was sent). Costs nothing beyond the layer's check.
///
/// Rejects with 500 `internal` (and logs why) on a route without either layer: a route that
/// asks for claims must never run unauthenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthClaims(pub auth_core::Claims);

impl Deref for AuthClaims {
    type Target = auth_core::Claims;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthClaims {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AuthClaims>().cloned().ok_or_else(|| {
            ApiError::misconfigured("the AuthClaims/CurrentUser extractor needs the RequireAuth layer on this route")
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
        let claims = AuthClaims::from_request_parts(parts, state).await?;
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
        match parts.extensions.get::<AuthClaims>() {
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
/// [`AuthConfig::trusted_proxies`](auth_core::AuthConfig::trusted_proxies) is a forwarding header
/// read, and only the one of
/// [`AuthConfig::client_ip_header`](auth_core::AuthConfig::client_ip_header) (default
/// `X-Forwarded-For`); see [`client_ip`]. Needs `Auth` from the router state.
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
        let config = auth.config();
        let ip = client_ip(peer, &parts.headers, &config.trusted_proxies, config.client_ip_header);
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
        Ok(Self(RequestContext::new(ip, user_agent)))
    }
}

/// The client's IP: `peer`, unless `peer` is a trusted proxy; then the address named by `header`,
/// and by no other header (a proxy that sets one passes the others through from the client, so
/// reading them would let any client choose its address and its rate-limit bucket).
///
/// * List headers (`X-Forwarded-For`; `Forwarded`, its `for=` parameters; several header lines
///   form one list): walking from the right, the first address that is not a trusted proxy (all
///   trusted: the left-most). A hop that is not an address (`unknown`, an obfuscated identifier,
///   a `Forwarded` element without exactly one `for=`, junk, bytes that are not UTF-8) ends the
///   walk: the client is the hop that added it (the peer if that is the right-most).
/// * `X-Real-IP`, `CF-Connecting-IP`: the one value if it is an address; the peer when it is
///   missing, unparsable or sent more than once.
///
/// Addresses may carry a port (`1.2.3.4:80`, `[2001:db8::1]:80`) and quotes (`Forwarded`). The
/// peer (before the trusted check) and every address read are canonical: `::ffff:1.2.3.4` is
/// `1.2.3.4`. Never fails on any header content.
#[must_use]
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ClientIpHeader,
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer?.to_canonical();
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut lines = headers.get_all(header.name()).iter();
    if !header.is_list() {
        return Some(match (lines.next(), lines.next()) {
            (Some(value), None) => value.to_str().ok().and_then(parse_node).unwrap_or(peer),
            _ => peer,
        });
    }
    // Each hop, left to right: its address, or `None` when unreadable.
    let hops: Vec<Option<IpAddr>> = lines
        .flat_map(|line| split_unquoted(line.as_bytes(), b','))
        .filter(|entry| !entry.trim_ascii().is_empty())
        .map(|entry| {
            let entry = std::str::from_utf8(entry).ok()?;
            if header == ClientIpHeader::Forwarded {
                forwarded_for(entry)
            } else {
                parse_node(entry)
            }
        })
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return Some(ip),
            None => return Some(client),
        }
    }
    Some(client)
}

/// `bytes` split at each `sep` outside a quoted string (RFC 7230 `quoted-string`, with `\`
/// escapes).
fn split_unquoted(bytes: &[u8], sep: u8) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            parts.push(&bytes[start..i]);
            start = i + 1;
        }
    }
    parts.push(&bytes[start..]);
    parts
}

/// The address of the one `for=` parameter of a `Forwarded` element (`for=1.2.3.4;proto=https`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let mut found = None;
    for pair in split_unquoted(element.as_bytes(), b';') {
        // Separators are ASCII, so every part is UTF-8 too.
        let pair = std::str::from_utf8(pair).ok()?.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("for") {
            if found.is_some() {
                return None;
            }
            found = Some(value);
        }
    }
    parse_node(found?)
}

/// An address of a forwarding header, canonical: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:80`, `"[2001:db8::1]:80"`. Anything else (`unknown`, `_hidden`, a bad port) is
/// `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let node = node.strip_prefix('"').and_then(|n| n.strip_suffix('"')).unwrap_or(node).trim();
    let is_port = |port: &str| port.parse::<u16>().is_ok() || port.strip_prefix('_').is_some_and(is_obfuscated);
    let ip = if let Some(rest) = node.strip_prefix('[') {
        let (addr, port) = rest.split_once(']')?;
        if !port.is_empty() && !port.strip_prefix(':').is_some_and(is_port) {
            return None;
        }
        IpAddr::V6(addr.parse::<Ipv6Addr>().ok()?)
    } else if let Ok(ip) = node.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = node.rsplit_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

/// RFC 7239 `obfport` / `obfnode` after the `_`: letters, digits, `.`, `_`, `-`.
fn is_obfuscated(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
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

    fn forwarded(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap(), "2001:db8:1::/48".parse().unwrap()]
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    const XFF: ClientIpHeader = ClientIpHeader::XForwardedFor;

    #[test]
    fn forwarding_headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let h = forwarded(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("forwarded", "for=203.0.113.8"),
            ("x-real-ip", "203.0.113.9"),
            ("cf-connecting-ip", "203.0.113.10"),
        ]);
        let other: IpNet = "192.168.0.0/16".parse().unwrap();
        for header in ClientIpHeader::ALL {
            assert_eq!(client_ip(Some(peer), &h, &[], header), Some(peer));
            assert_eq!(client_ip(Some(peer), &h, &[other], header), Some(peer));
            assert_eq!(client_ip(None, &h, &trusted(), header), None);
        }
    }

    #[test]
    fn with_the_default_header_a_client_sent_forwarded_is_ignored() {
        // A proxy appending to X-Forwarded-For passes the client's own `Forwarded` through.
        assert_eq!(ClientIpHeader::default(), XFF);
        let peer = ip("10.0.0.5");
        let spoof = ("forwarded", r#"for=198.51.100.66, for="[2001:db8:cafe::17]""#);
        let h = forwarded(&[spoof, ("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("203.0.113.7"));
        let h = forwarded(&[spoof]);
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), peer, "no X-Forwarded-For: the peer, never Forwarded");
        let h = forwarded(&[spoof, ("x-real-ip", "198.51.100.67"), ("cf-connecting-ip", "198.51.100.68")]);
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), peer);
    }

    #[test]
    fn the_right_most_untrusted_address_of_x_forwarded_for_is_the_client() {
        let peer = ip("10.0.0.5");
        // A client that forges the left-most entry does not get to choose its address.
        let h = forwarded(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("203.0.113.7"));
        // Several headers form one list; ports and brackets are dropped.
        let h = forwarded(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.8:4711")]);
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("203.0.113.8"));
        let h = forwarded(&[("x-forwarded-for", "1.1.1.1, [2001:db8:cafe::17]:4711, 2001:db8:1::9")]);
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("2001:db8:cafe::17"));
        // All trusted: the left-most. Empty entries are skipped.
        let h = forwarded(&[("x-forwarded-for", "10.1.1.1, , 10.2.2.2,")]);
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("10.1.1.1"));
        // No header from a trusted peer: the peer.
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted(), XFF), peer);
    }

    #[test]
    fn with_forwarded_configured_x_forwarded_for_is_ignored() {
        let fwd = ClientIpHeader::Forwarded;
        let peer = ip("10.0.0.5");
        let h = forwarded(&[
            ("forwarded", r#"for=198.51.100.1;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.1"#),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(client_ip(peer, &h, &trusted(), fwd), ip("2001:db8:cafe::17"));
        let h = forwarded(&[("x-forwarded-for", "203.0.113.9"), ("x-real-ip", "203.0.113.10")]);
        assert_eq!(client_ip(peer, &h, &trusted(), fwd), peer, "no Forwarded: the peer, never X-Forwarded-For");
        // Case-insensitive keys, several lines, trusted hops skipped, quoted IPv4 with a port.
        let h = forwarded(&[("forwarded", r#"For="198.51.100.2:80""#), ("forwarded", "proto=http;FOR=10.9.9.9")]);
        assert_eq!(client_ip(peer, &h, &trusted(), fwd), ip("198.51.100.2"));
        // A comma or semicolon inside a quoted value does not split the element.
        let h = forwarded(&[("forwarded", r#"for=198.51.100.3;ext="a,b;for=1.1.1.1""#)]);
        assert_eq!(client_ip(peer, &h, &trusted(), fwd), ip("198.51.100.3"));
        // An unparsable entry stops at the hop that added it.
        let h = forwarded(&[("forwarded", "for=unknown, for=10.3.3.3")]);
        assert_eq!(client_ip(peer, &h, &trusted(), fwd), ip("10.3.3.3"));
        for junk in ["for=_hidden", "proto=https", "for=198.51.100.4;for=198.51.100.5", "for", "for=1.1.1.1;junk"] {
            let h = forwarded(&[("forwarded", junk)]);
            assert_eq!(client_ip(peer, &h, &trusted(), fwd), peer, "{junk}");
        }
    }

    #[test]
    fn x_real_ip_and_cf_connecting_ip_are_single_values() {
        let peer = ip("10.0.0.5");
        for (header, name) in
            [(ClientIpHeader::XRealIp, "x-real-ip"), (ClientIpHeader::CfConnectingIp, "cf-connecting-ip")]
        {
            let h =
                forwarded(&[(name, "203.0.113.7"), ("x-forwarded-for", "198.51.100.1"), ("forwarded", "for=1.1.1.1")]);
            assert_eq!(client_ip(peer, &h, &trusted(), header), ip("203.0.113.7"));
            // Taken as it is, even when it is itself in a trusted network.
            let h = forwarded(&[(name, "10.7.7.7")]);
            assert_eq!(client_ip(peer, &h, &trusted(), header), ip("10.7.7.7"));
            let h = forwarded(&[(name, "[2001:db8::5]:443")]);
            assert_eq!(client_ip(peer, &h, &trusted(), header), ip("2001:db8::5"));
            let h = forwarded(&[("x-forwarded-for", "198.51.100.1")]);
            assert_eq!(client_ip(peer, &h, &trusted(), header), peer, "missing: the peer, never another header");
            for junk in ["unknown", "203.0.113.7, 203.0.113.8", "", "203.0.113.7 x"] {
                let h = forwarded(&[(name, junk)]);
                assert_eq!(client_ip(peer, &h, &trusted(), header), peer, "{name}: {junk:?}");
            }
            let h = forwarded(&[(name, "203.0.113.7"), (name, "203.0.113.8")]);
            assert_eq!(client_ip(peer, &h, &trusted(), header), peer, "{name} twice is ambiguous");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_canonical_for_the_peer_and_the_headers() {
        let v4_trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let mapped_peer = ip("::ffff:127.0.0.1");
        // A dual-stack listener reports IPv4 peers mapped: still the trusted proxy.
        let h = forwarded(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(client_ip(mapped_peer, &h, &v4_trusted, XFF), ip("203.0.113.7"));
        assert_eq!(client_ip(mapped_peer, &HeaderMap::new(), &v4_trusted, XFF), ip("127.0.0.1"));
        assert_eq!(client_ip(ip("::ffff:203.0.113.1"), &h, &v4_trusted, XFF), ip("203.0.113.1"));
        // Mapped header values are canonical, and a mapped trusted hop is skipped.
        let h = forwarded(&[("x-forwarded-for", "::ffff:203.0.113.7, ::ffff:127.0.0.1")]);
        assert_eq!(client_ip(mapped_peer, &h, &v4_trusted, XFF), ip("203.0.113.7"));
        let h = forwarded(&[("forwarded", r#"for="[::ffff:203.0.113.8]:80""#)]);
        assert_eq!(client_ip(mapped_peer, &h, &v4_trusted, ClientIpHeader::Forwarded), ip("203.0.113.8"));
        let h = forwarded(&[("x-real-ip", "::ffff:203.0.113.9")]);
        assert_eq!(client_ip(mapped_peer, &h, &v4_trusted, ClientIpHeader::XRealIp), ip("203.0.113.9"));
    }

    #[test]
    fn garbage_means_the_peer_or_the_hop_that_added_it_and_never_panics() {
        let peer = ip("10.0.0.5");
        for junk in [
            "unknown",
            "_hidden",
            "not an ip",
            "for=203.0.113.7",
            "203.0.113.7:99999",
            "203.0.113.7:port",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[203.0.113.7]",
            "1.2.3.4.5",
            "fe80::1%eth0",
            "\"",
            "\"\"",
            "[",
            "]",
            ":",
            "203.0.113.7, garbage",
        ] {
            let h = forwarded(&[("x-forwarded-for", junk)]);
            assert_eq!(client_ip(peer, &h, &trusted(), XFF), peer, "{junk:?}");
            let h = forwarded(&[("forwarded", &*format!("for={junk}"))]);
            assert_eq!(client_ip(peer, &h, &trusted(), ClientIpHeader::Forwarded), peer, "for={junk:?}");
        }
        // Bytes that are not UTF-8 (obs-text): that hop is unreadable, the hops right of it count.
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"\xff\xfe1.1.1.1").unwrap());
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), peer);
        h.append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"10.1.1.1, 203.0.113.7").unwrap());
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("203.0.113.7"));
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"203.0.113.7, \xc3\x28, 10.1.1.1").unwrap());
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("10.1.1.1"), "the trusted hop that added it");
        h.insert("x-real-ip", axum::http::HeaderValue::from_bytes(b"203.0.113.7\xff").unwrap());
        assert_eq!(client_ip(peer, &h, &trusted(), ClientIpHeader::XRealIp), peer);
        // A pathological list is walked without trouble.
        let long = vec!["10.0.0.1"; 5000].join(",");
        let h = forwarded(&[("x-forwarded-for", &*long)]);
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("10.0.0.1"));
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
