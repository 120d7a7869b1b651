//! The layer's configuration and the RFC 9728 protected-resource metadata (docs §14.3–§14.5).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;

/// Methods every valid ticket may send without configuration: the MCP lifecycle, the client's
/// notifications, the tools, resources and prompts (each `tools/call`, `resources/read` and
/// `prompts/get` checked against the ticket, each list filtered by it).
pub const LIFECYCLE: &[&str] = &[
    "initialize",
    "ping",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
];

/// How the protected MCP endpoint admits requests beyond the ticket, and how it describes
/// itself. The resource (RFC 8707 audience) is not here: it is the verifier's
/// ([`captix::VerifierBuilder::resource`]), configured once.
#[derive(Clone, Debug)]
pub struct Config {
    /// Authorization servers that mint tickets for this resource (RFC 9728
    /// `authorization_servers`): at least one, absolute `https://` or `http://` URLs.
    pub authorization_servers: Vec<String>,
    /// Scopes to advertise in `scopes_supported` besides the ones this configuration requires.
    pub scopes: Vec<String>,
    /// Largest accepted request body in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Longest wait for a request's whole body (default 10 s; then 408): a caller cannot hold
    /// a buffer open by sending slowly.
    pub body_deadline: std::time::Duration,
    /// Most checks waiting on a budget store's I/O at once (default 64). A check that would
    /// wait (a Redis round trip) runs on tokio's blocking pool, never on a runtime worker, so a
    /// stalled store delays only the calls that need it; past this many, calls queue for a
    /// slot without holding a thread.
    pub max_blocking_checks: usize,
    /// Origins whose browser requests are accepted besides the resource's own (Streamable
    /// HTTP: servers MUST validate `Origin`, against DNS rebinding). A request with another
    /// `Origin` gets 403; requests without one (not from a browser) are unaffected.
    pub allowed_origins: Vec<String>,
    /// Most sessions bound at once (docs §14.4; default 10,000, about 2 MiB). When full, a
    /// new session is refused with 503, before the server creates it.
    pub max_sessions: usize,
    /// Most sessions bound at once for the tickets of one issuance (one authority block and
    /// every ticket attenuated from it; default 32): one holder cannot fill the table.
    pub max_sessions_per_ticket: usize,
    /// Seconds without a request after which a session's binding lapses (default 300,
    /// rmcp's own idle timeout);
    /// it lapses at its ticket's expiry in any case.
    pub session_idle_secs: u64,
    /// Methods admitted beyond [the lifecycle](LIFECYCLE), each with the scopes it requires.
    pub(crate) methods: Vec<(String, Vec<String>)>,
    /// Tools (or `*`, every tool) whose calls require a scope.
    pub(crate) tool_scopes: Vec<(String, String)>,
}

/// A configuration the layer refuses (see [`crate::protect`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "captix-mcp configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// A configuration naming the authorization server that mints tickets for this resource.
    pub fn new(authorization_server: impl Into<String>) -> Self {
        Config {
            authorization_servers: vec![authorization_server.into()],
            scopes: Vec::new(),
            max_body_bytes: 1 << 20,
            body_deadline: std::time::Duration::from_secs(10),
            max_blocking_checks: 64,
            allowed_origins: Vec::new(),
            max_sessions: 10_000,
            max_sessions_per_ticket: 32,
            session_idle_secs: 300,
            methods: Vec::new(),
            tool_scopes: Vec::new(),
        }
    }

    /// Accepts browser requests from this origin too (`scheme://host[:port]`).
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Adds an authorization server.
    pub fn authorization_server(mut self, url: impl Into<String>) -> Self {
        self.authorization_servers.push(url.into());
        self
    }

    /// Admits `method` (e.g. `resources/list`) for every valid ticket. Methods neither in the
    /// lifecycle nor admitted are refused with 403 `method_not_allowed`; every request is
    /// audited either way.
    pub fn allow_method(mut self, method: impl Into<String>) -> Self {
        self.methods.push((method.into(), Vec::new()));
        self
    }

    /// Admits `method` for tickets whose authority block lists `scope`; others get 403
    /// `insufficient_scope` with `scope=` naming it (MCP step-up). Applies to lifecycle
    /// methods too (e.g. `tools/list`); repeat for several scopes, all required.
    pub fn method_scope(mut self, method: impl Into<String>, scope: impl Into<String>) -> Self {
        let method = method.into();
        let scope = scope.into();
        match self.methods.iter_mut().find(|(m, _)| *m == method) {
            Some((_, scopes)) => scopes.push(scope),
            None => self.methods.push((method, vec![scope])),
        }
        self
    }

    /// Requires `scope` for calls of `tool` (`*`: every tool), checked before the ticket's
    /// own restrictions and before any budget is spent.
    pub fn tool_scope(mut self, tool: impl Into<String>, scope: impl Into<String>) -> Self {
        self.tool_scopes.push((tool.into(), scope.into()));
        self
    }

    /// Advertises `scope` in `scopes_supported` without requiring it anywhere.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Every scope this configuration names, sorted: the metadata's `scopes_supported`.
    pub fn scopes_supported(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self
            .scopes
            .iter()
            .chain(self.methods.iter().flat_map(|(_, s)| s))
            .chain(self.tool_scopes.iter().map(|(_, s)| s))
            .collect();
        all.into_iter().cloned().collect()
    }

    /// The scopes `method` requires, or `None` when the method is not admitted.
    pub(crate) fn method_needs(&self, method: &str) -> Option<Vec<&str>> {
        let mut found = LIFECYCLE.contains(&method);
        let mut needs = Vec::new();
        for (m, scopes) in &self.methods {
            if m == method {
                found = true;
                needs.extend(scopes.iter().map(String::as_str));
            }
        }
        found.then_some(needs)
    }

    /// The scopes a call of `tool` requires.
    pub(crate) fn tool_needs(&self, tool: &str) -> Vec<&str> {
        self.tool_scopes
            .iter()
            .filter(|(t, _)| t == tool || t == "*")
            .map(|(_, s)| s.as_str())
            .collect()
    }

    /// Refuses what would make the layer unsafe or its challenges malformed.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.authorization_servers.is_empty() {
            return Err(ConfigError(
                "no authorization server: RFC 9728 metadata must name at least one".into(),
            ));
        }
        for a in &self.authorization_servers {
            let scheme_ok = a.starts_with("https://") || a.starts_with("http://");
            // RFC 3986 characters only (no quotes, brackets of HTML, spaces or controls).
            let uri_chars = a
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b));
            if !scheme_ok || a.len() > 2048 || !uri_chars {
                return Err(ConfigError(format!(
                    "authorization server {a:?} is not an absolute http(s) URL"
                )));
            }
        }
        for s in self.scopes_supported() {
            if !captix::is_scope_token(&s) {
                return Err(ConfigError(format!(
                    "scope {s:?} is not an RFC 6749 scope-token"
                )));
            }
        }
        if self.max_sessions == 0 || self.max_sessions_per_ticket == 0 {
            return Err(ConfigError(
                "max_sessions and max_sessions_per_ticket must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Where the metadata of `resource` lives: `(origin, metadata path)`, RFC 9728 §3:
/// `/.well-known/oauth-protected-resource` followed by the resource's path.
pub(crate) fn metadata_location(resource: &str) -> (String, String) {
    let after_scheme = resource.find("://").map(|i| i + 3).unwrap_or(0);
    let (origin, path) = match resource[after_scheme..].find('/') {
        Some(i) => resource.split_at(after_scheme + i),
        None => (resource, ""),
    };
    let path = path.trim_end_matches('/');
    (
        origin.to_string(),
        format!("/.well-known/oauth-protected-resource{path}"),
    )
}

/// The metadata document (computed once by `protect`).
pub(crate) type Document = Arc<serde_json::Value>;

pub(crate) fn document(resource: &str, c: &Config, policy: &captix::Policy) -> Document {
    // Every scope the configuration or the verifier's policy (docs §16) names.
    let mut scopes = c.scopes_supported();
    scopes.extend(policy.all_scopes().into_iter().map(String::from));
    scopes.sort();
    scopes.dedup();
    Arc::new(serde_json::json!({
        "resource": resource,
        "authorization_servers": c.authorization_servers,
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
    }))
}

/// The metadata document, readable by browser clients from any origin (it is public).
pub(crate) async fn serve(State(d): State<Document>) -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (
                axum::http::header::ACCESS_CONTROL_ALLOW_METHODS,
                "GET, OPTIONS",
            ),
        ],
        Json(d.as_ref().clone()),
    )
}

/// The CORS preflight of the metadata document.
pub(crate) async fn preflight() -> impl axum::response::IntoResponse {
    (
        axum::http::StatusCode::NO_CONTENT,
        [
            (axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (
                axum::http::header::ACCESS_CONTROL_ALLOW_METHODS,
                "GET, OPTIONS",
            ),
            (axum::http::header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::{metadata_location, Config};

    #[test]
    fn metadata_location_follows_rfc_9728() {
        assert_eq!(
            metadata_location("https://mcp.example/invoices/mcp"),
            (
                "https://mcp.example".to_string(),
                "/.well-known/oauth-protected-resource/invoices/mcp".to_string()
            )
        );
        assert_eq!(
            metadata_location("http://127.0.0.1:8788"),
            (
                "http://127.0.0.1:8788".to_string(),
                "/.well-known/oauth-protected-resource".to_string()
            )
        );
    }

    #[test]
    fn a_configuration_that_would_be_unsafe_is_refused() {
        let ok = Config::new("https://as.example");
        assert_eq!(ok.validate(), Ok(()));
        let mut none = ok.clone();
        none.authorization_servers.clear();
        assert!(none
            .validate()
            .unwrap_err()
            .0
            .contains("no authorization server"));
        for bad in [
            "as.example",
            "https://as.example/\"x",
            "javascript:alert(1)",
            "https://a b",
        ] {
            assert!(Config::new(bad).validate().is_err(), "{bad}");
        }
        // a scope that would break out of the challenge's quoted string, or split into two
        for bad in ["a\"b", "a b", "a\\b", "", "é"] {
            assert!(ok.clone().scope(bad).validate().is_err(), "{bad:?}");
            assert!(
                ok.clone().tool_scope("t", bad).validate().is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn methods_need_admission_and_scopes_are_collected() {
        let c = Config::new("https://as.example")
            .allow_method("resources/list")
            .method_scope("resources/read", "files:read")
            .method_scope("tools/list", "mcp")
            .tool_scope("create_refund", "refunds")
            .scope("extra");
        assert_eq!(c.method_needs("resources/list"), Some(vec![]));
        assert_eq!(c.method_needs("resources/read"), Some(vec!["files:read"]));
        assert_eq!(c.method_needs("tools/list"), Some(vec!["mcp"]));
        assert_eq!(c.method_needs("initialize"), Some(vec![]));
        assert_eq!(c.method_needs("prompts/get"), Some(vec![]));
        assert_eq!(c.method_needs("resources/templates/list"), None);
        assert_eq!(c.method_needs("completion/complete"), None);
        assert_eq!(c.tool_needs("create_refund"), vec!["refunds"]);
        assert!(c.tool_needs("list_invoices").is_empty());
        assert_eq!(
            c.scopes_supported(),
            ["extra", "files:read", "mcp", "refunds"]
        );
    }
}
