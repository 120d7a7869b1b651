//! Resource URIs and URI patterns (spec §4.11): what a `resources/read` names, and what a ticket
//! grants or restricts it to.
//!
//! > A URI pattern is a URI, or a URI prefix followed by `*` (every URI that starts with the
//! > prefix), or `*` alone (every URI). A URI, and a pattern's prefix, starts with a scheme and
//! > holds no control character, space or backslash, no `.` or `..` segment and no
//! > percent-encoded `.`, `/`, `\` or NUL: a prefix grant cannot be left through a path the
//! > server would resolve elsewhere. A pattern has at most one `*`, at its end.

use crate::error::Error;
use crate::limits::MAX_URI_BYTES;

/// Checks a resource URI, or, when `pattern`, a URI pattern (spec §4.11).
pub fn validate_uri(uri: &str, pattern: bool) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::InvalidRestriction(format!(
            "{uri:?} is not a resource URI{}: {why} (spec §4.11)",
            if pattern { " pattern" } else { "" }
        )))
    };
    if uri.is_empty() || uri.len() > MAX_URI_BYTES {
        return bad(&format!("it must be 1 to {MAX_URI_BYTES} bytes"));
    }
    let body = match uri.strip_suffix('*') {
        Some("") if pattern => return Ok(()),
        Some(prefix) if pattern => prefix,
        _ => uri,
    };
    if pattern && body.contains('*') {
        return bad("`*` may only end a pattern");
    }
    if body
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return bad("control characters, spaces and backslashes are refused");
    }
    let scheme = body.split_once(':').map(|(s, _)| s);
    let scheme_ok = scheme.is_some_and(|s| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if !scheme_ok {
        return bad("it must start with a scheme (`file:`, `https:`, …)");
    }
    if body
        .split(['/', '?', '#'])
        .any(|seg| seg == "." || seg == "..")
    {
        return bad("`.` and `..` segments are refused");
    }
    let lower = body.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return bad("percent-encoded `.`, `/`, `\\` and NUL are refused");
    }
    Ok(())
}

/// Whether the pattern admits the URI: equal, or, for a pattern ending in `*`, starting with
/// what precedes it. Given another pattern as `uri`, it says whether the first admits every
/// URI the second does.
pub fn admits(pattern: &str, uri: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => uri.starts_with(prefix),
        None => pattern == uri,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_that_could_leave_a_prefix_are_refused() {
        for ok in [
            "file:///docs/a.md",
            "https://x.example/a?b=c",
            "db://acme/inv%20oice",
        ] {
            assert!(validate_uri(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "file:///docs/../secret",
            "file:///docs/./a",
            "file:///docs/..",
            "file:///docs/%2e%2e/secret",
            "file:///docs/%2E%2e/secret",
            "file:///docs%2fsecret",
            "file:///docs\\..\\secret",
            "file:///docs/a b",
            "file:///docs/a\n",
            "no-scheme/a",
            "1http://x",
        ] {
            assert!(validate_uri(bad, false).is_err(), "{bad:?}");
        }
        assert!(validate_uri(&"f:".repeat(MAX_URI_BYTES), false).is_err());
    }

    #[test]
    fn patterns_are_a_uri_or_a_prefix_and_star() {
        for ok in ["*", "file:///docs/*", "file:///docs/a.md", "db:*"] {
            assert!(validate_uri(ok, true).is_ok(), "{ok}");
        }
        for bad in [
            "**",
            "file:///*/a",
            "file:///d*s/*",
            "/docs/*",
            "file:///../*",
        ] {
            assert!(validate_uri(bad, true).is_err(), "{bad:?}");
        }
        // In a URI (not a pattern), `*` is an ordinary character.
        assert!(validate_uri("file:///a*", false).is_ok());
    }

    #[test]
    fn a_pattern_admits_its_uri_or_its_prefix() {
        assert!(admits("*", "file:///x"));
        assert!(admits("file:///docs/*", "file:///docs/a"));
        assert!(admits("file:///docs/*", "file:///docs/"));
        assert!(!admits("file:///docs/*", "file:///docs"));
        assert!(!admits("file:///docs/*", "file:///other/a"));
        assert!(admits("file:///a", "file:///a"));
        assert!(!admits("file:///a", "file:///ab"));
    }
}
