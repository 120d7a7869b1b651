//! The Redis stores on a real Redis Cluster (three primaries, a replica each, on loopback,
//! started here): the hash-tag key layout keeps each chain's budgets, leases and state in one
//! slot while chains spread over the primaries; revocation works through the cluster; a
//! primary that dies mid-run fails its calls closed until its replica takes over, then they
//! succeed again.

use std::time::{Duration, Instant};

use captix::budget::{BudgetKey, BudgetStore, MemoryBudgets, Spend};
use captix::lease::{LeaseOptions, Leased};
use captix::{Code, SigningKey, Ticket};
use captix_redis::{Options, RedisBudgets, RedisLeases, RedisRevocations};

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/sequence.rs"]
mod sequence;
use cluster::Cluster;

fn key(root: u8, block: u8, max: u64, window: u64) -> BudgetKey {
    BudgetKey {
        root: vec![root; 8],
        block: vec![block; 8],
        index: 0,
        max_calls: max,
        window,
        expires: Some(4_000_000_000),
    }
}

/// Budgets of many chains, spent at moving times on the cluster and in memory: the same
/// answers; the chains' keys live on more than one primary, each chain's in one slot.
#[test]
fn budgets_on_a_cluster_give_the_memory_answers_across_primaries() {
    let c = Cluster::start();
    let redis = RedisBudgets::new(&c.url(), Options::default()).expect("store");
    let memory = MemoryBudgets::new();
    let chains: Vec<Vec<BudgetKey>> = (1..=8u8)
        .map(|r| {
            vec![
                key(r, r * 4, 5, 60),
                key(r, r * 4 + 1, 3, 0),
                key(r, r * 4 + 2, 2, 10),
            ]
        })
        .collect();
    let mut primaries: Vec<u16> = chains
        .iter()
        .map(|keys| {
            let slot_of = |k: &BudgetKey| c.primary_of(&redis.key(k));
            let p = slot_of(&keys[0]);
            assert!(keys.iter().all(|k| slot_of(k) == p), "a chain spans slots");
            p
        })
        .collect();
    primaries.sort_unstable();
    primaries.dedup();
    assert!(
        primaries.len() > 1,
        "every chain on one primary: {primaries:?}"
    );
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut t = 1_800_000_000u64;
    for step in 0..300 {
        sequence::next(&mut seed);
        t += seed % 5;
        let chain = &chains[(seed >> 3) as usize % chains.len()];
        let pick = sequence::pick(chain, seed);
        if pick.is_empty() {
            continue;
        }
        let m = memory.prepare(pick.clone()).spend(t).expect("memory");
        let d = redis.prepare(pick).spend(t).expect("cluster");
        assert_eq!(m, d, "step {step} at t={t}");
    }
}

/// Leases and revocation through the cluster.
#[test]
fn leases_and_revocations_work_through_a_cluster() {
    let c = Cluster::start();
    let url = c.url();
    let leased = Leased::new(
        RedisLeases::new(&url, Options::default()).expect("source"),
        LeaseOptions::default(),
    );
    let now = captix::time::now();
    for r in 1..=6u8 {
        let spend = leased.prepare(vec![key(r, 1, 6000, 60), key(r, 2, 900, 30)]);
        for i in 0..40 {
            assert_eq!(spend.spend(now), Ok(Spend::Spent), "chain {r} call {i}");
        }
    }
    assert!(leased.settle_all(now) >= 6);

    let revocations =
        RedisRevocations::new(&url, Options::default(), Duration::from_secs(1)).expect("connect");
    let k = SigningKey::from_seed(&[5u8; 32]);
    let t = Ticket::mint(&k, "a", "u")
        .tool("t")
        .expires_at(now + 60)
        .sign()
        .expect("mint");
    let chain: Vec<captix::RevocationId> = t.revocation_ids().cloned().collect();
    use captix::revocation::RevocationSource;
    assert_eq!(revocations.first_revoked(&chain), Ok(None));
    revocations.revoke(&chain[0]).expect("revoke");
    assert_eq!(revocations.first_revoked(&chain), Ok(Some(0)));
}

/// A primary dies mid-run: calls on its slots fail closed (`store_unavailable`), never
/// answered from nowhere; once its replica is promoted they succeed again, by themselves.
#[test]
fn a_failover_fails_closed_and_recovers() {
    let mut c = Cluster::start();
    let redis = RedisBudgets::new(&c.url(), Options::default()).expect("store");
    let keys = vec![key(42, 1, 1_000_000, 60)];
    let spend = redis.prepare(keys.clone());
    let now = captix::time::now();
    for _ in 0..20 {
        assert_eq!(spend.spend(now), Ok(Spend::Spent));
    }
    let primary = c.primary_of(&redis.key(&keys[0]));
    c.kill(primary);
    let refused = spend
        .spend(now)
        .expect_err("the dead primary's slot fails closed");
    assert_eq!(refused.code, Code::StoreUnavailable);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut refusals = 1;
    loop {
        match spend.spend(now) {
            Ok(Spend::Spent) => break,
            Ok(other) => panic!("after the failover: {other:?}"),
            Err(d) => {
                assert_eq!(d.code, Code::StoreUnavailable, "{}", d.reason);
                refusals += 1;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after {refusals} refusals: {:?}; nodes: {}",
            spend.spend(now),
            c.cli(
                c.ports.iter().copied().find(|p| *p != primary).unwrap_or(0),
                &["cluster", "nodes"]
            )
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    c.wait_ok();
    let promoted = c.primary_of(&redis.key(&keys[0]));
    assert_ne!(promoted, primary, "the replica serves the slot now");
    assert_eq!(spend.spend(now), Ok(Spend::Spent));
}
