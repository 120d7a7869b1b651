//! One home for what a restriction means (spec §4.3–§4.7, §6.3, §6.5): its kind, its class in
//! the decision's precedence, its denial code, its native evaluation, its Datalog check, its
//! wording and its denial, and the precedence walk every path uses. Every match on a
//! restriction here is exhaustive, and none is written anywhere else: a new kind does not
//! compile until each of these says what it means.

use std::fmt;

use biscuit_auth::builder::{
    self, date, int, pred, string, var, Binary, Check, CheckKind, Expression, Op, Rule, Term, Unary,
};

use crate::args::Scalar;
use crate::call::{Call, Target, PROMPTS_GET, RESOURCES_READ, TOOLS_CALL};
use crate::error::{Code, Denial, Error};
use crate::forms::{Constraint, RowFilter, ToolSel};
use crate::time::rfc3339;
use crate::uri;

/// One restriction of a block, in the order of the block's Datalog checks (spec §4.7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restriction {
    /// Not valid before this time.
    NotBefore(u64),
    /// Not valid from this time on.
    Expires(u64),
    /// Valid only for this resource.
    Resource(String),
    /// Only these tools (for tool calls).
    Tools(Vec<String>),
    /// A row filter (for tool calls).
    Row(RowFilter),
    /// Only the resources these URI patterns admit (for resource reads, spec §4.11).
    Uris(Vec<String>),
    /// Only these prompts (for prompt requests).
    Prompts(Vec<String>),
    /// A hand-written Datalog check.
    Datalog(String),
}

impl Restriction {
    /// Where this restriction stands in the decision's precedence (spec §6.3).
    pub fn class(&self) -> Class {
        match self {
            Restriction::NotBefore(_) | Restriction::Expires(_) | Restriction::Resource(_) => {
                Class::Validity
            }
            Restriction::Tools(_)
            | Restriction::Row(_)
            | Restriction::Uris(_)
            | Restriction::Prompts(_)
            | Restriction::Datalog(_) => Class::Call,
        }
    }

    /// True for the restrictions that say whether the ticket is valid at all, whatever the call
    /// (time and audience): their denials take precedence (spec §6.3).
    pub fn is_validity(&self) -> bool {
        self.class() == Class::Validity
    }

    /// Heap bytes held, the value itself included (an estimate, for cache accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + match self {
                Restriction::NotBefore(_) | Restriction::Expires(_) => 0,
                Restriction::Resource(s) | Restriction::Datalog(s) => s.len() + 8,
                Restriction::Tools(t) | Restriction::Uris(t) | Restriction::Prompts(t) => {
                    t.iter().map(|n| n.len() + 32).sum()
                }
                Restriction::Row(f) => f.heap_bytes(),
            }
    }

    /// The denial code when this restriction fails.
    pub fn code(&self) -> Code {
        match self {
            Restriction::NotBefore(_) => Code::NotYetValid,
            Restriction::Expires(_) => Code::Expired,
            Restriction::Resource(_) => Code::WrongResource,
            Restriction::Tools(_) => Code::ToolNotGranted,
            Restriction::Row(_) => Code::ArgDenied,
            Restriction::Uris(_) => Code::UriNotGranted,
            Restriction::Prompts(_) => Code::PromptNotGranted,
            Restriction::Datalog(_) => Code::CheckFailed,
        }
    }
}

impl fmt::Display for Restriction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restriction::NotBefore(t) => write!(f, "not before {}", rfc3339(*t)),
            Restriction::Expires(t) => write!(f, "expires {}", rfc3339(*t)),
            Restriction::Resource(r) => write!(f, "resource {r}"),
            Restriction::Tools(t) => write!(f, "tools [{}]", t.join(", ")),
            Restriction::Row(r) => write!(f, "row {r}"),
            Restriction::Uris(u) => write!(f, "uris [{}]", u.join(", ")),
            Restriction::Prompts(p) => write!(f, "prompts [{}]", p.join(", ")),
            Restriction::Datalog(c) => write!(f, "datalog `{c}`"),
        }
    }
}

impl Restriction {
    /// The Datalog check of this restriction (spec §4.7).
    pub(crate) fn check(&self) -> Result<Check, Error> {
        check_of(self)
    }

    /// Evaluates the call against this restriction natively (spec §6.5): `Some(true)` when it
    /// holds, `Some(false)` when it fails, `None` for a hand-written check, which only Datalog
    /// evaluates. `resource` is the resource the call is checked against (the verifier's).
    pub(crate) fn evaluate(&self, call: &Call, resource: Option<&str>) -> Option<bool> {
        Some(match self {
            Restriction::NotBefore(t) => call.time >= *t,
            Restriction::Expires(t) => call.time < *t,
            Restriction::Resource(uri) => resource == Some(uri.as_str()),
            // Each of these restricts its own method and holds for the others.
            Restriction::Tools(names) => match &call.target {
                Target::Tool(t) => names.contains(t),
                Target::Uri(_) | Target::Prompt(_) => true,
            },
            Restriction::Row(f) => match &call.target {
                Target::Tool(t) => {
                    !f.tool.covers(t)
                        || call
                            .args
                            .get(&f.arg)
                            .is_some_and(|v| f.constraint.admits(v))
                }
                Target::Uri(_) | Target::Prompt(_) => true,
            },
            Restriction::Uris(patterns) => match &call.target {
                Target::Uri(u) => patterns.iter().any(|p| uri::admits(p, u)),
                Target::Tool(_) | Target::Prompt(_) => true,
            },
            Restriction::Prompts(names) => match &call.target {
                Target::Prompt(p) => names.contains(p),
                Target::Tool(_) | Target::Uri(_) => true,
            },
            Restriction::Datalog(_) => return None,
        })
    }

    /// Whether the call satisfies this restriction, natively; a hand-written check never does
    /// here (tickets that carry one take the reference path).
    pub(crate) fn holds(&self, call: &Call, resource: Option<&str>) -> bool {
        self.evaluate(call, resource) == Some(true)
    }

    /// Whether the call fails this restriction, natively: what every precedence walk asks. A
    /// hand-written check is not failed here (only Datalog evaluates it).
    pub(crate) fn fails(&self, call: &Call, resource: Option<&str>) -> bool {
        self.evaluate(call, resource) == Some(false)
    }

    /// What the compiled path's fast accept makes of this restriction (spec §6.5): a
    /// call-independent bound it folds into one comparison, or a check it runs per call.
    pub(crate) fn fast(&self) -> Fast<'_> {
        match self {
            Restriction::NotBefore(t) => Fast::From(*t),
            Restriction::Expires(t) => Fast::Until(*t),
            Restriction::Resource(uri) => Fast::Audience(uri),
            Restriction::Tools(names) => Fast::ToolList(names),
            Restriction::Row(_) | Restriction::Datalog(_) => Fast::PerCall,
            Restriction::Uris(_) | Restriction::Prompts(_) => Fast::NotForTools,
        }
    }

    /// The denial when this restriction fails for `call`, worded the same on every path.
    /// `resource` is the resource the call was checked against (the verifier's, when it has
    /// one).
    pub(crate) fn denial(&self, block: usize, call: &Call, resource: Option<&str>) -> Denial {
        let what = match self {
            Restriction::NotBefore(_) => format!("the ticket is not valid yet ({self})"),
            Restriction::Expires(_) => format!("the ticket has expired ({self})"),
            Restriction::Resource(_) => format!(
                "the ticket is for another resource ({self}; this server is {})",
                resource.unwrap_or("unnamed")
            ),
            Restriction::Tools(_) | Restriction::Uris(_) | Restriction::Prompts(_) => {
                format!("{} is not allowed ({self})", call.target)
            }
            Restriction::Row(f) => match call.args.get(&f.arg) {
                None => format!("argument {} is missing ({self})", f.arg),
                Some(v) if !same_type(&f.constraint, v) => {
                    format!("argument {} is a {} ({self})", f.arg, v.type_name())
                }
                Some(_) => format!("argument {} is not allowed ({self})", f.arg),
            },
            Restriction::Datalog(_) => format!("a hand-written check failed ({self})"),
        };
        Denial::new(self.code(), format!("block {block}: {what}")).at(block, self.to_string())
    }
}

fn same_type(c: &Constraint, v: &Scalar) -> bool {
    match c {
        Constraint::Eq(x) => x.type_name() == v.type_name(),
        Constraint::OneOf(s) => s.first().is_some_and(|x| x.type_name() == v.type_name()),
        Constraint::Prefix(_) => matches!(v, Scalar::Str(_)),
        Constraint::Range { .. } => matches!(v, Scalar::Int(_)),
    }
}

/// The denial for a call of a target the authority block does not grant (spec §6.3).
pub(crate) fn not_granted(target: &Target) -> Denial {
    let code = match target {
        Target::Tool(_) => Code::ToolNotGranted,
        Target::Uri(_) => Code::UriNotGranted,
        Target::Prompt(_) => Code::PromptNotGranted,
    };
    Denial::new(code, format!("block 0: the ticket does not grant {target}")).at(0, "grants")
}

/// Where a restriction stands in the decision's precedence (spec §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Whether the ticket is valid at all, whatever the call (time, audience): first.
    Validity,
    /// Whether this call is allowed (tools, rows, hand-written checks): after the grant.
    Call,
}

/// A restriction as the compiled path's fast accept sees it (spec §6.5).
pub(crate) enum Fast<'a> {
    /// Valid from this time.
    From(u64),
    /// Valid until this time (exclusive).
    Until(u64),
    /// Only for this resource.
    Audience(&'a str),
    /// Only these tools.
    ToolList(&'a [String]),
    /// Depends on the call's arguments: evaluated on every call.
    PerCall,
    /// Holds for every tool call (it restricts another method).
    NotForTools,
}

/// The granted tools every block's tool list admits (for `tools/list`, docs §10.5), from the
/// restrictions' fast-accept roles: one rule for the compiled and the reference paths.
pub(crate) fn callable<'a>(
    grants: &'a [String],
    checks: &'a [(usize, Restriction)],
) -> impl Iterator<Item = (&'a String, bool)> + 'a {
    grants.iter().map(move |g| {
        let admitted = checks.iter().all(|(_, r)| match r.fast() {
            Fast::ToolList(list) => list.contains(g),
            Fast::From(_)
            | Fast::Until(_)
            | Fast::Audience(_)
            | Fast::PerCall
            | Fast::NotForTools => true,
        });
        (g, admitted)
    })
}

/// What the precedence walk found.
pub(crate) enum Walk<T, G> {
    /// This item fails, and decides the denial.
    Denied(T),
    /// Every validity item holds, and the tool is not granted.
    NotGranted,
    /// Nothing fails and the tool is granted.
    Granted(G),
}

/// The precedence of spec §6.3, the one walk of every path: over `items` in (block, check)
/// order, the first failing item of class [`Class::Validity`], else the grant, else the first
/// failing item of any other class. The compiled path walks restrictions it evaluates; the
/// reference path walks the checks Biscuit reports failed (or, when Biscuit stops early, the
/// restrictions it evaluates natively); ticket information walks the validity items only.
pub(crate) fn walk<T, G>(
    items: &[T],
    class: impl Fn(&T) -> Class,
    mut fails: impl FnMut(&T) -> bool,
    grant: impl FnOnce() -> Option<G>,
) -> Walk<&T, G> {
    if let Some(t) = items
        .iter()
        .find(|t| class(t) == Class::Validity && fails(t))
    {
        return Walk::Denied(t);
    }
    let Some(granted) = grant() else {
        return Walk::NotGranted;
    };
    match items.iter().find(|t| class(t) == Class::Call && fails(t)) {
        Some(t) => Walk::Denied(t),
        None => Walk::Granted(granted),
    }
}

/// The Datalog check of one restriction (spec §4.7).
fn check_of(r: &Restriction) -> Result<Check, Error> {
    let one = |body: Vec<builder::Predicate>, exprs: Vec<Expression>| {
        Rule::new(pred("query", &[] as &[Term]), body, exprs, vec![])
    };
    // The query that makes a check about one method hold for every other method.
    let other_method = |m: &str| {
        one(
            vec![pred("method", &[var("method")])],
            vec![binop(var("method"), Binary::NotEqual, string(m))],
        )
    };
    let queries = match r {
        // check if time($time), $time >= <t>
        Restriction::NotBefore(t) => vec![one(
            vec![pred("time", &[var("time")])],
            vec![binop(var("time"), Binary::GreaterOrEqual, date_term(*t))],
        )],
        // check if time($time), $time < <t>
        Restriction::Expires(t) => vec![one(
            vec![pred("time", &[var("time")])],
            vec![binop(var("time"), Binary::LessThan, date_term(*t))],
        )],
        // check if resource(<uri>)
        Restriction::Resource(uri) => vec![one(vec![pred("resource", &[string(uri)])], vec![])],
        // check if method($method), $method != "tools/call" or tool(<name1>) or ...
        Restriction::Tools(names) => std::iter::once(other_method(TOOLS_CALL))
            .chain(
                names
                    .iter()
                    .map(|n| one(vec![pred("tool", &[string(n)])], vec![])),
            )
            .collect(),
        // check if method($method), $method != "resources/read" or uri(<uri>)
        //   or uri($uri), $uri.starts_with(<prefix>) ...
        Restriction::Uris(patterns) => std::iter::once(other_method(RESOURCES_READ))
            .chain(patterns.iter().map(|p| match p.strip_suffix('*') {
                Some(prefix) => one(
                    vec![pred("uri", &[var("uri")])],
                    vec![binop(var("uri"), Binary::Prefix, string(prefix))],
                ),
                None => one(vec![pred("uri", &[string(p)])], vec![]),
            }))
            .collect(),
        // check if method($method), $method != "prompts/get" or prompt(<name1>) or ...
        Restriction::Prompts(names) => std::iter::once(other_method(PROMPTS_GET))
            .chain(
                names
                    .iter()
                    .map(|n| one(vec![pred("prompt", &[string(n)])], vec![])),
            )
            .collect(),
        Restriction::Row(row) => {
            // check if method($method), $method != "tools/call"
            //   or tool($tool), $tool != <name> or <constraint>
            let mut qs = vec![other_method(TOOLS_CALL)];
            if let ToolSel::Named(n) = &row.tool {
                qs.push(one(
                    vec![pred("tool", &[var("tool")])],
                    vec![binop(var("tool"), Binary::NotEqual, string(n))],
                ));
            }
            qs.extend(constraint_queries(&row.arg, &row.constraint, one));
            qs
        }
        #[cfg(feature = "datalog")]
        Restriction::Datalog(src) => {
            return Check::try_from(src.as_str()).map_err(|e| datalog_error(src, &e))
        }
        // No Datalog parser in this build: a hand-written check is neither written nor read.
        #[cfg(not(feature = "datalog"))]
        Restriction::Datalog(_) => {
            return Err(Error::InvalidRestriction(
                crate::limits::NO_DATALOG_REASON.into(),
            ))
        }
    };
    Ok(Check {
        queries,
        kind: CheckKind::One,
    })
}

/// A hand-written check that does not parse, said in words: where parsing stopped and why.
#[cfg(feature = "datalog")]
fn datalog_error(src: &str, e: &biscuit_auth::error::Token) -> Error {
    use biscuit_auth::error::Token;
    use biscuit_parser::error::LanguageError;
    let detail = match e {
        Token::Language(LanguageError::ParseError(p)) => p
            .errors
            .iter()
            .map(|pe| {
                let at = src.len().saturating_sub(pe.input.len());
                match &pe.message {
                    Some(m) => format!("{m} at byte {at}"),
                    None => format!("unexpected input at byte {at}"),
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        Token::Language(LanguageError::Parameters {
            missing_parameters, ..
        }) => format!(
            "parameters are not allowed ({})",
            missing_parameters.join(", ")
        ),
        _ => "it is not one check".to_string(),
    };
    Error::InvalidRestriction(format!(
        "datalog check {src:?} does not parse: {detail} (expected `check if …`, `check all …` \
         or `reject if …`)"
    ))
}

fn constraint_queries(
    pointer: &str,
    c: &Constraint,
    one: impl Fn(Vec<builder::Predicate>, Vec<Expression>) -> Rule,
) -> Vec<Rule> {
    let v = || var("value");
    let arg_var = || pred("arg", &[string(pointer), var("value")]);
    let is_type = |t: &str| Expression {
        ops: vec![
            Op::Value(v()),
            Op::Unary(Unary::TypeOf),
            Op::Value(string(t)),
            Op::Binary(Binary::Equal),
        ],
    };
    let rule = match c {
        // arg(<p>, <value>)
        Constraint::Eq(x) => one(vec![pred("arg", &[string(pointer), x.to_term()])], vec![]),
        // arg(<p>, <v1>) or arg(<p>, <v2>) ...
        Constraint::OneOf(set) => {
            return set
                .iter()
                .map(|x| one(vec![pred("arg", &[string(pointer), x.to_term()])], vec![]))
                .collect()
        }
        // arg(<p>, $value), $value.type() == "string", $value.starts_with(<prefix>)
        Constraint::Prefix(p) => one(
            vec![arg_var()],
            vec![is_type("string"), binop(v(), Binary::Prefix, string(p))],
        ),
        // arg(<p>, $value), $value.type() == "integer", $value >= <min>, $value <= <max>
        Constraint::Range { min, max } => {
            let mut e = vec![is_type("integer")];
            if let Some(m) = min {
                e.push(binop(v(), Binary::GreaterOrEqual, int(*m)));
            }
            if let Some(m) = max {
                e.push(binop(v(), Binary::LessOrEqual, int(*m)));
            }
            one(vec![arg_var()], e)
        }
    };
    vec![rule]
}

fn binop(a: Term, op: Binary, b: Term) -> Expression {
    Expression {
        ops: vec![Op::Value(a), Op::Value(b), Op::Binary(op)],
    }
}

pub(crate) fn date_term(t: u64) -> Term {
    date(&(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)))
}
