//! Compiled tickets: the vocabulary as plain data, evaluated without Datalog (spec §6.5).
//!
//! > A ticket whose every block is a described captix block without hand-written checks
//! > compiles to: the granted tools and the ordered list of restrictions of every block.
//! > Evaluating a call walks the list in (block, check) order and stops at the first
//! > restriction that fails, then checks the grant: the same decision and code as the
//! > reference path, which reports the first failing check in that order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::block::Description;
use crate::call::{Call, Target};
use crate::decision::{Allowed, Summary, ToolView};
use crate::error::Denial;
use crate::restriction::{not_granted, walk, Fast, Restriction, Walk};
use crate::ticket::{RevocationId, Ticket};

/// A verified vocabulary ticket compiled to plain data. It keeps what the hot path needs
/// (docs §10.2), not the ticket: the restrictions, the descriptions the per-tool views are
/// made from on first use, and the summary.
#[derive(Debug)]
pub struct Compiled {
    grants: Vec<String>,
    /// Per grant, made on the first allowed call to it (its bytes added to `extra`).
    views: Vec<OnceLock<Arc<ToolView>>>,
    /// Fast accept (spec §6.5): per grant, whether every block's tool list admits it.
    callable: Vec<bool>,
    /// Fast accept: the valid time window, `[from, until)`.
    from: u64,
    until: u64,
    /// Fast accept: the resources every block requires (all must equal the server's).
    resources: Vec<String>,
    /// Fast accept: the restrictions that depend on the call's arguments, evaluated per call
    /// (every restriction the fast accept does not fold into a bound above).
    per_call: Vec<(usize, Restriction)>,
    checks: Vec<(usize, Restriction)>,
    /// Every block's index, revocation id and description (all blocks are described).
    blocks: Vec<(usize, RevocationId, Description)>,
    pub(crate) summary: Arc<Summary>,
    /// What the fields above hold, computed once (they never change).
    base_bytes: usize,
    /// Bytes of the views made since compiling (see [`Compiled::heap_bytes`]).
    extra: AtomicUsize,
}

impl Compiled {
    /// Compiles a verified ticket; `None` when a block carries Datalog outside the vocabulary
    /// (hand-written checks, or a foreign block), which must take the reference path.
    pub fn compile(ticket: &Ticket) -> Option<Self> {
        let mut checks = Vec::new();
        let mut blocks = Vec::with_capacity(ticket.blocks().len());
        for b in ticket.blocks() {
            let d = b.description()?;
            if !d.checks.is_empty() {
                return None;
            }
            checks.extend(d.restrictions().into_iter().map(|r| (b.index, r)));
            blocks.push((b.index, b.revocation_id.clone(), d.clone()));
        }
        let mut grants = ticket.grants().to_vec();
        grants.sort();
        grants.dedup();
        let views = grants.iter().map(|_| OnceLock::new()).collect();
        let (mut from, mut until, mut resources, mut per_call) =
            (0, u64::MAX, Vec::new(), Vec::new());
        for (block, r) in &checks {
            match r.fast() {
                Fast::From(t) => from = from.max(t),
                Fast::Until(t) => until = until.min(t),
                Fast::Audience(u) => resources.push(u.to_string()),
                Fast::ToolList(_) => {} // per grant, in `callable` below
                Fast::NotForTools => {} // holds for every tool call
                Fast::PerCall => per_call.push((*block, r.clone())),
            }
        }
        let callable = crate::restriction::callable(&grants, &checks)
            .map(|(_, ok)| ok)
            .collect();
        let mut c = Compiled {
            grants,
            views,
            callable,
            from,
            until,
            resources,
            per_call,
            checks,
            blocks,
            summary: Arc::new(Summary::of(ticket)),
            base_bytes: 0,
            extra: AtomicUsize::new(0),
        };
        c.base_bytes = c.fixed_bytes();
        Some(c)
    }

    /// The first failing restriction, else the grant (spec §6.5); when allowed, the index of
    /// the granted tool (`None` for an allowed resource read or prompt request). `resource`
    /// is the server's resource URI. Allocates nothing when a tool call is allowed.
    pub fn evaluate(&self, call: &Call, resource: Option<&str>) -> Result<Option<usize>, Denial> {
        call.check_time()?;
        let tool = call.target.tool();
        let tool_index = |t: &str| self.grants.binary_search_by(|g| g.as_str().cmp(t)).ok();
        // Fast accept (tool calls): when the tool, time and resource pass every block, only
        // the row filters depend on the call; any failure takes the ordered walk below,
        // which finds the first failing restriction exactly as the reference path does.
        if let Some(i) = tool.and_then(tool_index) {
            if self.callable[i]
                && call.time >= self.from
                && call.time < self.until
                && self.resources.iter().all(|u| resource == Some(u.as_str()))
                && self.per_call.iter().all(|(_, r)| r.holds(call, resource))
            {
                return Ok(Some(i));
            }
        }
        // The ordered walk (spec §6.3): validity, then the grant, then the rest.
        let grant = || match tool {
            Some(t) => tool_index(t).map(Some),
            None => self.blocks[0].2.grants(&call.target).then_some(None),
        };
        match walk(
            &self.checks,
            |(_, r)| r.class(),
            |(_, r)| r.fails(call, resource),
            grant,
        ) {
            Walk::Granted(i) => Ok(i),
            Walk::NotGranted => Err(not_granted(&call.target)),
            Walk::Denied((block, r)) => Err(r.denial(*block, call, resource)),
        }
    }

    /// Evaluates a call (with its own resource) and, when allowed, gives the decision.
    #[cfg(feature = "test-util")]
    pub fn check(&self, call: &Call) -> Result<Allowed, Denial> {
        let i = self.evaluate(call, call.resource.as_deref())?;
        Ok(self.allowed(i, call))
    }

    /// The decision for the granted tool at `index`, or, for `None`, for the call's target
    /// (a resource read or prompt request: made per call, not kept).
    pub(crate) fn allowed(&self, index: Option<usize>, call: &Call) -> Allowed {
        let blocks = || self.blocks.iter().map(|(i, id, d)| (*i, id, d));
        let Some(index) = index else {
            return Allowed {
                summary: self.summary.clone(),
                view: Arc::new(ToolView::new(blocks(), &call.target)),
            };
        };
        let view = self.views[index].get_or_init(|| {
            let v = ToolView::new(blocks(), &Target::Tool(self.grants[index].clone()));
            self.extra.fetch_add(v.heap_bytes(), Ordering::Relaxed);
            Arc::new(v)
        });
        Allowed {
            summary: self.summary.clone(),
            view: view.clone(),
        }
    }

    /// The granted tools, sorted.
    pub fn grants(&self) -> &[String] {
        &self.grants
    }

    /// The tools callable now under every block's tool list (for `tools/list`), sorted.
    pub(crate) fn callable(&self) -> impl Iterator<Item = &String> {
        self.grants
            .iter()
            .zip(&self.callable)
            .filter_map(|(g, ok)| ok.then_some(g))
    }

    /// Every (block, restriction) in check order.
    pub(crate) fn checks(&self) -> &[(usize, Restriction)] {
        &self.checks
    }

    /// An estimate of the heap this holds, views made so far included: what the verifier's
    /// cache counts against its byte bound (docs §10.2).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.base_bytes + self.extra.load(Ordering::Relaxed)
    }

    /// The heap of the fields that never change after compiling.
    fn fixed_bytes(&self) -> usize {
        let strings = |v: &[String]| v.iter().map(|s| s.len() + 32).sum::<usize>();
        let restrictions: usize = self
            .checks
            .iter()
            .chain(&self.per_call)
            .map(|(_, r)| r.heap_bytes())
            .sum();
        let blocks: usize = self
            .blocks
            .iter()
            .map(|(_, id, d)| id.0.len() + d.heap_bytes() + 96)
            .sum();
        std::mem::size_of::<Self>()
            + strings(&self.grants) * 2
            + strings(&self.resources)
            + self.views.len() * 24
            + restrictions
            + blocks
            + self.summary.heap_bytes()
    }
}
