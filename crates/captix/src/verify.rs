//! Calls, decisions, and the reference verification path (spec §3, §6.3).

use std::sync::Arc;

use biscuit_auth::builder::{fact, string, var, AuthorizerBuilder, Policy, PolicyKind, Rule};
use biscuit_auth::builder::{pred, Term};
use biscuit_auth::AuthorizerLimits;

use crate::args::{Args, Scalar};
use crate::block::{date_term, Description, Identity, Restriction};
use crate::compiled::holds;
use crate::error::{Code, Denial};
use crate::keys::KeySet;
use crate::limits::{
    DATALOG_MAX_FACTS, DATALOG_MAX_ITERATIONS, DATALOG_MAX_TIME, MAX_TOOL_NAME_BYTES,
};
use crate::restriction::{Budget, Constraint};
use crate::ticket::{BlockView, Content, RevocationId, Ticket};

/// The MCP method of a tool call.
pub const TOOLS_CALL: &str = "tools/call";

/// One tool call as the verifier sees it (spec §3.1): the tool, its arguments, the time and
/// the server's resource URI. The caller supplies the time; the core reads no clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The tool name.
    pub tool: String,
    /// The arguments, as JSON-Pointer leaves.
    pub args: Args,
    /// The time of the call, Unix seconds.
    pub time: u64,
    /// This server's canonical resource URI (RFC 8707 audience), if it has one.
    pub resource: Option<String>,
}

/// A call whose time is not set yet. It becomes a [`Call`] only through [`Untimed::at`]: no
/// API has a default time (spec §3.1), so a forgotten clock is a compile error, not a call at
/// 1970 that every expiry lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a call needs its time: .at(unix_secs)"]
pub struct Untimed {
    tool: String,
    args: Args,
    resource: Option<String>,
}

impl Untimed {
    /// The call at `unix_secs` (Unix seconds, from the server's clock).
    pub fn at(self, unix_secs: u64) -> Call {
        Call {
            tool: self.tool,
            args: self.args,
            time: unix_secs,
            resource: self.resource,
        }
    }

    /// Sets this server's resource URI (normalized, spec §4.4).
    pub fn resource(mut self, uri: impl Into<String>) -> Self {
        self.resource = Some(crate::normalize_resource(&uri.into()));
        self
    }
}

impl Call {
    /// A call of `tool` with JSON-text arguments (an object; `""` means none); give it its
    /// time with [`Untimed::at`]. Duplicate keys, excessive size or depth are refused with
    /// their own codes.
    #[allow(clippy::new_ret_no_self)] // a typestate: a `Call` exists only with its time
    pub fn new(tool: impl Into<String>, args_json: &str) -> Result<Untimed, Denial> {
        let tool = tool.into();
        if tool.is_empty() || tool.len() > MAX_TOOL_NAME_BYTES {
            return Err(Denial::new(
                Code::ArgsMalformed,
                format!("a tool name is 1 to {MAX_TOOL_NAME_BYTES} bytes"),
            ));
        }
        let args = if args_json.trim().is_empty() {
            Args::empty()
        } else {
            Args::from_json(args_json)?
        };
        Ok(Untimed {
            tool,
            args,
            resource: None,
        })
    }

    /// The same call at another time (Unix seconds).
    pub fn at(mut self, unix_secs: u64) -> Self {
        self.time = unix_secs;
        self
    }

    /// Refuses a time outside the range every path represents (spec §3.1): after
    /// [`crate::time::MAX_TIME`], Datalog dates overflow. Checked before any other work.
    pub(crate) fn check_time(&self) -> Result<(), Denial> {
        if self.time > crate::time::MAX_TIME {
            return Err(invalid_time(self.time));
        }
        Ok(())
    }

    /// Sets this server's resource URI (normalized, spec §4.4).
    pub fn resource(mut self, uri: impl Into<String>) -> Self {
        self.resource = Some(crate::normalize_resource(&uri.into()));
        self
    }
}

/// The constraints on one argument that an allowed call must honour, from every block.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ArgFilter {
    /// The argument's JSON Pointer.
    pub arg: String,
    /// The constraints, each with the block that set it; all hold for the call.
    pub constraints: Vec<BlockConstraint>,
}

/// A constraint and the block that set it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BlockConstraint {
    /// The block that set the constraint.
    pub block: usize,
    /// The constraint.
    #[serde(flatten)]
    pub constraint: Constraint,
}

/// A budget that an allowed call spends from (spec §4.5): identified by the block that set it
/// and its position in that block.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct BudgetRef {
    /// The block that set it.
    pub block: usize,
    /// Its index among the block's budgets.
    pub index: usize,
    /// The block's revocation id (hex): together with `index`, the budget's identity.
    pub revocation_id: String,
    /// The first block's revocation id (hex): every key of one chain shares it.
    pub root_id: String,
    /// The budget.
    pub budget: Budget,
    /// Until when its state must be kept (spec §10.3): the earliest expiry of the declaring
    /// block and its ancestors, whatever chain presents it.
    #[serde(skip)]
    pub lives_until: Option<u64>,
}

/// What a verified ticket says, independent of any call: computed once per ticket.
#[derive(Debug)]
pub(crate) struct Summary {
    pub identity: Identity,
    pub chain: Vec<RevocationId>,
    pub expires: Option<u64>,
}

impl Summary {
    /// Heap bytes held (an estimate, for cache accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.identity.heap_bytes()
            + self.chain.iter().map(|c| c.0.len() + 48).sum::<usize>()
    }

    pub(crate) fn of(t: &Ticket) -> Self {
        Summary {
            identity: t.identity().clone(),
            chain: t.revocation_ids().cloned().collect(),
            expires: t.expires(),
        }
    }
}

/// What an allowed call to one tool carries beyond the ticket: computed once per (ticket, tool).
#[derive(Debug)]
pub(crate) struct ToolView {
    /// Unique in the process, never reused: equal ids mean the same allow decision.
    pub id: u64,
    pub tool: String,
    pub filters: Vec<ArgFilter>,
    pub budgets: Vec<BudgetRef>,
    /// The allow decision as JSON, made on first request (spec §8.1).
    pub json: std::sync::OnceLock<String>,
}

impl ToolView {
    /// The view of `tool` from the described blocks (index, revocation id, description), in
    /// chain order, the authority block first.
    pub(crate) fn new<'a>(
        blocks: impl IntoIterator<Item = (usize, &'a RevocationId, &'a Description)>,
        tool: &str,
    ) -> Self {
        let mut filters: Vec<ArgFilter> = Vec::new();
        let mut budgets = Vec::new();
        let mut root_id: Option<String> = None;
        // The earliest expiry of blocks 0..=b: a budget of block b lives that long.
        let mut lives_until: Option<u64> = None;
        for (index, revocation_id, d) in blocks {
            let root_id = root_id.get_or_insert_with(|| revocation_id.to_hex());
            lives_until = match (lives_until, d.expires) {
                (Some(a), Some(e)) => Some(a.min(e)),
                (a, e) => a.or(e),
            };
            for r in d.rows.iter().filter(|r| r.tool.covers(tool)) {
                let c = BlockConstraint {
                    block: index,
                    constraint: r.constraint.clone(),
                };
                match filters.iter_mut().find(|f| f.arg == r.arg) {
                    Some(f) => f.constraints.push(c),
                    None => filters.push(ArgFilter {
                        arg: r.arg.clone(),
                        constraints: vec![c],
                    }),
                }
            }
            for (position, bu) in d.budgets.iter().enumerate() {
                if bu.tool.covers(tool) {
                    budgets.push(BudgetRef {
                        block: index,
                        index: position,
                        revocation_id: revocation_id.to_hex(),
                        root_id: root_id.clone(),
                        budget: bu.clone(),
                        lives_until,
                    });
                }
            }
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        ToolView {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            tool: tool.to_string(),
            filters,
            budgets,
            json: std::sync::OnceLock::new(),
        }
    }

    /// Heap bytes held (an estimate, for cache accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        let filters: usize = self
            .filters
            .iter()
            .map(|f| {
                f.arg.len()
                    + std::mem::size_of::<ArgFilter>()
                    + f.constraints
                        .iter()
                        .map(|c| std::mem::size_of::<BlockConstraint>() + c.constraint.heap_bytes())
                        .sum::<usize>()
            })
            .sum();
        let budgets: usize = self
            .budgets
            .iter()
            .map(|b| {
                std::mem::size_of::<BudgetRef>()
                    + b.revocation_id.len()
                    + b.root_id.len()
                    + b.budget.tool.as_str().len()
                    + 96
            })
            .sum();
        std::mem::size_of::<Self>() + self.tool.len() + 64 + filters + budgets
    }
}

/// An allowed call: who is calling, for whom, under which row filters and budgets. Cheap to
/// clone: it shares the data computed once per ticket.
#[derive(Clone, Debug)]
pub struct Allowed {
    pub(crate) summary: Arc<Summary>,
    pub(crate) view: Arc<ToolView>,
}

impl Allowed {
    /// Who the ticket is for.
    pub fn identity(&self) -> &Identity {
        &self.summary.identity
    }

    /// The tool called.
    pub fn tool(&self) -> &str {
        &self.view.tool
    }

    /// Row filters that apply to this tool, by argument (servers apply them to their queries).
    pub fn filters(&self) -> &[ArgFilter] {
        &self.view.filters
    }

    /// The filters on one argument, if any.
    pub fn filter(&self, pointer: &str) -> Option<&ArgFilter> {
        self.view.filters.iter().find(|f| f.arg == pointer)
    }

    /// Budgets that apply to this tool (a stateless check shows them; a `Verifier` spends them).
    pub fn budgets(&self) -> &[BudgetRef] {
        &self.view.budgets
    }

    /// The revocation ids of the chain, authority first.
    pub fn chain(&self) -> &[RevocationId] {
        &self.summary.chain
    }

    /// The earliest expiry on the chain.
    pub fn expires(&self) -> Option<u64> {
        self.summary.expires
    }

    /// An id for this allow decision, unique in the process and never reused: two decisions
    /// with the same id are the same (same ticket, same tool). Lets bindings cache the decision
    /// object instead of rebuilding it.
    pub fn decision_id(&self) -> u64 {
        self.view.id
    }

    /// The decision as JSON (spec §8.1): `{"decision":"allow","tool",...}`. Made once per
    /// ticket and tool, then shared.
    pub fn to_json(&self) -> &str {
        self.view.json.get_or_init(|| {
            serde_json::to_string(&AllowJson {
                decision: "allow",
                tool: &self.view.tool,
                identity: &self.summary.identity,
                filters: &self.view.filters,
                budgets: &self.view.budgets,
                expires: self.summary.expires,
                chain: self
                    .summary
                    .chain
                    .iter()
                    .map(RevocationId::to_hex)
                    .collect(),
            })
            .unwrap_or_default()
        })
    }

    pub(crate) fn new(summary: Arc<Summary>, blocks: &[BlockView], tool: &str) -> Self {
        let described = blocks
            .iter()
            .filter_map(|b| b.description().map(|d| (b.index, &b.revocation_id, d)));
        Allowed {
            summary,
            view: Arc::new(ToolView::new(described, tool)),
        }
    }
}

#[derive(serde::Serialize)]
struct AllowJson<'a> {
    decision: &'static str,
    tool: &'a str,
    identity: &'a Identity,
    filters: &'a [ArgFilter],
    budgets: &'a [BudgetRef],
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<u64>,
    chain: Vec<String>,
}

#[derive(serde::Serialize)]
struct DenyJson<'a> {
    decision: &'static str,
    #[serde(flatten)]
    denial: &'a Denial,
}

/// The outcome of a check: allowed, or a denial with its code.
pub type Decision = Result<Allowed, Denial>;

/// A decision as JSON (spec §8.1), the shape shared by the CLI's `--json`, the WASM API and
/// the MCP integration: `{"decision":"allow",...}` or `{"decision":"deny","code",...}`.
pub fn decision_json(d: &Decision) -> String {
    match d {
        Ok(a) => a.to_json().to_string(),
        Err(denial) => serde_json::to_string(&DenyJson {
            decision: "deny",
            denial,
        })
        .unwrap_or_default(),
    }
}

/// Verifies a ticket's text against a call on the reference path: parse, verify signatures,
/// run Biscuit's authorizer (spec §6.3). Budgets are reported, not spent; revocation is not
/// consulted (a `Verifier` does both).
pub fn verify(ticket: &str, call: &Call, keys: &KeySet) -> Decision {
    call.check_time()?;
    Ticket::parse(ticket, keys)?.authorize(call)
}

/// The Datalog run limits used for every authorization (spec §7.2).
pub fn run_limits() -> AuthorizerLimits {
    AuthorizerLimits {
        max_facts: DATALOG_MAX_FACTS,
        max_iterations: DATALOG_MAX_ITERATIONS,
        max_time: DATALOG_MAX_TIME,
    }
}

impl Ticket {
    /// Checks a call against this ticket on the reference path: Biscuit's authorizer with the
    /// ambient facts of spec §3 and the policy of spec §4.2.
    pub fn authorize(&self, call: &Call) -> Decision {
        self.authorize_with(call, Arc::new(Summary::of(self)))
    }

    pub(crate) fn authorize_with(&self, call: &Call, summary: Arc<Summary>) -> Decision {
        call.check_time()?;
        let internal = |e: biscuit_auth::error::Token| {
            Denial::new(
                Code::Malformed,
                format!("the authorizer refused the ticket: {e}"),
            )
        };
        // Spec §7.2: a ticket whose Datalog could need more work than the limit does not run.
        if let Some(reason) = crate::work::over_limit(&self.blocks, call) {
            return Err(self
                .vocabulary_denial(call)
                .unwrap_or_else(|| Denial::new(Code::LimitsExceeded, reason)));
        }
        let mut b = AuthorizerBuilder::new()
            .set_limits(run_limits())
            .fact(fact("time", &[date_term(call.time)]))
            .and_then(|b| b.fact(fact("method", &[string(TOOLS_CALL)])))
            .and_then(|b| b.fact(fact("tool", &[string(&call.tool)])))
            .map_err(internal)?;
        if let Some(r) = &call.resource {
            b = b.fact(fact("resource", &[string(r)])).map_err(internal)?;
        }
        for (p, v) in call.args.leaves() {
            b = b
                .fact(fact("arg", &[string(p), v.to_term()]))
                .map_err(internal)?;
        }
        // allow if tool($tool), allow_tool($tool)
        let policy = Policy {
            queries: vec![Rule::new(
                pred("allow", &[] as &[Term]),
                vec![
                    pred("tool", &[var("tool")]),
                    pred("allow_tool", &[var("tool")]),
                ],
                vec![],
                vec![],
            )],
            kind: PolicyKind::Allow,
        };
        b = b.policy(policy).map_err(internal)?;
        let mut authorizer = b.build(&self.inner).map_err(internal)?;
        match authorizer.authorize() {
            Ok(_) => Ok(Allowed::new(summary, &self.blocks, &call.tool)),
            Err(e) => Err(self.explain(e, call)),
        }
    }

    /// Maps Biscuit's failure to the denial of spec §6.3: the first failing check in (block,
    /// check) order, else the missing grant.
    fn explain(&self, e: biscuit_auth::error::Token, call: &Call) -> Denial {
        use biscuit_auth::error::{FailedCheck, Logic, MatchedPolicy, Token};
        let (checks, granted) = match e {
            Token::FailedLogic(Logic::Unauthorized { checks, policy }) => {
                (checks, matches!(policy, MatchedPolicy::Allow(_)))
            }
            Token::FailedLogic(Logic::NoMatchingPolicy { checks }) => (checks, false),
            // Both stop the whole evaluation, so Biscuit names no failing check. The
            // vocabulary is read natively so that such a block cannot hide an expiry or a
            // missing grant behind a different code (spec §6.3).
            Token::RunLimit(l) => {
                return self.vocabulary_denial(call).unwrap_or_else(|| {
                    Denial::new(
                        Code::LimitsExceeded,
                        format!("the ticket's Datalog exceeded the run limits: {l}"),
                    )
                })
            }
            Token::Execution(x) => {
                return self.vocabulary_denial(call).unwrap_or_else(|| {
                    Denial::new(
                        Code::CheckFailed,
                        format!("a hand-written check failed to evaluate: {x}"),
                    )
                })
            }
            other => return Denial::new(Code::Malformed, format!("authorization failed: {other}")),
        };
        let mut failed: Vec<(usize, usize)> = checks
            .iter()
            .filter_map(|c| match c {
                FailedCheck::Block(b) => Some((b.block_id as usize, b.check_id as usize)),
                FailedCheck::Authorizer(_) => None,
            })
            .collect();
        failed.sort_unstable();
        // Precedence (spec §6.3): validity, then the grant, then the other restrictions.
        let validity = failed
            .iter()
            .find(|(b, c)| self.restriction_at(*b, *c).is_some_and(|r| r.is_validity()));
        if let Some(&(block, check)) = validity {
            return self.denial_for(block, check, call);
        }
        if !granted {
            return not_granted(&call.tool);
        }
        match failed.first() {
            Some(&(block, check)) => self.denial_for(block, check, call),
            None => Denial::new(
                Code::Malformed,
                "authorization failed without a failing check",
            ),
        }
    }

    /// The first failing vocabulary restriction by the precedence of spec §6.3 (validity,
    /// the grant, the rest, each in block order), read from the descriptions without Datalog.
    /// Hand-written and foreign checks are not evaluated here.
    fn vocabulary_denial(&self, call: &Call) -> Option<Denial> {
        let described: Vec<(usize, Restriction)> = self
            .blocks
            .iter()
            .filter_map(|b| b.description().map(|d| (b.index, d)))
            .flat_map(|(i, d)| d.restrictions().into_iter().map(move |r| (i, r)))
            .filter(|(_, r)| !matches!(r, Restriction::Datalog(_)))
            .collect();
        let fails = |r: &Restriction| !holds(r, call, call.resource.as_deref());
        let first = |validity: bool| {
            described
                .iter()
                .find(|(_, r)| r.is_validity() == validity && fails(r))
        };
        if let Some((block, r)) = first(true) {
            return Some(restriction_denial(
                *block,
                r,
                call,
                call.resource.as_deref(),
            ));
        }
        let authority_described = self
            .blocks
            .first()
            .is_some_and(|b| b.description().is_some());
        if authority_described && !self.grants().contains(&call.tool) {
            return Some(not_granted(&call.tool));
        }
        first(false).map(|(block, r)| restriction_denial(*block, r, call, call.resource.as_deref()))
    }

    fn restriction_at(&self, block: usize, check: usize) -> Option<Restriction> {
        self.blocks
            .get(block)
            .and_then(BlockView::description)
            .and_then(|d| d.restrictions().into_iter().nth(check))
    }

    fn denial_for(&self, block: usize, check: usize, call: &Call) -> Denial {
        let view = self.blocks.get(block);
        if let Some(r) = self.restriction_at(block, check) {
            return restriction_denial(block, &r, call, call.resource.as_deref());
        }
        let kind = match view.map(|v| &v.content) {
            Some(Content::Described(_)) => "hand-written",
            _ => "foreign block's",
        };
        Denial::new(
            Code::CheckFailed,
            format!("block {block}: a {kind} Datalog check (number {check}) failed"),
        )
        .at(block, format!("datalog check {check}"))
    }
}

pub(crate) fn invalid_time(t: u64) -> Denial {
    Denial::new(
        Code::InvalidTime,
        format!(
            "the call's time {t} is after the last representable second ({}, year 9999)",
            crate::time::MAX_TIME
        ),
    )
}

pub(crate) fn not_granted(tool: &str) -> Denial {
    Denial::new(
        Code::ToolNotGranted,
        format!("block 0: the ticket does not grant tool {tool:?}"),
    )
    .at(0, "grants")
}

/// The denial for a failed restriction, worded the same on both paths.
/// `resource` is the resource the call was checked against (the verifier's, when it has one).
pub(crate) fn restriction_denial(
    block: usize,
    r: &Restriction,
    call: &Call,
    resource: Option<&str>,
) -> Denial {
    let what = match r {
        Restriction::NotBefore(_) => format!("the ticket is not valid yet ({r})"),
        Restriction::Expires(_) => format!("the ticket has expired ({r})"),
        Restriction::Resource(_) => format!(
            "the ticket is for another resource ({r}; this server is {})",
            resource.unwrap_or("unnamed")
        ),
        Restriction::Tools(_) => format!("tool {:?} is not allowed ({r})", call.tool),
        Restriction::Row(f) => match call.args.get(&f.arg) {
            None => format!("argument {} is missing ({r})", f.arg),
            Some(v) if !same_type(&f.constraint, v) => {
                format!("argument {} is a {} ({r})", f.arg, v.type_name())
            }
            Some(_) => format!("argument {} is not allowed ({r})", f.arg),
        },
        Restriction::Datalog(_) => format!("a hand-written check failed ({r})"),
    };
    Denial::new(r.code(), format!("block {block}: {what}")).at(block, r.to_string())
}

fn same_type(c: &Constraint, v: &Scalar) -> bool {
    match c {
        Constraint::Eq(x) => x.type_name() == v.type_name(),
        Constraint::OneOf(s) => s.first().is_some_and(|x| x.type_name() == v.type_name()),
        Constraint::Prefix(_) => matches!(v, Scalar::Str(_)),
        Constraint::Range { .. } => matches!(v, Scalar::Int(_)),
    }
}
