//! The laws of spec §6.6, on random vocabulary tickets and calls.

use captix::{Compiled, Description};
use proptest::prelude::*;

use crate::common::{build, call, grants, key, restrictions, Grants};

fn chain() -> impl Strategy<Value = (Grants, Description, Vec<Description>)> {
    (
        grants(),
        restrictions(),
        prop::collection::vec(restrictions(), 0..7),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Attenuation is monotonic: whatever a ticket denies, every attenuation of it denies, with
    /// the same denial, unless the new block's own validity restriction takes precedence.
    #[test]
    fn attenuation_is_monotonic(
        (g, auth, parent_chain) in chain(),
        extra in restrictions(),
        calls in prop::collection::vec(call(), 24),
    ) {
        let k = key();
        let parent = build(&k, &g, &auth, &parent_chain);
        let mut full = parent_chain.clone();
        full.push(extra);
        let child = build(&k, &g, &auth, &full);
        for c in &calls {
            let p = parent.authorize(c);
            let ch = child.authorize(c);
            if let Err(pd) = &p {
                let cd = ch.as_ref().expect_err("child must deny what the parent denies");
                let new_block = parent_chain.len() + 1;
                // The class of the restriction that denied, from its one home (no copy here).
                let validity = child.blocks().get(new_block)
                    .and_then(|b| b.description())
                    .and_then(|d| d.restrictions().into_iter().find(|r| cd.restriction.as_deref() == Some(r.to_string().as_str())))
                    .is_some_and(|r| r.class() == captix::Class::Validity);
                prop_assert!(
                    pd == cd || (validity && cd.block == Some(new_block)),
                    "parent {:?}, child {:?}", pd, cd
                );
            }
        }
    }

    /// Two verification paths, one answer: the compiled hot path and Biscuit's authorizer give
    /// the same decision, code, block and reason.
    #[test]
    fn hot_path_equals_reference_path(
        (g, auth, rest) in chain(),
        calls in prop::collection::vec(call(), 24),
    ) {
        let t = build(&key(), &g, &auth, &rest);
        // What the builders recorded equals what a reader reads back from the bytes.
        let reread = captix::Ticket::parse(t.as_str(), &captix::KeySet::from(key().public())).expect("reparse");
        prop_assert_eq!(t.blocks().len(), reread.blocks().len());
        for (a, b) in t.blocks().iter().zip(reread.blocks()) {
            prop_assert_eq!(a.datalog(), b.datalog());
            prop_assert_eq!(&a.content, &b.content);
            prop_assert_eq!(&a.revocation_id, &b.revocation_id);
        }
        let compiled = Compiled::compile(&t).expect("vocabulary tickets compile");
        for c in &calls {
            let reference = t.authorize(c);
            let hot = compiled.check(c);
            match (&reference, &hot) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(a.filters(), b.filters());
                    prop_assert_eq!(a.budgets(), b.budgets());
                }
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "paths disagree on {:?}: {:?} vs {:?}", c, reference.err(), hot.err()),
            }
        }
    }
}
