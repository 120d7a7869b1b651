//! One warm check, counted in instructions (callgrind): see `scripts/instructions`.

use captix::{Call, KeySet, SigningKey, Ticket, Verifier};
use std::sync::Arc;
/// Runs N warm checks of a ticket of B blocks (arguments: N B [policy]), after one cold check: the
/// difference of the instruction counts of two runs, over N, is the cost of one warm check
/// (`scripts/instructions`), stable on a noisy machine where wall-clock times are not.
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let blocks: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4);
    let now = 1_800_000_000;
    let k = SigningKey::generate();
    let mut t = Ticket::mint(&k, "billing-agent", "alice")
        .tool("list_invoices")
        .tool("get_invoice")
        .row("*:org=acme".parse().expect("bench setup"))
        .row(
            "list_invoices:status=open|paid"
                .parse()
                .expect("bench setup"),
        )
        .budget("1000000000/min".parse().expect("bench setup"))
        .expires_at(now + 3600)
        .resource("https://mcp.example/invoices")
        .sign()
        .expect("bench setup");
    for _ in 1..blocks {
        t = t
            .attenuate()
            .tool("list_invoices")
            .sign()
            .expect("bench setup");
    }
    let mut builder = Verifier::builder(KeySet::from(k.public()))
        .resource("https://mcp.example/invoices")
        .budgets(Arc::new(captix::budget::MemoryBudgets::new()));
    // A third argument `policy`: a server policy of three limits (docs §16).
    if std::env::args().nth(3).as_deref() == Some("policy") {
        let policy = captix::Policy::from_toml(
            "[tool.\"*\"]\nlimits = [\"1000000000/min per agent\", \
             \"1000000000/min per user\", \"1000000000/min\"]\n",
        )
        .expect("bench setup");
        builder = builder.policy(policy);
    }
    let v = builder.build();
    let c = Call::new("list_invoices", r#"{"org":"acme","status":"open"}"#)
        .expect("bench setup")
        .at(now);
    v.check(t.as_str(), &c).expect("bench setup");
    for _ in 0..n {
        std::hint::black_box(
            v.check(std::hint::black_box(t.as_str()), &c)
                .expect("bench setup"),
        );
    }
}
