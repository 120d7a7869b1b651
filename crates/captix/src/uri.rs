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
    let what = if pattern {
        "resource URI pattern"
    } else {
        "resource URI"
    };
    // The input is echoed bounded: a refused URI can be long, and reasons reach logs.
    let shown = bounded(uri, 80);
    let bad = |why: &str| {
        Err(Error::InvalidRestriction(format!(
            "{shown} is not a {what}: {why} (spec §4.11)"
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
    if !body.is_ascii() {
        return bad("characters outside ASCII must be percent-encoded");
    }
    if body
        .bytes()
        .any(|c| c.is_ascii_control() || c == b' ' || c == b'\\')
    {
        return bad("control characters, spaces and backslashes are refused");
    }
    let Some((scheme, rest)) = body.split_once(':') else {
        return bad("it must start with a scheme (`file:`, `https:`, …)");
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return bad("it must start with a scheme (`file:`, `https:`, …)");
    }
    // `//authority`, then the path up to `?` or `#`.
    let (authority, path) = match rest.strip_prefix("//") {
        Some(r) => {
            let end = r.find(['/', '?', '#']);
            if pattern && uri.ends_with('*') && end.is_none() {
                return bad("a prefix must reach the path: end the authority with `/`");
            }
            let end = end.unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    if authority.contains('@') {
        return bad("user information (`@`) is refused");
    }
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    if path.contains("//") {
        return bad("empty path segments (`//`) are refused");
    }
    // Each segment (between `/`, `?`, `#`) decoded once: escapes well formed, no encoded
    // control character or byte outside ASCII (overlong and fullwidth dots), and no segment
    // that is only dots once what follows a `;` and white space around are dropped (`..`,
    // `..;x`, `..%3b`, `..%20`, `%2e%2e`).
    for seg in body.split(['/', '?', '#']) {
        let decoded = match percent_decoded(seg) {
            Ok(d) => d,
            Err(why) => return bad(why),
        };
        let head = decoded.split(|b| *b == b';').next().unwrap_or_default();
        let head = head.trim_ascii();
        if !head.is_empty() && head.iter().all(|b| *b == b'.') {
            return bad("`.` and `..` segments are refused, encoded or not");
        }
    }
    let lower = body.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00", "%25"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return bad("percent-encoded `.`, `/`, `\\`, NUL and `%` are refused");
    }
    Ok(())
}

/// A segment with its `%XX` escapes decoded; refused: an escape that is not `%` and two hex
/// digits, an encoded control character, an encoded byte outside ASCII.
fn percent_decoded(seg: &str) -> Result<Vec<u8>, &'static str> {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
            return Err("a `%` must start an escape of two hex digits");
        };
        let b = (hi * 16 + lo) as u8;
        if !(0x20..0x7f).contains(&b) {
            return Err("encoded control characters and bytes outside ASCII are refused");
        }
        out.push(b);
        i += 3;
    }
    Ok(out)
}

/// At most `max` bytes of `s` (on a character boundary), quoted, with `…` when cut.
fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return format!("{s:?}");
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &s[..end])
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
            "file:///docs/a..b",
            "file:///docs/.hidden",
            "file:///docs/a;v=1",
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
            // Found by review: paths a server could resolve outside a prefix.
            "file:///srv/docs//etc/passwd",
            "file:///srv/docs/%252e%252e/secret",
            "file:///srv/docs/..;/secret",
            "file:///srv/docs/.;x/a",
            "file:///srv/docs/\u{ff0e}\u{ff0e}/secret",
            "file:///srv/docs/\u{2025}/secret",
            "file:///srv/docs/\u{202e}txt.exe",
            "invoices://acme@globex/summary",
            // Found by the second review: encodings a lenient server decodes to dots.
            "file:///srv/docs/%ef%bc%8e%ef%bc%8e/secret",
            "file:///srv/docs/%c0%ae%c0%ae/secret",
            "file:///srv/docs/%e0%80%ae/secret",
            "file:///srv/docs/%u002e%u002e/secret",
            "file:///srv/docs/..%3b/secret",
            "file:///srv/docs/..%20/secret",
            "file:///srv/docs/..%09/secret",
            "file:///srv/docs/%%32%65/secret",
            "file:///srv/docs/%2",
            "file:///srv/docs/.../secret",
        ] {
            assert!(validate_uri(bad, false).is_err(), "{bad:?}");
        }
        assert!(validate_uri(&"f:".repeat(MAX_URI_BYTES), false).is_err());
        // The reason echoes a bounded part of what was refused.
        let long = format!("invoices://acme/{}", "A".repeat(100_000));
        let e = validate_uri(&long, false)
            .expect_err("too long")
            .to_string();
        assert!(e.len() < 300, "{}", e.len());
        // Query and fragment are not the path: `//` there is allowed, dot segments are not.
        assert!(validate_uri("https://x.example/a?next=//b", false).is_ok());
    }

    #[test]
    fn patterns_are_a_uri_or_a_prefix_and_star() {
        for ok in [
            "*",
            "file:///docs/*",
            "file:///docs/a.md",
            "db:*",
            "invoices://acme/*",
            "urn:x:*",
        ] {
            assert!(validate_uri(ok, true).is_ok(), "{ok}");
        }
        for bad in [
            "**",
            "file:///*/a",
            "file:///d*s/*",
            "/docs/*",
            "file:///../*",
            "invoices://acme*",
            "https://*",
        ] {
            assert!(validate_uri(bad, true).is_err(), "{bad:?}");
        }
        // An exact pattern may name a URI without a path.
        assert!(validate_uri("https://x.example", true).is_ok());
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
