//! The two example servers of the round-trip benchmarks (`verify`'s `mcp_roundtrip` and
//! `layer_share`): the invoices server behind captix and the same server unguarded, on
//! loopback, with a ticket for the guarded one.

use std::sync::Arc;

use captix::budget::MemoryBudgets;
use captix::{KeySet, SigningKey, Ticket, Verifier};

/// A stateless `tools/call` (MCP 2026-07-28) of `list_invoices` for org acme.
pub const BODY: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"acme"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;

/// The headers of that request besides the ticket (Streamable HTTP, MCP 2026-07-28).
pub const HEADERS: [(&str, &str); 5] = [
    ("content-type", "application/json"),
    ("accept", "application/json, text/event-stream"),
    ("mcp-method", "tools/call"),
    ("mcp-name", "list_invoices"),
    ("mcp-protocol-version", "2026-07-28"),
];

pub struct Servers {
    /// Serves both, on one worker thread; dropping it stops them.
    pub runtime: tokio::runtime::Runtime,
    /// The guarded server's `/mcp` URL (the verifier's resource).
    pub guarded: String,
    /// The unguarded server's `/mcp` URL.
    pub plain: String,
    /// A ticket for the guarded server: `list_invoices` for org acme, a budget it never
    /// exhausts.
    pub ticket: Ticket,
}

/// The guarded example app for `resource` (tickets signed by `k`) and the unguarded one.
pub fn apps(k: &SigningKey, resource: &str) -> (captix_mcp::Protected, axum::Router) {
    let verifier = Verifier::builder(KeySet::from(k.public()))
        .resource(resource)
        .budgets(Arc::new(MemoryBudgets::new()))
        .build();
    let guarded = captix_example_invoices::app(
        Arc::new(verifier),
        captix_mcp::Config::new("https://auth.example"),
    )
    .expect("app");
    (
        guarded,
        captix_example_invoices::app_unguarded().expect("app"),
    )
}

/// A ticket for the guarded app at `resource`: `list_invoices` for org acme, a budget it
/// never exhausts.
pub fn ticket(k: &SigningKey, resource: &str) -> Ticket {
    Ticket::mint(k, "billing-agent", "alice")
        .tool("list_invoices")
        .row("*:org=acme".parse().expect("row"))
        .budget("1000000000000000".parse().expect("budget"))
        .expires_at(4_000_000_000)
        .resource(resource)
        .sign()
        .expect("mint")
}

/// Starts both servers; tickets are signed by `k`.
pub fn start(k: &SigningKey) -> Servers {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let (guarded, plain) = runtime.block_on(async {
        let l1 = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let l2 = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let (a1, a2) = (
            l1.local_addr().expect("addr"),
            l2.local_addr().expect("addr"),
        );
        let resource = format!("http://{a1}/mcp");
        let (app, bare) = apps(k, &resource);
        tokio::spawn(async move { axum::serve(l1, app).await });
        tokio::spawn(async move { axum::serve(l2, bare).await });
        (resource, format!("http://{a2}/mcp"))
    });
    let ticket = ticket(k, &guarded);
    Servers {
        runtime,
        guarded,
        plain,
        ticket,
    }
}
