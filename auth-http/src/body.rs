//! JSON request bodies with the API's errors: 415 unless the `Content-Type` is JSON, 400
//! `invalid_request` naming the field for malformed or ill-typed input.

use auth_core::{AuthError, FieldError};
use http::header::{self, HeaderMap};
use serde::de::DeserializeOwned;

use crate::error::ErrorBody;

/// The JSON body of a request: 415 `unsupported_media_type` unless [`is_json`], then
/// [`parse_json`].
///
/// # Errors
/// 415 `unsupported_media_type`, 400 `invalid_request`.
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ErrorBody> {
    if !is_json(headers) {
        return Err(ErrorBody::unsupported_media_type());
    }
    parse_json(body)
}

/// Like [`json_body`], but an empty body (no `Content-Type` needed) is `T::default()`.
///
/// # Errors
/// 415 `unsupported_media_type`, 400 `invalid_request`.
pub fn optional_json_body<T: DeserializeOwned + Default>(headers: &HeaderMap, body: &[u8]) -> Result<T, ErrorBody> {
    if body.is_empty() {
        return Ok(T::default());
    }
    json_body(headers, body)
}

/// Whether the `Content-Type` is JSON: `application/json` or `application/*+json`, any
/// parameters, any case.
#[must_use]
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON object into `T`: 400 `invalid_request` naming the offending field for
/// malformed JSON, a body that is not an object, missing or ill-typed fields. Field values are
/// never echoed back (serde's messages can quote them, and they may be secrets).
///
/// # Errors
/// The `invalid_request` [`ErrorBody`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ErrorBody> {
    // Every body of the API is an object; serde would also build structs from arrays.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let message = if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
            "must be a JSON object"
        } else {
            "is not valid JSON"
        };
        return Err(ErrorBody::from(&AuthError::invalid_field("body", message)));
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
fn reject(path: Option<String>, err: &serde_json::Error) -> ErrorBody {
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
    ErrorBody::from(&AuthError::InvalidRequest { fields: vec![error] })
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

/// The query string of a request (`None`: no `?`) into `T`, whose fields are all optional
/// text: 400 `invalid_request` for a query that is not `application/x-www-form-urlencoded`
/// or repeats a parameter.
///
/// # Errors
/// The `invalid_request` [`ErrorBody`].
pub fn query_params<T: DeserializeOwned + Default>(query: Option<&str>) -> Result<T, ErrorBody> {
    match query.filter(|q| !q.is_empty()) {
        None => Ok(T::default()),
        Some(query) => serde_urlencoded::from_str(query).map_err(|_| {
            ErrorBody::from(&AuthError::invalid_field("query", "is not a valid query string (each parameter once)"))
        }),
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
        let body = parse_json::<Body>(bytes).unwrap_err();
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
