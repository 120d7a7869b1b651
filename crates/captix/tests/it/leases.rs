//! Budget leases (docs §10.6) against the in-memory store's semantics (§10.3): replicas that
//! lease from one shared source, with clock offsets, crashes and late settling, never admit a
//! call that one in-memory store would refuse at the time it happened; what a dead replica
//! held comes back within a window; a live one settles what it did not use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use captix::budget::{BudgetKey, BudgetStore, MemoryBudgets, PreparedSpend, Spend};
use captix::lease::{LeaseOptions, LeaseSource, Leased, MemoryLeases, Take, GRACE};
use captix::Denial;
use proptest::prelude::*;

const T0: u64 = 1_800_000_000;

fn key(block: u8, max_calls: u64, window: u64) -> BudgetKey {
    BudgetKey {
        root: vec![7],
        block: vec![block],
        index: 0,
        max_calls,
        window,
        expires: None,
    }
}

/// A source shared by replicas, counting round trips.
#[derive(Clone)]
struct Shared {
    inner: Arc<MemoryLeases>,
    takes: Arc<AtomicU64>,
}

impl Shared {
    /// A source whose clock is `ms / 1000` (true time in milliseconds).
    fn new(ms: Arc<AtomicU64>) -> Self {
        Shared {
            inner: Arc::new(MemoryLeases::new(move || ms.load(Ordering::SeqCst) / 1000)),
            takes: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl LeaseSource for Shared {
    fn take(
        &self,
        keys: &[BudgetKey],
        id: u64,
        want: u64,
        ttl: u64,
        now: u64,
    ) -> Result<Take, Denial> {
        self.takes.fetch_add(1, Ordering::SeqCst);
        self.inner.take(keys, id, want, ttl, now)
    }

    fn settle(&self, keys: &[BudgetKey], id: u64, used: u64, now: u64) -> Result<(), Denial> {
        self.inner.settle(keys, id, used, now)
    }
}

struct Replica {
    store: Leased<Shared>,
    spends: Vec<Box<dyn PreparedSpend>>,
    /// Offset of this replica's clock from true time, in milliseconds.
    skew: i64,
}

impl Replica {
    fn new(source: &Shared, keys: &[BudgetKey], tools: usize, skew: i64, o: LeaseOptions) -> Self {
        let store = Leased::new(source.clone(), o);
        let spends = (0..tools).map(|_| store.prepare(keys.to_vec())).collect();
        Replica {
            store,
            spends,
            skew,
        }
    }

    fn now(&self, ms: u64) -> u64 {
        (ms as i64 + self.skew).max(0) as u64 / 1000
    }
}

/// The calls admitted, each at the true second it happened, replayed into one in-memory store:
/// every one must be admitted.
fn replay_admits_all(keys: &[BudgetKey], admitted: &[u64]) -> Result<(), String> {
    let memory = MemoryBudgets::new();
    let spend = memory.prepare(keys.to_vec());
    let mut times = admitted.to_vec();
    times.sort_unstable();
    for (i, t) in times.iter().enumerate() {
        match spend.spend(*t) {
            Ok(Spend::Spent) => {}
            other => {
                return Err(format!(
                    "call {i} of {} at {t} (T0{:+}) is one the in-memory store refuses: {other:?}",
                    times.len(),
                    *t as i64 - T0 as i64
                ))
            }
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Step {
    /// True time advances this many milliseconds.
    Wait(u64),
    /// Replica r calls through its prepared spend number s.
    Call(usize, usize),
    /// Replica r settles what has ended.
    Flush(usize),
    /// Replica r dies (nothing settled) and a new one with the same clock takes its place.
    Crash(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u64..700).prop_map(Step::Wait),
        12 => (0usize..4, 0usize..2).prop_map(|(r, s)| Step::Call(r, s)),
        2 => (0usize..4).prop_map(Step::Flush),
        1 => (0usize..4).prop_map(Step::Crash),
    ]
}

/// Budgets that run out within a few hundred calls, most of them leased.
fn budget() -> impl Strategy<Value = (u64, u64)> {
    prop_oneof![
        4 => (4u64..80, 3u64..20),
        1 => (1u64..400, 1u64..120),
        1 => (1u64..20, Just(0u64)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// No overspend: replicas (up to four, each with two prepared spends of the same chain,
    /// clocks off by up to ±5 s, crashing and settling late) never admit a call that one
    /// in-memory store would refuse at the true time it happened.
    #[test]
    fn leases_never_admit_what_one_memory_store_refuses(
        budgets in proptest::collection::vec(budget(), 1..4),
        skews in proptest::collection::vec(-5000i64..5000, 4),
        steps in proptest::collection::vec(step(), 1..400),
        slice in 2u64..64,
        ttl in 1u64..4,
        share in 1u64..6,
    ) {
        let keys: Vec<BudgetKey> = budgets
            .iter()
            .enumerate()
            .map(|(i, (n, w))| key(i as u8, *n, *w))
            .collect();
        let ms = Arc::new(AtomicU64::new(T0 * 1000));
        let source = Shared::new(ms.clone());
        let o = LeaseOptions { slice, ttl, share };
        let mut replicas: Vec<Replica> =
            skews.iter().map(|s| Replica::new(&source, &keys, 2, *s, o)).collect();
        let mut admitted = Vec::new();
        for s in &steps {
            let now_ms = ms.load(Ordering::SeqCst);
            match s {
                Step::Wait(d) => {
                    ms.fetch_add(*d, Ordering::SeqCst);
                }
                Step::Call(r, p) => {
                    let rep = &replicas[*r];
                    if let Ok(Spend::Spent) = rep.spends[*p].spend(rep.now(now_ms)) {
                        admitted.push(now_ms / 1000);
                    }
                }
                Step::Flush(r) => {
                    let rep = &replicas[*r];
                    rep.store.flush(rep.now(now_ms));
                }
                Step::Crash(r) => {
                    let skew = replicas[*r].skew;
                    // Dropped without a flush: what it held is never settled.
                    replicas[*r] = Replica::new(&source, &keys, 2, skew, o);
                }
            }
        }
        prop_assert_eq!(replay_admits_all(&keys, &admitted), Ok(()));
    }

    /// What crashed replicas held comes back: some time after the last lease's end, its grace
    /// and the longest window, every windowed budget admits its whole burst again.
    #[test]
    fn what_dead_replicas_held_comes_back_within_a_window(
        budgets in proptest::collection::vec((8u64..600, 3u64..60), 1..3),
        calls in proptest::collection::vec((0usize..4, 0u64..800), 1..200),
    ) {
        let keys: Vec<BudgetKey> = budgets
            .iter()
            .enumerate()
            .map(|(i, (n, w))| key(i as u8, *n, *w))
            .collect();
        let ms = Arc::new(AtomicU64::new(T0 * 1000));
        let source = Shared::new(ms.clone());
        let o = LeaseOptions { slice: 32, ttl: 1, share: 2 };
        {
            let replicas: Vec<Replica> =
                (0..4).map(|_| Replica::new(&source, &keys, 1, 0, o)).collect();
            for (r, wait) in &calls {
                ms.fetch_add(*wait, Ordering::SeqCst);
                let rep = &replicas[*r];
                let _ = rep.spends[0].spend(rep.now(ms.load(Ordering::SeqCst)));
            }
        } // every replica dies holding its lease
        let longest = budgets.iter().map(|(_, w)| *w).max().unwrap_or(0);
        ms.fetch_add((o.ttl + GRACE + longest + 2) * 1000, Ordering::SeqCst);
        let fresh = Replica::new(&source, &keys, 1, 0, LeaseOptions { ttl: 0, ..o });
        let burst = budgets.iter().map(|(n, _)| *n).min().unwrap_or(0);
        let now = fresh.now(ms.load(Ordering::SeqCst));
        for i in 0..burst {
            prop_assert_eq!(fresh.spends[0].spend(now), Ok(Spend::Spent), "call {} of {}", i, burst);
        }
    }
}

/// A lease reserves a slice in one round trip; the calls it covers make none.
#[test]
fn a_lease_serves_its_slice_without_a_round_trip() {
    let ms = Arc::new(AtomicU64::new(T0 * 1000));
    let source = Shared::new(ms.clone());
    let keys = [key(1, 6000, 60)];
    let replica = Replica::new(&source, &keys, 1, 0, LeaseOptions::default());
    // 100 calls a second for 10 seconds.
    for i in 0..1000u64 {
        ms.store(T0 * 1000 + i * 10, Ordering::SeqCst);
        let now = replica.now(ms.load(Ordering::SeqCst));
        assert_eq!(replica.spends[0].spend(now), Ok(Spend::Spent), "call {i}");
    }
    let takes = source.takes.load(Ordering::SeqCst);
    // 32 units a lease, and a lease ends with its second: 4 a second.
    assert_eq!(takes, 40, "round trips for 1,000 calls");
}

/// Spends through a replica's first prepared spend at `now` until it refuses: how many passed.
fn spend_all(r: &Replica, now: u64) -> u64 {
    let mut n = 0;
    while let Ok(Spend::Spent) = r.spends[0].spend(now) {
        n += 1;
    }
    n
}

/// Units a replica did not use go back when it settles, and another replica may spend them.
#[test]
fn settling_gives_back_what_was_not_used() {
    let ms = Arc::new(AtomicU64::new(T0 * 1000));
    let source = Shared::new(ms.clone());
    let keys = [key(1, 64, 60)];
    let o = LeaseOptions {
        slice: 32,
        ttl: 1,
        share: 1,
    };
    let a = Replica::new(&source, &keys, 1, 0, o);
    let b = Replica::new(&source, &keys, 1, 0, LeaseOptions { ttl: 0, ..o });
    assert_eq!(a.spends[0].spend(T0), Ok(Spend::Spent));
    // A holds 32 (one used), charged as 32 calls at T0 + 1.
    ms.store(T0 * 1000 + 500, Ordering::SeqCst);
    let before = spend_all(&b, T0);
    assert_eq!(before, 64 - 32, "B while A holds its lease");
    // A's lease ends at T0 + 1; A settles a second later, within the grace: 31 units go back.
    ms.store((T0 + 2) * 1000, Ordering::SeqCst);
    let while_held = spend_all(&b, T0 + 2);
    assert_eq!(a.store.flush(T0 + 2), 1);
    let after = while_held + spend_all(&b, T0 + 2);
    // 33 calls made by T0 + 1: what A did not use (31) is B's, with two seconds of refill.
    assert_eq!(after, 31 + 2, "what A gave back");
}

/// A replica that dies holding a lease: its unspent units stay charged until the lease's
/// grace is over, then drain like calls made at the lease's end.
#[test]
fn a_dead_replica_loses_at_most_its_slice_for_one_window() {
    let ms = Arc::new(AtomicU64::new(T0 * 1000));
    let source = Shared::new(ms.clone());
    let keys = [key(1, 64, 60)];
    let o = LeaseOptions {
        slice: 32,
        ttl: 1,
        share: 1,
    };
    {
        let a = Replica::new(&source, &keys, 1, 0, o);
        assert_eq!(a.spends[0].spend(T0), Ok(Spend::Spent));
    } // dies: never settles
    let b = Replica::new(&source, &keys, 1, 0, LeaseOptions { ttl: 0, ..o });
    let spend_all = |now: u64| {
        ms.store(now * 1000, Ordering::SeqCst);
        spend_all(&b, now)
    };
    assert_eq!(spend_all(T0), 64 - 32, "the dead lease's 32 units are held");
    // After the lease's end, its grace and one window, everything is back.
    assert_eq!(spend_all(T0 + 1 + GRACE + 60 + 1), 64);
    assert_eq!(
        source.inner.committed(&[1], 0).debt,
        64 * 60,
        "the dead lease was charged in full, then drained"
    );
}

/// Leasing is refused where it could outlive a budget or lose units for good: a lifetime
/// budget, a window shorter than the lease and its grace, a budget too small to share, one
/// whose life ends first. Those calls spend outright.
#[test]
fn leases_are_only_taken_where_they_cannot_outlive_a_budget() {
    let o = LeaseOptions::default();
    assert_eq!(o.terms(&[key(1, 6000, 60)], T0), (32, 1));
    assert_eq!(o.terms(&[key(1, 6000, 60), key(2, 100, 0)], T0), (1, 0));
    assert_eq!(o.terms(&[key(1, 6000, 2)], T0), (1, 0));
    assert_eq!(o.terms(&[key(1, 31, 60)], T0), (1, 0));
    assert_eq!(o.terms(&[key(1, 160, 60)], T0), (10, 1));
    let mut ending = key(1, 6000, 60);
    ending.expires = Some(T0 + 2);
    assert_eq!(o.terms(&[ending], T0), (1, 0));
}

/// A lease id another lease holds is refused (fail closed), never merged.
#[test]
fn a_lease_id_in_use_is_refused() {
    let source = MemoryLeases::new(|| T0);
    let keys = [key(1, 6000, 60)];
    assert!(matches!(
        source.take(&keys, 9, 32, 1, T0),
        Ok(Take::Granted { units: 32, ttl: 1 })
    ));
    let again = source.take(&keys, 9, 32, 1, T0).expect_err("refused");
    assert_eq!(again.code, captix::Code::StoreUnavailable);
}

/// Many threads on one replica spend exactly the budget.
#[test]
fn threads_on_one_replica_never_overspend() {
    let ms = Arc::new(AtomicU64::new(T0 * 1000));
    let shared = Shared::new(ms);
    let store = Arc::new(Leased::new(shared, LeaseOptions::default()));
    let spend: Arc<dyn PreparedSpend> = Arc::from(store.prepare(vec![key(1, 1000, 60)]));
    let admitted = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (spend, admitted) = (spend.clone(), admitted.clone());
            std::thread::spawn(move || {
                for _ in 0..500 {
                    if let Ok(Spend::Spent) = spend.spend(T0) {
                        admitted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    // The burst of 1,000 but one second of refill (1000/60): a lease is judged as if its calls
    // came at its end, a second ahead, and that second is not refilled yet.
    assert_eq!(admitted.load(Ordering::SeqCst), 1000 - 17);
}

/// A source whose takes wait until the test lets them go.
struct Stalled {
    inner: MemoryLeases,
    gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    entered: std::sync::mpsc::SyncSender<()>,
}

impl LeaseSource for Stalled {
    fn take(
        &self,
        keys: &[BudgetKey],
        id: u64,
        want: u64,
        ttl: u64,
        now: u64,
    ) -> Result<Take, Denial> {
        let _ = self.entered.send(());
        let _ = self.gate.lock().expect("gate").recv();
        self.inner.take(keys, id, want, ttl, now)
    }

    fn settle(&self, keys: &[BudgetKey], id: u64, used: u64, now: u64) -> Result<(), Denial> {
        self.inner.settle(keys, id, used, now)
    }
}

/// `try_spend` runs on an async runtime: while another thread is taking a lease for the same
/// slot (a round trip in flight), it answers "would wait" at once instead of waiting for the
/// lock. (Were it to wait, this test would never finish: the take is released only after.)
#[test]
fn try_spend_never_waits_behind_a_take_in_flight() {
    let (release, gate) = std::sync::mpsc::channel();
    let (entered, in_take) = std::sync::mpsc::sync_channel(1);
    let store = Arc::new(Leased::new(
        Stalled {
            inner: MemoryLeases::new(|| T0),
            gate: std::sync::Mutex::new(gate),
            entered,
        },
        LeaseOptions::default(),
    ));
    let spend: Arc<dyn PreparedSpend> = Arc::from(store.prepare(vec![key(1, 6000, 60)]));
    let taker = {
        let spend = spend.clone();
        std::thread::spawn(move || spend.spend(T0))
    };
    in_take.recv().expect("the take started");
    assert!(spend.try_spend(T0).is_none(), "answered without waiting");
    release.send(()).expect("release");
    assert_eq!(taker.join().expect("thread"), Ok(Spend::Spent));
    // Now the lease is held: served locally.
    assert_eq!(spend.try_spend(T0), Some(Ok(Spend::Spent)));
}
