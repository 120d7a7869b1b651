//! Budget accounting (docs §10): the `BudgetStore` trait, GCRA, and the in-memory store.
//!
//! > A budget of N calls per W seconds is a GCRA (generic cell rate algorithm) with emission
//! > interval W/N and burst N, in exact integers. Time is counted in *ticks* of 1/N second: a
//! > call costs W ticks. The state is the *debt* in ticks at a time `at` (Unix seconds): at
//! > `now` the debt has drained by `min(now − at, W + 1)·N` ticks (never below 0); a call is
//! > admitted when `debt + W ≤ W·N`, and admitting sets the state to `(debt + W, max(now,
//! > at))`. When refused, a unit is back after `ceil((debt + W − W·N) / N)` seconds. Every
//! > number stays below `(W + 1)·(N + 1)`, which a budget must keep under 2^53 (§4.5), so
//! > every store (Redis's doubles included) computes the same answers at any time.
//! > A lifetime budget (W = 0) is a counter that admits while `count < N` and never refills.
//! > A call spends from every budget on its chain, all or nothing.
//! > A budget's state lives as long as a ticket holding its block can be presented: until
//! > the earliest expiry of the declaring block and its ancestors, whatever chain presents it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::error::{Code, Denial};

/// One budget to spend from, as the verifier hands it to a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetKey {
    /// Revocation id of the chain's authority block (shared by every key of a chain, so a
    /// clustered store can keep a chain's keys together).
    pub root: Vec<u8>,
    /// Revocation id of the block that set the budget.
    pub block: Vec<u8>,
    /// Index of the budget within its block.
    pub index: u32,
    /// Calls allowed per window.
    pub max_calls: u64,
    /// Window in seconds; 0 = lifetime.
    pub window: u64,
    /// When the budget's state may be dropped: the earliest expiry of the declaring block and
    /// its ancestors (blocks 0..=block), after which no ticket holding the block can be
    /// presented. Never derived from the presenting chain, whose later blocks may expire
    /// sooner. `None`: keep it for as long as the store lives.
    pub expires: Option<u64>,
}

/// The state of one budget (docs §10.3): the debt in ticks at time `at`; for a lifetime
/// budget, the count of calls (`at` unused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Ticks owed (windowed) or calls made (lifetime).
    pub debt: u64,
    /// When the debt was recorded (Unix seconds).
    pub at: u64,
}

/// The result of a spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spend {
    /// One unit was spent from every budget.
    Spent,
    /// Nothing was spent: the budget at this position (in the keys given) is exhausted.
    Exhausted {
        /// Position of the exhausted budget in the keys given.
        which: usize,
        /// Seconds until it has a unit again; `None` for a lifetime budget.
        retry_after: Option<u64>,
    },
}

/// Budgets prepared for one (ticket, tool): spent on every allowed call.
pub trait PreparedSpend: Send + Sync {
    /// Spends one unit from every budget, all or nothing, at `now` (Unix seconds).
    fn spend(&self, now: u64) -> Result<Spend, Denial>;

    /// The spend, when it can be answered without waiting on I/O (a network round trip);
    /// `None` otherwise, having spent nothing. Async servers call this on their runtime and
    /// [`PreparedSpend::spend`] on a blocking pool when it answers `None` (docs §10.3).
    fn try_spend(&self, now: u64) -> Option<Result<Spend, Denial>> {
        Some(self.spend(now))
    }

    /// The heap this prepared spend holds or keeps alive (an estimate): what a verifier's
    /// cache counts against its byte bound (docs §10.2).
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Where budget state lives: in memory, in a file-backed memory store, in Redis.
pub trait BudgetStore: Send + Sync {
    /// Prepares the budgets of one (ticket, tool) once; the verifier caches the result.
    fn prepare(&self, keys: Vec<BudgetKey>) -> Box<dyn PreparedSpend>;
}

/// The GCRA step for one budget (docs §10.3): the new state, or the seconds to wait (`None`
/// for a budget that never refills). Exact for every budget that passes
/// [`crate::Budget::new`]'s limit, at any time.
pub fn gcra(state: State, now: u64, max_calls: u64, window: u64) -> Result<State, Option<u64>> {
    if max_calls == 0 {
        return Err(None);
    }
    if window == 0 {
        return if state.debt < max_calls {
            Ok(State {
                debt: state.debt + 1,
                at: state.at,
            })
        } else {
            Err(None)
        };
    }
    let (n, w) = (u128::from(max_calls), u128::from(window));
    let debt = drained(state, now, max_calls, window) + w;
    if debt <= w * n {
        Ok(State {
            debt: u64::try_from(debt).unwrap_or(u64::MAX),
            at: state.at.max(now),
        })
    } else {
        Err(Some(
            u64::try_from((debt - w * n).div_ceil(n)).unwrap_or(u64::MAX),
        ))
    }
}

/// The debt left at `now`: drained by `(now − at)·max_calls` ticks, never below 0; a clock
/// that went back drains nothing. `now − at` is capped at `⌊debt/N⌋ + 1` seconds, past which
/// nothing is left, so every product stays exact. (For a debt up to `(W + 1)·N`, the most
/// §10.3's own spends reach, that is the cap of `W + 1` seconds; charges folded out of time
/// order, §10.6, may leave more, which drains all the same.)
pub(crate) fn drained(state: State, now: u64, max_calls: u64, _window: u64) -> u128 {
    let (debt, n) = (u128::from(state.debt), u128::from(max_calls));
    if n == 0 {
        return debt;
    }
    let elapsed = u128::from(now.saturating_sub(state.at)).min(debt / n + 1);
    debt.saturating_sub(elapsed * n)
}

/// True when a state is the same as no state at `now` (it can be forgotten).
fn idle(state: State, now: u64, key: &Key) -> bool {
    if key.window == 0 {
        // Lifetime counters live until no ticket holding their block can be presented; one
        // that never counted a call is no state at all (prepared, never spent).
        return state.debt == 0 || key.expires().is_some_and(|e| now >= e);
    }
    drained(state, now, key.max_calls, key.window) == 0
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Id {
    block: Box<[u8]>,
    index: u32,
}

#[derive(Debug)]
struct Key {
    max_calls: u64,
    window: u64,
    /// `u64::MAX` for none; only ever raised (a store never shortens a budget's life).
    expires: AtomicU64,
}

impl Key {
    fn new(max_calls: u64, window: u64, expires: Option<u64>) -> Self {
        Key {
            max_calls,
            window,
            expires: AtomicU64::new(expires.unwrap_or(u64::MAX)),
        }
    }

    fn expires(&self) -> Option<u64> {
        Some(self.expires.load(Ordering::Relaxed)).filter(|e| *e != u64::MAX)
    }

    fn extend(&self, expires: Option<u64>) {
        self.expires
            .fetch_max(expires.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

struct Cell {
    key: Key,
    state: Mutex<State>,
}

const SHARDS: usize = 16;

/// The in-memory budget store. Safe to share across threads; each budget has its own lock,
/// taken in a fixed order so that multi-budget spends are atomic without deadlock.
pub struct MemoryBudgets {
    shards: Vec<RwLock<HashMap<Id, Arc<Cell>>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for MemoryBudgets {
    fn default() -> Self {
        MemoryBudgets {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: Default::default(),
        }
    }
}

impl MemoryBudgets {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard(&self, id: &Id) -> &RwLock<HashMap<Id, Arc<Cell>>> {
        use std::hash::BuildHasher;
        &self.shards[(self.hasher.hash_one(id) as usize) % SHARDS]
    }

    fn cell(&self, k: &BudgetKey) -> Arc<Cell> {
        let id = Id {
            block: k.block.clone().into_boxed_slice(),
            index: k.index,
        };
        let shard = self.shard(&id);
        let found = shard
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned();
        let cell = match found {
            Some(c) => c,
            None => shard
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id)
                .or_insert_with(|| {
                    Arc::new(Cell {
                        key: Key::new(k.max_calls, k.window, k.expires),
                        state: Mutex::new(State::default()),
                    })
                })
                .clone(),
        };
        cell.key.extend(k.expires);
        cell
    }

    /// Drops state that is the same as none at `now` (refilled windows, expired chains).
    /// Cells still held by cached tickets stay. Returns how many were dropped.
    pub fn sweep(&self, now: u64) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            let mut map = shard.write().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, c| {
                let keep = Arc::strong_count(c) > 1
                    || !idle(
                        *c.state.lock().unwrap_or_else(|e| e.into_inner()),
                        now,
                        &c.key,
                    );
                if !keep {
                    dropped += 1;
                }
                keep
            });
        }
        dropped
    }

    /// Number of budgets with state.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// True when no budget has state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the state to `path` atomically (a temporary file, fsync, rename), in the compact
    /// binary form of docs §10.3. State that is the same as none at `now` is left out:
    /// a refilled window, a lifetime counter that no presentable ticket holds any more.
    pub fn save(&self, path: &Path, now: u64) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(64 + self.len() * 104);
        out.extend_from_slice(MAGIC);
        let mut count = 0u32;
        let mut body = Vec::new();
        for shard in &self.shards {
            for (id, c) in shard.read().unwrap_or_else(|e| e.into_inner()).iter() {
                let state = *c.state.lock().unwrap_or_else(|e| e.into_inner());
                if idle(state, now, &c.key) {
                    continue;
                }
                count += 1;
                let len = u16::try_from(id.block.len()).unwrap_or(u16::MAX);
                body.extend_from_slice(&len.to_le_bytes());
                body.extend_from_slice(&id.block[..len as usize]);
                body.extend_from_slice(&id.index.to_le_bytes());
                body.extend_from_slice(&c.key.max_calls.to_le_bytes());
                body.extend_from_slice(&c.key.window.to_le_bytes());
                body.extend_from_slice(&c.key.expires.load(Ordering::Relaxed).to_le_bytes());
                body.extend_from_slice(&state.debt.to_le_bytes());
                body.extend_from_slice(&state.at.to_le_bytes());
            }
        }
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&body);
        atomic_write(path, &out)
    }

    /// Loads a store written by [`MemoryBudgets::save`]. A missing file is an empty store;
    /// a damaged one is an error (refilling budgets silently would be the wrong failure).
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let store = Self::new();
        let mut bytes = Vec::new();
        match std::fs::File::open(path) {
            Ok(mut f) => f.read_to_end(&mut bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(e) => return Err(e),
        };
        let bad = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a captix budget state file",
            )
        };
        // Version 1 files held the absolute GCRA time `tat` in ticks instead of (debt, at).
        let (version, mut r) = match (bytes.strip_prefix(MAGIC), bytes.strip_prefix(MAGIC_V1)) {
            (Some(r), _) => (2, r),
            (None, Some(r)) => (1, r),
            (None, None) => return Err(bad()),
        };
        let mut take = |n: usize| -> std::io::Result<&[u8]> {
            if r.len() < n {
                return Err(bad());
            }
            let (a, b) = r.split_at(n);
            r = b;
            Ok(a)
        };
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?);
        for _ in 0..count {
            let len = u16::from_le_bytes(take(2)?.try_into().map_err(|_| bad())?) as usize;
            let block = take(len)?.to_vec().into_boxed_slice();
            let index = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?);
            let max_calls = u64_of(take(8)?);
            let window = u64_of(take(8)?);
            let expires = Some(u64_of(take(8)?)).filter(|e| *e != u64::MAX);
            // Version 1 recorded the presenting chain's expiry, which may be a short-lived
            // child's: a lifetime counter read from it is kept for good instead.
            let expires = if version == 1 && window == 0 {
                None
            } else {
                expires
            };
            let state = if version == 1 {
                from_v1(u64_of(take(8)?), max_calls, window)
            } else {
                State {
                    debt: u64_of(take(8)?),
                    at: u64_of(take(8)?),
                }
            };
            let id = Id { block, index };
            let cell = Arc::new(Cell {
                key: Key::new(max_calls, window, expires),
                state: Mutex::new(state),
            });
            store
                .shard(&id)
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, cell);
        }
        if !r.is_empty() {
            return Err(bad());
        }
        Ok(store)
    }
}

const MAGIC: &[u8; 8] = b"CPXBUD2\n";
const MAGIC_V1: &[u8; 8] = b"CPXBUD1\n";

/// A version 1 state (the absolute GCRA time `tat`, in ticks) as (debt, at): the same debt
/// at every later time, with `at` no later than the last spend.
pub(crate) fn from_v1(tat: u64, max_calls: u64, window: u64) -> State {
    if window == 0 || max_calls == 0 {
        return State { debt: tat, at: 0 };
    }
    let at = (tat / max_calls).saturating_sub(window);
    State {
        debt: tat - at * max_calls,
        at,
    }
}

/// Writes a file atomically: a temporary file beside it, fsync, rename, fsync of the folder.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = PathBuf::from(dir);
    tmp.push(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

struct MemorySpend {
    /// Cells in lock order (by address), with their position in the caller's keys.
    cells: Vec<(usize, Arc<Cell>)>,
}

impl MemorySpend {
    /// Locks every cell (in the fixed global order), checks all, then commits all.
    fn run<'a>(&'a self, guards: &mut [Option<MutexGuard<'a, State>>], now: u64) -> Spend {
        for (slot, (_, c)) in guards.iter_mut().zip(&self.cells) {
            *slot = Some(c.state.lock().unwrap_or_else(|e| e.into_inner()));
        }
        let mut worst: Option<(usize, Option<u64>)> = None;
        for (g, (i, c)) in guards.iter().zip(&self.cells) {
            let state = g.as_deref().copied().unwrap_or_default();
            if let Err(wait) = gcra(state, now, c.key.max_calls, c.key.window) {
                // Report the earliest-positioned exhausted budget.
                if worst.is_none_or(|(w, _)| *i < w) {
                    worst = Some((*i, wait));
                }
            }
        }
        if let Some((which, retry_after)) = worst {
            return Spend::Exhausted { which, retry_after };
        }
        for (g, (_, c)) in guards.iter_mut().zip(&self.cells) {
            if let Some(g) = g {
                if let Ok(next) = gcra(**g, now, c.key.max_calls, c.key.window) {
                    **g = next;
                }
            }
        }
        Spend::Spent
    }
}

impl PreparedSpend for MemorySpend {
    fn heap_bytes(&self) -> usize {
        // the list, and each cell it keeps alive with its id in the store's map
        self.cells.len() * (std::mem::size_of::<(usize, Arc<Cell>)>() + 224)
    }

    fn spend(&self, now: u64) -> Result<Spend, Denial> {
        // No allocation for up to 8 budgets on a chain (the common case).
        const INLINE: usize = 8;
        let n = self.cells.len();
        if n <= INLINE {
            let mut guards: [Option<MutexGuard<'_, State>>; INLINE] = [const { None }; INLINE];
            Ok(self.run(&mut guards[..n], now))
        } else {
            let mut guards: Vec<Option<MutexGuard<'_, State>>> = (0..n).map(|_| None).collect();
            Ok(self.run(&mut guards, now))
        }
    }
}

impl BudgetStore for MemoryBudgets {
    fn prepare(&self, keys: Vec<BudgetKey>) -> Box<dyn PreparedSpend> {
        let mut cells: Vec<(usize, Arc<Cell>)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i, self.cell(k)))
            .collect();
        cells.sort_by_key(|(_, c)| Arc::as_ptr(c) as usize);
        cells.dedup_by_key(|(_, c)| Arc::as_ptr(c) as usize);
        Box::new(MemorySpend { cells })
    }
}

impl<T: BudgetStore + ?Sized> BudgetStore for Arc<T> {
    fn prepare(&self, keys: Vec<BudgetKey>) -> Box<dyn PreparedSpend> {
        (**self).prepare(keys)
    }
}

/// A store that keeps nothing: every spend succeeds (for stateless checks).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBudgets;

struct Free;
impl PreparedSpend for Free {
    fn spend(&self, _: u64) -> Result<Spend, Denial> {
        Ok(Spend::Spent)
    }
}

impl BudgetStore for NoBudgets {
    fn prepare(&self, _: Vec<BudgetKey>) -> Box<dyn PreparedSpend> {
        Box::new(Free)
    }
}

/// The denial for an unreachable store.
pub fn store_unavailable(what: &str) -> Denial {
    Denial::new(
        Code::StoreUnavailable,
        format!("the budget or revocation store is unavailable, failing closed: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(block: u8, index: u32, max: u64, window: u64) -> BudgetKey {
        BudgetKey {
            root: vec![0],
            block: vec![block],
            index,
            max_calls: max,
            window,
            expires: None,
        }
    }

    fn st(debt: u64, at: u64) -> State {
        State { debt, at }
    }

    #[test]
    fn gcra_admits_a_burst_then_refills_smoothly() {
        // 3 per 60 s: 3 at once, then one every 20 s.
        let mut s = State::default();
        for _ in 0..3 {
            s = gcra(s, 1000, 3, 60).expect("burst");
        }
        assert_eq!(s, st(180, 1000));
        assert_eq!(gcra(s, 1000, 3, 60), Err(Some(20)));
        assert_eq!(gcra(s, 1019, 3, 60), Err(Some(1)));
        s = gcra(s, 1020, 3, 60).expect("refilled one");
        assert_eq!(gcra(s, 1020, 3, 60), Err(Some(20)));
        // after a full window of idleness, a full burst again
        let mut t = s;
        for _ in 0..3 {
            t = gcra(t, 1100, 3, 60).expect("full burst");
        }
        // fractional intervals: 100 per 60 s (0.6 s each) rounds the wait up
        let mut u = State::default();
        for _ in 0..100 {
            u = gcra(u, 5, 100, 60).expect("burst of 100");
        }
        assert_eq!(gcra(u, 5, 100, 60), Err(Some(1)));
    }

    #[test]
    fn lifetime_and_zero_budgets() {
        assert_eq!(gcra(st(0, 0), 0, 2, 0), Ok(st(1, 0)));
        assert_eq!(gcra(st(1, 0), 99, 2, 0), Ok(st(2, 0)));
        assert_eq!(gcra(st(2, 0), 10_000, 2, 0), Err(None));
        assert_eq!(gcra(st(0, 0), 0, 0, 60), Err(None));
    }

    /// Budget arithmetic never depends on the time's magnitude: the largest budget the
    /// limit allows behaves the same at time 0 and at the last representable second, and a
    /// clock that goes back refills nothing.
    #[test]
    fn gcra_is_exact_at_any_time() {
        let max = crate::limits::MAX_BUDGET_PRODUCT;
        let window = 1u64 << 20;
        let calls = max / (window + 1) - 2;
        for now in [0, 1_800_000_000, crate::time::MAX_TIME, i64::MAX as u64] {
            let mut s = State::default();
            s = gcra(s, now, calls, window).expect("first");
            assert_eq!(s.debt, window);
            // spend the whole burst at once: debt W·N exactly, then refused
            s.debt = window * calls;
            assert_eq!(gcra(s, now, calls, window), Err(Some(1)), "at {now}");
            // one second later one unit is back (N ticks per second drain W·N/W)
            let back = gcra(s, now.saturating_add(1), calls, window);
            assert!(back.is_ok(), "at {now}: {back:?}");
            assert_eq!(gcra(s, now.saturating_sub(5), calls, window), Err(Some(1)));
        }
    }

    #[test]
    fn version_1_state_converts_to_the_same_debt() {
        // 3 per 60 s, three calls at t=1000 (tat = 1000·3 + 180)
        let s = from_v1(3180, 3, 60);
        assert_eq!(gcra(s, 1000, 3, 60), Err(Some(20)));
        assert_eq!(gcra(s, 1019, 3, 60), Err(Some(1)));
        assert!(gcra(s, 1020, 3, 60).is_ok());
        assert_eq!(from_v1(2, 5, 0), st(2, 0));
    }

    #[test]
    fn spend_is_all_or_nothing_across_budgets() {
        let store = MemoryBudgets::new();
        let roomy = key(1, 0, 10, 0);
        let tight = key(2, 0, 1, 0);
        let p = store.prepare(vec![roomy.clone(), tight.clone()]);
        assert_eq!(p.spend(0).expect("ok"), Spend::Spent);
        assert_eq!(
            p.spend(0).expect("ok"),
            Spend::Exhausted {
                which: 1,
                retry_after: None
            }
        );
        // the roomy budget was not charged by the refused call: 9 more fit
        let only_roomy = store.prepare(vec![roomy]);
        for _ in 0..9 {
            assert_eq!(only_roomy.spend(0).expect("ok"), Spend::Spent);
        }
        assert!(matches!(
            only_roomy.spend(0).expect("ok"),
            Spend::Exhausted { .. }
        ));
    }

    #[test]
    fn parent_and_child_share_the_parent_budget() {
        let store = MemoryBudgets::new();
        let parent = key(1, 0, 3, 0);
        let child_own = key(2, 0, 10, 0);
        let parent_calls = store.prepare(vec![parent.clone()]);
        let child_calls = store.prepare(vec![parent, child_own]);
        assert_eq!(child_calls.spend(0).expect("ok"), Spend::Spent);
        assert_eq!(child_calls.spend(0).expect("ok"), Spend::Spent);
        assert_eq!(parent_calls.spend(0).expect("ok"), Spend::Spent);
        assert_eq!(
            child_calls.spend(0).expect("ok"),
            Spend::Exhausted {
                which: 0,
                retry_after: None
            }
        );
    }

    #[test]
    fn threads_never_overspend() {
        let store = Arc::new(MemoryBudgets::new());
        let spent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (store, spent) = (store.clone(), spent.clone());
                std::thread::spawn(move || {
                    let p = store.prepare(vec![key(1, 0, 1000, 0), key(2, 0, 5000, 0)]);
                    for _ in 0..600 {
                        if p.spend(0).expect("ok") == Spend::Spent {
                            spent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(spent.load(std::sync::atomic::Ordering::Relaxed), 1000);
    }

    #[test]
    fn state_survives_save_and_load() {
        let dir = std::env::temp_dir().join(format!("captix-budget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("budgets.bin");
        let store = MemoryBudgets::new();
        let k = key(7, 3, 2, 0);
        let windowed = key(8, 0, 1, 3600);
        let p = store.prepare(vec![k.clone(), windowed.clone()]);
        assert_eq!(p.spend(100).expect("ok"), Spend::Spent);
        store.save(&path, 100).expect("save");
        let again = MemoryBudgets::load(&path).expect("load");
        let p = again.prepare(vec![k, windowed]);
        assert_eq!(
            p.spend(200).expect("ok"),
            Spend::Exhausted {
                which: 1,
                retry_after: Some(3500)
            },
            "a restart does not refill"
        );
        assert!(MemoryBudgets::load(&dir.join("absent"))
            .expect("empty")
            .is_empty());
        std::fs::write(&path, b"CPXBUD2\n\x05\x00\x00\x00").expect("write");
        assert!(MemoryBudgets::load(&path).is_err(), "damaged file refused");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// The boundaries of forgetting: a windowed debt the second it has drained, a lifetime
    /// counter the second its lifetime ends, never before; saved files leave out exactly
    /// what a sweep drops.
    #[test]
    fn idle_state_boundaries_are_exact() {
        let store = MemoryBudgets::new();
        let windowed = key(1, 0, 2, 60); // 2 per 60 s: one call leaves a debt of 60 ticks
        let mut lifetime = key(2, 0, 5, 0);
        lifetime.expires = Some(500);
        let forever = key(3, 0, 5, 0);
        let p = store.prepare(vec![windowed, lifetime, forever]);
        assert_eq!(p.spend(100).expect("spend"), Spend::Spent);
        drop(p);
        // debt 60 ticks at t=100, drained at 2 ticks a second: gone at t=130
        assert_eq!(store.sweep(129), 0, "windowed debt left at 129");
        assert_eq!(store.sweep(130), 1, "drained at 130");
        assert_eq!(store.sweep(499), 0, "lifetime still presentable at 499");
        assert_eq!(store.sweep(500), 1, "lifetime over at 500");
        assert_eq!(store.sweep(u64::MAX), 0, "no expiry: kept for good");
        assert_eq!(store.len(), 1);
    }

    /// When several budgets are exhausted, the earliest position is reported, and nothing is
    /// spent from any of them.
    #[test]
    fn exhaustion_reports_the_first_position_and_spends_nothing() {
        let store = MemoryBudgets::new();
        let (a, b, c) = (key(1, 0, 1, 0), key(2, 0, 5, 0), key(3, 0, 1, 60));
        assert_eq!(
            store.prepare(vec![a.clone()]).spend(0).expect("a"),
            Spend::Spent
        );
        assert_eq!(
            store.prepare(vec![c.clone()]).spend(0).expect("c"),
            Spend::Spent
        );
        let all = store.prepare(vec![b.clone(), c.clone(), a.clone()]);
        assert_eq!(
            all.spend(0).expect("spend"),
            Spend::Exhausted {
                which: 1,
                retry_after: Some(60)
            }
        );
        let rev = store.prepare(vec![a, b.clone(), c]);
        assert_eq!(
            rev.spend(0).expect("spend"),
            Spend::Exhausted {
                which: 0,
                retry_after: None
            }
        );
        // b was never charged: five calls still fit
        let only_b = store.prepare(vec![b]);
        for _ in 0..5 {
            assert_eq!(only_b.spend(0).expect("b"), Spend::Spent);
        }
        assert!(matches!(
            only_b.spend(0).expect("b"),
            Spend::Exhausted { .. }
        ));
    }

    /// More than eight budgets on one call take the allocating path, with the same answers.
    #[test]
    fn many_budgets_on_one_call() {
        let store = MemoryBudgets::new();
        let keys: Vec<BudgetKey> = (0..12).map(|i| key(i, 0, 2 + u64::from(i), 0)).collect();
        let p = store.prepare(keys);
        assert_eq!(p.spend(0).expect("1"), Spend::Spent);
        assert_eq!(p.spend(0).expect("2"), Spend::Spent);
        assert_eq!(
            p.spend(0).expect("3"),
            Spend::Exhausted {
                which: 0,
                retry_after: None
            }
        );
    }

    #[test]
    fn sweep_forgets_only_idle_state() {
        let store = MemoryBudgets::new();
        {
            let p = store.prepare(vec![key(1, 0, 2, 60)]);
            p.spend(0).expect("ok");
        }
        assert_eq!(store.sweep(10), 0, "still counting at t=10");
        assert_eq!(store.sweep(60), 1, "refilled by t=60");
    }
}
