//! Fixed, repeatable sequences for the store tests: a xorshift64 step, and the subset of a
//! chain's budgets a step spends.
#![allow(dead_code)] // each test binary uses a part of it

use captix::budget::BudgetKey;

/// The next number of a xorshift64 sequence.
pub fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The budgets whose bit (from bit 8 of `seed`, one per position) is set.
pub fn pick(keys: &[BudgetKey], seed: u64) -> Vec<BudgetKey> {
    keys.iter()
        .enumerate()
        .filter(|(i, _)| (seed >> (8 + i)) & 1 == 1)
        .map(|(_, k)| k.clone())
        .collect()
}
