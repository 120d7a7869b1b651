// Shared by the fuzz targets: the vector generator's root key, one parent ticket with its
// calls, and the two verification paths.
#![allow(dead_code)] // each target uses a part of it

use std::sync::OnceLock;

use captix::{Call, KeySet, SigningKey, Ticket, Verifier};

/// Fixed call time: the test vectors' clock (1_800_000_000), so their tickets are in date.
pub const NOW: u64 = 1_800_000_000;

/// The vector generator's root key (`SigningKey::from_seed(&[1; 32])`), so seeds taken from
/// `test-vectors/` carry valid signatures and reach the authorizer.
pub fn root() -> SigningKey {
    SigningKey::from_seed(&[1u8; 32])
}

pub fn keys() -> KeySet {
    KeySet::from(root().public())
}

/// Checks one ticket on the reference path and twice on the cached path (a miss, then a
/// hit); all three must agree on the outcome and the denying block, with one exception
/// (spec §4.10): a hand-written check whose expression fails to evaluate for some facts and
/// holds for others is allowed or denied (`check_failed`, no block) depending on Biscuit's
/// fact order, which varies between runs. Any other disagreement fails.
pub fn check_paths(verifier: &Verifier, ticket: &[u8], call: &Call, keys: &KeySet) {
    let mut decisions = vec![
        verifier.check_bytes(ticket, call),
        verifier.check_bytes(ticket, call),
    ];
    if let Ok(text) = std::str::from_utf8(ticket) {
        decisions.push(captix::verify(text, call, keys));
    }
    let first = &decisions[0];
    for d in &decisions[1..] {
        match (first, d) {
            (Ok(_), Ok(_)) => {}
            (Err(a), Err(b)) => {
                assert_eq!(
                    (a.code, a.block),
                    (b.code, b.block),
                    "paths disagree: {a:?} vs {b:?}"
                )
            }
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => assert!(
                e.code == captix::Code::CheckFailed
                    && e.block.is_none()
                    && e.reason.contains("failed to evaluate"),
                "one path allows, another denies: {e:?}"
            ),
        }
    }
}

/// What the targets share, built once per process.
pub struct Setup {
    pub root: SigningKey,
    pub keys: KeySet,
    /// A verifier with a small cache, so that misses and evictions are exercised too.
    pub verifier: Verifier,
    /// A vocabulary ticket: two tools, a row filter, a budget, an expiry.
    pub parent: Ticket,
    /// Calls it allows (the first) and denies in different ways.
    pub calls: Vec<Call>,
}

pub fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let keys = keys();
        let parent = Ticket::mint(&root(), "fuzz", "fuzz")
            .tool("list_invoices")
            .tool("get_invoice")
            .row("*:org=acme".parse().expect("row"))
            .budget("100/min".parse().expect("budget"))
            .expires_at(NOW + 3600)
            .sign()
            .expect("parent");
        let call = |tool: &str, args: &str| Call::new(tool, args).expect("call").at(NOW);
        Setup {
            root: root(),
            // The paths' evaluation is what the targets compare: what a server accepts at all
            // (expiry and audience required, spec §10.1) and budgets (every input spends from
            // the same parent's) are tested elsewhere.
            verifier: Verifier::builder(keys.clone())
                .cache_bytes(64 * 8192)
                .allow_tickets_without_expiry()
                .allow_tickets_without_audience()
                .without_budgets()
                .build(),
            keys,
            parent,
            calls: vec![
                call("list_invoices", r#"{"org":"acme","status":"open"}"#),
                call("list_invoices", r#"{"org":"globex"}"#),
                call("get_invoice", r#"{"org":"acme","id":1}"#),
                call("delete_invoice", r#"{"org":"acme"}"#),
            ],
        }
    })
}
