//! Input limits (spec §7). Checked before any signature or Datalog work.

use std::time::Duration;

/// Largest accepted ticket, in bytes of its text form (prefix included).
pub const MAX_TICKET_BYTES: usize = 16 * 1024;
/// Most blocks in one ticket (authority block included).
pub const MAX_BLOCKS: usize = 32;
/// Largest accepted call arguments, in bytes of JSON text.
pub const MAX_ARGS_BYTES: usize = 64 * 1024;
/// Deepest accepted nesting of call arguments (the arguments object itself is depth 1).
pub const MAX_ARGS_DEPTH: usize = 16;
/// Most scalar leaves (`arg` facts) in one call's arguments.
pub const MAX_ARGS_LEAVES: usize = 1024;
/// Longest accepted tool name, in bytes.
pub const MAX_TOOL_NAME_BYTES: usize = 128;
/// Longest accepted resource URI or URI pattern, in bytes.
pub const MAX_URI_BYTES: usize = 2048;

/// Most budgets in one block (spec §7.1): each can hold state in a budget store for as long
/// as its block can be presented, so a holder who attenuates freely must not be able to make
/// many per call.
pub const MAX_BUDGETS_PER_BLOCK: usize = 16;

/// Budget limit (spec §4.5): `(window + 1) × (max_calls + 1)` must stay below this (2^53),
/// so that budget arithmetic is exact in every store, Redis's Lua doubles included, at any
/// time (a day's window allows over 100 billion calls). Refused when minting, and a ticket
/// carrying a larger budget is `malformed`.
pub const MAX_BUDGET_PRODUCT: u64 = 1 << 53;

/// Datalog run limit: most facts the authorizer may hold.
///
/// A vocabulary ticket needs the ambient facts (at most [`MAX_ARGS_LEAVES`] + 4) and its own
/// identity, grant and budget facts; hostile rules that multiply facts are cut off here.
pub const DATALOG_MAX_FACTS: u64 = 4096;
/// Datalog run limit: most rule-application iterations.
///
/// Vocabulary tickets carry no rules and need one iteration; this bounds hand-written rules.
pub const DATALOG_MAX_ITERATIONS: u64 = 64;
/// Datalog work limit, checked before any Datalog runs (spec §7.2): the most work, in units
/// of about a nanosecond, that a call's bound may reach (fact scans, joined combinations,
/// expression operations, closures, string bytes). Biscuit checks its time limit only
/// between steps, so one hostile step could otherwise run for minutes; the bound keeps the
/// worst admitted ticket to a few milliseconds (`benches/benches/worst_case.rs`).
pub const DATALOG_MAX_WORK: u64 = 5_000_000;
/// Datalog run limit: wall-clock time.
///
/// Biscuit's default (1 ms) denies valid tickets on a busy machine. The deterministic limits
/// above bound hostile input; this one only stops a pathological run, so it is generous.
pub const DATALOG_MAX_TIME: Duration = Duration::from_millis(500);

/// Why a build without Biscuit's authorizer (the `datalog` feature off) refuses a ticket that
/// needs the reference path, or a hand-written check to mint.
#[cfg(not(feature = "datalog"))]
pub(crate) const NO_DATALOG_REASON: &str = "this build of captix evaluates no Datalog outside \
    the captix vocabulary (its `datalog` feature is off, as in the npm package's lean module): \
    a ticket with hand-written checks, or a block from another Biscuit tool, is refused";
