//! Hand-written Datalog in an attenuation block (`captix attenuate --datalog`). Whatever the
//! check, a block can only narrow: a call the parent denies stays denied with the parent's
//! code, both verification paths agree, and the run limits stop hostile rules.
#![no_main]

use std::sync::OnceLock;

use captix::{Call, KeySet, Ticket, Verifier};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

struct Setup {
    parent: Ticket,
    keys: KeySet,
    verifier: Verifier,
    calls: Vec<Call>,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let keys = common::keys();
        let parent = Ticket::mint(&common::root(), "fuzz", "fuzz")
            .tool("list_invoices")
            .row("*:org=acme".parse().expect("row"))
            .expires_at(common::NOW + 3600)
            .sign()
            .expect("parent");
        let call = |tool: &str, args: &str| Call::new(tool, args).expect("call").at(common::NOW);
        Setup {
            parent,
            verifier: Verifier::builder(keys.clone()).cache_capacity(64).build(),
            keys,
            calls: vec![
                call("list_invoices", r#"{"org":"acme"}"#),
                call("list_invoices", r#"{"org":"globex"}"#),
                call("delete_invoice", r#"{"org":"acme"}"#),
            ],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(check) = std::str::from_utf8(data) else {
        return;
    };
    let s = setup();
    let Ok(child) = s.parent.attenuate().datalog(check).sign() else {
        return; // not a check the builder accepts: refused with an error, fine
    };
    for call in &s.calls {
        let parent = captix::verify(s.parent.as_str(), call, &s.keys);
        let child_d = captix::verify(child.as_str(), call, &s.keys);
        if let Err(p) = &parent {
            let c = child_d.as_ref().expect_err("a block widened a denied call");
            // The parent's own denial, whatever the check does (spec §6.3).
            assert_eq!(
                (c.code, c.block),
                (p.code, p.block),
                "{check:?}: {c:?} vs {p:?}"
            );
        }
        common::check_paths(&s.verifier, child.as_str().as_bytes(), call, &s.keys);
    }
});
