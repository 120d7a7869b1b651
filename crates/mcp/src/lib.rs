//! # captix-mcp — captix tickets for MCP servers on axum (and rmcp)
//!
//! [`protect`] wraps the routes of an MCP streamable-HTTP endpoint (rmcp's
//! `StreamableHttpService`, or any axum service) and adds the RFC 9728 protected-resource
//! metadata route. For every request it (spec §14):
//!
//! - takes the bearer ticket from `Authorization`; a missing or invalid one gets 401 with
//!   `WWW-Authenticate: Bearer resource_metadata="..."` (and `error="invalid_token"` when one
//!   was sent);
//! - for `tools/call`, reads the tool name and arguments from the JSON-RPC body, cross-checks
//!   the `Mcp-Name` header, and checks the call with the server's [`captix::Verifier`]:
//!   capability denials get 403 `insufficient_scope`, `budget_exhausted` gets 429 with
//!   `Retry-After` (403 for a lifetime budget, which never refills), malformed arguments and
//!   batches get 400; the challenge carries only values the server chose, and the reason and
//!   the captix code travel in the JSON-RPC error's `data`;
//! - refuses two `Authorization` headers (400) and `Mcp-Method`/`Mcp-Name` headers that differ
//!   from the body (400, JSON-RPC -32020; `=?base64?…?=` values decoded) before any spend;
//! - places the [`McpDecision`] (agent, user, row filters) in the request extensions, where
//!   rmcp tool handlers find it (`context.extensions.get::<http::request::Parts>()`);
//! - records the call's outcome (success, tool error, duration) in the audit log;
//! - answers `tools/list` with only the tools the ticket may call.
//!
//! ```no_run
//! # async fn run(verifier: std::sync::Arc<captix::Verifier>, mcp: axum::Router) {
//! let app = captix_mcp::protect(mcp, verifier, captix_mcp::Config::new("http://127.0.0.1:8788/mcp"));
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod guard;
mod metadata;

pub use guard::{denial_status, http_status, McpDecision};
pub use metadata::Config;

use std::sync::Arc;

use axum::Router;

/// Protects the routes of `router` with captix and adds the protected-resource metadata route.
pub fn protect(router: Router, verifier: Arc<captix::Verifier>, config: Config) -> Router {
    let state = Arc::new(guard::Guard::new(verifier, config.clone()));
    Router::new()
        .route(
            &config.metadata_path(),
            axum::routing::get(metadata::serve)
                .options(metadata::preflight)
                .with_state(Arc::new(config)),
        )
        .merge(router.layer(axum::middleware::from_fn_with_state(state, guard::guard)))
}
