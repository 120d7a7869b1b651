//! Budget leases (docs §10.6): a replica reserves a slice of every budget of a call from a
//! shared source in one round trip, spends it locally, and settles what it used.
//!
//! > A lease of `k` units taken at source time `t` for `ttl` seconds is charged to every
//! > budget of the call as `k` calls at its end `e = t + ttl` (never earlier), and admitted
//! > only if the budget, with every outstanding lease also charged at its end, would admit
//! > `k` calls at `e` judged at `t`: `left(e) + k·W + (e − t)·N ≤ W·N`. The holder uses a
//! > unit only before `e` by its own clock, measured from when it asked, so every call it
//! > admits happens in `[t, e]`. Then the calls admitted by all replicas, each at the time
//! > it happened, are calls that one in-memory store (§10.3) would have admitted at those
//! > times: leases never overspend, whatever the replicas' clock offsets. Settling a lease
//! > charges only the units used (at `e`); a lease not settled by `e + GRACE` (its holder
//! > died) is charged in full, so a dead replica loses at most its unspent slice, for at
//! > most one window after the lease's end.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::budget::{drained, BudgetKey, BudgetStore, PreparedSpend, Spend, State};
use crate::error::Denial;

/// Seconds after a lease's end during which its holder may still settle it; after that the
/// source charges it in full.
pub const GRACE: u64 = 2;

/// What a source granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Take {
    /// `units` units of every budget are the holder's until `ttl` seconds after it asked (by
    /// its own clock). With `ttl == 0` one unit was spent outright and there is nothing to
    /// hold or settle.
    Granted {
        /// Units reserved (at least 1; the holder spends one at once).
        units: u64,
        /// Seconds the lease may be used for; 0 for an outright spend.
        ttl: u64,
    },
    /// Nothing was reserved: the budget at this position (in the keys given) cannot afford a
    /// single call now.
    Exhausted {
        /// Position of the exhausted budget in the keys given.
        which: usize,
        /// Seconds until it has a unit again; `None` for a lifetime budget.
        retry_after: Option<u64>,
    },
}

/// The shared side of leases: Redis, or [`MemoryLeases`] in one process and in tests.
pub trait LeaseSource: Send + Sync {
    /// Reserves up to `want` units of every budget in `keys` (all or nothing) as lease `id`,
    /// usable for `ttl` seconds by the source's clock. `want == 1` or `ttl == 0` asks for an
    /// outright spend of one unit. `now` is the caller's clock, for sources that have none.
    fn take(
        &self,
        keys: &[BudgetKey],
        id: u64,
        want: u64,
        ttl: u64,
        now: u64,
    ) -> Result<Take, Denial>;

    /// Settles lease `id`: charges the `used` units at its end and frees the rest. A lease the
    /// source already charged in full (settled too late) is left as it is; settling a lease
    /// twice changes nothing the second time.
    fn settle(&self, keys: &[BudgetKey], id: u64, used: u64, now: u64) -> Result<(), Denial>;

    /// Settles the ended lease `(id, used)` of these budgets, then takes a new one: a source
    /// with round trips does both in one (so a slot has one lease outstanding, not a queue of
    /// them). By default, the two calls; a failed settle is left to the source's grace.
    fn settle_and_take(
        &self,
        keys: &[BudgetKey],
        ended: (u64, u64),
        id: u64,
        want: u64,
        ttl: u64,
        now: u64,
    ) -> Result<Take, Denial> {
        let _ = self.settle(keys, ended.0, ended.1, now);
        self.take(keys, id, want, ttl, now)
    }
}

/// How a replica leases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseOptions {
    /// Most units one lease reserves (default 32).
    pub slice: u64,
    /// Seconds a lease lasts (default 1: the rest of the second it was taken in).
    pub ttl: u64,
    /// A lease holds at most `1/share` of any budget of its call (default 16), so that units
    /// held by one replica rarely refuse a call on another.
    pub share: u64,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            slice: 32,
            ttl: 1,
            share: 16,
        }
    }
}

impl LeaseOptions {
    /// The units and lifetime to ask for on a call with these budgets at `now`: `(1, 0)` (an
    /// outright spend) when leasing would not pay or could outlive a budget: a lifetime budget
    /// (its unspent slice would be lost for good if the replica died), a window shorter than
    /// the lease and its grace, a budget too small to share, a budget whose life ends first,
    /// a budget beyond half of §4.5's exact range.
    pub fn terms(&self, keys: &[BudgetKey], now: u64) -> (u64, u64) {
        let mut want = self.slice;
        for k in keys {
            let ends_first = k
                .expires
                .is_some_and(|e| e <= now.saturating_add(self.ttl + GRACE));
            // A lease may put up to a window of debt ahead of the budget's: twice §4.5's range
            // must stay exact in a store's doubles.
            let wide = (u128::from(k.window) + 1) * (u128::from(k.max_calls) + 1) * 2
                >= u128::from(crate::limits::MAX_BUDGET_PRODUCT);
            if k.window == 0 || k.window < self.ttl + GRACE || ends_first || wide {
                return (1, 0);
            }
            want = want.min(k.max_calls / self.share.max(1));
        }
        if want <= 1 || self.ttl == 0 {
            (1, 0)
        } else {
            (want, self.ttl)
        }
    }
}

/// The ticks a budget owes, seen from source time `t`, with the charge of a lease ending at
/// `end ≥ t` ahead of it: `max(TAT, end) − t` in the GCRA's terms (§10.6). A state recorded
/// ahead of `t` (a lease charged at its end) owes its debt plus the time until then, unlike
/// §10.3's clock that went back.
fn owed(state: State, t: u64, end: u64, max_calls: u64, window: u64) -> u128 {
    let n = u128::from(max_calls);
    if state.debt > 0 && state.at > end {
        u128::from(state.debt) + u128::from(state.at - t) * n
    } else {
        drained(state, end, max_calls, window) + u128::from(end.saturating_sub(t)) * n
    }
}

/// The units of one budget a lease ending at `end`, judged at `t`, may reserve (§10.6): the
/// largest `k` with `owed + k·W ≤ W·N`; for a lifetime budget, the count left. `state`
/// already holds every outstanding lease. `end == t` asks about an outright spend.
pub fn affordable(state: State, t: u64, end: u64, max_calls: u64, window: u64) -> u64 {
    if max_calls == 0 {
        return 0;
    }
    if window == 0 {
        return max_calls.saturating_sub(state.debt);
    }
    let (n, w) = (u128::from(max_calls), u128::from(window));
    let owed = owed(state, t, end, max_calls, window);
    u64::try_from((w * n).saturating_sub(owed) / w).unwrap_or(u64::MAX)
}

/// Seconds from `t` until a budget that cannot afford a call at `t` can: `None` for a lifetime
/// budget (or one of no calls).
fn retry_after(state: State, t: u64, max_calls: u64, window: u64) -> Option<u64> {
    if window == 0 || max_calls == 0 {
        return None;
    }
    let (n, w) = (u128::from(max_calls), u128::from(window));
    let over = (owed(state, t, t, max_calls, window) + w).saturating_sub(w * n);
    Some(u64::try_from(over.div_ceil(n)).unwrap_or(u64::MAX).max(1))
}

/// `units` calls charged at `end` (§10.6): the state of §10.3 after them. Applied in any
/// order, charges give a debt no lower than in time order, so a store may fold them as they
/// come.
pub fn charge(state: State, end: u64, units: u64, max_calls: u64, window: u64) -> State {
    if units == 0 {
        return state;
    }
    if window == 0 {
        return State {
            debt: state.debt.saturating_add(units),
            at: state.at,
        };
    }
    let debt = drained(state, end, max_calls, window) + u128::from(units) * u128::from(window);
    State {
        debt: u64::try_from(debt).unwrap_or(u64::MAX),
        at: state.at.max(end),
    }
}

/// What a source grants on budgets whose states (every outstanding lease charged) are `views`
/// at its time `t`: a lease of up to `want` units for `ttl` seconds, else an outright spend of
/// one unit, else the first budget that cannot afford one call. Sources apply the grant:
/// an outright spend commits one call at `t`, a lease is recorded as outstanding.
pub fn decide(
    keys: &[BudgetKey],
    views: &[State],
    t: u64,
    want: u64,
    ttl: u64,
) -> Result<Take, Take> {
    if want > 1 && ttl > 0 {
        let end = t.saturating_add(ttl);
        let units = keys
            .iter()
            .zip(views)
            .map(|(k, v)| affordable(*v, t, end, k.max_calls, k.window))
            .fold(want, u64::min);
        if units > 0 {
            return Ok(Take::Granted { units, ttl });
        }
    }
    for (i, (k, v)) in keys.iter().zip(views).enumerate() {
        if affordable(*v, t, t, k.max_calls, k.window) == 0 {
            return Err(Take::Exhausted {
                which: i,
                retry_after: retry_after(*v, t, k.max_calls, k.window),
            });
        }
    }
    Ok(Take::Granted { units: 1, ttl: 0 })
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    units: u64,
    end: u64,
}

#[derive(Default)]
struct Budget {
    committed: State,
    leases: HashMap<u64, Outstanding>,
}

impl Budget {
    /// The committed state with every live lease charged at its end; leases past their grace
    /// are committed in full first.
    fn view(&mut self, t: u64, k: &BudgetKey) -> State {
        let mut stale: Vec<Outstanding> = Vec::new();
        self.leases.retain(|_, l| {
            let live = t <= l.end.saturating_add(GRACE);
            if !live {
                stale.push(*l);
            }
            live
        });
        // Their holders did not settle in time: charged in full, in order of their ends.
        stale.sort_unstable_by_key(|l| l.end);
        for l in stale {
            self.committed = charge(self.committed, l.end, l.units, k.max_calls, k.window);
        }
        // In order of their ends: the GCRA's own order, the same in every source (charges
        // with the same end commute).
        let mut live: Vec<&Outstanding> = self.leases.values().collect();
        live.sort_unstable_by_key(|l| l.end);
        live.iter().fold(self.committed, |s, l| {
            charge(s, l.end, l.units, k.max_calls, k.window)
        })
    }
}

/// The shared side of leases in memory, with its own clock: the reference the Redis source
/// is tested against, and the source of the replicas simulated in tests.
pub struct MemoryLeases {
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
    budgets: Mutex<HashMap<(Vec<u8>, u32), Budget>>,
}

impl MemoryLeases {
    /// A source whose clock is `clock` (Unix seconds).
    pub fn new(clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        MemoryLeases {
            clock: Box::new(clock),
            budgets: Mutex::new(HashMap::new()),
        }
    }

    /// The committed state of a budget (leases not yet settled left out).
    pub fn committed(&self, block: &[u8], index: u32) -> State {
        let budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        budgets
            .get(&(block.to_vec(), index))
            .map(|b| b.committed)
            .unwrap_or_default()
    }
}

impl LeaseSource for MemoryLeases {
    fn take(
        &self,
        keys: &[BudgetKey],
        id: u64,
        want: u64,
        ttl: u64,
        _: u64,
    ) -> Result<Take, Denial> {
        let t = (self.clock)();
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        let mut views = Vec::with_capacity(keys.len());
        for k in keys {
            let b = budgets.entry((k.block.clone(), k.index)).or_default();
            if b.leases.contains_key(&id) {
                return Err(crate::budget::store_unavailable("lease id already in use"));
            }
            views.push(b.view(t, k));
        }
        let granted = match decide(keys, &views, t, want, ttl) {
            Ok(granted) => granted,
            Err(exhausted) => return Ok(exhausted),
        };
        for k in keys {
            let b = budgets.entry((k.block.clone(), k.index)).or_default();
            match granted {
                Take::Granted { units, ttl: 0 } => {
                    b.committed = charge(b.committed, t, units, k.max_calls, k.window)
                }
                Take::Granted { units, ttl } => {
                    b.leases.insert(
                        id,
                        Outstanding {
                            units,
                            end: t + ttl,
                        },
                    );
                }
                Take::Exhausted { .. } => {}
            }
        }
        Ok(granted)
    }

    fn settle(&self, keys: &[BudgetKey], id: u64, used: u64, _: u64) -> Result<(), Denial> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            if let Some(b) = budgets.get_mut(&(k.block.clone(), k.index)) {
                if let Some(l) = b.leases.remove(&id) {
                    let used = used.min(l.units);
                    b.committed = charge(b.committed, l.end, used, k.max_calls, k.window);
                }
            }
        }
        Ok(())
    }
}

/// A lease held by one prepared spend.
#[derive(Clone, Copy, Debug)]
struct Held {
    id: u64,
    units: u64,
    left: u64,
    /// Usable while `since <= now < until` (the holder's clock, the calls' time) and less
    /// than `until - since` seconds after it was asked for (a monotonic clock, so that a call
    /// stamped early but checked late cannot use a lease past its end).
    since: u64,
    until: u64,
    asked: Instant,
}

impl Held {
    fn usable(&self, now: u64) -> bool {
        self.left > 0
            && (self.since..self.until).contains(&now)
            && self.asked.elapsed() < Duration::from_secs(self.until - self.since)
    }

    fn used(&self) -> u64 {
        self.units - self.left
    }
}

/// Spends a unit of the held lease when it is usable; false when there is none to spend.
fn use_unit(held: &mut Option<Held>, now: u64) -> bool {
    match held {
        Some(h) if h.usable(now) => {
            h.left -= 1;
            true
        }
        _ => false,
    }
}

/// Leases that ended (used up or past their time) or whose prepared spend was dropped, with
/// their budgets: settled by the next [`Leased::flush`], off the call path.
type Ended = Arc<Mutex<Vec<(Vec<BudgetKey>, Held)>>>;

/// Ended leases waiting for a flush beyond which a call settles them itself (no flusher runs).
const ENDED_MAX: usize = 256;

/// Settles ended leases. One that fails is kept for the next flush until its grace is over
/// by the holder's clock (then the source has charged it in full anyway).
fn settle_ended<S: LeaseSource>(source: &S, ended: &Ended, now: u64) -> usize {
    let batch = std::mem::take(&mut *ended.lock().unwrap_or_else(|e| e.into_inner()));
    let mut again = Vec::new();
    let mut done = 0;
    let mut failed = false;
    for (keys, h) in batch {
        // After one failure (the source is down or stalled) the rest wait for the next flush
        // rather than each waiting out its own timeout.
        let settled = !failed && source.settle(&keys, h.id, h.used(), now).is_ok();
        failed |= !settled;
        if settled {
            done += 1;
        } else if now <= h.until.saturating_add(GRACE) {
            again.push((keys, h));
        }
    }
    if !again.is_empty() {
        ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(again);
    }
    done
}

/// Queues an ended lease for the flusher; past [`ENDED_MAX`] queued (no flusher runs), settles
/// them now. Never called with a slot's lock held.
fn retire<S: LeaseSource>(source: &S, ended: &Ended, keys: &[BudgetKey], h: Held, now: u64) {
    if queue(ended, keys, h) > ENDED_MAX {
        settle_ended(source, ended, now);
    }
}

/// Queues an ended lease for the flusher; the queue's length.
fn queue(ended: &Ended, keys: &[BudgetKey], h: Held) -> usize {
    let mut queue = ended.lock().unwrap_or_else(|e| e.into_inner());
    queue.push((keys.to_vec(), h));
    queue.len()
}

struct Slot {
    keys: Vec<BudgetKey>,
    held: Mutex<Option<Held>>,
    /// Held by the one thread taking a lease for this slot (across the round trip; never by
    /// `try_spend`): the others wait for its lease instead of each taking one.
    taking: Mutex<()>,
}

/// A budget store that spends from leases (docs §10.6): one round trip to the source per
/// lease instead of per call. Call [`Leased::flush`] every few hundred milliseconds (or
/// [`Leased::spawn_flusher`]) so that leases are settled soon after they end.
pub struct Leased<S: LeaseSource> {
    source: Arc<S>,
    options: LeaseOptions,
    /// Lease ids: a per-process random start, counted up (unique across replicas; a source
    /// refuses an id it already holds).
    ids: Arc<AtomicU64>,
    slots: Mutex<Vec<Weak<Slot>>>,
    ended: Ended,
}

impl<S: LeaseSource> Leased<S> {
    /// Leases from `source`.
    pub fn new(source: S, options: LeaseOptions) -> Self {
        Leased {
            source: Arc::new(source),
            options,
            ids: Arc::new(AtomicU64::new(
                RandomState::new().hash_one(std::process::id()),
            )),
            slots: Mutex::new(Vec::new()),
            ended: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Settles every lease that has ended by `now`, and those of dropped prepared spends.
    /// Returns how many were settled. A failed settle is left to the source's grace (the
    /// lease is then charged in full).
    pub fn flush(&self, now: u64) -> usize {
        self.settle_where(now, |h| !h.usable(now))
    }

    /// Settles every lease now, ended or not (at shutdown: the units left go back).
    pub fn settle_all(&self, now: u64) -> usize {
        self.settle_where(now, |_| true)
    }

    fn settle_where(&self, now: u64, due: impl Fn(&Held) -> bool) -> usize {
        let live: Vec<Arc<Slot>> = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.retain(|w| w.strong_count() > 0);
            slots.iter().filter_map(Weak::upgrade).collect()
        };
        for slot in live {
            // Taken out under the slot's lock, settled after it is released: a call on this
            // slot never waits on the source behind a flush.
            let held = {
                let mut held = slot.held.lock().unwrap_or_else(|e| e.into_inner());
                if held.as_ref().is_some_and(&due) {
                    held.take()
                } else {
                    None
                }
            };
            if let Some(h) = held {
                self.ended
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((slot.keys.clone(), h));
            }
        }
        settle_ended(&*self.source, &self.ended, now)
    }
}

impl<S: LeaseSource + 'static> Leased<S> {
    /// A thread that calls [`Leased::flush`] every `every` with the time from `clock`, for as
    /// long as the store lives.
    pub fn spawn_flusher(
        self: &Arc<Self>,
        every: std::time::Duration,
        clock: impl Fn() -> u64 + Send + 'static,
    ) -> std::io::Result<()> {
        let store = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("captix-lease-flush".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                match store.upgrade() {
                    Some(s) => {
                        s.flush(clock());
                    }
                    None => return,
                }
            })
            .map(|_| ())
    }
}

struct LeasedSpend<S: LeaseSource> {
    slot: Arc<Slot>,
    source: Arc<S>,
    options: LeaseOptions,
    ids: Arc<AtomicU64>,
    mix: RandomState,
    ended: Ended,
}

impl<S: LeaseSource> LeasedSpend<S> {
    /// A lease id: the process's counter mixed with the wall clock and the thread, so that
    /// copies of one process (a fork, a restored snapshot) do not repeat each other's ids.
    fn next_id(&self) -> u64 {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        self.mix.hash_one((n, t, std::thread::current().id()))
    }
}

impl<S: LeaseSource> PreparedSpend for LeasedSpend<S> {
    fn try_spend(&self, now: u64) -> Option<Result<Spend, Denial>> {
        if self.slot.keys.is_empty() {
            return Some(Ok(Spend::Spent));
        }
        // Never waits: a slot another thread holds (it is taking a lease) answers `None`.
        let mut held = match self.slot.held.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        use_unit(&mut held, now).then_some(Ok(Spend::Spent))
    }

    fn spend(&self, now: u64) -> Result<Spend, Denial> {
        if self.slot.keys.is_empty() {
            return Ok(Spend::Spent);
        }
        if use_unit(
            &mut self.slot.held.lock().unwrap_or_else(|e| e.into_inner()),
            now,
        ) {
            return Ok(Spend::Spent);
        }
        // One taker at a time; whoever waited here looks at the lease it installed first.
        let _taking = self.slot.taking.lock().unwrap_or_else(|e| e.into_inner());
        let ended = {
            let mut held = self.slot.held.lock().unwrap_or_else(|e| e.into_inner());
            if use_unit(&mut held, now) {
                return Ok(Spend::Spent);
            }
            held.take()
        };
        // The slot's lock is not held across the source's I/O (`try_spend` never waits). The
        // ended lease is settled with the take.
        let (want, asked_ttl) = self.options.terms(&self.slot.keys, now);
        let id = self.next_id();
        let asked = Instant::now();
        let keys = &self.slot.keys;
        let taken = match ended {
            Some(h) => self
                .source
                .settle_and_take(keys, (h.id, h.used()), id, want, asked_ttl, now)
                .inspect_err(|_| {
                    // Maybe not settled: queued for the flusher (settling twice is harmless);
                    // nothing is settled here while the source fails.
                    queue(&self.ended, keys, h);
                }),
            None => self.source.take(keys, id, want, asked_ttl, now),
        };
        match taken? {
            Take::Granted { units, ttl } => {
                // Never more than was asked for, whatever the source answers.
                let (units, ttl) = (units.clamp(1, want.max(1)), ttl.min(asked_ttl));
                if ttl > 0 {
                    let new = Held {
                        id,
                        units,
                        left: units - 1,
                        since: now,
                        until: now.saturating_add(ttl),
                        asked,
                    };
                    if new.left > 0 {
                        *self.slot.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(new);
                    } else {
                        retire(&*self.source, &self.ended, keys, new, now);
                    }
                }
                Ok(Spend::Spent)
            }
            Take::Exhausted { which, retry_after } => Ok(Spend::Exhausted { which, retry_after }),
        }
    }

    fn heap_bytes(&self) -> usize {
        self.slot
            .keys
            .iter()
            .map(|k| std::mem::size_of::<BudgetKey>() + k.root.len() + k.block.len())
            .sum::<usize>()
            + 128
    }
}

impl<S: LeaseSource> Drop for LeasedSpend<S> {
    fn drop(&mut self) {
        let held = self
            .slot
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = held {
            self.ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((self.slot.keys.clone(), h));
        }
    }
}

impl<S: LeaseSource + 'static> BudgetStore for Leased<S> {
    fn prepare(&self, keys: Vec<BudgetKey>) -> Box<dyn PreparedSpend> {
        let slot = Arc::new(Slot {
            keys,
            held: Mutex::new(None),
            taking: Mutex::new(()),
        });
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&slot));
        Box::new(LeasedSpend {
            slot,
            source: self.source.clone(),
            options: self.options,
            ids: self.ids.clone(),
            mix: RandomState::new(),
            ended: self.ended.clone(),
        })
    }
}
