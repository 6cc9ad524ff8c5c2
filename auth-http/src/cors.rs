//! Cross-origin access: [`AllowedOrigins`], the exact browser origins (RFC 6454) allowed to call
//! the API with credentials, and the request and response headers a CORS policy for this API
//! must name. Adapters build their framework's CORS layer from them (`auth_axum::cors_layer`).

use std::fmt;

/// Request headers the API reads, which a cross-origin request may send: `Authorization`
/// (whatever the dialect's scheme), `Content-Type`, and `X-MFA-Code` (step-up).
pub const CORS_REQUEST_HEADERS: &[&str] = &["authorization", "content-type", "x-mfa-code"];

/// Response headers a cross-origin script may read beyond the CORS-safelisted ones:
/// `Retry-After` (429, 503), `WWW-Authenticate` (401) and `Content-Disposition` (the export).
pub const CORS_EXPOSED_HEADERS: &[&str] = &["retry-after", "www-authenticate", "content-disposition"];

/// How long, in seconds, a browser may cache a preflight answer (`Access-Control-Max-Age`):
/// 600, Chromium's cap being 7200.
pub const CORS_MAX_AGE_SECONDS: u64 = 600;

/// The browser origins allowed to call the API with credentials (`AUTH_ALLOWED_ORIGINS`): exact
/// `http(s)://host[:port]` origins, compared as browsers send them in `Origin` (lower case, no
/// default port). No wildcard: with credentials allowed, `*` would let any site act as the user.
///
/// ```
/// use auth_http::AllowedOrigins;
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
            let origin = normalize(entry).ok_or_else(|| {
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
        normalize(origin).is_some_and(|o| self.0.contains(&o))
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

/// `origin` as browsers serialize it (lower-case scheme and host, no default port), or `None`
/// when it is not an `http`/`https` origin.
fn normalize(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', '*', ' ']) {
        return None;
    }
    // A port, when written, must be a number that fits (the parser below drops one that does not).
    if let Some((_, port)) = rest.rsplit_once(':') {
        if !port.contains(']') && port.parse::<u16>().is_err() {
            return None;
        }
    }
    let authority: http::uri::Authority = rest.parse().ok()?;
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() || (authority.port().is_some() && authority.port_u16().is_none()) {
        return None;
    }
    Some(match authority.port_u16() {
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
    }

    #[test]
    fn wildcards_paths_and_other_schemes_are_refused() {
        for bad in [
            "*",
            "https://*.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "ftp://files.example.com",
            "app.example.com",
            "https://",
            "https://app.example.com:99999",
            "null",
        ] {
            let err = AllowedOrigins::parse(bad).unwrap_err();
            assert!(err.contains("is not an origin"), "{bad}: {err}");
        }
    }
}
