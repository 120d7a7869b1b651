//! Against a real redis-server on loopback, started here (install it: apt-get install
//! redis-server). Semantics equal to the in-memory store, expiry, concurrency, two verifiers
//! sharing one Redis, revocation across replicas, Redis stopped and restarted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use captix::budget::{BudgetKey, BudgetStore, MemoryBudgets, Spend};
use captix::{Call, Code, KeySet, SigningKey, Ticket, Verifier};
use captix_redis::{Options, RedisBudgets, RedisRevocations};

#[path = "support/server.rs"]
mod server;
use server::Redis;

fn key(root: u8, block: u8, index: u32, max: u64, window: u64) -> BudgetKey {
    BudgetKey {
        root: vec![root; 8],
        block: vec![block; 8],
        index,
        max_calls: max,
        window,
        expires: Some(4_000_000_000),
    }
}

#[test]
fn redis_store_gives_the_memory_store_answers() {
    let r = Redis::start();
    let redis = RedisBudgets::new(&r.url(), Options::default()).expect("store");
    let memory = MemoryBudgets::new();
    // Budget sequences: one chain, budgets of every kind, spends at moving times.
    let keys = [
        key(1, 1, 0, 5, 60),
        key(1, 2, 0, 3, 0),
        key(1, 2, 1, 2, 10),
        key(1, 3, 0, 100, 3600),
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut t = 1_800_000_000u64;
    for step in 0..400 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        t += seed % 7; // 0 to 6 seconds later
        let pick: Vec<BudgetKey> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| (seed >> (8 + i)) & 1 == 1)
            .map(|(_, k)| k.clone())
            .collect();
        if pick.is_empty() {
            continue;
        }
        let m = memory.prepare(pick.clone()).spend(t).expect("memory");
        let d = redis.prepare(pick).spend(t).expect("redis");
        assert_eq!(m, d, "step {step} at t={t}");
    }
}

#[test]
fn keys_expire_with_their_windows_and_share_a_cluster_slot() {
    let r = Redis::start();
    let redis = RedisBudgets::new(&r.url(), Options::default()).expect("store");
    let windowed = key(7, 1, 0, 10, 60);
    let lifetime = key(7, 2, 0, 10, 0);
    redis
        .prepare(vec![windowed.clone(), lifetime.clone()])
        .spend(1_800_000_000)
        .expect("spend");
    let ttl: i64 = r
        .redis_cli(&["TTL", &redis.key(&windowed)])
        .parse()
        .expect("ttl");
    assert!(
        (1..=61).contains(&ttl),
        "a windowed key lives at most a window: {ttl}"
    );
    let ttl: i64 = r
        .redis_cli(&["TTL", &redis.key(&lifetime)])
        .parse()
        .expect("ttl");
    assert!(ttl > 0, "a lifetime key expires with its ticket: {ttl}");
    // Redis Cluster places a key by the text between its first `{` and the next `}`: keys of
    // one chain carry the same tag, keys of another chain another one.
    let tag = |k: &str| {
        let open = k.find('{').expect("a hash tag");
        let close = open + k[open..].find('}').expect("closed");
        k[open + 1..close].to_string()
    };
    let other_chain = key(8, 1, 0, 10, 60);
    assert_eq!(
        tag(&redis.key(&windowed)),
        tag(&redis.key(&lifetime)),
        "one chain, one slot"
    );
    assert_ne!(tag(&redis.key(&windowed)), tag(&redis.key(&other_chain)));
    assert_eq!(tag(&redis.key(&windowed)), "0707070707070707");
}

#[test]
fn many_threads_never_overspend() {
    let r = Redis::start();
    let redis = Arc::new(RedisBudgets::new(&r.url(), Options::default()).expect("store"));
    let spent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (redis, spent) = (redis.clone(), spent.clone());
            std::thread::spawn(move || {
                let p = redis.prepare(vec![key(9, 1, 0, 250, 0), key(9, 2, 0, 100_000, 3600)]);
                for _ in 0..60 {
                    if p.spend(1_800_000_000).expect("spend") == Spend::Spent {
                        spent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(spent.load(std::sync::atomic::Ordering::Relaxed), 250);
}

fn verifier(keys: &KeySet, url: &str, refresh: Duration) -> (Verifier, Arc<RedisRevocations>) {
    let rev =
        Arc::new(RedisRevocations::new(url, Options::default(), refresh).expect("revocations"));
    let v = Verifier::builder(keys.clone())
        .budgets(Arc::new(
            RedisBudgets::new(url, Options::default()).expect("budgets"),
        ))
        .revocations(rev.clone())
        .build();
    (v, rev)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

#[test]
fn two_verifiers_share_one_budget_and_one_revocation_list() {
    let r = Redis::start();
    let k = SigningKey::from_seed(&[31u8; 32]);
    let keys = KeySet::from(k.public());
    let (a, rev_a) = verifier(&keys, &r.url(), Duration::from_millis(300));
    let (b, _) = verifier(&keys, &r.url(), Duration::from_millis(300));
    let parent = Ticket::mint(&k, "agent", "alice")
        .tool("t")
        .budget("5".parse().expect("b"))
        .expires_at(now() + 600)
        .sign()
        .expect("mint");
    let child = parent.attenuate().tool("t").sign().expect("att");
    let call = Call::new("t", "{}").expect("call").at(now());
    let mut allowed = 0;
    for i in 0..10 {
        let v = if i % 2 == 0 { &a } else { &b };
        if v.check(child.as_str(), &call).is_ok() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5, "one combined budget across both replicas");
    // Revoke the parent through replica A: replica B denies the child within the bound.
    let fresh = Ticket::mint(&k, "agent", "alice")
        .tool("t")
        .expires_at(now() + 600)
        .sign()
        .expect("mint");
    let fresh_child = fresh.attenuate().tool("t").sign().expect("att");
    b.check(fresh_child.as_str(), &call).expect("cached on B");
    rev_a
        .revoke(fresh.revocation_ids().next().expect("id"))
        .expect("revoke");
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        match b.check(fresh_child.as_str(), &call) {
            Err(d) if d.code == Code::Revoked => break,
            _ => assert!(
                Instant::now() < deadline,
                "replica B did not see the revocation in time"
            ),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn redis_down_fails_closed_and_recovers_by_itself() {
    let mut r = Redis::start();
    let k = SigningKey::from_seed(&[32u8; 32]);
    let keys = KeySet::from(k.public());
    let (v, _) = verifier(&keys, &r.url(), Duration::from_millis(200));
    let t = Ticket::mint(&k, "agent", "alice")
        .tool("t")
        .budget("100/min".parse().expect("b"))
        .expires_at(now() + 600)
        .sign()
        .expect("mint");
    let call = Call::new("t", "{}").expect("call").at(now());
    v.check(t.as_str(), &call).expect("up");
    r.down();
    let d = v.check(t.as_str(), &call).expect_err("down");
    assert_eq!(d.code, Code::StoreUnavailable, "{d}");
    std::thread::sleep(Duration::from_millis(700)); // past 3 x refresh: the revocation list is stale too
    let d = v.check(t.as_str(), &call).expect_err("still down");
    assert_eq!(d.code, Code::StoreUnavailable);
    assert!(d.reason.contains("redis"), "{}", d.reason);
    r.up();
    let deadline = Instant::now() + Duration::from_secs(5);
    while v.check(t.as_str(), &call).is_err() {
        assert!(
            Instant::now() < deadline,
            "did not recover after Redis came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
