//! Input rules shared by the flows: usernames, email addresses, identifier keys, language tags.

/// Checks a username: 3–50 characters of ASCII letters, digits, `_`, `-`, `.`.
/// Returns the username as given (comparison is case-insensitive in the stores).
#[must_use]
pub fn valid_username(username: &str) -> bool {
    (3..=50).contains(&username.len())
        && username.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Normalizes an email address: trims it and lower-cases the domain (the local part is kept as
/// typed; uniqueness and lookups use [`identifier_key`]). `None` unless it is a bare RFC 5322
/// `addr-spec` within RFC 5321's limits (local part ≤ 64, whole ≤ 254 bytes): a dot-atom local
/// part (letters, digits, ``!#$%&'*+/=?^_`{|}~-`` and non-ASCII letters per RFC 6531, dots not
/// leading, trailing or doubled) and a domain of at least two dot-separated labels of letters,
/// digits and `-`. Display names (`Someone <a@b.c>`, `Someone<a@b.c>`), comments
/// (`a@b.c(comment)`), quoted local parts, route addresses, spaces, CR/LF and other control
/// characters are refused, so a mail can only go to the one address that was checked.
#[must_use]
pub fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim();
    if email.len() > 254 {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    let atext = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+/=?^_`{|}~-".contains(c)
            || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
    };
    let dot_atom = |part: &str, allowed: &dyn Fn(char) -> bool| {
        !part.is_empty() && part.split('.').all(|atom| !atom.is_empty() && atom.chars().all(allowed))
    };
    let label_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric());
    let ok = local.len() <= 64
        && dot_atom(local, &atext)
        && dot_atom(domain, &label_char)
        && domain.contains('.')
        && domain.split('.').all(|label| !label.starts_with('-') && !label.ends_with('-'));
    ok.then(|| format!("{local}@{}", domain.to_lowercase()))
}

/// The comparison key of a username or email address: Unicode NFKC, then full case folding
/// (Unicode `CaseFolding.txt`, so `ß`, `ẞ` and `ss` are one key, and `İ` folds the same on every
/// platform), then NFKC again, as in Unicode's `NFKC_Casefold` (UAX #15, UTS #39).
///
/// This one function, computed in Rust, is what every store keeps and compares for uniqueness
/// and lookups, and what the service keys per-account limits by when the account is unknown, so
/// SQLite, PostgreSQL and memory agree exactly (database `lower()` functions disagree with each
/// other on non-ASCII text).
#[must_use]
pub fn identifier_key(identifier: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let nfkc: String = identifier.trim().nfkc().collect();
    caseless::default_case_fold_str(&nfkc).nfkc().collect()
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
        assert_eq!(normalize_email("o'neil+tag@Example.org").as_deref(), Some("o'neil+tag@example.org"));
        assert_eq!(normalize_email("jörg@bücher.de").as_deref(), Some("jörg@bücher.de"));
    }

    #[test]
    fn only_a_bare_addr_spec_is_an_email() {
        for bad in [
            "Someone<victim@x.com>",
            "\"Someone\"<victim@x.com>",
            "Someone <victim@x.com>",
            "<victim@x.com>",
            "victim@x.com(comment)",
            "(comment)victim@x.com",
            "\"quoted\"@x.com",
            "victim@x.com\r\nBcc: other@y.com",
            "victim@x.com,other@y.com",
            "victim@x.com;other@y.com",
            "a@b@x.com",
            ".victim@x.com",
            "victim.@x.com",
            "vic..tim@x.com",
            "victim@-x.com",
            "victim@[127.0.0.1]",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
        let long_local = format!("{}@x.com", "a".repeat(65));
        assert_eq!(normalize_email(&long_local), None);
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert!(long.len() > 254);
        assert_eq!(normalize_email(&long), None);
    }

    #[test]
    fn identifier_keys_fold_case_and_compatibility_forms() {
        assert_eq!(identifier_key("Alice"), identifier_key("alice"));
        assert_eq!(identifier_key(" ALICE "), "alice");
        // Full-width letters are their ASCII letters.
        assert_eq!(identifier_key("ＡＬＩＣＥ"), "alice");
        // Sharp s: lower, capital and "ss" are one key.
        assert_eq!(identifier_key("straße"), identifier_key("STRASSE"));
        assert_eq!(identifier_key("ẞ"), identifier_key("ss"));
        // Dotted capital I folds to i + combining dot, the same everywhere.
        assert_eq!(identifier_key("İ"), "i\u{307}");
        // Composed and decomposed forms are one key.
        assert_eq!(identifier_key("jörg@x.de"), identifier_key("jo\u{308}rg@x.de"));
        assert_ne!(identifier_key("alice"), identifier_key("alicf"));
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
