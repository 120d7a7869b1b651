//! Resource URIs (RFC 8707 audiences) in their normal form (spec §4.4).
//!
//! > A ticket's resource and a verifier's are compared after RFC 3986 §6.2.2–6.2.3
//! > normalization: the scheme and the host in lower case, the scheme's default port (80 for
//! > `http`, 443 for `https`) removed, and an empty path written `/`. The rest is compared as
//! > written. Builders write the normal form into tickets, a description holding another form
//! > is `malformed`, and verifiers normalize the URI they are configured with, so both paths
//! > compare normal forms byte for byte.

/// The normal form of a resource URI (see the module docs). Text without `scheme://` is
/// returned unchanged.
pub fn normalize_resource(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // userinfo is kept as written; the host (and port) after it is normalized
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let mut host = hostport.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    if let Some(p) = default_port {
        if host.ends_with(p) {
            host.truncate(host.len() - p.len());
        }
    }
    let tail = if tail.is_empty() || tail.starts_with(['?', '#']) {
        format!("/{tail}")
    } else {
        tail.to_string()
    };
    format!("{scheme}://{userinfo}{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::normalize_resource as n;

    #[test]
    fn normal_forms() {
        assert_eq!(
            n("https://mcp.example/invoices"),
            "https://mcp.example/invoices"
        );
        assert_eq!(
            n("HTTPS://MCP.Example/Invoices"),
            "https://mcp.example/Invoices"
        );
        assert_eq!(n("https://mcp.example:443/x"), "https://mcp.example/x");
        assert_eq!(n("http://mcp.example:80"), "http://mcp.example/");
        assert_eq!(
            n("https://mcp.example:8443/x"),
            "https://mcp.example:8443/x"
        );
        assert_eq!(n("http://127.0.0.1:8788/mcp"), "http://127.0.0.1:8788/mcp");
        assert_eq!(n("https://mcp.example"), "https://mcp.example/");
        assert_eq!(n("https://mcp.example?x=1"), "https://mcp.example/?x=1");
        assert_eq!(n("http://[::1]:80/a"), "http://[::1]/a");
        assert_eq!(n("https://U@Host.example/a"), "https://U@host.example/a");
        assert_eq!(n("urn:x:y"), "urn:x:y");
        for u in ["HTTPS://A.example:443", "https://a.example/ré\"s\\"] {
            assert_eq!(n(&n(u)), n(u), "idempotent: {u}");
        }
    }
}
