//! Between actix-web's `http` 0.2 types and the `http` 1 types of `auth-http`: request headers
//! and methods in, responses out.

use actix_web::body::BoxBody;
use actix_web::http::header as ax_header;
use auth_http::{ErrorBody, HttpResponse};

/// The request headers as an `http` 1 map, every value of every name in order.
pub(crate) fn http_headers(headers: &ax_header::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // Names and values are the bytes actix-web parsed and checked: always valid here too.
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(name.as_str().as_bytes()), http::HeaderValue::from_bytes(value.as_bytes()))
        {
            out.append(name, value);
        }
    }
    out
}

/// Of the request headers, those named in `names`, as an `http` 1 map (every value, in order):
/// for a check that reads a few of them, without copying the rest.
pub(crate) fn http_headers_named(headers: &ax_header::HeaderMap, names: &[&'static str]) -> http::HeaderMap {
    let mut out = http::HeaderMap::new();
    for name in names {
        for value in headers.get_all(*name) {
            if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
                out.append(http::HeaderName::from_static(name), value);
            }
        }
    }
    out
}

/// The request method as an `http` 1 method.
pub(crate) fn http_method(method: &actix_web::http::Method) -> http::Method {
    http::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(http::Method::GET)
}

/// An `auth-http` response (`http` 1 types) as an actix-web one: status, every header, the body,
/// and the [`ErrorBody`] of an error response (in the response extensions, for re-rendering by
/// [`dialect_errors`](crate::dialect_errors)). For host routes that answer with what `auth-http`
/// renders (`auth_http::json_response`, `auth_http::keys::jwks_response`, a dialect's answers).
pub fn to_actix(response: HttpResponse) -> actix_web::HttpResponse {
    let (parts, body) = response.into_parts();
    let status = actix_web::http::StatusCode::from_u16(parts.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = actix_web::HttpResponse::with_body(status, BoxBody::new(body));
    let headers = out.headers_mut();
    for (name, value) in &parts.headers {
        if let (Ok(name), Ok(value)) = (
            ax_header::HeaderName::from_bytes(name.as_str().as_bytes()),
            ax_header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    if let Some(error) = parts.extensions.get::<ErrorBody>() {
        out.extensions_mut().insert(error.clone());
    }
    out
}

/// Percent-decodes a path segment as actix-web left it (it decodes all but `%`, `/` and `+`),
/// with `percent-encoding`; `None` when the result is not UTF-8.
pub(crate) fn percent_decode(segment: &str) -> Option<String> {
    percent_encoding::percent_decode_str(segment).decode_utf8().ok().map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("abc").as_deref(), Some("abc"));
        assert_eq!(percent_decode("a%2Fb%25c%2b").as_deref(), Some("a/b%c+"));
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("%4").as_deref(), Some("%4"));
        assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(percent_decode("%ff"), None);
    }
}
