//! Browser clients: how tokens travel ([`TokenTransport`]: JSON bodies, `HttpOnly` cookies, or
//! both), the cookies' `SameSite` attribute, and the exact origins ([`AllowedOrigins`]) allowed
//! to call the API with credentials (CORS) and to pass the cross-site request forgery check of
//! cookie-authenticated requests. HTTP adapters read them from [`AuthConfig::browser`].
//!
//! [`AuthConfig::browser`]: crate::AuthConfig::browser

use std::fmt;
use std::str::FromStr;

/// How register, login, refresh and the second-factor login hand out tokens
/// (`AUTH_TOKEN_TRANSPORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenTransport {
    /// Both tokens in the JSON body only (the default; the contract of `docs/API.md`).
    #[default]
    Body,
    /// The refresh token only in an `HttpOnly; Secure` cookie scoped to the auth mount, where no
    /// script can read it; the access token in the body (and, with
    /// [`BrowserConfig::access_token_cookie`], in a cookie too). `/refresh` and `/logout` read
    /// the cookie. Every request that a cookie authenticates, and every request that would set
    /// one, must pass the origin check (403 `csrf_rejected`).
    Cookie,
    /// Tokens in the body and in cookies: for a server that has both native clients (which send
    /// no `Origin` and get no cookies) and browser clients.
    Both,
}

impl TokenTransport {
    /// Whether the refresh token (and optionally the access token) is set as a cookie.
    #[must_use]
    pub fn uses_cookies(self) -> bool {
        !matches!(self, Self::Body)
    }

    /// Whether the refresh token is also in the JSON body.
    #[must_use]
    pub fn refresh_token_in_body(self) -> bool {
        !matches!(self, Self::Cookie)
    }
}

impl FromStr for TokenTransport {
    type Err = String;

    /// `body`, `cookie` or `both` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "body" => Ok(Self::Body),
            "cookie" => Ok(Self::Cookie),
            "both" => Ok(Self::Both),
            _ => Err(format!("{s:?} is not a token transport: give body, cookie or both")),
        }
    }
}

/// The `SameSite` attribute of the token cookies (RFC 6265bis §4.1.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CookieSameSite {
    /// Sent on same-site requests and top-level navigations (the default).
    #[default]
    Lax,
    /// Sent on same-site requests only.
    Strict,
    /// Sent on cross-site requests too: for an app on another site than the API (then its
    /// origin must be in [`BrowserConfig::allowed_origins`]).
    None,
}

impl FromStr for CookieSameSite {
    type Err = String;

    /// `lax`, `strict` or `none` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lax" => Ok(Self::Lax),
            "strict" => Ok(Self::Strict),
            "none" => Ok(Self::None),
            _ => Err(format!("{s:?} is not a SameSite value: give lax, strict or none")),
        }
    }
}

/// Browser-facing settings: [`AuthConfig::browser`](crate::AuthConfig::browser).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrowserConfig {
    /// Where tokens travel (default [`TokenTransport::Body`]).
    pub token_transport: TokenTransport,
    /// `SameSite` of the token cookies (default `Lax`). They are always `HttpOnly` and `Secure`
    /// (browsers accept `Secure` cookies from `http://localhost` and `http://127.0.0.1`).
    pub cookie_same_site: CookieSameSite,
    /// `Path` of the refresh-token cookie: where the auth routes are mounted (default
    /// `/api/auth`), so that `/refresh` and `/logout` receive it and no other route does.
    pub cookie_path: String,
    /// Whether the access token is also set as an `HttpOnly` cookie (`Path=/`, default `false`),
    /// which the access-token layers accept when no `Authorization` header is sent: for
    /// server-rendered pages that cannot attach a header.
    pub access_token_cookie: bool,
    /// Browser origins allowed to call the API with credentials from another origin (CORS) and
    /// to pass the origin check of cookie-authenticated requests (default none).
    pub allowed_origins: AllowedOrigins,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        Self {
            token_transport: TokenTransport::Body,
            cookie_same_site: CookieSameSite::Lax,
            cookie_path: "/api/auth".to_owned(),
            access_token_cookie: false,
            allowed_origins: AllowedOrigins::default(),
        }
    }
}

impl BrowserConfig {
    /// Whether `path` is usable as a cookie `Path`: starts with `/`, visible ASCII without `;`
    /// or `,`.
    pub(crate) fn cookie_path_is_valid(&self) -> bool {
        let path = &self.cookie_path;
        path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    }
}

/// The browser origins allowed to call the API with credentials (`AUTH_ALLOWED_ORIGINS`): exact
/// `http(s)://host[:port]` origins (RFC 6454), compared as browsers send them in `Origin` (lower
/// case, no default port). No wildcard: with credentials allowed, `*` would let any site act as
/// the user.
///
/// ```
/// use auth_core::AllowedOrigins;
///
/// let origins = AllowedOrigins::parse("https://App.example.com, http://localhost:5173").unwrap();
/// assert!(origins.contains("https://app.example.com"));
/// assert!(!origins.contains("https://evil.example"));
/// assert!(AllowedOrigins::parse("*").is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    /// Parses a comma-separated list (blank entries are skipped).
    ///
    /// # Errors
    /// A message naming the first entry that is not an exact `http` or `https` origin: a
    /// wildcard, a path, a query, user info, another scheme, no host, or a bad port.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let origin = normalize_origin(entry).ok_or_else(|| {
                format!(
                    "{entry:?} is not an origin: give scheme://host[:port] with scheme http or https, no path and no \
                     wildcard (e.g. https://app.example.com)"
                )
            })?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(Self(origins))
    }

    /// Whether `origin` (an `Origin` header value) is allowed; compared exactly after the same
    /// normalization.
    #[must_use]
    pub fn contains(&self, origin: &str) -> bool {
        normalize_origin(origin).is_some_and(|o| self.0.contains(&o))
    }

    /// The allowed origins, normalized.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether no origin is allowed (no cross-origin access).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for AllowedOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

/// `origin` as browsers serialize it (RFC 6454 §6.1: lower-case scheme and host, no default
/// port), or `None` when it is not an `http`/`https` origin: `scheme://host[:port]` with a DNS
/// name, an IPv4 address or a bracketed IPv6 address, nothing after.
#[must_use]
pub fn normalize_origin(origin: &str) -> Option<String> {
    let (scheme, authority) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{}]", v6.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !host.starts_with(['.', '-']);
        if !host_ok {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    Some(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalize_as_browsers_send_them() {
        let origins =
            AllowedOrigins::parse(" https://App.Example.com:443 ,HTTP://localhost:5173,, http://[::1]:8080").unwrap();
        assert_eq!(origins.as_slice(), ["https://app.example.com", "http://localhost:5173", "http://[::1]:8080"]);
        assert!(origins.contains("https://app.example.com"));
        assert!(origins.contains("http://localhost:5173"));
        assert!(!origins.contains("http://localhost:5174"));
        assert!(!origins.contains("https://app.example.com.evil.test"));
        assert!(!origins.contains("null"), "opaque origins are never allowed");
        assert!(AllowedOrigins::parse("").unwrap().is_empty());
        assert_eq!(normalize_origin("http://127.0.0.1:80").as_deref(), Some("http://127.0.0.1"));
    }

    #[test]
    fn wildcards_paths_and_other_schemes_are_refused() {
        for bad in [
            "*",
            "https://*.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "https://app.example.com#x",
            "https://user@app.example.com",
            "ftp://files.example.com",
            "app.example.com",
            "https://",
            "https://app.example.com:99999",
            "https://app.example.com:",
            "https://app.example.com:8a",
            "https://[::1",
            "https://[]",
            "https://app example.com",
            "null",
        ] {
            let err = AllowedOrigins::parse(bad).unwrap_err();
            assert!(err.contains("is not an origin"), "{bad}: {err}");
        }
    }

    #[test]
    fn transports_and_same_site_parse_from_their_names() {
        assert_eq!("COOKIE".parse::<TokenTransport>(), Ok(TokenTransport::Cookie));
        assert_eq!("both".parse::<TokenTransport>(), Ok(TokenTransport::Both));
        assert!("header".parse::<TokenTransport>().unwrap_err().contains("body, cookie or both"));
        assert!(TokenTransport::Both.uses_cookies() && TokenTransport::Both.refresh_token_in_body());
        assert!(!TokenTransport::Cookie.refresh_token_in_body());
        assert_eq!("None".parse::<CookieSameSite>(), Ok(CookieSameSite::None));
        assert!("sometimes".parse::<CookieSameSite>().is_err());
    }
}
