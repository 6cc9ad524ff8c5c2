//! Helpers shared by the store test suites.

/// The URL in `var`; `None` (skip) outside CI, a failure under CI, where `scripts/test.sh` sets
/// every `AUTH_TEST_*` URL.
#[allow(dead_code)]
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("CI is set but {var} is not: run scripts/test.sh"),
        _ => None,
    }
}
