//! A warm check allocates nothing (README, docs §10.2). A separate test binary: it installs a
//! counting global allocator (`support/counting.rs`).

use std::sync::Arc;

use captix::budget::MemoryBudgets;
use captix::revocation::MemoryRevocations;
use captix::{Call, KeySet, SigningKey, Ticket, Verifier};

#[path = "support/counting.rs"]
mod counting;
use counting::{allocations, live_bytes};

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

/// A ticket of about `size` bytes: one attenuation of `base` whose row filter lists distinct
/// values (`seed` makes each ticket distinct), optionally with a hand-written check (which
/// keeps it on the reference path).
fn big_attenuation(base: &Ticket, seed: usize, size: usize, datalog: bool) -> Ticket {
    let values: Vec<String> = (0..size / 96)
        .map(|i| format!("v{seed}-{i:0>12}"))
        .collect();
    let row = format!("*:status={}|open", values.join("|"));
    let a = base.attenuate().row(row.parse().expect("row"));
    let a = if datalog {
        a.datalog(r#"check if arg("/status", $s), $s.type() == "string""#)
    } else {
        a
    };
    a.sign().expect("attenuate")
}

/// Class `cache_memory_unbounded` (SECURITY.md): 2,000 distinct 15 KB attenuations of one
/// ticket took a verifier from 3 MB to 363 MB. The cache is bounded in bytes of heap: a flood
/// of distinct maximum-size tickets, compiled and on the reference path, keeps the verifier's
/// heap under its bound, and the bound's accounting covers what entries really hold.
#[test]
fn cache_memory_is_bounded_in_bytes() {
    let k = SigningKey::from_seed(&[9u8; 32]);
    let base = Ticket::mint(&k, "agent", "alice")
        .tool("list_invoices")
        .tool("get_invoice")
        .expires_at(2_000_000_000)
        .sign()
        .expect("mint");
    let bound = 4 << 20;
    let v = Verifier::builder(KeySet::from(k.public()))
        .cache_bytes(bound)
        .build();
    let call = Call::new("list_invoices", r#"{"status":"open"}"#)
        .expect("args")
        .at(1_900_000_000);
    // The estimate of one entry of each kind against the heap it really holds (a verifier
    // with the default bound, where both kinds fit a shard).
    let roomy = Verifier::builder(KeySet::from(k.public())).build();
    for datalog in [false, true] {
        let t = big_attenuation(&base, 1_000_000 + usize::from(datalog), 14_000, datalog);
        let before_bytes = roomy.cached_bytes();
        let before = live_bytes();
        roomy.check(t.as_str(), &call).expect("allowed");
        let held = live_bytes() - before;
        let counted = (roomy.cached_bytes() - before_bytes) as i64;
        println!(
            "one {}-byte ticket (datalog: {datalog}): holds {held} bytes, counted {counted}",
            t.as_str().len()
        );
        assert!(
            counted >= held,
            "the cache counts {counted} bytes for an entry holding {held}"
        );
    }
    let start = live_bytes();
    for i in 0..600 {
        let t = big_attenuation(&base, i, 14_000, i % 4 == 0);
        assert!(t.as_str().len() > 11_000, "{}", t.as_str().len());
        v.check(t.as_str(), &call).expect("allowed");
    }
    let held = live_bytes() - start;
    println!(
        "after 600 distinct 15 KB tickets: {} cached, {} bytes counted, heap grew {held} bytes",
        v.cached(),
        v.cached_bytes()
    );
    assert!(v.cached_bytes() <= bound, "{} counted", v.cached_bytes());
    assert!(
        held <= bound as i64,
        "the verifier's heap grew {held} bytes under a {bound}-byte bound"
    );
    assert!(v.cached() > 10, "the cache still caches: {}", v.cached());
}
