//! RFC 9728 protected-resource metadata (spec §14.3).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;

/// How the protected MCP endpoint describes itself.
#[derive(Clone, Debug)]
pub struct Config {
    /// The endpoint's canonical URI (RFC 8707 resource): tickets restricted to another
    /// resource are refused. E.g. `https://mcp.example/invoices`.
    pub resource: String,
    /// Authorization servers that mint tickets for it (RFC 9728 `authorization_servers`).
    pub authorization_servers: Vec<String>,
    /// Scopes clients may ask for (RFC 9728 `scopes_supported`).
    pub scopes_supported: Vec<String>,
    /// Largest accepted request body in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Origins whose browser requests are accepted (Streamable HTTP: servers MUST validate
    /// `Origin`, against DNS rebinding). Default: the resource's own origin. A request with
    /// another `Origin` gets 403; requests without one (not from a browser) are unaffected.
    pub allowed_origins: Vec<String>,
}

impl Config {
    /// A configuration for the endpoint at `resource`.
    pub fn new(resource: impl Into<String>) -> Self {
        let resource = captix::normalize_resource(&resource.into());
        let mut c = Config {
            resource,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            max_body_bytes: 1 << 20,
            allowed_origins: Vec::new(),
        };
        let origin = c.split().0.to_string();
        c.allowed_origins.push(origin);
        c
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

    /// `(origin, path)` of the resource URI.
    fn split(&self) -> (&str, &str) {
        let after_scheme = self.resource.find("://").map(|i| i + 3).unwrap_or(0);
        match self.resource[after_scheme..].find('/') {
            Some(i) => self.resource.split_at(after_scheme + i),
            None => (self.resource.as_str(), ""),
        }
    }

    /// `/.well-known/oauth-protected-resource` followed by the resource's path (RFC 9728 §3).
    pub fn metadata_path(&self) -> String {
        let path = self.split().1.trim_end_matches('/');
        format!("/.well-known/oauth-protected-resource{path}")
    }

    /// The absolute URL of the metadata document.
    pub fn metadata_url(&self) -> String {
        format!("{}{}", self.split().0, self.metadata_path())
    }
}

/// The metadata document, readable by browser clients from any origin (it is public).
pub(crate) async fn serve(State(c): State<Arc<Config>>) -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (
                axum::http::header::ACCESS_CONTROL_ALLOW_METHODS,
                "GET, OPTIONS",
            ),
        ],
        Json(serde_json::json!({
            "resource": c.resource,
            "authorization_servers": c.authorization_servers,
            "scopes_supported": c.scopes_supported,
            "bearer_methods_supported": ["header"],
        })),
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
    use super::Config;

    #[test]
    fn metadata_location_follows_rfc_9728() {
        let c = Config::new("https://mcp.example/invoices/mcp");
        assert_eq!(
            c.metadata_path(),
            "/.well-known/oauth-protected-resource/invoices/mcp"
        );
        assert_eq!(
            c.metadata_url(),
            "https://mcp.example/.well-known/oauth-protected-resource/invoices/mcp"
        );
        let root = Config::new("http://127.0.0.1:8788");
        assert_eq!(
            root.metadata_url(),
            "http://127.0.0.1:8788/.well-known/oauth-protected-resource"
        );
    }
}
