//! The `Verifier`: what an MCP server runs on every tool call (docs §10).
//!
//! > First sight of a ticket: parse, verify signatures, compile (§6.5), cache. Later calls:
//! > find the entry by a keyed hash of the ticket's length and tail (its proof), confirm with
//! > a constant-time comparison of the full bytes, re-check revocation if the revoked set changed, evaluate
//! > the compiled restrictions, spend the budgets. No Datalog, no signature work. Tickets that
//! > do not compile are evaluated on the reference path each time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::audit::{AuditSink, Record, Redaction};
use crate::budget::{BudgetKey, BudgetStore, MemoryBudgets, PreparedSpend, Spend};
use crate::cache::{Cache, Cached};
use crate::call::Call;
use crate::compiled::Compiled;
use crate::decision::{Allowed, BudgetRef, Decision, Summary};
use crate::error::{Code, Denial};
use crate::keys::KeySet;
use crate::policy::{Limit, Policy};
use crate::restriction::{walk, Class, Restriction, Walk};
use crate::revocation::{NoRevocations, RevocationSource};
use crate::ticket::{check_size, RevocationId, Ticket};

/// Default bound of the ticket cache, in bytes of heap (docs §10.2): 64 MiB, about 1,000
/// tickets at the 16 KiB size limit or tens of thousands of typical ones.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;
/// Heap held by a ticket on the reference path, per byte of its text (measured by the
/// `cache_memory_is_bounded_in_bytes` test: parsed token, decoded blocks, descriptions).
const REFERENCE_BYTES_PER_TEXT_BYTE: usize = 24;
const NEVER: u64 = u64::MAX;

/// Builds a [`Verifier`].
#[must_use = "call build()"]
pub struct VerifierBuilder {
    keys: KeySet,
    resource: Option<String>,
    budgets: Arc<dyn BudgetStore>,
    revocations: Arc<dyn RevocationSource>,
    audit: Option<Arc<dyn AuditSink>>,
    redaction: Redaction,
    cache_bytes: usize,
    require_audience: bool,
    require_expiry: bool,
    max_lifetime: Option<u64>,
    ticket_budgets: bool,
    policy: Policy,
}

impl VerifierBuilder {
    /// This server's canonical resource URI (RFC 8707), normalized (spec §4.4): tickets
    /// restricted to another resource are refused, and so are tickets that name no resource
    /// (unless [`VerifierBuilder::allow_tickets_without_audience`]). It replaces the resource
    /// of every call checked.
    pub fn resource(mut self, uri: impl Into<String>) -> Self {
        self.resource = Some(crate::normalize_resource(&uri.into()));
        self
    }

    /// Accepts tickets that name no resource (audience) on a verifier that has one. The unsafe
    /// choice: such a ticket is accepted by every server that trusts its root key (MCP servers
    /// MUST check that a token was issued for them).
    pub fn allow_tickets_without_audience(mut self) -> Self {
        self.require_audience = false;
        self
    }

    /// Accepts tickets with no expiry. The unsafe choice: such a ticket is a credential that
    /// never lapses, and the budgets it declares hold state for good.
    pub fn allow_tickets_without_expiry(mut self) -> Self {
        self.require_expiry = false;
        self
    }

    /// Refuses tickets that stay valid more than `seconds` after the check (`expired`, the
    /// restriction `lifetime cap`): a server may bound how long a stolen ticket is worth
    /// anything, whatever its issuer chose. Default: no cap beyond requiring an expiry.
    pub fn max_lifetime(mut self, seconds: u64) -> Self {
        self.max_lifetime = Some(seconds);
        self
    }

    /// Where budgets are counted (default: a [`MemoryBudgets`] of this verifier's own).
    pub fn budgets(mut self, store: Arc<dyn BudgetStore>) -> Self {
        self.budgets = store;
        self
    }

    /// Enforces no ticket budget: every call is admitted whatever its ticket's budgets say.
    /// The unsafe choice, for stateless checks only (a verifier enforces budgets by default).
    /// The limits of a server policy still apply.
    pub fn without_budgets(mut self) -> Self {
        self.ticket_budgets = false;
        self
    }

    /// The server's own policy (docs §16): scopes per tool, and rate limits per agent, user,
    /// (agent, user) or in all, spent with the ticket's budgets in one step of the store.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Where revoked ids come from (default: nothing is revoked).
    pub fn revocations(mut self, source: Arc<dyn RevocationSource>) -> Self {
        self.revocations = source;
        self
    }

    /// Where decisions are recorded, and which argument values they keep.
    pub fn audit(mut self, sink: Arc<dyn AuditSink>, redaction: Redaction) -> Self {
        self.audit = Some(sink);
        self.redaction = redaction;
        self
    }

    /// The most heap the ticket cache may hold, in bytes (default [`DEFAULT_CACHE_BYTES`]).
    /// A full cache shard evicts the entries that expire first; a ticket too large for a
    /// shard (a 64th of the bound) is checked without being cached.
    pub fn cache_bytes(mut self, n: usize) -> Self {
        self.cache_bytes = n;
        self
    }

    /// The verifier.
    pub fn build(self) -> Verifier {
        Verifier {
            keys: self.keys,
            resource: self.resource,
            budgets: self.budgets,
            revocations: self.revocations,
            audit: self.audit,
            redaction: self.redaction,
            cache: Cache::new(self.cache_bytes),
            require_audience: self.require_audience,
            require_expiry: self.require_expiry,
            max_lifetime: self.max_lifetime,
            misses: AtomicU64::new(0),
            ticket_budgets: self.ticket_budgets,
            policy: self.policy,
            decisions: (0..COUNT_SHARDS).map(|_| Counts::default()).collect(),
        }
    }
}

/// Checks tool calls against tickets, with a cache, budgets, revocation and an audit log.
/// `Send + Sync`: share one per server (e.g. in an `Arc`).
pub struct Verifier {
    keys: KeySet,
    resource: Option<String>,
    budgets: Arc<dyn BudgetStore>,
    revocations: Arc<dyn RevocationSource>,
    audit: Option<Arc<dyn AuditSink>>,
    redaction: Redaction,
    cache: Cache<Entry>,
    /// Tickets parsed because the cache did not hold them (first sight or evicted).
    misses: AtomicU64,
    require_audience: bool,
    require_expiry: bool,
    max_lifetime: Option<u64>,
    ticket_budgets: bool,
    policy: Policy,
    /// Decisions by code (docs §16.3), in shards so that threads counting on the hot path do
    /// not share a cache line.
    decisions: Box<[Counts]>,
}

/// How many decisions there are to count: `allow`, then each of [`Code::ALL`].
const COUNTS: usize = Code::ALL.len() + 1;
/// Shards of the decision counts; a thread counts in one of them.
const COUNT_SHARDS: usize = 8;

/// One shard of the decision counts, on cache lines of its own.
#[repr(align(128))]
#[derive(Default)]
struct Counts([AtomicU64; COUNTS]);

/// This thread's shard of the decision counts (assigned in turn on first use).
fn count_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % COUNT_SHARDS;
    }
    SHARD.with(|s| *s)
}

/// A ticket [`Verifier::authenticate`] found valid (its cached entry).
#[derive(Clone)]
pub struct Authenticated {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticated(..)")
    }
}

/// Whether a decision spends budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spending {
    /// No (`allows`: list filtering, spec §4.5).
    No,
    /// Yes, waiting on the store if need be.
    Yes,
    /// Only if the store answers without I/O; otherwise the decision stops at
    /// [`Stop::WouldBlock`].
    IfLocal,
}

/// Why a decision did not allow: a denial, or, when spending only if local, a budget store that
/// would wait on I/O (nothing spent; the caller checks again where waiting is fine).
enum Stop {
    Denied(Denial),
    WouldBlock,
}

impl From<Denial> for Stop {
    fn from(d: Denial) -> Self {
        Stop::Denied(d)
    }
}

impl Stop {
    /// The denial; a store that would wait, where waiting was allowed, cannot happen, and is
    /// answered as the store being unavailable (fails closed).
    fn denial(self) -> Denial {
        match self {
            Stop::Denied(d) => d,
            Stop::WouldBlock => crate::budget::store_unavailable("the store would wait"),
        }
    }
}

/// What an allowed (ticket, tool) needs on every call, made on its first: the policy's scope
/// denial, if any, and the spend of the ticket's budgets and the policy's limits.
struct Prepared {
    scope: Option<Denial>,
    /// The policy's limits, in the order their keys follow the ticket's budgets.
    limits: Vec<Limit>,
    /// How many of the keys are the ticket's budgets.
    ticket_keys: usize,
    spend: Box<dyn PreparedSpend>,
}

enum Path {
    Compiled {
        compiled: Compiled,
        /// Per granted tool (same order as `compiled.grants()`): what its calls spend.
        spends: Vec<OnceLock<Prepared>>,
    },
    Reference {
        ticket: Box<Ticket>,
        summary: Arc<Summary>,
        spends: Mutex<HashMap<String, Arc<Prepared>>>,
    },
}

struct Entry {
    bytes: Box<[u8]>,
    /// Heap held apart from what the path adds later (see `Entry::heap_bytes`).
    weight: usize,
    /// Heap of the budget spends prepared since (per tool, on its first allowed call).
    spends_bytes: AtomicUsize,
    expires: u64,
    chain: Vec<RevocationId>,
    /// Whether a block names a resource (audience).
    has_audience: bool,
    /// The revocation generation last seen with no id of the chain revoked.
    clean_generation: AtomicU64,
    path: Path,
}

/// What a valid ticket says (see [`Verifier::ticket_info`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TicketInfo {
    /// Who the ticket is for.
    pub identity: crate::Identity,
    /// The tools it may call now on this server, sorted.
    pub tools: Vec<String>,
    /// The earliest expiry on its chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// The resource (RFC 8707 audience) the chain names, if any: on a verifier with a
    /// resource, it is that resource (a ticket naming another is not valid here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Its chain's revocation ids (hex), authority first.
    pub chain: Vec<String>,
}

/// What a check decided, and where the audit log recorded it.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The decision.
    pub decision: Decision,
    /// The audit record's `seq`, when an audit sink is configured.
    pub audit_seq: Option<u64>,
}

impl Verifier {
    /// Starts a verifier that accepts tickets signed by these root keys.
    pub fn builder(keys: KeySet) -> VerifierBuilder {
        VerifierBuilder {
            keys,
            resource: None,
            budgets: Arc::new(MemoryBudgets::new()),
            revocations: Arc::new(NoRevocations),
            audit: None,
            redaction: Redaction::Keep,
            cache_bytes: DEFAULT_CACHE_BYTES,
            require_audience: true,
            require_expiry: true,
            max_lifetime: None,
            ticket_budgets: true,
            policy: Policy::new(),
        }
    }

    /// Checks a call: the decision of spec §6.3, with revocation and budgets, recorded in the
    /// audit log when one is configured.
    pub fn check(&self, ticket: &str, call: &Call) -> Decision {
        self.check_audited(ticket, call).decision
    }

    /// [`Verifier::check`] on the ticket's bytes, as they arrive in a header (no UTF-8 check
    /// on the cached path).
    pub fn check_bytes(&self, ticket: &[u8], call: &Call) -> Decision {
        self.check_audited_bytes(ticket, call).decision
    }

    /// Like [`Verifier::check`], also returning the audit record's `seq` (to attach the call's
    /// outcome with [`Verifier::record_outcome`]). An audit sink that cannot write turns the
    /// decision into `store_unavailable`.
    pub fn check_audited(&self, ticket: &str, call: &Call) -> Checked {
        self.check_audited_bytes(ticket.as_bytes(), call)
    }

    /// [`Verifier::check_audited`] on the ticket's bytes.
    pub fn check_audited_bytes(&self, ticket: &[u8], call: &Call) -> Checked {
        let (decided, entry) = self.decide(ticket, call, Spending::Yes);
        self.audited(call, decided.map_err(Stop::denial), entry)
    }

    /// [`Verifier::check_audited_bytes`] when it can answer without waiting on a budget
    /// store's I/O (docs §10.3); `None`, having spent and recorded nothing, when it would wait.
    /// An async server calls this on its runtime and, on `None`, `check_audited_bytes` on a
    /// blocking pool, so a stalled store never holds a runtime worker.
    pub fn try_check_audited_bytes(&self, ticket: &[u8], call: &Call) -> Option<Checked> {
        let (decided, entry) = self.decide(ticket, call, Spending::IfLocal);
        self.audited_unless_blocked(call, decided, entry)
    }

    /// The audited decision, or `None` (nothing recorded) for one that stopped at a store
    /// that would wait.
    fn audited_unless_blocked(
        &self,
        call: &Call,
        decided: Result<Allowed, Stop>,
        entry: Option<Arc<Entry>>,
    ) -> Option<Checked> {
        match decided {
            Err(Stop::WouldBlock) => None,
            Err(Stop::Denied(d)) => Some(self.audited(call, Err(d), entry)),
            Ok(a) => Some(self.audited(call, Ok(a), entry)),
        }
    }

    fn audited(&self, call: &Call, decision: Decision, entry: Option<Arc<Entry>>) -> Checked {
        self.count(
            call.target.method(),
            call.target.name(),
            decision.as_ref().err(),
        );
        let Some(sink) = &self.audit else {
            return Checked {
                decision,
                audit_seq: None,
            };
        };
        let (identity, chain): (Option<(&str, &str)>, &[RevocationId]) = match &entry {
            Some(e) => {
                let s = e.summary();
                (
                    Some((s.identity.agent.as_str(), s.identity.user.as_str())),
                    &e.chain,
                )
            }
            None => (None, &[]),
        };
        let record = Record::decision(
            call,
            identity,
            chain,
            decision.as_ref().err(),
            &self.redaction,
        );
        match sink.append(record) {
            Ok(seq) => Checked {
                decision,
                audit_seq: Some(seq),
            },
            Err(d) => Checked {
                decision: Err(d),
                audit_seq: None,
            },
        }
    }

    /// Records a decision on a request other than a tool call (docs §11.1): an MCP method
    /// such as `resources/read` that the server admits by its own configuration. `info` is
    /// what [`Verifier::ticket_info`] said (`None` when the ticket was not valid). Returns the
    /// record's `seq` when an audit sink is configured; a sink that cannot write is
    /// `store_unavailable` (the request must then be refused: nothing unaudited is served).
    pub fn record_request(
        &self,
        time: u64,
        method: &str,
        target: Option<&str>,
        info: Option<&TicketInfo>,
        denial: Option<&Denial>,
    ) -> Result<Option<u64>, Denial> {
        self.count(method, target.unwrap_or_default(), denial);
        let Some(sink) = &self.audit else {
            return Ok(None);
        };
        let identity = info.map(|i| (i.identity.agent.as_str(), i.identity.user.as_str()));
        let chain = info.map(|i| i.chain.as_slice()).unwrap_or_default();
        sink.append(Record::request(
            time, method, target, identity, chain, denial,
        ))
        .map(Some)
    }

    /// Records the outcome of an allowed call (docs §11.1).
    pub fn record_outcome(
        &self,
        decision_seq: u64,
        time: u64,
        outcome: &str,
        duration_ms: u64,
    ) -> Result<(), Denial> {
        match &self.audit {
            Some(sink) => sink
                .append(Record::outcome(time, decision_seq, outcome, duration_ms))
                .map(|_| ()),
            None => Ok(()),
        }
    }

    /// The tools this ticket may call at `now` on this server (for `tools/list`): granted by the
    /// authority block and in every block's tool list, if the ticket is valid now (verified,
    /// not revoked, within its times, for this resource). Row filters and hand-written checks
    /// depend on arguments and are not considered.
    pub fn callable_tools(&self, ticket: &str, now: u64) -> Result<Vec<String>, Denial> {
        self.ticket_info(ticket, now).map(|i| i.tools)
    }

    /// What a valid ticket says, for an MCP server's authentication step (docs §10.5): who,
    /// for whom, the tools it may call, its expiry and chain. Fails as [`Verifier::callable_tools`]
    /// does for a ticket that is not valid now.
    pub fn ticket_info(&self, ticket: &str, now: u64) -> Result<TicketInfo, Denial> {
        let entry = self.valid_entry(ticket, now)?;
        let audience_of = |checks: &[(usize, Restriction)]| {
            checks.iter().find_map(|(_, r)| match r.fast() {
                crate::restriction::Fast::Audience(u) => Some(u.to_string()),
                _ => None,
            })
        };
        let (mut tools, audience): (Vec<String>, _) = match &entry.path {
            Path::Compiled { compiled, .. } => (
                compiled.callable().cloned().collect(),
                audience_of(compiled.checks()),
            ),
            Path::Reference { ticket: t, .. } => {
                let checks = t.restrictions();
                let tools = crate::restriction::callable(t.grants(), &checks)
                    .filter(|(_, ok)| *ok)
                    .map(|(g, _)| g.clone())
                    .collect();
                (tools, audience_of(&checks))
            }
        };
        tools.sort();
        tools.dedup();
        let summary = entry.summary();
        // Docs §16: a tool whose policy scopes the ticket lacks is not callable here.
        tools.retain(|t| self.policy.scope_denial(t, &summary.identity).is_none());
        Ok(TicketInfo {
            identity: summary.identity.clone(),
            tools,
            expires: summary.expires,
            audience,
            chain: entry.chain.iter().map(RevocationId::to_hex).collect(),
        })
    }

    /// Whether a ticket is valid now, as [`Verifier::ticket_info`] judges it, without building
    /// its information: what an MCP layer asks before reading a request's body. The handle
    /// lets [`Verifier::try_check_authenticated`] skip finding the ticket again.
    pub fn authenticate(&self, ticket: &str, now: u64) -> Result<Authenticated, Denial> {
        self.valid_entry(ticket, now)
            .map(|entry| Authenticated { entry })
    }

    /// [`Verifier::try_check_audited_bytes`] for a ticket [`Verifier::authenticate`] found
    /// valid: the same decision (the call's time, revocation and every restriction are checked
    /// again), without hashing and comparing the ticket's bytes a second time.
    pub fn try_check_authenticated(&self, ticket: &Authenticated, call: &Call) -> Option<Checked> {
        let decided = match call.check_time() {
            Err(d) => Err(Stop::Denied(d)),
            Ok(()) => self.decide_entry(&ticket.entry, call, Spending::IfLocal),
        };
        self.audited_unless_blocked(call, decided, Some(ticket.entry.clone()))
    }

    /// The entry of a ticket that is valid now: verified, not revoked, accepted here, within
    /// its validity restrictions (time, audience).
    fn valid_entry(&self, ticket: &str, now: u64) -> Result<Arc<Entry>, Denial> {
        if now > crate::time::MAX_TIME {
            return Err(crate::call::invalid_time(now));
        }
        let entry = self.entry(ticket.as_bytes().trim_ascii())?;
        self.check_revocation(&entry)?;
        self.check_acceptance(&entry, now)?;
        let probe = Call {
            target: crate::call::Target::Tool(String::new()),
            args: Default::default(),
            time: now,
            // Not read: the restrictions take the verifier's resource as `resource` below
            // (a copy of it here was an allocation on every authentication).
            resource: None,
        };
        let resource = self.resource.as_deref();
        // The validity restrictions only (time, audience), by the one precedence walk.
        let valid = |checks: &[(usize, Restriction)]| {
            let fails = |(_, r): &(usize, Restriction)| {
                r.class() == Class::Validity && r.fails(&probe, resource)
            };
            match walk(checks, |(_, r)| r.class(), fails, || Some(())) {
                Walk::Denied((block, r)) => Err(r.denial(*block, &probe, resource)),
                Walk::NotGranted | Walk::Granted(()) => Ok(()),
            }
        };
        match &entry.path {
            Path::Compiled { compiled, .. } => valid(compiled.checks())?,
            Path::Reference { ticket: t, .. } => {
                valid(&t.restrictions())?;
                // Without Datalog no call on such a ticket can be allowed: it is refused here,
                // before a layer opens a session or lists tools for it (found by review: with
                // hand-written checks whose text is not read, a lying description authenticated).
                #[cfg(not(feature = "datalog"))]
                return Err(Denial::new(
                    Code::LimitsExceeded,
                    crate::limits::NO_DATALOG_REASON,
                ));
            }
        }
        Ok(entry)
    }

    fn decide(
        &self,
        ticket: &[u8],
        call: &Call,
        spending: Spending,
    ) -> (Result<Allowed, Stop>, Option<Arc<Entry>>) {
        if let Err(d) = call.check_time() {
            return (Err(d.into()), None);
        }
        let bytes = ticket.trim_ascii();
        let entry = match self.entry(bytes) {
            Ok(e) => e,
            Err(d) => return (Err(d.into()), None),
        };
        let decision = self.decide_entry(&entry, call, spending);
        (decision, Some(entry))
    }

    /// The decision [`Verifier::check`] would give, without spending budgets or writing an
    /// audit record: for filtering a list (`resources/list`, `prompts/list`) by what the
    /// ticket allows. A tool call's budgets are not consulted.
    pub fn allows(&self, ticket: &str, call: &Call) -> Decision {
        call.check_time()?;
        let entry = self.entry(ticket.as_bytes().trim_ascii())?;
        self.decide_entry(&entry, call, Spending::No)
            .map_err(Stop::denial)
    }

    /// The decision of spec §6.3 with revocation, and, when `spend`, budgets (only tool calls
    /// spend: spec §4.5).
    fn decide_entry(&self, entry: &Entry, call: &Call, spend: Spending) -> Result<Allowed, Stop> {
        self.check_revocation(entry)?;
        self.check_acceptance(entry, call.time)?;
        let resource = self.resource.as_deref().or(call.resource.as_deref());
        match &entry.path {
            Path::Compiled { compiled, spends } => {
                let i = compiled.evaluate(call, resource)?;
                let allowed = compiled.allowed(i, call);
                if let Some(i) = i {
                    let prepared = spends[i].get_or_init(|| self.prepare(&allowed, entry));
                    self.apply(prepared, spend, call.time, &allowed)?;
                }
                Ok(allowed)
            }
            Path::Reference {
                ticket,
                summary,
                spends,
            } => {
                let allowed = if resource == call.resource.as_deref() {
                    ticket.authorize_with(call, summary.clone())?
                } else {
                    let mut c = call.clone();
                    c.resource = resource.map(str::to_string);
                    ticket.authorize_with(&c, summary.clone())?
                };
                if let Some(tool) = call.target.tool() {
                    let prepared = {
                        let mut map = spends.lock().unwrap_or_else(|e| e.into_inner());
                        map.entry(tool.to_string())
                            .or_insert_with(|| Arc::new(self.prepare(&allowed, entry)))
                            .clone()
                    };
                    self.apply(&prepared, spend, call.time, &allowed)?;
                }
                Ok(allowed)
            }
        }
    }

    /// What this server accepts at all (docs §10.1): a ticket that expires, and, on a server
    /// with a resource, one issued for a resource. Checked before the ticket's restrictions.
    fn check_acceptance(&self, entry: &Entry, now: u64) -> Result<(), Denial> {
        if self.require_expiry && entry.expires == NEVER {
            return Err(Denial::new(
                Code::Expired,
                "the ticket never expires, and this server accepts only tickets that do",
            )
            .at(0, "expiry required"));
        }
        if let Some(max) = self.max_lifetime {
            if entry.expires.saturating_sub(now) > max {
                let left = match entry.expires {
                    NEVER => "never expires".to_string(),
                    e => format!("stays valid {} s more", e - now),
                };
                return Err(Denial::new(
                    Code::Expired,
                    format!("the ticket {left}, longer than this server accepts ({max} s)"),
                )
                .at(0, "lifetime cap"));
            }
        }
        if let (true, Some(resource), false) =
            (self.require_audience, &self.resource, entry.has_audience)
        {
            return Err(Denial::new(
                Code::WrongResource,
                format!(
                    "the ticket names no resource (audience), and this server ({resource}) \
                     accepts only tickets issued for it"
                ),
            )
            .at(0, "audience required"));
        }
        Ok(())
    }

    /// Counts a decision and emits it as a `tracing` event (docs §16.3): target
    /// `captix::metrics`, level DEBUG, the field `monotonic_counter.captix.decisions` (the
    /// convention of OpenTelemetry's tracing bridge) with `decision`, `code`, `method` and
    /// `called` (the tool, URI or prompt). Without a subscriber it costs a flag check; on
    /// WebAssembly only the count is kept.
    fn count(&self, method: &str, target: &str, denial: Option<&Denial>) {
        let (index, code) = match denial {
            None => (0, "allow"),
            Some(d) => (
                Code::ALL
                    .iter()
                    .position(|c| *c == d.code)
                    .map_or(0, |i| i + 1),
                d.code.as_str(),
            ),
        };
        self.decisions[count_shard()].0[index].fetch_add(1, Ordering::Relaxed);
        #[cfg(target_arch = "wasm32")]
        let _ = (method, target, code);
        #[cfg(not(target_arch = "wasm32"))]
        tracing::event!(
            target: "captix::metrics",
            tracing::Level::DEBUG,
            monotonic_counter.captix.decisions = 1u64,
            decision = if denial.is_none() { "allow" } else { "deny" },
            code,
            method,
            called = target,
        );
    }

    /// How many decisions this verifier made, by code (`allow` first, then every code of
    /// spec §8 in order, zeros included): checks and recorded requests alike.
    pub fn decisions(&self) -> Vec<(&'static str, u64)> {
        std::iter::once("allow")
            .chain(Code::ALL.iter().map(|c| c.as_str()))
            .enumerate()
            .map(|(i, code)| {
                let n = self
                    .decisions
                    .iter()
                    .map(|s| s.0[i].load(Ordering::Relaxed))
                    .sum();
                (code, n)
            })
            .collect()
    }

    /// The server's policy (docs §16).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// This server's resource URI, normalized, if it has one.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    fn check_revocation(&self, entry: &Entry) -> Result<(), Denial> {
        let generation = self.revocations.generation();
        if entry.clean_generation.load(Ordering::Acquire) == generation {
            return Ok(());
        }
        if let Some(i) = self.revocations.first_revoked(&entry.chain)? {
            return Err(Denial::new(
                Code::Revoked,
                format!("block {i} of the ticket's chain has been revoked"),
            )
            .at(i, "revocation"));
        }
        entry.clean_generation.store(generation, Ordering::Release);
        Ok(())
    }

    /// Prepares what an allowed (ticket, tool) needs on each call (docs §16): the policy's
    /// scope denial, and one spend of the ticket's budgets followed by the policy's limits;
    /// its heap is counted on the entry.
    fn prepare(&self, allowed: &Allowed, entry: &Entry) -> Prepared {
        let tool = allowed.tool().unwrap_or_default();
        let identity = allowed.identity();
        let mut keys: Vec<BudgetKey> = if self.ticket_budgets {
            allowed
                .budgets()
                .iter()
                .map(|b| budget_key(b, allowed))
                .collect()
        } else {
            Vec::new()
        };
        let ticket_keys = keys.len();
        let (limits, limit_keys): (Vec<Limit>, Vec<BudgetKey>) =
            self.policy.keyed(tool, identity).into_iter().unzip();
        keys.extend(limit_keys);
        let spend = self.budgets.prepare(keys);
        let scope = self.policy.scope_denial(tool, identity);
        entry.spends_bytes.fetch_add(
            spend.heap_bytes() + 64 + limits.len() * std::mem::size_of::<Limit>(),
            Ordering::Relaxed,
        );
        Prepared {
            scope,
            limits,
            ticket_keys,
            spend,
        }
    }

    /// The policy's scopes, then, when spending, the budgets and limits, all or nothing.
    fn apply(
        &self,
        p: &Prepared,
        spend: Spending,
        now: u64,
        allowed: &Allowed,
    ) -> Result<(), Stop> {
        if let Some(d) = &p.scope {
            return Err(d.clone().into());
        }
        let spent = match spend {
            Spending::No => return Ok(()),
            Spending::Yes => p.spend.spend(now)?,
            Spending::IfLocal => p.spend.try_spend(now).ok_or(Stop::WouldBlock)??,
        };
        match spent {
            Spend::Spent => Ok(()),
            Spend::Exhausted { which, retry_after } => {
                Err(match which.checked_sub(p.ticket_keys) {
                    None => exhausted(which, retry_after, allowed),
                    Some(i) => crate::policy::rate_limited(
                        allowed.tool().unwrap_or_default(),
                        &p.limits[i],
                        allowed.identity(),
                        retry_after,
                    ),
                }
                .into())
            }
        }
    }

    /// The cached entry for these exact bytes, or a new one (parse, verify, compile).
    fn entry(&self, bytes: &[u8]) -> Result<Arc<Entry>, Denial> {
        // Spec §6.3 step 1, before hashing for the cache or checking UTF-8.
        check_size(bytes)?;
        if let Some(e) = self.cache.get(bytes) {
            return Ok(e);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Denial::new(Code::Malformed, "not a captix ticket: not UTF-8 text"))?;
        let ticket = Ticket::parse(text, &self.keys)?;
        let chain: Vec<RevocationId> = ticket.revocation_ids().cloned().collect();
        let expires = ticket.expires().unwrap_or(NEVER);
        let has_audience = ticket
            .blocks()
            .iter()
            .any(|b| b.description().is_some_and(|d| d.resource.is_some()));
        let path = match Compiled::compile(&ticket) {
            Some(compiled) => {
                let spends = compiled.grants().iter().map(|_| OnceLock::new()).collect();
                Path::Compiled { compiled, spends }
            }
            None => Path::Reference {
                summary: Arc::new(Summary::of(&ticket)),
                ticket: Box::new(ticket),
                spends: Mutex::new(HashMap::new()),
            },
        };
        let weight = std::mem::size_of::<Entry>()
            + bytes.len()
            + entry_overhead(&path, bytes.len())
            + chain.iter().map(|c| c.0.len() + 48).sum::<usize>();
        let entry = Arc::new(Entry {
            bytes: bytes.into(),
            weight,
            spends_bytes: AtomicUsize::new(0),
            has_audience,
            expires,
            chain,
            clean_generation: AtomicU64::new(NEVER),
            path,
        });
        Ok(self.cache.insert(entry))
    }

    /// Drops cached tickets that expired before `now`. Returns how many were dropped.
    pub fn evict_expired(&self, now: u64) -> usize {
        self.cache.evict_expired(now)
    }

    /// Number of cached tickets.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// How many checks found their ticket outside the cache and parsed it (first sight, or
    /// evicted): a number to watch, and what shows the cache works.
    pub fn cache_misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// The heap the ticket cache holds now, as counted against its byte bound.
    pub fn cached_bytes(&self) -> usize {
        self.cache.heap_bytes()
    }
}

impl Cached for Entry {
    fn key(&self) -> &[u8] {
        &self.bytes
    }
    fn expires(&self) -> u64 {
        self.expires
    }
    fn heap_bytes(&self) -> usize {
        Entry::heap_bytes(self)
    }
}

impl Entry {
    /// The heap this entry holds now (an estimate): what the cache's byte bound counts.
    fn heap_bytes(&self) -> usize {
        let spends = self.spends_bytes.load(Ordering::Relaxed);
        match &self.path {
            Path::Compiled { compiled, .. } => self.weight + spends + compiled.heap_bytes(),
            Path::Reference { .. } => self.weight + spends,
        }
    }

    fn summary(&self) -> &Summary {
        match &self.path {
            Path::Compiled { compiled, .. } => &compiled.summary,
            Path::Reference { summary, .. } => summary,
        }
    }
}

/// Heap a path holds beyond what `Compiled::heap_bytes` counts: the prepared spends, and for
/// the reference path the whole parsed ticket.
fn entry_overhead(path: &Path, text_bytes: usize) -> usize {
    match path {
        Path::Compiled { spends, .. } => spends.len() * 64,
        Path::Reference { .. } => REFERENCE_BYTES_PER_TEXT_BYTE * text_bytes + 8192,
    }
}

fn budget_key(b: &BudgetRef, allowed: &Allowed) -> BudgetKey {
    BudgetKey {
        root: allowed
            .chain()
            .first()
            .map(|c| c.0.clone())
            .unwrap_or_default(),
        block: allowed
            .chain()
            .get(b.block)
            .map(|c| c.0.clone())
            .unwrap_or_default(),
        index: b.index as u32,
        max_calls: b.budget.max_calls,
        window: b.budget.window,
        // Spec §10.3: from the declaring block and its ancestors, never the presenting chain.
        expires: b.lives_until,
    }
}

/// The denial for the ticket budget at position `which` of an allowed call's budgets.
fn exhausted(which: usize, retry_after: Option<u64>, allowed: &Allowed) -> Denial {
    let b = &allowed.budgets()[which];
    let when = match retry_after {
        Some(s) => format!("; a call is possible again in {s}s"),
        None => "; it never refills".to_string(),
    };
    let mut d = Denial::new(
        Code::BudgetExhausted,
        format!("block {}: budget {} is exhausted{when}", b.block, b.budget),
    )
    .at(b.block, format!("budget {}", b.budget));
    d.retry_after = retry_after;
    d
}
