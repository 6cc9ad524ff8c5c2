//! The client of a request: its IP address, read safely behind trusted proxies
//! ([`client_ip`]), and the [`RequestContext`] the core's flows take ([`request_context`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use auth_core::ipnet::IpNet;
use auth_core::{AuthConfig, AuthError, ClientIpHeader, RequestContext, SecretString};
use http::header::{self, HeaderMap};

/// The [`RequestContext`] of a request from socket peer `peer` with `headers`: the client IP per
/// [`client_ip`] with the service's [`AuthConfig::trusted_proxies`] and
/// [`AuthConfig::client_ip_header`], the `User-Agent`, and a step-up code from [`MFA_CODE_HEADER`].
#[must_use]
pub fn request_context(config: &AuthConfig, peer: Option<IpAddr>, headers: &HeaderMap) -> RequestContext {
    let ip = client_ip(peer, headers, &config.trusted_proxies, config.client_ip_header);
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let mfa_code = headers.get(MFA_CODE_HEADER).and_then(|v| v.to_str().ok()).map(SecretString::from);
    RequestContext::new(ip, user_agent).with_mfa_code(mfa_code)
}

/// The request header that carries a second-factor code for step-up: `X-MFA-Code`, read by the
/// admin API's changes and, when the body has no `mfa_code`, by the other step-up routes.
pub const MFA_CODE_HEADER: &str = "x-mfa-code";

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

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 6750).
/// `Ok(None)` without the header.
///
/// # Errors
/// `unauthorized` for another scheme, an empty token or a value that is not visible ASCII.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    access_token(headers, &["Bearer"])
}

/// The token of an `Authorization: <scheme> <token>` header whose scheme is one of `schemes`
/// (case-insensitive, as RFC 9110 §11.1 has it): `Bearer` (RFC 6750) and whatever else a
/// dialect's clients send ([`Dialect::auth_schemes`](crate::Dialect::auth_schemes)). `Ok(None)`
/// without the header.
///
/// # Errors
/// `unauthorized` for another scheme, an empty token or a value that is not visible ASCII.
pub fn access_token<'h>(headers: &'h HeaderMap, schemes: &[&str]) -> Result<Option<&'h str>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::Unauthorized)?;
    match value.split_once(' ') {
        Some((scheme, token)) if schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s)) && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(AuthError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        h.append("x-forwarded-for", http::HeaderValue::from_bytes(b"\xff\xfe1.1.1.1").unwrap());
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), peer);
        h.append("x-forwarded-for", http::HeaderValue::from_bytes(b"10.1.1.1, 203.0.113.7").unwrap());
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("203.0.113.7"));
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", http::HeaderValue::from_bytes(b"203.0.113.7, \xc3\x28, 10.1.1.1").unwrap());
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("10.1.1.1"), "the trusted hop that added it");
        h.insert("x-real-ip", http::HeaderValue::from_bytes(b"203.0.113.7\xff").unwrap());
        assert_eq!(client_ip(peer, &h, &trusted(), ClientIpHeader::XRealIp), peer);
        // A pathological list is walked without trouble.
        let long = vec!["10.0.0.1"; 5000].join(",");
        let h = forwarded(&[("x-forwarded-for", &*long)]);
        assert_eq!(client_ip(peer, &h, &trusted(), XFF), ip("10.0.0.1"));
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_parsed_per_rfc_6750() {
        assert_eq!(bearer_token(&HeaderMap::new()).unwrap(), None);
        assert_eq!(bearer_token(&headers("Bearer abc.def")).unwrap(), Some("abc.def"));
        assert_eq!(bearer_token(&headers("bearer abc")).unwrap(), Some("abc"));
        assert!(bearer_token(&headers("Basic dXNlcjpwdw==")).is_err());
        assert!(bearer_token(&headers("Bearer ")).is_err());
        assert!(bearer_token(&headers("Bearer")).is_err());
        assert!(bearer_token(&headers("Customize abc")).is_err());
        let schemes = ["Customize", "Bearer"];
        assert_eq!(access_token(&headers("Customize abc"), &schemes).unwrap(), Some("abc"));
        assert_eq!(access_token(&headers("bearer abc"), &schemes).unwrap(), Some("abc"));
        assert!(access_token(&headers("Basic abc"), &schemes).is_err());
    }
}
