//! The decision: what a check answers (spec §8.1), the output of every path.

use std::sync::Arc;

use crate::block::{Description, Identity};
use crate::call::Target;
use crate::error::Denial;
use crate::forms::{Budget, Constraint};
#[cfg(feature = "datalog")]
use crate::ticket::BlockView;
use crate::ticket::{RevocationId, Ticket};

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
    /// Until when its state must be kept (docs §10.3): the earliest expiry of the declaring
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

/// What an allowed call to one target carries beyond the ticket: computed once per (ticket,
/// tool); for a resource read or a prompt request, per call (they carry no filter or budget).
#[derive(Debug)]
pub(crate) struct ToolView {
    /// Unique in the process, never reused: equal ids mean the same allow decision.
    #[cfg_attr(not(feature = "bindings"), allow(dead_code))]
    pub id: u64,
    pub target: Target,
    pub filters: Vec<ArgFilter>,
    pub budgets: Vec<BudgetRef>,
    /// The allow decision as JSON, made on first request (spec §8.1).
    pub json: std::sync::OnceLock<String>,
}

impl ToolView {
    /// The view of `target` from the described blocks (index, revocation id, description), in
    /// chain order, the authority block first. Row filters and budgets are about tool calls
    /// (spec §4.3, §4.5): a resource read or prompt request has none.
    pub(crate) fn new<'a>(
        blocks: impl IntoIterator<Item = (usize, &'a RevocationId, &'a Description)>,
        target: &Target,
    ) -> Self {
        let tool = target.tool();
        let covers = |sel: &crate::forms::ToolSel| tool.is_some_and(|t| sel.covers(t));
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
            for r in d.rows.iter().filter(|r| covers(&r.tool)) {
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
                if covers(&bu.tool) {
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
            target: target.clone(),
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
        std::mem::size_of::<Self>() + self.target.name().len() + 64 + filters + budgets
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

    /// What the call asked for: a tool, a resource or a prompt.
    pub fn target(&self) -> &Target {
        &self.view.target
    }

    /// The tool called, for a tool call.
    pub fn tool(&self) -> Option<&str> {
        self.view.target.tool()
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
    #[cfg(feature = "bindings")]
    pub fn decision_id(&self) -> u64 {
        self.view.id
    }

    /// The decision as JSON (spec §8.1): `{"decision":"allow","tool",...}` (`"uri"` for a
    /// resource read, `"prompt"` for a prompt request). Made once per ticket and tool, then
    /// shared.
    pub fn to_json(&self) -> &str {
        self.view
            .json
            .get_or_init(|| serde_json::to_string(&self.json()).unwrap_or_default())
    }

    fn json(&self) -> AllowJson<'_> {
        AllowJson {
            decision: "allow",
            target: &self.view.target,
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
        }
    }

    #[cfg(feature = "datalog")]
    pub(crate) fn new(summary: Arc<Summary>, blocks: &[BlockView], target: &Target) -> Self {
        let described = blocks
            .iter()
            .filter_map(|b| b.description().map(|d| (b.index, &b.revocation_id, d)));
        Allowed {
            summary,
            view: Arc::new(ToolView::new(described, target)),
        }
    }
}

#[derive(serde::Serialize)]
struct AllowJson<'a> {
    decision: &'static str,
    #[serde(flatten)]
    target: &'a Target,
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

/// A decision as its JSON shape (spec §8.1), to serialize or embed in another document
/// without going through text: `serde_json::to_value(DecisionJson(&decision))`.
#[derive(Clone, Copy, Debug)]
pub struct DecisionJson<'a>(pub &'a Decision);

impl serde::Serialize for DecisionJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Ok(a) => a.json().serialize(s),
            Err(denial) => DenyJson {
                decision: "deny",
                denial,
            }
            .serialize(s),
        }
    }
}

impl serde::Serialize for Allowed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(s)
    }
}

/// A decision as JSON (spec §8.1), the shape shared by the CLI's `--json`, the WASM API and
/// the MCP integration: `{"decision":"allow",...}` or `{"decision":"deny","code",...}`.
pub fn decision_json(d: &Decision) -> String {
    match d {
        Ok(a) => a.to_json().to_string(),
        Err(_) => serde_json::to_string(&DecisionJson(d)).unwrap_or_default(),
    }
}
