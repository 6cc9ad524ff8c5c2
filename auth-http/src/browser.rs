//! Browser clients: the token cookies (`TokenTransport::Cookie` / `Both`) and the cross-site
//! request forgery defence of cookie-authenticated requests.
//!
//! - The refresh token travels in [`REFRESH_TOKEN_COOKIE`] (`HttpOnly; Secure`, `SameSite` as
//!   configured, `Lax` by default, `Path` = the auth mount), the access token optionally in
//!   [`ACCESS_TOKEN_COOKIE`] (the same, `Path=/`). The `__Secure-` prefix makes a browser take
//!   the refresh cookie only with `Secure` from a secure context (`https`, or
//!   `http://localhost` / `127.0.0.1`); the access cookie's `__Host-` prefix also refuses it
//!   with a `Domain`, so a sibling subdomain cannot plant one (the refresh cookie cannot have
//!   it: `__Host-` requires `Path=/`).
//! - [`request_site`] / [`check_origin`]: the origin check of the OWASP CSRF cheat sheet (Fetch
//!   Metadata, then `Origin`, then `Referer`). A request that a cookie authenticates, or that
//!   would set the cookies, must come from the API's own site or an allowed origin. No
//!   synchronizer token is needed: every browser that sends cookies with `SameSite` also sends
//!   `Sec-Fetch-Site` or `Origin` on the state-changing requests that reach this check, and a
//!   request without either is refused.

use std::sync::Arc;

use auth_core::{
    AllowedOrigins, Auth, AuthConfig, AuthError, BrowserConfig, Claims, CookieSameSite, Role, TokenTransport,
};
use cookie::time::Duration as CookieDuration;
use cookie::{Cookie, SameSite};
use http::{header, HeaderMap, HeaderValue, Method};

use crate::client::access_token;

/// Name of the refresh-token cookie.
pub const REFRESH_TOKEN_COOKIE: &str = "__Secure-auth-refresh";

/// Name of the access-token cookie (only with `BrowserConfig::access_token_cookie`): `__Host-`,
/// as its `Path` is `/` (RFC 6265bis §4.1.3.2).
pub const ACCESS_TOKEN_COOKIE: &str = "__Host-auth-access";

/// Where a request comes from, as far as the browser says ([`request_site`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestSite {
    /// The API's own site, or an allowed origin: `Sec-Fetch-Site` is `same-origin`, `same-site`
    /// or `none` (the user typed the address), or `Origin` (else `Referer`) is allowed or is
    /// the request's own `Host`.
    Trusted,
    /// Another site: a browser request from a page the API does not trust.
    Foreign,
    /// No browser header at all (`Sec-Fetch-Site`, `Origin`, `Referer`): a native client or a
    /// script outside a browser, or a very old browser.
    Unknown,
}

/// Classifies a request by its `Sec-Fetch-Site`, `Origin` and `Referer` headers (in that order)
/// against `origins`. An `Origin` equal to `http(s)://` + the request's `Host` counts as its own
/// site (browsers without Fetch Metadata); `Origin: null` is always foreign.
#[must_use]
pub fn request_site(headers: &HeaderMap, origins: &AllowedOrigins) -> RequestSite {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::trim);
    let fetch_site = text("sec-fetch-site");
    if matches!(fetch_site, Some("same-origin" | "same-site" | "none")) {
        return RequestSite::Trusted;
    }
    let origin = match text(header::ORIGIN.as_str()) {
        Some(origin) => Some(origin.to_owned()),
        None => text(header::REFERER.as_str()).and_then(referer_origin),
    };
    let Some(origin) = origin else {
        return if fetch_site.is_some() { RequestSite::Foreign } else { RequestSite::Unknown };
    };
    if origins.contains(&origin) {
        return RequestSite::Trusted;
    }
    // Without Fetch Metadata, the page's own origin is the one the request was sent to.
    let own = fetch_site.is_none()
        && text(header::HOST.as_str()).is_some_and(|host| {
            origin.split_once("://").is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
        });
    if own {
        RequestSite::Trusted
    } else {
        RequestSite::Foreign
    }
}

/// The origin (`scheme://host[:port]`) of a `Referer` URL.
fn referer_origin(referer: &str) -> Option<String> {
    let (scheme, rest) = referer.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(format!("{scheme}://{}", &rest[..end]))
}

/// The origin check of a request that a cookie authenticates or that would set the cookies.
///
/// # Errors
/// `csrf_rejected` (403) unless [`request_site`] is [`RequestSite::Trusted`].
pub fn check_origin(headers: &HeaderMap, origins: &AllowedOrigins) -> Result<(), AuthError> {
    match request_site(headers, origins) {
        RequestSite::Trusted => Ok(()),
        RequestSite::Foreign | RequestSite::Unknown => Err(AuthError::CsrfRejected),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers; `None` without it, and `None`
/// (with a warning in the log) when the request carries it more than once. Only one cookie of
/// each name is ever set, so a second one was planted, e.g. by a sibling subdomain with a
/// `Domain` and a longer `Path` (cookie tossing): neither is used, so that a planted session is
/// never taken for the user's, and neither is deleted by a refusal, so that the user's own
/// cookie survives the planted one.
#[must_use]
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == name)
        .map(|c| c.value_raw());
    let first = values.next()??;
    if values.next().is_some() {
        tracing::warn!(cookie = name, "a request carries the cookie twice (cookie tossing?); neither is used");
        return None;
    }
    Some(first).filter(|v| !v.is_empty())
}

/// The access token of a request: `Authorization` with one of `schemes` first; else, when the
/// service sets the access-token cookie, [`ACCESS_TOKEN_COOKIE`], and then a request of an
/// unsafe method (not GET, HEAD, OPTIONS, TRACE) must pass [`check_origin`]. `Ok(None)`
/// without either. The one rule the access-token layers of every adapter apply.
///
/// # Errors
/// `unauthorized` for a malformed `Authorization` header; `csrf_rejected` for a cookie-borne
/// token on an unsafe request from elsewhere.
pub fn request_access_token<'h>(
    config: &AuthConfig,
    method: &Method,
    headers: &'h HeaderMap,
    schemes: &[&str],
) -> Result<Option<&'h str>, AuthError> {
    if let Some(token) = access_token(headers, schemes)? {
        return Ok(Some(token));
    }
    let browser = &config.browser;
    if !(browser.token_transport.uses_cookies() && browser.access_token_cookie) {
        return Ok(None);
    }
    let Some(token) = cookie(headers, ACCESS_TOKEN_COOKIE) else {
        return Ok(None);
    };
    if !method.is_safe() {
        check_origin(headers, &browser.allowed_origins)?;
    }
    Ok(Some(token))
}

/// Every request header [`authorize`] reads: `Authorization`, `Cookie` (the access-token
/// cookie) and, for a cookie-borne token on an unsafe request, what [`request_site`] reads
/// (`Sec-Fetch-Site`, `Origin`, `Referer`, `Host`). An adapter whose framework has other header
/// types converts only these.
pub const AUTHORIZE_HEADERS: &[&str] = &["authorization", "cookie", "sec-fetch-site", "origin", "referer", "host"];

/// Whether a route needs an access token, and which role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A valid token is required; with `Some(role)`, one that carries exactly that role.
    Required(Option<Role>),
    /// A token is checked if one is sent; without one the request goes on anonymously.
    Optional,
}

/// The access-token check of a request, as every adapter's middleware and router apply it: the
/// token of [`request_access_token`], verified with its session by
/// [`Auth::authenticate_shared`](auth_core::Auth::authenticate_shared) (the claims shared with
/// the verified-token cache, not copied), then the role. `Ok(None)` for an anonymous request that
/// [`Access::Optional`] lets through.
///
/// # Errors
/// `unauthorized` (no token where one is required, a malformed header or a bad token),
/// `token_expired`, `session_revoked`, `csrf_rejected`, `forbidden` (another role),
/// `store_unavailable`.
pub async fn authorize(
    auth: &Auth,
    access: &Access,
    schemes: &[&str],
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<Arc<Claims>>, AuthError> {
    let token = match (request_access_token(auth.config(), method, headers, schemes)?, access) {
        (Some(token), _) => token,
        (None, Access::Optional) => return Ok(None),
        (None, Access::Required(_)) => return Err(AuthError::Unauthorized),
    };
    let claims = auth.authenticate_shared(token).await?;
    if let Access::Required(Some(role)) = access {
        if &claims.role != role {
            return Err(AuthError::Forbidden);
        }
    }
    Ok(Some(claims))
}

fn same_site(value: CookieSameSite) -> SameSite {
    match value {
        CookieSameSite::Strict => SameSite::Strict,
        CookieSameSite::None => SameSite::None,
        _ => SameSite::Lax,
    }
}

fn token_cookie(browser: &BrowserConfig, name: &'static str, value: &str, path: &str, max_age: i64) -> Cookie<'static> {
    Cookie::build((name, value.to_owned()))
        .http_only(true)
        .secure(true)
        .same_site(same_site(browser.cookie_same_site))
        .path(path.to_owned())
        .max_age(CookieDuration::seconds(max_age))
        .build()
}

fn append(headers: &mut HeaderMap, cookie: &Cookie<'_>) {
    // Token values are base64url and JWTs: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Appends `Set-Cookie` for the refresh token (`Max-Age` = `refresh_expires_in` seconds, `Path`
/// = `BrowserConfig::cookie_path`) and, when configured, the access token (`Max-Age` =
/// `expires_in` seconds, `Path=/`).
pub fn set_token_cookies(
    headers: &mut HeaderMap,
    browser: &BrowserConfig,
    access_token: &str,
    expires_in: u64,
    refresh_token: &str,
    refresh_expires_in: u64,
) {
    let seconds = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    let path = browser.cookie_path.as_str();
    append(headers, &token_cookie(browser, REFRESH_TOKEN_COOKIE, refresh_token, path, seconds(refresh_expires_in)));
    if browser.access_token_cookie {
        append(headers, &token_cookie(browser, ACCESS_TOKEN_COOKIE, access_token, "/", seconds(expires_in)));
    }
}

/// Appends `Set-Cookie` headers that delete the token cookies (same names and paths, empty
/// value, `Max-Age=0`).
pub fn clear_token_cookies(headers: &mut HeaderMap, browser: &BrowserConfig) {
    append(headers, &token_cookie(browser, REFRESH_TOKEN_COOKIE, "", &browser.cookie_path, 0));
    if browser.access_token_cookie {
        append(headers, &token_cookie(browser, ACCESS_TOKEN_COOKIE, "", "/", 0));
    }
}

/// Whether `transport` may set cookies on a request from `site`, or must refuse it: cookies go
/// only to trusted sites; a request without browser headers gets body tokens under `Both` and
/// is refused under `Cookie` (it could never use the cookie-only refresh token); a foreign
/// site is refused (login CSRF).
///
/// # Errors
/// `csrf_rejected`.
pub fn may_set_cookies(transport: TokenTransport, site: RequestSite) -> Result<bool, AuthError> {
    match (site, transport) {
        (RequestSite::Trusted, _) => Ok(true),
        (RequestSite::Unknown, TokenTransport::Both) => Ok(false),
        _ => Err(AuthError::CsrfRejected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_authorize_reads_are_valid_lowercase_names() {
        for name in AUTHORIZE_HEADERS {
            assert_eq!(http::HeaderName::from_static(name).as_str(), *name);
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn allowed() -> AllowedOrigins {
        AllowedOrigins::parse("https://app.example.com").unwrap()
    }

    #[test]
    fn fetch_metadata_decides_first_then_origin_then_referer() {
        use RequestSite::{Foreign, Trusted, Unknown};
        for (pairs, expected) in [
            (vec![("sec-fetch-site", "same-origin")], Trusted),
            (vec![("sec-fetch-site", "same-site")], Trusted),
            (vec![("sec-fetch-site", "none")], Trusted),
            (vec![("sec-fetch-site", "cross-site")], Foreign),
            (vec![("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")], Foreign),
            (vec![("sec-fetch-site", "cross-site"), ("origin", "https://app.example.com")], Trusted),
            (vec![("origin", "https://APP.example.com:443")], Trusted),
            (vec![("origin", "null")], Foreign),
            (vec![("origin", "https://evil.example")], Foreign),
            (vec![("referer", "https://app.example.com/page?x=1")], Trusted),
            (vec![("referer", "https://evil.example/app.example.com")], Foreign),
            (vec![("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")], Trusted),
            (vec![("origin", "http://127.0.0.1:8081"), ("host", "127.0.0.1:8080")], Foreign),
            (
                vec![("sec-fetch-site", "cross-site"), ("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")],
                Foreign,
            ),
            (vec![("host", "127.0.0.1:8080")], Unknown),
            (vec![], Unknown),
        ] {
            assert_eq!(request_site(&headers(&pairs), &allowed()), expected, "{pairs:?}");
        }
        assert!(matches!(check_origin(&headers(&[]), &allowed()), Err(AuthError::CsrfRejected)));
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let h = headers(&[("cookie", "a=1; __Secure-auth-refresh=tok_1"), ("cookie", "__Host-auth-access=at")]);
        assert_eq!(cookie(&h, REFRESH_TOKEN_COOKIE), Some("tok_1"));
        assert_eq!(cookie(&h, ACCESS_TOKEN_COOKIE), Some("at"));
        assert_eq!(cookie(&h, "missing"), None);
        assert_eq!(cookie(&headers(&[("cookie", "__Secure-auth-refresh=")]), REFRESH_TOKEN_COOKIE), None);
        let tossed = headers(&[("cookie", "__Secure-auth-refresh=planted; __Secure-auth-refresh=own")]);
        assert_eq!(cookie(&tossed, REFRESH_TOKEN_COOKIE), None, "a planted duplicate: neither is used");
    }

    #[test]
    fn token_cookies_are_http_only_secure_and_scoped() {
        let mut browser = BrowserConfig::default();
        browser.access_token_cookie = true;
        let mut h = HeaderMap::new();
        set_token_cookies(&mut h, &browser, "at", 900, "rt", 86_400);
        let set: Vec<&str> = h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(set.len(), 2);
        for part in
            ["__Secure-auth-refresh=rt", "HttpOnly", "Secure", "SameSite=Lax", "Path=/api/auth", "Max-Age=86400"]
        {
            assert!(set[0].contains(part), "{} lacks {part}", set[0]);
        }
        for part in ["__Host-auth-access=at", "HttpOnly", "Secure", "Path=/", "Max-Age=900"] {
            assert!(set[1].contains(part), "{} lacks {part}", set[1]);
        }
        let mut cleared = HeaderMap::new();
        clear_token_cookies(&mut cleared, &browser);
        let cleared: Vec<&str> = cleared.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert!(cleared[0].starts_with("__Secure-auth-refresh=;") && cleared[0].contains("Max-Age=0"));
        assert!(cleared[0].contains("Path=/api/auth"));
    }

    #[test]
    fn an_access_token_cookie_on_an_unsafe_request_needs_a_trusted_origin() {
        let mut config = AuthConfig::new(vec![7; 32]).unwrap();
        config.browser.token_transport = TokenTransport::Cookie;
        config.browser.access_token_cookie = true;
        let from_elsewhere = headers(&[("cookie", "__Host-auth-access=at"), ("origin", "https://evil.example")]);
        assert_eq!(request_access_token(&config, &Method::GET, &from_elsewhere, &["Bearer"]).unwrap(), Some("at"));
        assert!(matches!(
            request_access_token(&config, &Method::POST, &from_elsewhere, &["Bearer"]),
            Err(AuthError::CsrfRejected)
        ));
        let mut bearer = from_elsewhere.clone();
        bearer.insert(header::AUTHORIZATION, "Bearer hdr".parse().unwrap());
        assert_eq!(request_access_token(&config, &Method::POST, &bearer, &["Bearer"]).unwrap(), Some("hdr"));
        config.browser.access_token_cookie = false;
        assert_eq!(request_access_token(&config, &Method::GET, &from_elsewhere, &["Bearer"]).unwrap(), None);
    }

    #[test]
    fn cookies_go_only_to_trusted_sites() {
        use RequestSite::{Foreign, Trusted, Unknown};
        assert!(may_set_cookies(TokenTransport::Cookie, Trusted).unwrap());
        assert!(!may_set_cookies(TokenTransport::Both, Unknown).unwrap());
        assert!(may_set_cookies(TokenTransport::Cookie, Unknown).is_err());
        assert!(may_set_cookies(TokenTransport::Both, Foreign).is_err());
    }
}
