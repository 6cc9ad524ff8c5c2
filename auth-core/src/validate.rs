//! Input rules shared by the flows: usernames, email addresses, language tags.

/// Checks a username: 3–50 characters of ASCII letters, digits, `_`, `-`, `.`.
/// Returns the username as given (comparison is case-insensitive in the stores).
#[must_use]
pub fn valid_username(username: &str) -> bool {
    (3..=50).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Normalizes an email address: trims it and lower-cases the domain (the local part is kept as
/// typed; uniqueness is still case-insensitive in the stores). `None` unless it looks like
/// `local@domain.tld` within RFC 5321's limits (local ≤ 64, whole ≤ 254 bytes), without spaces
/// or control characters.
#[must_use]
pub fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim();
    let (local, domain) = email.rsplit_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && email.len() <= 254
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && email.chars().all(|c| !c.is_whitespace() && !c.is_control());
    ok.then(|| format!("{local}@{}", domain.to_lowercase()))
}

/// Checks a BCP 47 language tag in its common shape: a 2–8 letter primary subtag, then
/// `-`-separated alphanumeric subtags of 1–8 characters, 35 characters at most (`en`, `zh-CN`,
/// `sr-Latn-RS`).
#[must_use]
pub fn valid_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary_ok =
        parts.next().is_some_and(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && tag.len() <= 35
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(valid_username("al_i-c.e9"));
        assert!(!valid_username("al"));
        assert!(!valid_username(&"a".repeat(51)));
        assert!(!valid_username("alice smith"));
        assert!(!valid_username("alice@x"));
        assert!(!valid_username("ålice"));
    }

    #[test]
    fn emails_are_trimmed_and_domains_lowercased() {
        assert_eq!(normalize_email("  Alice@Example.COM ").as_deref(), Some("Alice@example.com"));
        for bad in
            ["alice", "@example.com", "alice@", "alice@example", "a b@example.com", "alice@.com", "alice@ex..com"]
        {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn language_tags() {
        for ok in ["en", "zh-CN", "sr-Latn-RS", "es-419"] {
            assert!(valid_language_tag(ok), "{ok}");
        }
        for bad in ["", "e", "en_US", "en-", "toolongprimary", "<script>"] {
            assert!(!valid_language_tag(bad), "{bad}");
        }
    }
}
