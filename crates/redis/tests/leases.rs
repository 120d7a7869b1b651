//! Budget leases on Redis (docs §15.4) against a real redis-server on loopback: the Lua source
//! answers as the in-memory source does, replicas leasing from it never overspend, and a
//! replica that spends without leases fails closed on a leased budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use captix::budget::{BudgetKey, BudgetStore, MemoryBudgets, Spend};
use captix::lease::{LeaseOptions, LeaseSource, Leased, MemoryLeases, Take};
use captix::Code;
use captix_redis::{Options, RedisBudgets, RedisLeases};

#[path = "support/sequence.rs"]
mod sequence;
#[path = "support/server.rs"]
mod server;
use server::Redis;

fn key(block: u8, max: u64, window: u64) -> BudgetKey {
    BudgetKey {
        root: vec![9; 8],
        block: vec![block; 8],
        index: 0,
        max_calls: max,
        window,
        expires: Some(4_000_000_000),
    }
}

fn redis_time(url: &str) -> u64 {
    let client = redis::Client::open(url).expect("client");
    let mut c = client.get_connection().expect("connection");
    let (secs, _): (u64, u64) = redis::cmd("TIME").query(&mut c).expect("TIME");
    secs
}

/// The same takes and settles, in the same order, against the Lua source and the in-memory
/// one with Redis's clock: the same answers. A sequence that straddles a second of Redis's
/// clock is run again (the two sources would read different times).
#[test]
fn the_redis_source_answers_as_the_memory_source() {
    let r = Redis::start();
    let url = r.url();
    let keys = [key(1, 40, 10), key(2, 300, 60), key(3, 6, 0)];
    'attempt: for attempt in 0..5 {
        let prefix = format!("agree{attempt}");
        let redis = RedisLeases::new(
            &url,
            Options {
                prefix,
                ..Options::default()
            },
        )
        .expect("source");
        let clock = Arc::new(AtomicU64::new(redis_time(&url)));
        let c = clock.clone();
        let memory = MemoryLeases::new(move || c.load(Ordering::SeqCst));
        let start = clock.load(Ordering::SeqCst);
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut open: Vec<(Vec<BudgetKey>, u64, u64)> = Vec::new();
        for step in 0..300u64 {
            sequence::next(&mut seed);
            let pick = sequence::pick(&keys, seed);
            if pick.is_empty() {
                continue;
            }
            if seed.is_multiple_of(5) && !open.is_empty() {
                let (keys, id, units) = open.swap_remove((seed as usize / 5) % open.len());
                let used = (seed >> 20) % (units + 1);
                redis.settle(&keys, id, used, start).expect("redis settle");
                memory
                    .settle(&keys, id, used, start)
                    .expect("memory settle");
                continue;
            }
            let (want, ttl) = (1 + (seed >> 30) % 8, (seed >> 40) % 3);
            // Every third take settles an open lease of the same budgets in the same round
            // trip (the Lua script), which must equal a settle then a take in memory.
            let ended = seed
                .is_multiple_of(3)
                .then(|| open.iter().position(|(k, _, _)| *k == pick))
                .flatten()
                .map(|i| open.swap_remove(i))
                .map(|(_, id, units)| (id, (seed >> 24) % (units + 1)));
            let d = match ended {
                Some(e) => redis.settle_and_take(&pick, e, step, want, ttl, start),
                None => redis.take(&pick, step, want, ttl, start),
            }
            .expect("redis take");
            if redis_time(&url) != start {
                continue 'attempt;
            }
            let m = match ended {
                Some(e) => memory.settle_and_take(&pick, e, step, want, ttl, start),
                None => memory.take(&pick, step, want, ttl, start),
            }
            .expect("memory take");
            assert_eq!(d, m, "step {step}: take {want} for {ttl}s of {pick:?}");
            if let Take::Granted { units, ttl } = d {
                if ttl > 0 {
                    open.push((pick, step, units));
                }
            }
        }
        return;
    }
    panic!("Redis's clock moved on during every attempt");
}

/// Four replicas, each with its own connection and two threads, lease one chain's budgets from
/// Redis for three seconds: every call they admitted, at the second it happened, is one the
/// in-memory store admits.
#[test]
fn replicas_leasing_from_redis_never_overspend() {
    let r = Redis::start();
    let url = r.url();
    let keys = vec![key(4, 200, 5), key(5, 3000, 60)];
    let admitted = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicU64::new(0));
    let stores: Vec<Arc<Leased<RedisLeases>>> = (0..4)
        .map(|_| {
            captix_redis::leased(&url, Options::default(), LeaseOptions::default()).expect("store")
        })
        .collect();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = stores[i % 4].clone();
            let (keys, admitted, refused) = (keys.clone(), admitted.clone(), refused.clone());
            std::thread::spawn(move || {
                let spend = store.prepare(keys);
                let mut mine = Vec::new();
                while std::time::Instant::now() < until {
                    let now = captix::time::now();
                    match spend.spend(now) {
                        Ok(Spend::Spent) => mine.push(now),
                        Ok(Spend::Exhausted { .. }) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                admitted.lock().expect("lock").extend(mine);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let mut times = admitted.lock().expect("lock").clone();
    // The budgets ran out (the run tested the limit), and leases held much of them: at most
    // 200 + 3·40 calls could have been admitted in three seconds.
    assert!(refused.load(Ordering::Relaxed) > 0, "no call was refused");
    assert!(
        times.len() >= 150,
        "the replicas admitted {} calls",
        times.len()
    );
    times.sort_unstable();
    let memory = MemoryBudgets::new();
    let spend = memory.prepare(keys);
    for (i, t) in times.iter().enumerate() {
        assert_eq!(spend.spend(*t), Ok(Spend::Spent), "call {i} at {t}");
    }
}

/// A replica that spends per call does not see leases: on a budget another replica leases it
/// refuses (`store_unavailable`) rather than overspend, and spends again once the lease is
/// settled.
#[test]
fn spending_without_leases_on_a_leased_budget_fails_closed() {
    let r = Redis::start();
    let url = r.url();
    let keys = vec![key(6, 6000, 60)];
    let leased = Leased::new(
        RedisLeases::new(&url, Options::default()).expect("source"),
        LeaseOptions::default(),
    );
    let plain = RedisBudgets::new(&url, Options::default()).expect("store");
    let now = captix::time::now();
    let lease = leased.prepare(keys.clone());
    assert_eq!(lease.spend(now), Ok(Spend::Spent));
    let refused = plain
        .prepare(keys.clone())
        .spend(now)
        .expect_err("fails closed");
    assert_eq!(refused.code, Code::StoreUnavailable);
    assert!(refused.reason.contains("leased"), "{}", refused.reason);
    assert_eq!(leased.settle_all(now), 1);
    assert_eq!(plain.prepare(keys).spend(now), Ok(Spend::Spent));
}

/// Lease state shares the chain's hash tag: one Cluster slot for a chain's budgets and leases.
#[test]
fn lease_keys_share_the_chains_slot() {
    let source = RedisLeases::new("redis://127.0.0.1:1/", Options::default()).expect("source");
    let (state, leases) = source.keys(&key(7, 10, 60));
    let tag = |k: &str| k[k.find('{').expect("{")..=k.find('}').expect("}")].to_string();
    assert_eq!(tag(&state), tag(&leases));
    assert_ne!(state, leases);
}

/// The review's attack: a lifetime budget of a ticket without expiry, spent through a leasing
/// store (outright: lifetime budgets are never leased). Its state must be kept for good; a TTL
/// of a couple of seconds would refill it after every pause.
#[test]
fn a_lifetime_budget_without_expiry_is_kept_for_good_when_leasing() {
    let r = Redis::start();
    let url = r.url();
    let source = RedisLeases::new(&url, Options::default()).expect("source");
    let mut lifetime = key(8, 3, 0);
    lifetime.expires = None;
    let (state, _) = source.keys(&lifetime);
    let leased = Leased::new(source, LeaseOptions::default());
    let spend = leased.prepare(vec![lifetime]);
    let now = captix::time::now();
    for _ in 0..3 {
        assert_eq!(spend.spend(now), Ok(Spend::Spent));
    }
    assert!(matches!(
        spend.spend(now),
        Ok(Spend::Exhausted {
            retry_after: None,
            ..
        })
    ));
    assert_eq!(r.redis_cli(&["TTL", &state]), "-1", "kept for good");
}

/// A version 1 counter kept a short-lived child's TTL. Read by either store, refused or not,
/// it is rewritten for good (a lifetime budget without expiry): waiting for the old TTL must
/// not refill it.
#[test]
fn a_version_1_counter_is_rewritten_for_good_even_when_refused() {
    let r = Redis::start();
    let url = r.url();
    let source = RedisLeases::new(&url, Options::default()).expect("source");
    let plain = RedisBudgets::new(&url, Options::default()).expect("store");
    let leased = Leased::new(source, LeaseOptions::default());
    let now = captix::time::now();
    for (i, exhausted) in [(20u8, true), (21, false)] {
        let mut lifetime = key(i, 3, 0);
        lifetime.expires = None;
        let name = plain.key(&lifetime);
        let count = if exhausted { "3" } else { "1" };
        // through the leasing store, then through the per-call one
        for spend in [
            leased.prepare(vec![lifetime.clone()]),
            plain.prepare(vec![lifetime.clone()]),
        ] {
            r.redis_cli(&["SET", &name, count, "EX", "100"]);
            let got = spend.spend(now).expect("answered");
            assert_eq!(matches!(got, Spend::Exhausted { .. }), exhausted, "{got:?}");
            assert_eq!(r.redis_cli(&["TTL", &name]), "-1", "{name} kept for good");
        }
    }
}
