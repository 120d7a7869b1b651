//! A block's Datalog as decoded from its signed bytes (spec §6.2): Biscuit's builder terms
//! with every string resolved through the symbol table, never Biscuit's printed text.
//!
//! > Biscuit prints string terms without escaping them, so a string holding `"` can print as
//! > Datalog that means something else. Descriptions are therefore compared with the decoded
//! > block (facts, rules, checks and scopes as terms), and the work bound (§7.2) is computed
//! > from the same decoded terms.

use biscuit_auth::builder::{BlockBuilder, Check, Convert, Fact, Op, Rule, Scope};
use biscuit_auth::datalog::SymbolTable;
use biscuit_auth::format::{convert::proto_block_to_token_block, schema};
use prost::Message;

/// The Datalog of one block, decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Decoded {
    pub facts: Vec<Fact>,
    pub rules: Vec<Rule>,
    pub checks: Vec<Check>,
    /// The block-level scopes (`trusting ...` on the whole block).
    pub scopes: Vec<Scope>,
    /// Symbols this block adds to the table its terms are read with, and their bytes.
    pub symbols: usize,
    pub symbol_bytes: usize,
    /// The block's signed `context` (where a captix block keeps its description).
    pub context: Option<String>,
}

impl Decoded {
    /// The decoded form of a block built by captix (the builder's parameters dropped, as
    /// decoding drops them), for comparison with a decoded block.
    pub(crate) fn of_builder(b: BlockBuilder) -> Self {
        Decoded {
            facts: b.facts.into_iter().map(normal_fact).collect(),
            rules: b.rules.into_iter().map(normal_rule).collect(),
            checks: b
                .checks
                .into_iter()
                .map(|c| Check {
                    queries: c.queries.into_iter().map(normal_rule).collect(),
                    kind: c.kind,
                })
                .collect(),
            scopes: b.scopes,
            symbols: 0,
            symbol_bytes: 0,
            context: None,
        }
    }

    /// The Datalog source in Biscuit's notation, as Biscuit prints a block: facts, rules,
    /// checks, each ending with `;` and a new line. For display only.
    /// A rule or check whose expressions Biscuit's printer cannot print (their operations do
    /// not form one value: a holder can sign any) is shown as such: the printer would panic.
    pub(crate) fn source(&self) -> String {
        let mut out = String::new();
        let rule = |r: &Rule| match r.expressions.iter().all(|e| printable(&e.ops)) {
            true => r.to_string(),
            false => "rule with an expression that does not print".to_string(),
        };
        let check = |c: &Check| match c
            .queries
            .iter()
            .all(|q| q.expressions.iter().all(|e| printable(&e.ops)))
        {
            true => c.to_string(),
            false => "check with an expression that does not print".to_string(),
        };
        let lines = self
            .facts
            .iter()
            .map(ToString::to_string)
            .chain(self.rules.iter().map(rule))
            .chain(self.checks.iter().map(check));
        for l in lines {
            out.push_str(&l);
            out.push_str(";\n");
        }
        out
    }

    /// True when `other` says this Datalog (facts, rules, checks, scopes, in order) followed by
    /// `unread` more checks: hand-written checks a build without a Datalog parser does not read
    /// (module `block`); 0 everywhere else.
    pub(crate) fn same_datalog(&self, other: &Decoded, unread: usize) -> bool {
        self.facts == other.facts
            && self.rules == other.rules
            && other.checks.len() == self.checks.len() + unread
            && other.checks.starts_with(&self.checks)
            && self.scopes == other.scopes
    }
}

/// Whether Biscuit's printer can print these operations: evaluated as a stack, every unary
/// operation has one value, every binary one two, every closure body prints, and one value is
/// left. (`Expression`'s `Display` unwraps the printer's `None` otherwise.)
fn printable(ops: &[Op]) -> bool {
    let mut depth = 0usize;
    for op in ops {
        depth = match op {
            Op::Value(_) => depth + 1,
            Op::Unary(_) if depth >= 1 => depth,
            Op::Binary(_) if depth >= 2 => depth - 1,
            Op::Closure(_, body) if printable(body) => depth + 1,
            Op::Unary(_) | Op::Binary(_) | Op::Closure(..) => return false,
        };
    }
    depth == 1
}

fn normal_fact(mut f: Fact) -> Fact {
    f.parameters = None;
    f
}

fn normal_rule(mut r: Rule) -> Rule {
    r.parameters = None;
    r.scope_parameters = None;
    r
}

/// Decodes every block of a token (authority first). Blocks signed by the token's keys share
/// one symbol table, extended block by block; a third-party block has its own (as in Biscuit).
pub(crate) fn decode_all(outer: &schema::Biscuit) -> Result<Vec<Decoded>, String> {
    let mut table = SymbolTable::new();
    let signed = std::iter::once(&outer.authority).chain(outer.blocks.iter());
    let mut out = Vec::with_capacity(outer.blocks.len() + 1);
    for (index, sb) in signed.enumerate() {
        let bad = |what: &str| format!("block {index}: {what}");
        let raw = schema::Block::decode(sb.block.as_slice()).map_err(|_| bad("does not decode"))?;
        let symbol_bytes = raw.symbols.iter().map(String::len).sum();
        let block = proto_block_to_token_block(&raw, None).map_err(|e| bad(&e.to_string()))?;
        let own;
        let symbols = if sb.external_signature.is_some() {
            own = block.symbols.clone();
            &own
        } else {
            table
                .extend(&block.symbols)
                .map_err(|e| bad(&e.to_string()))?;
            &table
        };
        let conv = |e: biscuit_auth::error::Format| bad(&e.to_string());
        let facts = convert(&block.facts, symbols).map_err(conv)?;
        let rules = convert(&block.rules, symbols).map_err(conv)?;
        let checks = convert(&block.checks, symbols).map_err(conv)?;
        let scopes = convert(&block.scopes, symbols).map_err(conv)?;
        out.push(Decoded {
            facts,
            rules,
            checks,
            scopes,
            symbols: raw.symbols.len(),
            symbol_bytes,
            context: raw.context,
        });
    }
    Ok(out)
}

/// Biscuit's decoded items as builder items, strings resolved through `symbols`.
fn convert<B: Convert<D>, D>(
    items: &[D],
    symbols: &SymbolTable,
) -> Result<Vec<B>, biscuit_auth::error::Format> {
    items.iter().map(|x| B::convert_from(x, symbols)).collect()
}

/// A block's decoded terms as JSON (spec §4.7, `spec/schema/datalog-vector.json`): what
/// another implementation's generator must produce, with no Datalog text involved.
#[cfg(feature = "test-util")]
pub(crate) mod json {
    use biscuit_auth::builder::{Check, CheckKind, Fact, Op, Predicate, Rule, Scope, Term};
    use serde_json::{json, Value};

    use super::Decoded;

    /// `CamelCase` Debug names as `snake_case` (`GreaterOrEqual` → `greater_or_equal`).
    fn snake(debug: &str) -> String {
        let mut out = String::new();
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    fn term(t: &Term) -> Value {
        match t {
            Term::Variable(v) => json!({ "variable": v }),
            Term::Integer(i) => json!({ "integer": i }),
            Term::Str(s) => json!({ "string": s }),
            Term::Date(d) => json!({ "date": d }),
            Term::Bytes(b) => json!({ "bytes": hex::encode(b) }),
            Term::Bool(b) => json!({ "bool": b }),
            Term::Set(s) => json!({ "set": s.iter().map(term).collect::<Vec<_>>() }),
            Term::Parameter(p) => json!({ "parameter": p }),
            Term::Null => json!({ "null": null }),
            Term::Array(a) => json!({ "array": a.iter().map(term).collect::<Vec<_>>() }),
            Term::Map(m) => json!({ "map": format!("{m:?}") }),
        }
    }

    fn op(o: &Op) -> Value {
        match o {
            Op::Value(t) => json!({ "value": term(t) }),
            Op::Unary(u) => json!({ "unary": snake(&format!("{u:?}")) }),
            Op::Binary(b) => json!({ "binary": snake(&format!("{b:?}")) }),
            Op::Closure(params, ops) => {
                json!({ "closure": { "params": params, "ops": ops.iter().map(op).collect::<Vec<_>>() } })
            }
        }
    }

    fn predicate(p: &Predicate) -> Value {
        json!({ "name": p.name, "terms": p.terms.iter().map(term).collect::<Vec<_>>() })
    }

    fn scope(s: &Scope) -> Value {
        Value::String(s.to_string())
    }

    fn rule(r: &Rule) -> Value {
        json!({
            "head": predicate(&r.head),
            "body": r.body.iter().map(predicate).collect::<Vec<_>>(),
            "expressions": r.expressions.iter().map(|e| e.ops.iter().map(op).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "scopes": r.scopes.iter().map(scope).collect::<Vec<_>>(),
        })
    }

    fn fact(f: &Fact) -> Value {
        predicate(&f.predicate)
    }

    fn check(c: &Check) -> Value {
        let kind = match c.kind {
            CheckKind::One => "one",
            CheckKind::All => "all",
            CheckKind::Reject => "reject",
        };
        json!({ "kind": kind, "queries": c.queries.iter().map(rule).collect::<Vec<_>>() })
    }

    /// The block as JSON: `{facts, rules, checks, scopes}`.
    pub(crate) fn block(d: &Decoded) -> Value {
        json!({
            "facts": d.facts.iter().map(fact).collect::<Vec<_>>(),
            "rules": d.rules.iter().map(rule).collect::<Vec<_>>(),
            "checks": d.checks.iter().map(check).collect::<Vec<_>>(),
            "scopes": d.scopes.iter().map(scope).collect::<Vec<_>>(),
        })
    }
}
