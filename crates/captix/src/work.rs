//! A static bound on the Datalog work of a ticket (spec §7.2).
//!
//! Biscuit's run limits count facts and iterations, and check the time only between steps: a
//! single check that joins five predicates over sixty facts (60^5 combinations) runs for
//! minutes. So before any Datalog runs, every rule and check query of a ticket that carries
//! Datalog outside the vocabulary is bounded by the product of the facts each of its
//! predicates could match; rules count once per iteration. A ticket over
//! [`DATALOG_MAX_WORK`] is cut off with `limits_exceeded` without running. Vocabulary blocks
//! (generated checks of one predicate, no rules) never come near it.

use std::collections::HashSet;

use biscuit_parser::builder::{Predicate, Term};

use crate::limits::{DATALOG_MAX_FACTS, DATALOG_MAX_ITERATIONS, DATALOG_MAX_WORK, MAX_ARGS_LEAVES};
use crate::ticket::BlockView;

/// The bound for these blocks: 0 when every block is a vocabulary block (no hand-written or
/// foreign Datalog); `Err` when a block's printed Datalog does not parse back.
pub(crate) fn bound(blocks: &[BlockView]) -> Result<u64, String> {
    let vocabulary = blocks
        .iter()
        .all(|b| b.description().is_some_and(|d| d.checks.is_empty()));
    if vocabulary {
        return Ok(0);
    }
    let mut facts: Vec<Predicate> = Vec::new();
    let mut heads: HashSet<(String, usize)> = HashSet::new();
    let mut queries: Vec<(Vec<Predicate>, bool)> = Vec::new(); // (body, is a rule)
    for b in blocks {
        let source = biscuit_parser::parser::parse_block_source(&b.datalog)
            .map_err(|_| format!("block {}: its Datalog could not be read back", b.index))?;
        facts.extend(source.facts.into_iter().map(|(_, f)| f.predicate));
        for (_, r) in source.rules {
            heads.insert((r.head.name.clone(), r.head.terms.len()));
            queries.push((r.body, true));
        }
        for (_, c) in source.checks {
            queries.extend(c.queries.into_iter().map(|q| (q.body, false)));
        }
    }
    let candidates = |p: &Predicate| -> u64 {
        let stated = facts.iter().filter(|f| matches(p, f)).count() as u64;
        let derived = if heads.contains(&(p.name.clone(), p.terms.len())) {
            DATALOG_MAX_FACTS
        } else {
            0
        };
        stated + ambient(p) + derived
    };
    let mut work = 0u64;
    for (body, rule) in &queries {
        let joins = body
            .iter()
            .fold(1u64, |acc, p| acc.saturating_mul(candidates(p)));
        let runs = if *rule { DATALOG_MAX_ITERATIONS } else { 1 };
        work = work.saturating_add(joins.saturating_mul(runs));
    }
    Ok(work)
}

/// The work bound as a denial reason when it is over the limit.
pub(crate) fn over_limit(blocks: &[BlockView]) -> Option<String> {
    match bound(blocks) {
        Ok(w) if w <= DATALOG_MAX_WORK => None,
        Ok(w) => Some(format!(
            "the ticket's Datalog could need {w} rule evaluations, over the limit of \
             {DATALOG_MAX_WORK}"
        )),
        Err(e) => Some(e),
    }
}

/// True when the stated fact can match the predicate: same name and arity, equal constants.
fn matches(p: &Predicate, fact: &Predicate) -> bool {
    p.name == fact.name
        && p.terms.len() == fact.terms.len()
        && p.terms
            .iter()
            .zip(&fact.terms)
            .all(|(a, b)| !is_constant(a) || a == b)
}

fn is_constant(t: &Term) -> bool {
    !matches!(t, Term::Variable(_) | Term::Parameter(_))
}

/// The most ambient facts of a call (spec §3.1) the predicate can match: one `tool`, `time`,
/// `method` and `resource` each; `arg` facts have unique pointers, so one when the pointer is
/// a constant, else every leaf.
fn ambient(p: &Predicate) -> u64 {
    match (p.name.as_str(), p.terms.as_slice()) {
        ("tool" | "time" | "method" | "resource", [_]) => 1,
        ("arg", [pointer, _]) if is_constant(pointer) => 1,
        ("arg", [_, _]) => MAX_ARGS_LEAVES as u64,
        _ => 0,
    }
}
