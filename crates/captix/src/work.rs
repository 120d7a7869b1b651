//! A static bound on the Datalog work of one call (spec §7.2).
//!
//! > Biscuit checks its time limit only between steps, so one step can run for minutes: a
//! > join of five predicates over sixty facts, three nested `.all()` closures over a
//! > 300-element array. Before any Datalog runs, a ticket that carries Datalog outside the
//! > vocabulary is charged, from its decoded terms and the call's ambient facts, an upper
//! > bound of the work Biscuit's evaluator can do: fact scans of every join level, every
//! > joined combination, and every expression operation, with closures multiplied by the
//! > length of what they iterate and strings by their bytes. Regular expressions are not
//! > charged but refused (compiling one is not bounded by its length). A call whose bound
//! > is over [`DATALOG_MAX_WORK`] is refused with `limits_exceeded` without running.
//!
//! The units are about a nanosecond each on the machine of the README's performance table;
//! `benches/benches/worst_case.rs` measures the most expensive tickets the bound admits.

use std::collections::HashSet;

use biscuit_auth::builder::{Binary, MapKey, Op, Predicate, Rule, Term, Unary};

use crate::call::Call;
use crate::limits::{DATALOG_MAX_FACTS, DATALOG_MAX_ITERATIONS, DATALOG_MAX_WORK};
use crate::ticket::BlockView;

/// Work units of each step of Biscuit's evaluator (about a nanosecond each, measured).
mod unit {
    /// One fact tested against one predicate of a join (with the partial bindings cloned).
    pub const FACT_SCAN: u64 = 40;
    /// One joined combination: its bindings completed and its expressions started.
    pub const COMBINATION: u64 = 300;
    /// One expression operation on scalars.
    pub const OP: u64 = 20;
    /// One term cloned, compared or hashed inside a value.
    pub const ELEMENT: u64 = 10;
    /// One byte of a string read.
    pub const BYTE: u64 = 1;
    /// One symbol compared when a new string is interned (a linear search in Biscuit).
    pub const SYMBOL: u64 = 5;
    /// Factor for ordered-set operations (a search per element).
    pub const SET: u64 = 16;
}

/// Symbols every Biscuit symbol table starts with, and a bound on their bytes.
const DEFAULT_SYMBOLS: u64 = 32;
const DEFAULT_SYMBOL_BYTES: u64 = 256;

/// The work bound of this call, in units: 0 when every block is a vocabulary block (no
/// hand-written or foreign Datalog: its cost is bounded by the ticket's size limits alone);
/// `Err` with the reason when a construct cannot be bounded (a regular expression).
pub(crate) fn bound(blocks: &[BlockView], call: &Call) -> Result<u64, String> {
    let vocabulary = blocks
        .iter()
        .all(|b| b.description().is_some_and(|d| d.checks.is_empty()));
    if vocabulary {
        return Ok(0);
    }
    let world = World::new(blocks, call);
    let mut work = 0u64;
    for b in blocks {
        let d = &b.decoded;
        for r in &d.rules {
            let q = world
                .query(r)
                .map_err(|e| format!("block {}: {e}", b.index))?;
            work = work.saturating_add(q.saturating_mul(DATALOG_MAX_ITERATIONS));
        }
        for c in &d.checks {
            for r in &c.queries {
                let q = world
                    .query(r)
                    .map_err(|e| format!("block {}: {e}", b.index))?;
                work = work.saturating_add(q);
            }
        }
    }
    Ok(work)
}

/// The work bound as a denial reason when it is over the limit (or cannot be computed).
pub(crate) fn over_limit(blocks: &[BlockView], call: &Call) -> Option<String> {
    match bound(blocks, call) {
        Ok(w) if w <= DATALOG_MAX_WORK => None,
        Ok(w) => Some(format!(
            "the ticket's Datalog could need {w} units of work for this call, over the limit \
             of {DATALOG_MAX_WORK}"
        )),
        Err(e) => Some(e),
    }
}

/// A value's size as the evaluator sees it.
#[derive(Clone, Copy, Debug, Default)]
struct Size {
    /// Terms it holds, itself included (what a clone or a comparison touches).
    elems: u64,
    /// Bytes of its longest string (what a string operation reads).
    bytes: u64,
}

impl Size {
    const SCALAR: Size = Size { elems: 1, bytes: 0 };

    fn of(t: &Term) -> Size {
        let nested = |it: &mut dyn Iterator<Item = Size>| {
            it.fold(Size::SCALAR, |acc, s| Size {
                elems: acc.elems.saturating_add(s.elems),
                bytes: acc.bytes.max(s.bytes),
            })
        };
        match t {
            Term::Str(s) => Size {
                elems: 1,
                bytes: s.len() as u64,
            },
            Term::Bytes(b) => Size {
                elems: 1 + b.len() as u64 / 8,
                bytes: b.len() as u64,
            },
            Term::Set(s) => nested(&mut s.iter().map(Size::of)),
            Term::Array(a) => nested(&mut a.iter().map(Size::of)),
            Term::Map(m) => nested(&mut m.iter().map(|(k, v)| {
                let k = match k {
                    MapKey::Str(s) => s.len() as u64,
                    MapKey::Integer(_) | MapKey::Parameter(_) => 0,
                };
                let v = Size::of(v);
                Size {
                    elems: v.elems.saturating_add(1),
                    bytes: v.bytes.max(k),
                }
            })),
            _ => Size::SCALAR,
        }
    }

    fn max(self, o: Size) -> Size {
        Size {
            elems: self.elems.max(o.elems),
            bytes: self.bytes.max(o.bytes),
        }
    }
}

/// What the bound knows of the facts a query can see.
struct World<'a> {
    facts: Vec<&'a Predicate>,
    heads: HashSet<(&'a str, usize)>,
    /// Facts a join level scans: stated, ambient, and derived when rules exist.
    scanned: u64,
    /// The largest value a variable (or a closure parameter) can hold.
    var: Size,
    /// Symbols in the tables strings are interned against, and their bytes.
    symbols: u64,
    symbol_bytes: u64,
    args: u64,
}

impl<'a> World<'a> {
    fn new(blocks: &'a [BlockView], call: &Call) -> Self {
        let mut facts = Vec::new();
        let mut heads = HashSet::new();
        let mut var = Size::SCALAR;
        let (mut symbols, mut symbol_bytes) = (DEFAULT_SYMBOLS, DEFAULT_SYMBOL_BYTES);
        for b in blocks {
            let d = &b.decoded;
            symbols = symbols.saturating_add(d.symbols as u64);
            symbol_bytes = symbol_bytes.saturating_add(d.symbol_bytes as u64);
            for f in &d.facts {
                facts.push(&f.predicate);
                var = f.predicate.terms.iter().map(Size::of).fold(var, Size::max);
            }
            let rules = d
                .rules
                .iter()
                .chain(d.checks.iter().flat_map(|c| &c.queries));
            for r in rules {
                var = rule_terms(r).map(Size::of).fold(var, Size::max);
            }
            for r in &d.rules {
                heads.insert((r.head.name.as_str(), r.head.terms.len()));
            }
        }
        let args = call.args.leaves().len() as u64;
        for (_, v) in call.args.leaves() {
            if let crate::Scalar::Str(s) = v {
                var.bytes = var.bytes.max(s.len() as u64);
            }
        }
        var.bytes = var
            .bytes
            .max(call.target.name().len() as u64)
            .max(call.resource.as_ref().map_or(0, |r| r.len() as u64));
        // A closure over a map binds [key, value]: two terms more than any value.
        var.elems = var.elems.saturating_add(2);
        let derived = if heads.is_empty() {
            0
        } else {
            DATALOG_MAX_FACTS
        };
        let scanned = (facts.len() as u64)
            .saturating_add(4 + args)
            .saturating_add(derived);
        World {
            facts,
            heads,
            scanned,
            var,
            symbols,
            symbol_bytes,
            args,
        }
    }

    /// Facts a predicate can match: stated facts of the same name and arity whose constants
    /// agree, the call's ambient facts (§3.1), and every derivable fact when a rule can
    /// produce the predicate.
    fn candidates(&self, p: &Predicate) -> u64 {
        let stated = self.facts.iter().filter(|f| matches(p, f)).count() as u64;
        let ambient = match (p.name.as_str(), p.terms.as_slice()) {
            ("tool" | "uri" | "prompt" | "time" | "method" | "resource", [_]) => 1,
            // arg facts have unique pointers
            ("arg", [pointer, _]) if is_constant(pointer) => 1,
            ("arg", [_, _]) => self.args,
            _ => 0,
        };
        let derived = if self.heads.contains(&(p.name.as_str(), p.terms.len())) {
            DATALOG_MAX_FACTS
        } else {
            0
        };
        stated.saturating_add(ambient).saturating_add(derived)
    }

    /// The work of one rule or check query, evaluated once.
    fn query(&self, r: &Rule) -> Result<u64, String> {
        let vars = variables(r).max(1);
        let bindings = unit::ELEMENT.saturating_mul(vars.saturating_mul(self.var.elems));
        // Join level i scans every fact once per partial match of the levels before it.
        let (mut scans, mut partial) = (0u64, 1u64);
        for p in &r.body {
            scans = scans.saturating_add(partial.saturating_mul(self.scanned));
            partial = partial.saturating_mul(self.candidates(p));
        }
        let mut expr = Cost::default();
        for e in &r.expressions {
            if has_regex(&e.ops) {
                return Err(REGEX.into());
            }
            expr.add(self.ops(&e.ops, vars)?);
        }
        let per_combination = unit::COMBINATION
            .saturating_add(bindings)
            .saturating_add(expr.work)
            .saturating_add(self.interning(expr.inserts, expr.insert_bytes));
        Ok(scans
            .saturating_mul(unit::FACT_SCAN.saturating_add(bindings))
            .saturating_add(partial.saturating_mul(per_combination)))
    }

    /// Interning `n` new strings of at most `bytes` each: each insert searches the token's
    /// table and the strings interned before it (Biscuit's `TemporarySymbolTable`).
    fn interning(&self, n: u64, bytes: u64) -> u64 {
        let table = self.symbols.saturating_add(n);
        let table_bytes = self.symbol_bytes.saturating_add(n.saturating_mul(bytes));
        n.saturating_mul(
            unit::SYMBOL
                .saturating_mul(table)
                .saturating_add(unit::BYTE.saturating_mul(table_bytes)),
        )
    }

    /// The cost of evaluating these operations once (an abstract run of Biscuit's stack
    /// machine on sizes instead of values).
    fn ops(&self, ops: &[Op], vars: u64) -> Result<Cost, String> {
        enum Slot<'o> {
            Value(Size),
            Closure(usize, &'o [Op]),
        }
        let mut stack: Vec<Slot<'_>> = Vec::new();
        let mut cost = Cost::default();
        let pop = |stack: &mut Vec<Slot<'_>>| match stack.pop() {
            Some(Slot::Value(s)) => s,
            _ => Size::SCALAR,
        };
        for op in ops {
            match op {
                Op::Value(t) => {
                    let s = match t {
                        Term::Variable(_) | Term::Parameter(_) => self.var,
                        t => Size::of(t),
                    };
                    cost.work(unit::ELEMENT.saturating_mul(s.elems));
                    stack.push(Slot::Value(s));
                }
                Op::Unary(u) => {
                    let v = pop(&mut stack);
                    cost.work(unit::OP);
                    let out = match u {
                        Unary::TypeOf => {
                            cost.intern(1, 8);
                            Size::SCALAR
                        }
                        Unary::Negate | Unary::Parens => v,
                        Unary::Length | Unary::Ffi(_) => Size::SCALAR,
                    };
                    stack.push(Slot::Value(out));
                }
                Op::Closure(params, body) => stack.push(Slot::Closure(params.len(), body)),
                Op::Binary(b) => {
                    // Biscuit runs a closure on either side of a binary operation, the other
                    // side being what it iterates (`E.try_or(F)` puts the closure on the left).
                    let (right, left) = (stack.pop(), stack.pop());
                    let (r, l) = match (right, left) {
                        (Some(Slot::Closure(params, body)), Some(Slot::Value(v)))
                        | (Some(Slot::Value(v)), Some(Slot::Closure(params, body))) => {
                            cost.add(self.closure(b, params, body, v, vars)?);
                            stack.push(Slot::Value(Size::SCALAR));
                            continue;
                        }
                        (Some(Slot::Value(r)), Some(Slot::Value(l))) => (r, l),
                        // Two closures, or a missing operand: Biscuit stops with an error.
                        _ => {
                            cost.work(unit::OP);
                            stack.push(Slot::Value(Size::SCALAR));
                            continue;
                        }
                    };
                    let both = Size {
                        elems: l.elems.saturating_add(r.elems),
                        bytes: l.bytes.saturating_add(r.bytes),
                    };
                    let linear = unit::OP
                        .saturating_add(unit::ELEMENT.saturating_mul(both.elems))
                        .saturating_add(unit::BYTE.saturating_mul(both.bytes));
                    let out = match b {
                        Binary::Regex => return Err(REGEX.into()),
                        Binary::Add => {
                            cost.work(linear);
                            cost.intern(1, both.bytes);
                            Size {
                                elems: 1,
                                bytes: both.bytes,
                            }
                        }
                        Binary::Union | Binary::Intersection | Binary::Contains => {
                            cost.work(linear.saturating_mul(unit::SET));
                            match b {
                                Binary::Union => both,
                                Binary::Intersection => l.max(r),
                                _ => Size::SCALAR,
                            }
                        }
                        Binary::Get => {
                            cost.work(linear);
                            l
                        }
                        _ => {
                            cost.work(linear);
                            Size::SCALAR
                        }
                    };
                    stack.push(Slot::Value(out));
                }
            }
        }
        Ok(cost)
    }

    /// A closure: `&&`, `||` and `.try_or()` run their body at most once; `.all()` and
    /// `.any()` once per element of the receiver. Each run clones the body's operations and
    /// the bound variables (as Biscuit does).
    fn closure(
        &self,
        b: &Binary,
        params: usize,
        body: &[Op],
        receiver: Size,
        vars: u64,
    ) -> Result<Cost, String> {
        let runs = match (b, params) {
            (Binary::LazyAnd | Binary::LazyOr | Binary::TryOr, 0) => 1,
            (Binary::All | Binary::Any, 1) => receiver.elems,
            // Biscuit refuses any other combination before running the body.
            _ => {
                let mut c = Cost::default();
                c.work(unit::OP);
                return Ok(c);
            }
        };
        let inner = self.ops(body, vars.saturating_add(1))?;
        let per_run = inner
            .work
            .saturating_add(unit::ELEMENT.saturating_mul(ops_elems(body)))
            .saturating_add(unit::ELEMENT.saturating_mul(self.var.elems));
        let mut c = Cost::default();
        c.work(
            unit::ELEMENT
                .saturating_mul(vars.saturating_add(1).saturating_mul(self.var.elems))
                .saturating_add(runs.saturating_mul(per_run)),
        );
        c.inserts = inner.inserts.saturating_mul(runs);
        c.insert_bytes = inner.insert_bytes;
        Ok(c)
    }
}

const REGEX: &str = "a regular expression (`.matches()`) cannot be bounded: hand-written and \
                     foreign Datalog may not use one";

/// True when the operations, closures included, use a regular expression anywhere.
fn has_regex(ops: &[Op]) -> bool {
    ops.iter().any(|op| match op {
        Op::Binary(Binary::Regex) => true,
        Op::Closure(_, body) => has_regex(body),
        _ => false,
    })
}

/// Work of an expression, and the strings it interns.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    work: u64,
    inserts: u64,
    insert_bytes: u64,
}

impl Cost {
    fn work(&mut self, w: u64) {
        self.work = self.work.saturating_add(w);
    }

    fn intern(&mut self, n: u64, bytes: u64) {
        self.inserts = self.inserts.saturating_add(n);
        self.insert_bytes = self.insert_bytes.max(bytes);
    }

    fn add(&mut self, o: Cost) {
        self.work(o.work);
        self.intern(o.inserts, o.insert_bytes);
    }
}

/// Terms in a list of operations, closures included (what cloning them touches).
fn ops_elems(ops: &[Op]) -> u64 {
    ops.iter().fold(0u64, |acc, op| {
        acc.saturating_add(match op {
            Op::Value(t) => Size::of(t).elems,
            Op::Closure(_, body) => ops_elems(body).saturating_add(1),
            _ => 1,
        })
    })
}

/// Every term of a rule: head, body and expression literals.
fn rule_terms(r: &Rule) -> impl Iterator<Item = &Term> {
    fn op_terms<'o>(ops: &'o [Op], out: &mut Vec<&'o Term>) {
        for op in ops {
            match op {
                Op::Value(t) => out.push(t),
                Op::Closure(_, body) => op_terms(body, out),
                _ => {}
            }
        }
    }
    let mut exprs = Vec::new();
    for e in &r.expressions {
        op_terms(&e.ops, &mut exprs);
    }
    r.head
        .terms
        .iter()
        .chain(r.body.iter().flat_map(|p| p.terms.iter()))
        .chain(exprs)
}

/// Distinct variables of a rule (what each binding map holds).
fn variables(r: &Rule) -> u64 {
    let names: HashSet<&str> = rule_terms(r)
        .filter_map(|t| match t {
            Term::Variable(v) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    names.len() as u64
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
