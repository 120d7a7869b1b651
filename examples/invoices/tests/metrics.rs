//! Metrics of the MCP layer (docs §16.3), in a test binary of its own: the subscriber is the
//! process's global one, so no other test may run beside it.

use std::sync::{Arc, Mutex};

use captix::{KeySet, SigningKey, Ticket};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};

/// Every `captix::metrics` event's fields.
#[derive(Default)]
struct Events(Mutex<Vec<Vec<(String, String)>>>);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        let v = format!("{v:?}");
        self.0
            .push((f.name().to_string(), v.trim_matches('"').to_string()));
    }
}

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        if e.metadata().target() == "captix::metrics" {
            let mut f = Fields(Vec::new());
            e.record(&mut f);
            self.0.lock().expect("lock").push(f.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn each_check_emits_its_decision_and_its_latency() {
    let events = Arc::new(Events::default());
    tracing::subscriber::set_global_default(events.clone()).expect("the only subscriber");
    let key = SigningKey::from_seed(&[23u8; 32]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let url = format!("http://{addr}/mcp");
    let verifier = captix::Verifier::builder(KeySet::from(key.public()))
        .resource(url.clone())
        .build();
    let app = captix_example_invoices::app(
        Arc::new(verifier),
        captix_mcp::Config::new("https://auth.example"),
    )
    .expect("app");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let t = Ticket::mint(&key, "a", "u")
        .tool("get_invoice")
        .expires_at(4_000_000_000)
        .resource(url)
        .sign()
        .expect("mint");
    // A call the ticket does not allow: refused by the check, before the server.
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_refund","arguments":{}}}"#;
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: \
         application/json\r\naccept: application/json, text/event-stream\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        t.as_str(),
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let seen = events.0.lock().expect("lock").clone();
    let has = |name: &str, code: &str| {
        seen.iter().any(|e| {
            e.iter().any(|(k, _)| k == name) && e.iter().any(|(k, v)| k == "code" && v == code)
        })
    };
    assert!(
        has("monotonic_counter.captix.decisions", "tool_not_granted"),
        "{seen:?}"
    );
    assert!(
        has("histogram.captix.check_duration_us", "tool_not_granted"),
        "{seen:?}"
    );
}
