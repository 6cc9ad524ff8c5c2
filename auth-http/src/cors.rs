//! Cross-origin access: [`AllowedOrigins`] (from `auth-core`), the exact browser origins (RFC 6454)
//! allowed to call the API with credentials, and the request and response headers a CORS policy for this API
//! must name. Adapters build their framework's CORS layer from them (`auth_axum::cors_layer`).

pub use auth_core::AllowedOrigins;

/// Request headers the API reads, which a cross-origin request may send: `Authorization`
/// (whatever the dialect's scheme), `Content-Type`, and `X-MFA-Code` (step-up).
pub const CORS_REQUEST_HEADERS: &[&str] = &["authorization", "content-type", "x-mfa-code"];

/// Response headers a cross-origin script may read beyond the CORS-safelisted ones:
/// `Retry-After` (429, 503), `WWW-Authenticate` (401) and `Content-Disposition` (the export).
pub const CORS_EXPOSED_HEADERS: &[&str] = &["retry-after", "www-authenticate", "content-disposition"];

/// How long, in seconds, a browser may cache a preflight answer (`Access-Control-Max-Age`):
/// 600, Chromium's cap being 7200.
pub const CORS_MAX_AGE_SECONDS: u64 = 600;

/// The methods of the API, which a cross-origin request may use
/// (`Access-Control-Allow-Methods`).
pub const CORS_ALLOWED_METHODS: &[http::Method] =
    &[http::Method::GET, http::Method::POST, http::Method::PUT, http::Method::PATCH, http::Method::DELETE];
