//! Metrics (docs §16.3), in a test binary of its own: `tracing` caches whether a callsite is
//! of interest process-wide, so another test hitting it first without a subscriber would hide
//! the events from this one.

use std::sync::Arc;

use captix::budget::MemoryBudgets;
use captix::{Call, KeySet, Policy, SigningKey, Ticket, Verifier};

const NOW: u64 = 1_800_000_000;
const RES: &str = "https://mcp.example/invoices";

fn root() -> SigningKey {
    SigningKey::from_seed(&[9u8; 32])
}

fn call(tool: &str, at: u64) -> Call {
    Call::new(tool, "{}").expect("call").at(at)
}

/// Metrics (docs §16.3): every decision is counted by code, and emitted as a `tracing` event
/// that OpenTelemetry's bridge reads as a counter, with the code and what was called.
#[test]
fn decisions_are_counted_and_emitted_for_metrics() {
    use std::sync::Mutex;
    use tracing::field::{Field, Visit};

    /// Collects the fields of every event.
    #[derive(Default)]
    struct Events(Mutex<Vec<Vec<(String, String)>>>);
    struct Fields(Vec<(String, String)>);
    impl Visit for Fields {
        fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
            self.0.push((
                f.name().to_string(),
                format!("{v:?}").trim_matches('"').to_string(),
            ));
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

    let events = Arc::new(Events::default());
    let v = Verifier::builder(KeySet::from(root().public()))
        .resource(RES)
        .budgets(Arc::new(MemoryBudgets::new()))
        .policy(Policy::from_toml("[tool.get_invoice]\nlimits = [\"2/min\"]\n").expect("policy"))
        .build();
    let key = root();
    let t = Ticket::mint(&key, "a", "u")
        .tool("get_invoice")
        .expires_at(NOW + 3600)
        .resource(RES)
        .sign()
        .expect("mint");
    let t = t.as_str();
    tracing::subscriber::with_default(events.clone(), || {
        for _ in 0..3 {
            let _ = v.check(t, &call("get_invoice", NOW));
        }
    });
    let seen = events.0.lock().expect("lock").clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let field = |e: &Vec<(String, String)>, k: &str| {
        e.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field(&seen[0], "monotonic_counter.captix.decisions"), "1");
    assert_eq!(field(&seen[0], "code"), "allow");
    assert_eq!(field(&seen[2], "code"), "rate_limited");
    assert_eq!(field(&seen[2], "called"), "get_invoice");
    assert_eq!(field(&seen[2], "method"), "tools/call");
    let counts: std::collections::HashMap<_, _> = v.decisions().into_iter().collect();
    assert_eq!(counts["allow"], 2);
    assert_eq!(counts["rate_limited"], 1);
    assert_eq!(counts["expired"], 0, "every code is listed");
}
