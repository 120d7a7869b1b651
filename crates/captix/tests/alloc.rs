//! A warm check allocates nothing (README, spec §10.2). A separate test binary: it installs a
//! counting global allocator (`support/counting.rs`).

use std::sync::Arc;

use captix::budget::MemoryBudgets;
use captix::revocation::MemoryRevocations;
use captix::{Call, KeySet, SigningKey, Ticket, Verifier};

#[path = "support/counting.rs"]
mod counting;
use counting::allocations;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

#[test]
fn a_warm_check_does_not_allocate() {
    let k = SigningKey::from_seed(&[8u8; 32]);
    let mut t = Ticket::mint(&k, "agent", "alice")
        .tool("list_invoices")
        .row("*:org=acme".parse().expect("row"))
        .budget("1000000/min".parse().expect("budget"))
        .expires_at(2_000_000_000)
        .resource("https://mcp.example")
        .sign()
        .expect("mint");
    for i in 0..3 {
        t = t
            .attenuate()
            .row("list_invoices:status=open|paid".parse().expect("row"))
            .budget(format!("{}", 1000 + i).parse().expect("budget"))
            .sign()
            .expect("attenuate");
    }
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource("https://mcp.example")
        .budgets(Arc::new(MemoryBudgets::new()))
        .revocations(Arc::new(MemoryRevocations::new()))
        .build();
    let call = Call::new("list_invoices", r#"{"org":"acme","status":"open"}"#)
        .expect("args")
        .at(1_900_000_000);
    v.check(t.as_str(), &call)
        .expect("first sight compiles and prepares");
    let before = allocations();
    for _ in 0..100 {
        let allowed = v.check(t.as_str(), &call).expect("allowed");
        assert_eq!(allowed.budgets().len(), 4);
    }
    assert_eq!(allocations() - before, 0, "warm checks allocated");
    // A denial builds its reason: that allocates, and is not the common case.
    let denied = Call::new("list_invoices", r#"{"org":"globex","status":"open"}"#)
        .expect("args")
        .at(1_900_000_000);
    let before = allocations();
    v.check(t.as_str(), &denied).expect_err("denied");
    assert!(allocations() > before, "the counter counts");
}
