//! # captix-mcp — captix tickets for MCP servers on axum (and rmcp)
//!
//! [`protect`] wraps the routes of an MCP streamable-HTTP endpoint (rmcp's
//! `StreamableHttpService`, or any axum service) and adds the RFC 9728 protected-resource
//! metadata route. For every request it (docs §14):
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
//! - answers `tools/list` with only the tools the ticket may call;
//! - binds each session the server creates to the ticket chain that created it: another
//!   ticket naming it gets 404 (§14.4);
//! - admits methods other than the lifecycle and the tools (`resources/*`, `prompts/*`,
//!   `completion/*`, ...) only when the [`Config`] does, with the scopes it names (403
//!   `insufficient_scope` with `scope=` otherwise), and audits every request (§14.5).
//!
//! ```no_run
//! # fn run(keys: captix::KeySet, mcp: axum::Router) -> Result<(), captix_mcp::ConfigError> {
//! let verifier = captix::Verifier::builder(keys)
//!     .resource("https://mcp.example/invoices") // tickets must name it
//!     .build();
//! let config = captix_mcp::Config::new("https://auth.example") // who mints tickets
//!     .tool_scope("create_refund", "invoices:refund")
//!     .allow_method("resources/list");
//! let app = captix_mcp::protect(mcp, std::sync::Arc::new(verifier), config)?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod envelope;
mod guard;
mod metadata;
mod session;

pub use guard::{denial_status, http_status, Guarding, McpDecision};
pub use metadata::{Config, ConfigError, LIFECYCLE};

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;

/// Protects the routes of `router` with captix and adds the protected-resource metadata route.
///
/// Every request `router` would see, to its routes and to its fallback, passes the guard
/// first (docs §14.1); the metadata route answers at its own path, ahead of any route of
/// `router` there.
///
/// The resource is the verifier's ([`captix::VerifierBuilder::resource`]): the metadata, the
/// audience check and the challenges cannot disagree. Refused: a verifier without a resource
/// (MCP servers MUST check that a token was issued for them), a configuration without an
/// authorization server, a scope that is not an RFC 6749 scope-token.
pub fn protect(
    router: Router,
    verifier: Arc<captix::Verifier>,
    config: Config,
) -> Result<Protected, ConfigError> {
    config.validate()?;
    let resource = verifier
        .resource()
        .ok_or_else(|| {
            ConfigError(
                "the verifier has no resource: set VerifierBuilder::resource to this server's \
                 canonical URI"
                    .into(),
            )
        })?
        .to_string();
    let (_, metadata_path) = metadata::metadata_location(&resource);
    let document = metadata::document(&resource, &config, verifier.policy());
    let state = Arc::new(guard::Guard::new(verifier, config, &resource));
    Ok(Protected {
        metadata: Router::new().route(
            &metadata_path,
            axum::routing::get(metadata::serve)
                .options(metadata::preflight)
                .with_state(document),
        ),
        metadata_path: metadata_path.into(),
        guarded: guard::Guarded {
            guard: state,
            router,
        },
    })
}

/// A router behind captix, made by [`protect`]: a tower service that `axum::serve` serves
/// directly, or that a larger [`Router`] takes as a service (`Router::from`, a fallback, a
/// nested service).
///
/// It routes by one comparison of the path (the metadata route, else the guard and the
/// protected router) rather than by a router of its own: a router in front of the guard cost
/// two more route lookups, a clone of the guard's service and a boxed future on every call
/// (issue 18, item 4).
#[derive(Clone)]
pub struct Protected {
    /// The metadata route alone (it answers GET, HEAD and OPTIONS, 405 otherwise).
    metadata: Router,
    /// Its path: a request to exactly this path (as the router matched it: byte for byte,
    /// nothing decoded) goes to `metadata`, every other one to the guard.
    metadata_path: Arc<str>,
    guarded: guard::Guarded,
}

impl<B> tower::Service<axum::http::Request<B>> for Protected
where
    B: http_body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = guard::Guarding;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The metadata router and the guard are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let req: Request = req.map(Body::new);
        if req.uri().path() == &*self.metadata_path {
            let answer = tower::Service::call(&mut self.metadata, req);
            return guard::Guarding(Box::pin(async move {
                match answer.await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            }));
        }
        self.guarded.call(req)
    }
}

impl std::fmt::Debug for Protected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protected")
            .field("metadata_path", &self.metadata_path)
            .finish_non_exhaustive()
    }
}

/// `axum::serve(listener, protected)`: every connection is served by a clone.
impl<L: axum::serve::Listener> tower::Service<axum::serve::IncomingStream<'_, L>> for Protected {
    type Response = Self;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: axum::serve::IncomingStream<'_, L>) -> Self::Future {
        std::future::ready(Ok(self.clone()))
    }
}

/// The protected router as a [`Router`], to merge or nest in a larger one (which adds its own
/// route lookup in front of [`Protected`]'s).
impl From<Protected> for Router {
    fn from(p: Protected) -> Router {
        Router::new().fallback_service(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn protected() -> Protected {
        let key = captix::SigningKey::generate();
        let verifier = captix::Verifier::builder(captix::KeySet::from(key.public()))
            .resource("https://mcp.example/mcp")
            .build();
        let inner = Router::new().route("/mcp", axum::routing::post(|| async { "reached" }));
        protect(
            inner,
            Arc::new(verifier),
            Config::new("https://auth.example"),
        )
        .expect("protect")
    }

    async fn status<S>(app: S, method: &str, path: &str) -> u16
    where
        S: tower::Service<Request, Response = Response, Error = Infallible>,
    {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .expect("request");
        app.oneshot(req)
            .await
            .expect("infallible")
            .status()
            .as_u16()
    }

    /// The answers to seven requests around the metadata path.
    async fn answers<S>(app: S) -> Vec<u16>
    where
        S: tower::Service<Request, Response = Response, Error = Infallible> + Clone,
    {
        let meta = "/.well-known/oauth-protected-resource/mcp";
        let mut out = Vec::new();
        for (method, path) in [
            ("GET", meta.to_string()),
            ("OPTIONS", meta.to_string()),
            ("POST", meta.to_string()),
            ("POST", "/mcp".to_string()),
            ("GET", format!("{meta}/")),
            (
                "GET",
                "/.well-known/oauth-protected-resource/%6dcp".to_string(),
            ),
            ("GET", format!("{meta}?x=1")),
        ] {
            out.push(status(app.clone(), method, &path).await);
        }
        out
    }

    /// Only the exact metadata path reaches the metadata route; every other request meets the
    /// guard (here: no ticket, 401), whether `Protected` is served as it is or as a router.
    #[tokio::test]
    async fn the_path_decides_between_the_metadata_and_the_guard() {
        // GET and its preflight are served, another method is 405; the rest is guarded.
        let expected = [200, 204, 405, 401, 401, 401, 200];
        assert_eq!(answers(protected()).await, expected);
        assert_eq!(answers(Router::from(protected())).await, expected);
    }
}
