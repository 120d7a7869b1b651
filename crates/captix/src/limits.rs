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

/// Datalog run limit: most facts the authorizer may hold.
///
/// A vocabulary ticket needs the ambient facts (at most [`MAX_ARGS_LEAVES`] + 4) and its own
/// identity, grant and budget facts; hostile rules that multiply facts are cut off here.
pub const DATALOG_MAX_FACTS: u64 = 4096;
/// Datalog run limit: most rule-application iterations.
///
/// Vocabulary tickets carry no rules and need one iteration; this bounds hand-written rules.
pub const DATALOG_MAX_ITERATIONS: u64 = 64;
/// Datalog work limit, checked before any Datalog runs (spec §7.2): the most rule
/// evaluations (joined fact combinations) the ticket's rules and checks could need. Biscuit
/// checks its time limit only between steps, so one hostile join could otherwise run for
/// minutes. Measured here at about 0.3 µs per combination (a 99,225-combination join took
/// 29 ms), this bounds a run to a few milliseconds; a hand-written check over every argument
/// (`arg($p, $v)`) needs at most 1,024.
pub const DATALOG_MAX_WORK: u64 = 10_000;
/// Datalog run limit: wall-clock time.
///
/// Biscuit's default (1 ms) denies valid tickets on a busy machine. The deterministic limits
/// above bound hostile input; this one only stops a pathological run, so it is generous.
pub const DATALOG_MAX_TIME: Duration = Duration::from_millis(500);
