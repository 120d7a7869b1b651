//! How a warm check's cost grows with the ticket's depth (issue 18: 8 blocks within 1.5× of
//! 1 block), measured in pairs: a batch of warm checks of the 1-block ticket and a batch of
//! the 8-block one, alternately, in one loop, so that the machine's drift between benchmark
//! groups cancels out. Prints the median time per check of each and the median of the
//! paired ratios. `./scripts/bench` runs it after the criterion groups.
//!
//!     cargo bench -p captix-benches --bench depth [-- ROUNDS]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use captix::budget::MemoryBudgets;
use captix::{KeySet, Ticket, Verifier};

use support::chain::{call, chain, root, RES};

mod support {
    pub mod chain;
}

/// Checks per timed batch: long enough that the clock's cost is noise, short enough that an
/// interrupt spoils few samples.
const BATCH: u32 = 200;

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let keys = KeySet::from(root().public());
    let call = call();
    let warm = |t: &Ticket| {
        let v = Verifier::builder(keys.clone())
            .resource(RES)
            .budgets(Arc::new(MemoryBudgets::new()))
            .build();
        v.check(t.as_str(), &call).expect("first sight");
        v
    };
    let (one, eight) = (chain(1), chain(8));
    let (v1, v8) = (warm(&one), warm(&eight));
    let batch = |v: &Verifier, t: &Ticket| {
        let began = Instant::now();
        for _ in 0..BATCH {
            black_box(v.check(black_box(t.as_str()), black_box(&call))).expect("allowed");
        }
        began.elapsed().as_nanos() as f64 / f64::from(BATCH)
    };
    for _ in 0..200 {
        batch(&v1, &one);
        batch(&v8, &eight);
    }
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        // Alternate which goes first, so neither side always follows the other.
        let (x, y) = if i % 2 == 0 {
            let x = batch(&v1, &one);
            (x, batch(&v8, &eight))
        } else {
            let y = batch(&v8, &eight);
            (batch(&v1, &one), y)
        };
        a.push(x);
        b.push(y);
        ratio.push(y / x);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (x, y, r) = (median(&mut a), median(&mut b), median(&mut ratio));
    println!(
        "depth: {rounds} pairs of {BATCH} warm checks; median {x:.0} ns a check at 1 block \
         ({} bytes), {y:.0} ns at 8 blocks ({} bytes); median paired ratio {r:.2}x (goal: at \
         most 1.5x)",
        one.as_str().len(),
        eight.as_str().len()
    );
}
