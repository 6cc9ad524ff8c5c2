//! [`RequestContext`]: what the adapter knows about the client making a request, and
//! [`ClientIpHeader`]: which forwarding header names the client behind a trusted proxy.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::secret::SecretString;

/// The client of one request, as determined by the HTTP adapter.
///
/// `ip` is the socket peer, or, when the peer is a configured trusted proxy, the right-most
/// untrusted address of the one configured forwarding header ([`ClientIpHeader`]); the core never
/// reads forwarding headers itself. An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is stored as
/// the IPv4 address it maps. It is recorded on sessions and used for rate-limit keys
/// ([`RequestContext::rate_limit_key`]) and captcha `remoteip`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// The client's IP address, when known (canonical: never IPv4-mapped IPv6).
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header, truncated to 256 bytes.
    pub user_agent: Option<String>,
    /// A second-factor code sent with the request for step-up (HTTP: the `X-MFA-Code` header):
    /// what the admin API's changes read, and the fallback of the body's `mfa_code`.
    pub mfa_code: Option<SecretString>,
}

impl RequestContext {
    /// Longest user agent kept, in bytes.
    pub const MAX_USER_AGENT: usize = 256;

    /// A context with the given IP (canonicalized: `::ffff:1.2.3.4` becomes `1.2.3.4`) and user
    /// agent (truncated to [`Self::MAX_USER_AGENT`] bytes on a character boundary).
    #[must_use]
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut end = ua.len().min(Self::MAX_USER_AGENT);
            while !ua.is_char_boundary(end) {
                end -= 1;
            }
            ua[..end].to_owned()
        });
        Self { ip: ip.map(|ip| ip.to_canonical()), user_agent, mfa_code: None }
    }

    /// This context with a step-up code (see [`mfa_code`](Self::mfa_code)).
    #[must_use]
    pub fn with_mfa_code(mut self, code: Option<SecretString>) -> Self {
        self.mfa_code = code;
        self
    }

    /// The key under which per-IP rate limits count this client: the IPv4 address, or for IPv6
    /// the client's /64 network (`2001:db8:1:2::/64`), since one host is routinely given a whole
    /// /64 (RFC 6177) and could otherwise rotate through 2^64 buckets. `None` when the IP is
    /// unknown.
    #[must_use]
    pub fn rate_limit_key(&self) -> Option<String> {
        self.ip.map(|ip| match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & (u128::MAX << 64);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        })
    }
}

/// The one forwarding header an HTTP adapter reads the client's IP from when the socket peer is
/// a trusted proxy (`AuthConfig::client_ip_header`, env `AUTH_CLIENT_IP_HEADER`). Exactly one is
/// read, never a fallback to another: a proxy that sets one header passes the others through from
/// the client untouched, so reading them would let any client choose its own address.
///
/// List headers (`X-Forwarded-For`, `Forwarded`) are walked from the right: the first address
/// that is not a trusted proxy is the client. Single-value headers (`X-Real-IP`,
/// `CF-Connecting-IP`) are taken as they are. A header that is missing or unparsable means the
/// socket peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ClientIpHeader {
    /// `X-Forwarded-For` (the default): nginx `$proxy_add_x_forwarded_for`, AWS ALB, most proxies.
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239), its `for=` parameters.
    Forwarded,
    /// `X-Real-IP`: one address, set (not appended) by the proxy.
    XRealIp,
    /// `CF-Connecting-IP`: one address, set by Cloudflare.
    CfConnectingIp,
}

impl ClientIpHeader {
    /// Every header, in the order of the documentation.
    pub const ALL: [Self; 4] = [Self::XForwardedFor, Self::Forwarded, Self::XRealIp, Self::CfConnectingIp];

    /// The header's name in lower case (`x-forwarded-for`, `forwarded`, `x-real-ip`,
    /// `cf-connecting-ip`), as `AUTH_CLIENT_IP_HEADER` takes it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
            Self::XRealIp => "x-real-ip",
            Self::CfConnectingIp => "cf-connecting-ip",
        }
    }

    /// Parses a header name, case-insensitively.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether the header holds a comma-separated list of hops (appended to by each proxy).
    #[must_use]
    pub fn is_list(self) -> bool {
        matches!(self, Self::XForwardedFor | Self::Forwarded)
    }
}

impl fmt::Display for ClientIpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mapped_addresses_are_canonical() {
        let ctx = RequestContext::new(Some("::ffff:203.0.113.7".parse().unwrap()), None);
        assert_eq!(ctx.ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(ctx.rate_limit_key().as_deref(), Some("203.0.113.7"));
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let a = RequestContext::new(Some("2001:db8:1:2:aaaa::1".parse().unwrap()), None);
        let b = RequestContext::new(Some("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap()), None);
        let c = RequestContext::new(Some("2001:db8:1:3::1".parse().unwrap()), None);
        assert_eq!(a.rate_limit_key().as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(a.rate_limit_key(), b.rate_limit_key());
        assert_ne!(a.rate_limit_key(), c.rate_limit_key());
        assert_eq!(RequestContext::default().rate_limit_key(), None);
    }

    #[test]
    fn header_names_parse_case_insensitively() {
        for h in ClientIpHeader::ALL {
            assert_eq!(ClientIpHeader::parse(&h.name().to_uppercase()), Some(h));
        }
        assert_eq!(ClientIpHeader::parse("x-client-ip"), None);
    }
}
