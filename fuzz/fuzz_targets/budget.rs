//! Budgets against a holder who attenuates, waits and restarts (spec §10.3): a fixed family
//! of tickets (a parent with a lifetime budget, children that expire soon or late, some with
//! budgets of their own, windowed and lifetime), presented in any order at moving times, with
//! sweeps, cache evictions and restarts (the store saved and loaded) in between. Input: one
//! operation per two bytes. Oracle: no budget ever admits more calls than it allows, counting
//! every ticket that holds its block: a lifetime budget in total, a windowed one as a GCRA
//! (a burst, then a steady rate).
#![no_main]

use std::sync::{Arc, OnceLock};

use captix::budget::MemoryBudgets;
use captix::{Call, Ticket, Verifier};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::NOW;

/// A budget on the family's chains: declared by `block` of `owners`' chains.
struct Limit {
    max: usize,
    window: u64,
    /// Indexes of the tickets whose chains hold the declaring block.
    holders: Vec<usize>,
}

struct Family {
    tickets: Vec<Ticket>,
    limits: Vec<Limit>,
}

fn family() -> &'static Family {
    static F: OnceLock<Family> = OnceLock::new();
    F.get_or_init(|| {
        let k = common::root();
        let parent = Ticket::mint(&k, "fuzz", "budget")
            .tool("t")
            .budget("3".parse().expect("b"))
            .expires_at(NOW + 1000)
            .sign()
            .expect("parent");
        let at = |t: &Ticket, expires: u64, budget: Option<&str>| {
            let a = t.attenuate().expires_at(NOW + expires);
            match budget {
                Some(b) => a.budget(b.parse().expect("b")),
                None => a,
            }
            .sign()
            .expect("child")
        };
        let short = at(&parent, 2, None); // 1
        let windowed = at(&parent, 40, Some("2/10s")); // 2
        let grandchild = at(&windowed, 3, Some("1")); // 3
        let long = at(&parent, 5000, Some("5/60s")); // 4
        let deep = at(&short, 1, None); // 5
        let tickets = vec![parent, short, windowed, grandchild, long, deep];
        let limits = vec![
            Limit {
                max: 3,
                window: 0,
                holders: vec![0, 1, 2, 3, 4, 5],
            },
            Limit {
                max: 2,
                window: 10,
                holders: vec![2, 3],
            },
            Limit {
                max: 1,
                window: 0,
                holders: vec![3],
            },
            Limit {
                max: 5,
                window: 60,
                holders: vec![4],
            },
        ];
        Family { tickets, limits }
    })
}

fn verifier(store: &Arc<MemoryBudgets>) -> Verifier {
    Verifier::builder(common::keys())
        .budgets(store.clone())
        .cache_bytes(64 * 8192)
        .build()
}

fuzz_target!(|data: &[u8]| {
    let f = family();
    let path = std::env::temp_dir().join(format!("captix-fuzz-budget-{}", std::process::id()));
    let mut store = Arc::new(MemoryBudgets::new());
    let mut v = verifier(&store);
    let mut now = NOW;
    let mut allowed: Vec<(usize, u64)> = Vec::new(); // (ticket, time)
    for op in data.chunks_exact(2) {
        let (what, arg) = (op[0], op[1] as u64);
        match what % 8 {
            // Time moves on by 0 to 63 seconds (it never goes back).
            0 => now += arg % 64,
            1 => {
                store.sweep(now);
            }
            2 => {
                v.evict_expired(now);
            }
            // A restart: the state saved and loaded, a new verifier.
            3 => {
                drop(v);
                store.sweep(now);
                store.save(&path, now).expect("save");
                store = Arc::new(MemoryBudgets::load(&path).expect("load"));
                v = verifier(&store);
            }
            _ => {
                let i = arg as usize % f.tickets.len();
                let call = Call::new("t", "{}").expect("call").at(now);
                if v.check(f.tickets[i].as_str(), &call).is_ok() {
                    allowed.push((i, now));
                }
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    for l in &f.limits {
        let calls: Vec<u64> = allowed
            .iter()
            .filter(|(i, _)| l.holders.contains(i))
            .map(|(_, t)| *t)
            .collect();
        if l.window == 0 {
            assert!(calls.len() <= l.max, "lifetime {}: {calls:?}", l.max);
        } else {
            // GCRA (spec §10.3): a burst of `max`, then one call every window/max seconds:
            // calls i..=j (in time order) number at most max + floor((t_j − t_i)·max/window).
            for i in 0..calls.len() {
                for j in i..calls.len() {
                    let refills = (calls[j] - calls[i]) * l.max as u64 / l.window;
                    assert!(
                        (j - i + 1) as u64 <= l.max as u64 + refills,
                        "{} per {}s: {calls:?}",
                        l.max,
                        l.window
                    );
                }
            }
        }
    }
});
