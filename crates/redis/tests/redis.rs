//! Against a real redis-server on loopback, started here (install it: apt-get install
//! redis-server). Semantics equal to the in-memory store, expiry, concurrency, two verifiers
//! sharing one Redis, revocation across replicas, Redis stopped and restarted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use captix::budget::{BudgetKey, BudgetStore, MemoryBudgets, Spend};
use captix::{Call, Code, KeySet, SigningKey, Ticket, Verifier};
use captix_redis::{Options, RedisBudgets, RedisRevocations};

#[path = "support/sequence.rs"]
mod sequence;
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
        sequence::next(&mut seed);
        t += seed % 7; // 0 to 6 seconds later
        let pick = sequence::pick(&keys, seed);
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
    let margin = captix_redis::CLOCK_SKEW_MARGIN as i64;
    assert!(
        (1..=61 + margin).contains(&ttl),
        "a windowed key lives at most a window (and the clock margin): {ttl}"
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
    // B sees it when the publish wakes its refresher, or at its next refresh (300 ms after
    // the last one, plus the read of the set). Not a timing assertion: the deadline only
    // stops a test that would never end (it failed at 300 ms on a loaded machine).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match b.check(fresh_child.as_str(), &call) {
            Err(d) if d.code == Code::Revoked => break,
            _ => assert!(
                Instant::now() < deadline,
                "replica B never saw the revocation"
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

/// The review's attack on a Redis-backed server: a lifetime budget of 3 spent through a child
/// valid for 2 seconds; the child expires; the parent must stay exhausted. The key's TTL comes
/// from the declaring block (the parent, an hour), and no spend shortens it.
#[test]
fn budget_refill_through_short_lived_child_is_refused_on_redis() {
    let r = Redis::start();
    let k = SigningKey::from_seed(&[33u8; 32]);
    let keys = KeySet::from(k.public());
    let t0 = now();
    let parent = Ticket::mint(&k, "agent", "alice")
        .tool("t")
        .budget("3".parse().expect("b"))
        .expires_at(t0 + 3600)
        .sign()
        .expect("mint");
    let store = Arc::new(RedisBudgets::new(&r.url(), Options::default()).expect("budgets"));
    let v = Verifier::builder(keys.clone())
        .budgets(store.clone())
        .build();
    let child = parent.attenuate().expires_at(t0 + 2).sign().expect("child");
    let mut spent = 0;
    for _ in 0..5 {
        if v.check(child.as_str(), &Call::new("t", "{}").expect("call").at(t0))
            .is_ok()
        {
            spent += 1;
        }
    }
    assert_eq!(spent, 3);
    let key = parent_key(&store, &parent);
    let ttl: i64 = r.redis_cli(&["TTL", &key]).parse().expect("ttl");
    assert!(
        ttl >= 3600 - 5,
        "the budget lives as long as the parent, not the child: TTL {ttl}"
    );
    // A spend through a second short-lived child after the first one expired: still refused,
    // and the TTL is not shortened.
    let later = t0 + 10;
    let child2 = parent
        .attenuate()
        .expires_at(later + 2)
        .sign()
        .expect("child");
    let d = v
        .check(
            child2.as_str(),
            &Call::new("t", "{}").expect("call").at(later),
        )
        .expect_err("exhausted");
    assert_eq!(d.code, Code::BudgetExhausted, "{d}");
    let d = v
        .check(
            parent.as_str(),
            &Call::new("t", "{}").expect("call").at(later),
        )
        .expect_err("exhausted");
    assert_eq!(d.code, Code::BudgetExhausted, "{d}");
    let after: i64 = r.redis_cli(&["TTL", &key]).parse().expect("ttl");
    assert!(after >= ttl - 15, "TTL shortened from {ttl} to {after}");
    // A fresh verifier (a restarted replica) sees the same exhausted budget.
    let fresh = Verifier::builder(keys)
        .budgets(Arc::new(
            RedisBudgets::new(&r.url(), Options::default()).expect("budgets"),
        ))
        .build();
    let d = fresh
        .check(
            parent.as_str(),
            &Call::new("t", "{}").expect("call").at(later),
        )
        .expect_err("exhausted after a restart");
    assert_eq!(d.code, Code::BudgetExhausted, "{d}");
}

/// The Redis key of the parent's first budget.
fn parent_key(store: &RedisBudgets, parent: &Ticket) -> String {
    let id = parent.revocation_ids().next().expect("id").0.clone();
    store.key(&BudgetKey {
        root: id.clone(),
        block: id,
        index: 0,
        max_calls: 3,
        window: 0,
        expires: None,
    })
}

/// A key whose stored expiry is later than what a spend would set keeps it (`EXPIRE ... GT`),
/// and a key kept for good (a budget of a ticket without expiry) stays so.
#[test]
fn a_spend_never_shortens_a_key() {
    let r = Redis::start();
    let redis = RedisBudgets::new(&r.url(), Options::default()).expect("store");
    let mut long = key(5, 1, 0, 10, 0);
    long.expires = Some(1_800_000_000 + 100_000);
    redis
        .prepare(vec![long.clone()])
        .spend(1_800_000_000)
        .expect("spend");
    let before: i64 = r
        .redis_cli(&["TTL", &redis.key(&long)])
        .parse()
        .expect("ttl");
    let mut short = long.clone();
    short.expires = Some(1_800_000_000 + 10);
    redis
        .prepare(vec![short])
        .spend(1_800_000_000)
        .expect("spend");
    let after: i64 = r
        .redis_cli(&["TTL", &redis.key(&long)])
        .parse()
        .expect("ttl");
    assert!(after >= before - 2, "shortened from {before} to {after}");
    let mut forever = key(5, 2, 0, 10, 0);
    forever.expires = None;
    redis
        .prepare(vec![forever.clone()])
        .spend(1_800_000_000)
        .expect("spend");
    assert_eq!(
        r.redis_cli(&["TTL", &redis.key(&forever)]),
        "-1",
        "kept for good"
    );
}

/// One arithmetic for both stores at the edges of the budget limit and of time.
#[test]
fn redis_and_memory_agree_at_the_limits() {
    let r = Redis::start();
    let redis = RedisBudgets::new(&r.url(), Options::default()).expect("store");
    let memory = MemoryBudgets::new();
    let limit = captix::limits::MAX_BUDGET_PRODUCT;
    let big_window = 86_400u64;
    let keys = [
        key(6, 1, 0, limit / (big_window + 1) - 2, big_window),
        key(6, 2, 0, limit - 2, 0),
        key(6, 3, 0, 3, (limit / 4) - 2),
        key(6, 4, 0, 2, 1),
    ];
    for t in [0u64, 1, 1_800_000_000, captix::time::MAX_TIME - 10] {
        for step in 0..6u64 {
            for k in &keys {
                let m = memory
                    .prepare(vec![k.clone()])
                    .spend(t + step)
                    .expect("memory");
                let d = redis
                    .prepare(vec![k.clone()])
                    .spend(t + step)
                    .expect("redis");
                assert_eq!(m, d, "{k:?} at {}", t + step);
            }
        }
    }
}

/// A version 1 value (the absolute GCRA time) is read as the same debt: an upgrade neither
/// refills nor blocks a budget.
#[test]
fn version_1_values_keep_their_meaning() {
    let r = Redis::start();
    let redis = RedisBudgets::new(&r.url(), Options::default()).expect("store");
    let k = key(7, 7, 0, 3, 60);
    // three calls at t=1000 under version 1: tat = 1000·3 + 180
    r.redis_cli(&["SET", &redis.key(&k), "3180"]);
    let p = redis.prepare(vec![k]);
    assert_eq!(
        p.spend(1000).expect("spend"),
        Spend::Exhausted {
            which: 0,
            retry_after: Some(20)
        }
    );
    assert_eq!(p.spend(1020).expect("spend"), Spend::Spent);
}

/// The server policy on Redis (docs §16): 64 concurrent spenders on two verifiers sharing one
/// Redis never exceed a limit per agent nor one in all, spent in the same script as the
/// tickets' budgets.
#[test]
fn a_policy_holds_across_replicas_and_threads() {
    let r = Redis::start();
    let k = SigningKey::from_seed(&[37u8; 32]);
    let keys = KeySet::from(k.public());
    let policy = "[tool.t]\nlimits = [\"5/hour per agent\", \"7/hour\"]\n";
    let replica = || {
        Arc::new(
            Verifier::builder(keys.clone())
                .budgets(Arc::new(
                    RedisBudgets::new(&r.url(), Options::default()).expect("budgets"),
                ))
                .policy(captix::Policy::from_toml(policy).expect("policy"))
                .build(),
        )
    };
    let replicas = [replica(), replica()];
    let at = now();
    let tickets: Vec<(String, String)> = (0..64)
        .map(|i| {
            let agent = if i < 48 { "a" } else { "b" };
            let t = Ticket::mint(&k, agent, format!("u{i}"))
                .tool("t")
                .budget("100".parse().expect("b"))
                .expires_at(at + 600)
                .sign()
                .expect("mint");
            (agent.to_string(), t.as_str().to_string())
        })
        .collect();
    let allowed = std::sync::Mutex::new(Vec::new());
    let codes = std::sync::Mutex::new(std::collections::BTreeSet::new());
    std::thread::scope(|s| {
        for (i, (agent, t)) in tickets.iter().enumerate() {
            let (v, allowed, codes) = (&replicas[i % 2], &allowed, &codes);
            s.spawn(move || {
                let call = Call::new("t", "{}").expect("call").at(at);
                for _ in 0..2 {
                    match v.check(t, &call) {
                        Ok(_) => allowed.lock().expect("lock").push(agent.clone()),
                        Err(d) => {
                            codes.lock().expect("lock").insert(d.code.to_string());
                        }
                    }
                }
            });
        }
    });
    let allowed = allowed.into_inner().expect("lock");
    let of = |a: &str| allowed.iter().filter(|x| *x == a).count();
    let seen = codes.lock().expect("lock").clone();
    assert_eq!(allowed.len(), 7, "7/hour in all: {allowed:?} {seen:?}");
    assert!(of("a") <= 5, "5/hour per agent: {allowed:?}");
    assert!(
        of("a") >= 1 && of("b") >= 1 || allowed.len() == 7,
        "{allowed:?}"
    );
    assert_eq!(
        codes.into_inner().expect("lock"),
        ["rate_limited".to_string()].into_iter().collect(),
        "every refusal names the policy"
    );
}

/// Every key of a policy on Redis (docs §16): per user across agents, per (agent, user), and a
/// refusal that spends neither the ticket's budget nor the other limits.
#[test]
fn policy_limits_per_user_and_per_pair_on_redis() {
    let r = Redis::start();
    let k = SigningKey::from_seed(&[38u8; 32]);
    let v = Verifier::builder(KeySet::from(k.public()))
        .budgets(Arc::new(
            RedisBudgets::new(&r.url(), Options::default()).expect("budgets"),
        ))
        .policy(
            captix::Policy::from_toml(
                "[tool.t]\nlimits = [\"3/hour per user\", \"2/hour per agent and user\"]\n",
            )
            .expect("policy"),
        )
        .build();
    let at = now();
    let ticket = |agent: &str, user: &str, budget: &str| {
        Ticket::mint(&k, agent, user)
            .tool("t")
            .budget(budget.parse().expect("b"))
            .expires_at(at + 600)
            .sign()
            .expect("mint")
            .as_str()
            .to_string()
    };
    let call = Call::new("t", "{}").expect("call").at(at);
    let code = |t: &str| match v.check(t, &call) {
        Ok(_) => "allow".to_string(),
        Err(d) => d.code.to_string(),
    };
    let (a, b, c) = (
        ticket("a", "alice", "100"),
        ticket("b", "alice", "100"),
        ticket("a", "carol", "1"),
    );
    assert_eq!(code(&a), "allow");
    assert_eq!(code(&a), "allow");
    assert_eq!(code(&a), "rate_limited", "2/hour for (a, alice)");
    assert_eq!(code(&b), "allow", "(b, alice): alice's third");
    assert_eq!(code(&b), "rate_limited", "3/hour for alice");
    assert_eq!(code(&c), "allow", "carol's own");
    assert_eq!(
        code(&c),
        "budget_exhausted",
        "the ticket's lifetime budget of 1"
    );
    let c2 = ticket("a", "carol", "100");
    assert_eq!(
        code(&c2),
        "allow",
        "the refusal above spent nothing of (a, carol)"
    );
    assert_eq!(code(&c2), "rate_limited");
}
