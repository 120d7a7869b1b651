//! A generic cache bounded in bytes, with constant-time lookups (docs §10.2).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;

const SHARDS: usize = 64;

/// How many bytes at the end of a key choose its bucket (docs §10.2). A ticket's text ends
/// with its proof (the next block's secret key, or the sealing signature) after the last
/// block's signature: bytes no one can choose without holding them, all inside these 128.
const TAIL: usize = 128;

/// The most entries one bucket holds (docs §10.2): keys that share a tail are tickets their
/// holder built to share it, and a full bucket evicts among them, so a lookup compares with
/// at most this many.
const BUCKET_MAX: usize = 4;

/// Compares two byte strings in time that depends only on their lengths (docs §10.2): XOR
/// of 8-byte words accumulated with OR, no early exit, the final test by `subtle`.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut acc = 0u64;
    let (ac, at) = a.as_chunks::<8>();
    let (bc, bt) = b.as_chunks::<8>();
    for (x, y) in ac.iter().zip(bc) {
        acc |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in at.iter().zip(bt) {
        acc |= u64::from(x ^ y);
    }
    bool::from(std::hint::black_box(acc).ct_eq(&0))
}

/// What the cache holds: an entry found by its exact bytes, weighed in heap bytes, dropped
/// when it expires (docs §10.2).
pub(crate) trait Cached {
    /// The bytes the entry is found by (a ticket's text).
    fn key(&self) -> &[u8];
    /// When the entry stops being useful (Unix seconds; `u64::MAX` for never).
    fn expires(&self) -> u64;
    /// The heap the entry holds now, counted against the cache's bound.
    fn heap_bytes(&self) -> usize;
}

/// A cache bounded in bytes of heap (docs §10.2): sharded and bucketed by a keyed hash of the
/// key's length and tail (a holder cannot aim at one shard), each lookup confirmed by
/// comparing the whole key in constant time, the entries that expire first evicted when a
/// shard or a bucket is full.
pub(crate) struct Cache<E> {
    shards: Vec<RwLock<Shard<E>>>,
    hasher: foldhash::quality::RandomState,
    per_shard: usize,
}

struct Shard<E> {
    map: HashMap<u64, Vec<Arc<E>>>,
    count: usize,
}

impl<E> Default for Shard<E> {
    fn default() -> Self {
        Shard {
            map: HashMap::new(),
            count: 0,
        }
    }
}

impl<E: Cached> Shard<E> {
    fn heap_bytes(&self) -> usize {
        self.map.values().flatten().map(|e| e.heap_bytes()).sum()
    }

    /// Removes the entry that expires first (tickets without expiry last); returns the heap
    /// it held, or `None` when the shard is empty.
    fn evict_one(&mut self) -> Option<usize> {
        let victim = self
            .map
            .iter()
            .flat_map(|(k, b)| b.iter().enumerate().map(move |(i, e)| (e.expires(), *k, i)))
            .min();
        let (_, k, i) = victim?;
        let b = self.map.get_mut(&k)?;
        let freed = b.swap_remove(i).heap_bytes();
        if b.is_empty() {
            self.map.remove(&k);
        }
        self.count -= 1;
        Some(freed)
    }
}

impl<E: Cached> Cache<E> {
    /// A cache holding at most `bytes` of heap.
    pub(crate) fn new(bytes: usize) -> Self {
        Cache {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            hasher: foldhash::quality::RandomState::default(),
            per_shard: bytes / SHARDS,
        }
    }

    /// The bucket's hash and the shard: of the length and the last [`TAIL`] bytes only, so a
    /// warm check hashes the same few bytes at any depth; the whole key is compared after.
    fn locate(&self, bytes: &[u8]) -> (u64, &RwLock<Shard<E>>) {
        let tail = &bytes[bytes.len().saturating_sub(TAIL)..];
        let h = self.hasher.hash_one((bytes.len(), tail));
        (h, &self.shards[(h >> 58) as usize % SHARDS])
    }

    pub(crate) fn get(&self, bytes: &[u8]) -> Option<Arc<E>> {
        let (h, shard) = self.locate(bytes);
        let shard = shard.read().unwrap_or_else(|e| e.into_inner());
        let bucket = shard.map.get(&h)?;
        let mut found = None;
        // Compare with every entry of the bucket, in constant time each.
        for e in bucket {
            if ct_eq(e.key(), bytes) {
                found = Some(e.clone());
            }
        }
        found
    }

    /// Caches the entry, evicting what the shard's byte bound needs; an entry larger than a
    /// shard's bound, or one that expires before every entry of its full bucket, is returned
    /// uncached.
    pub(crate) fn insert(&self, entry: Arc<E>) -> Arc<E> {
        let weight = entry.heap_bytes();
        if weight > self.per_shard {
            return entry;
        }
        let (h, shard) = self.locate(entry.key());
        let mut shard = shard.write().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = shard
            .map
            .get(&h)
            .and_then(|b| b.iter().find(|e| ct_eq(e.key(), entry.key())))
        {
            return existing.clone();
        }
        let mut held = shard.heap_bytes();
        if let Some(bucket) = shard.map.get_mut(&h).filter(|b| b.len() >= BUCKET_MAX) {
            let first = (0..bucket.len()).min_by_key(|i| bucket[*i].expires());
            match first {
                Some(i) if bucket[i].expires() <= entry.expires() => {
                    held = held.saturating_sub(bucket.swap_remove(i).heap_bytes());
                    shard.count -= 1;
                }
                _ => return entry,
            }
        }
        while held + weight > self.per_shard {
            match shard.evict_one() {
                Some(freed) => held = held.saturating_sub(freed),
                None => break,
            }
        }
        shard.map.entry(h).or_default().push(entry.clone());
        shard.count += 1;
        entry
    }

    /// Drops the entries that expired before `now`; returns how many.
    pub(crate) fn evict_expired(&self, now: u64) -> usize {
        let mut dropped = 0;
        for s in &self.shards {
            let mut s = s.write().unwrap_or_else(|e| e.into_inner());
            let before = s.count;
            s.map.retain(|_, b| {
                b.retain(|e| e.expires() > now);
                !b.is_empty()
            });
            s.count = s.map.values().map(Vec::len).sum();
            dropped += before - s.count;
        }
        dropped
    }

    /// How many entries it holds.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).count)
            .sum()
    }

    /// The heap its entries hold now.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).heap_bytes())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry that is just its key.
    struct Bytes(Vec<u8>);

    impl Cached for Bytes {
        fn key(&self) -> &[u8] {
            &self.0
        }
        fn expires(&self) -> u64 {
            u64::MAX
        }
        fn heap_bytes(&self) -> usize {
            self.0.len()
        }
    }

    #[test]
    fn the_cache_finds_exact_keys_and_stays_within_its_bytes() {
        let cache: Cache<Bytes> = Cache::new(SHARDS * 1000);
        for i in 0..500u32 {
            cache.insert(Arc::new(Bytes(format!("ticket-{i:0>90}").into_bytes())));
        }
        assert!(
            cache.heap_bytes() <= SHARDS * 1000,
            "{}",
            cache.heap_bytes()
        );
        assert!(cache.len() < 500, "evicted to fit");
        let kept = (0..500u32)
            .map(|i| format!("ticket-{i:0>90}").into_bytes())
            .find(|k| cache.get(k).is_some())
            .expect("some entry kept");
        let mut near = kept.clone();
        *near.last_mut().expect("non-empty") ^= 0x80;
        assert!(cache.get(&near).is_none(), "only the exact bytes match");
        assert!(cache.get(&kept[..kept.len() - 1]).is_none());
        let big = Arc::new(Bytes(vec![7; 2000]));
        assert!(Arc::ptr_eq(&cache.insert(big.clone()), &big));
        assert!(
            cache.get(&[7; 2000]).is_none(),
            "larger than a shard: not cached"
        );
    }

    /// Keys that share their tail (a holder can build many tickets ending alike) land in one
    /// bucket: each is still found only by its exact bytes, and the bucket never holds more
    /// than `BUCKET_MAX`, so no holder can make lookups compare with a long list.
    #[test]
    fn keys_sharing_a_tail_are_told_apart_and_their_bucket_is_bounded() {
        let cache: Cache<Bytes> = Cache::new(1 << 20);
        let tail = vec![b'z'; TAIL];
        let key = |i: u32| [format!("prefix-{i:0>8}-").into_bytes(), tail.clone()].concat();
        for i in 0..40 {
            let k = key(i);
            cache.insert(Arc::new(Bytes(k.clone())));
            assert!(cache.get(&k).is_some(), "the newest entry {i} is found");
            if i > 0 {
                assert!(
                    cache.get(&key(i + 1000)).is_none(),
                    "same tail, other prefix"
                );
            }
        }
        let (h, shard) = cache.locate(&key(0));
        let shard = shard.read().expect("lock");
        assert_eq!(shard.map.get(&h).map(Vec::len), Some(BUCKET_MAX));
        assert_eq!(
            cache.len(),
            BUCKET_MAX,
            "older entries of the bucket were evicted"
        );
        assert_eq!(
            shard.count, BUCKET_MAX,
            "the shard's count follows the evictions"
        );
    }

    /// An entry with an expiry.
    struct Expiring(Vec<u8>, u64);

    impl Cached for Expiring {
        fn key(&self) -> &[u8] {
            &self.0
        }
        fn expires(&self) -> u64 {
            self.1
        }
        fn heap_bytes(&self) -> usize {
            self.0.len()
        }
    }

    /// A full bucket evicts the entry that expires first, and only from itself; a newcomer
    /// that expires before all of them is not cached.
    #[test]
    fn a_full_bucket_evicts_what_expires_first() {
        let cache: Cache<Expiring> = Cache::new(1 << 20);
        let tail = vec![b'q'; TAIL];
        let key = |i: u64| [format!("prefix-{i:0>8}-").into_bytes(), tail.clone()].concat();
        // Another entry of the same shard, in its own bucket.
        let (_, ours) = cache.locate(&key(0));
        let neighbour = (0..10_000u64)
            .map(|i| format!("neighbour-{i}").into_bytes())
            .find(|k| {
                let (h, s) = cache.locate(k);
                std::ptr::eq(s, ours) && h != cache.locate(&key(0)).0
            })
            .expect("a neighbour in the shard");
        cache.insert(Arc::new(Expiring(neighbour.clone(), 5)));
        for (i, expires) in [50, 10, 40, 30, 20].into_iter().enumerate() {
            cache.insert(Arc::new(Expiring(key(i as u64), expires)));
        }
        let kept = |i: u64| cache.get(&key(i)).is_some();
        assert!(!kept(1), "the entry expiring at 10 made room");
        assert!(kept(0) && kept(2) && kept(3) && kept(4));
        assert!(
            cache.get(&neighbour).is_some(),
            "other buckets are untouched"
        );
        assert_eq!(cache.len(), BUCKET_MAX + 1);
        let held = [0u64, 2, 3, 4].iter().map(|i| key(*i).len()).sum::<usize>() + neighbour.len();
        assert_eq!(cache.heap_bytes(), held);
        cache.insert(Arc::new(Expiring(key(9), 15)));
        assert!(!kept(9), "expires before all of the bucket: not cached");
        assert_eq!(cache.len(), BUCKET_MAX + 1);
    }

    #[test]
    fn constant_time_compare_is_exact() {
        let a: Vec<u8> = (0..100u8).collect();
        assert!(ct_eq(&a, &a.clone()));
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 0x80;
            assert!(!ct_eq(&a, &b), "differs at {i}");
        }
        assert!(!ct_eq(&a, &a[..99]));
        assert!(ct_eq(&[], &[]));
    }

    /// Welch's t statistic between two samples.
    fn welch_t(a: &[f64], b: &[f64]) -> f64 {
        let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        let var = |x: &[f64], m: f64| {
            x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64
        };
        let (ma, mb) = (mean(a), mean(b));
        (ma - mb) / (var(a, ma) / a.len() as f64 + var(b, mb) / b.len() as f64).sqrt()
    }

    /// dudect-style measurement: classes interleaved at random, each sample a fresh probe
    /// drawn from its class's pool (so hash buckets and allocation alignment vary within both
    /// classes alike), each sample the time of a batch of calls, the slowest 10% cropped
    /// (interrupts), then Welch's t-test.
    fn leak_t(f: &dyn Fn(&[u8]) -> bool, class_a: &[Vec<u8>], class_b: &[Vec<u8>]) -> f64 {
        use std::time::Instant;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..150_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let which = x & 1 == 0;
            let pool = if which { class_a } else { class_b };
            let probe = &pool[(x >> 8) as usize % pool.len()];
            let start = Instant::now();
            for _ in 0..8 {
                std::hint::black_box(f(std::hint::black_box(probe)));
            }
            let t = start.elapsed().as_nanos() as f64;
            if which {
                a.push(t)
            } else {
                b.push(t)
            }
        }
        let crop = |v: &mut Vec<f64>| {
            v.sort_by(|p, q| p.partial_cmp(q).unwrap_or(std::cmp::Ordering::Equal));
            v.truncate(v.len() * 9 / 10);
        };
        crop(&mut a);
        crop(&mut b);
        welch_t(&a, &b)
    }

    /// Two pools of probes differing from `base` at byte `at_a` and at byte `at_b`, each probe
    /// its own allocation, allocated alternately so both classes spread over the same memory.
    fn pools(base: &[u8], at_a: usize, at_b: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 1..=4096u32 {
            let [lo, hi, ..] = i.to_le_bytes();
            let mut p = base.to_vec();
            p[at_a] ^= lo;
            p[at_a + 1] ^= hi;
            a.push(p);
            let mut q = base.to_vec();
            q[at_b - 1] ^= hi;
            q[at_b] ^= lo;
            b.push(q);
        }
        (a, b)
    }

    /// Timing test (docs §10.2): comparing a presented ticket with a cached one takes the same
    /// time wherever they differ. Probes differ from the cached ticket in their first two or
    /// in their last two bytes (`ct_eq`). A whole lookup: probes that share the cached
    /// ticket's tail (its bucket) and differ in their first two bytes or in the last two
    /// before the tail, all compared; and probes whose tail differs, in its first two or its
    /// last two bytes, all missed. Which of the two a probe is says only whether its tail
    /// (the proof, a secret key or a signature) equals a cached one, never how much of it
    /// does. Five independent rounds; a leak shows a large |t| of the same
    /// sign every round, noise on a shared machine a small |t| of either sign, so the median
    /// |t| is judged. The control, `==` (memcmp, early exit), must show its leak, or the
    /// measurement is not sensitive enough to mean anything. Run in release mode:
    /// `cargo test -p captix --release --lib -- --ignored constant_time --nocapture`.
    #[test]
    #[ignore = "timing measurement: run by hand in release mode"]
    fn constant_time_lookup_does_not_leak_where_tickets_differ() {
        let cached: Vec<u8> = (0..2048u32).map(|i| (i * 31 % 251) as u8).collect();
        let (first, last) = pools(&cached, 0, 2047);
        let (hit_first, hit_last) = pools(&cached, 0, 2047 - TAIL);
        let (miss_first, miss_last) = pools(&cached, 2048 - TAIL, 2047);
        let median = |mut v: Vec<f64>| {
            v.sort_by(|p, q| p.partial_cmp(q).unwrap_or(std::cmp::Ordering::Equal));
            v[v.len() / 2]
        };
        let (mut t_ct, mut t_naive) = (Vec::new(), Vec::new());
        let (mut t_hit, mut t_miss) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            t_ct.push(leak_t(&|p: &[u8]| ct_eq(&cached, p), &first, &last));
            t_naive.push(leak_t(&|p: &[u8]| cached.as_slice() == p, &first, &last));
            // Whole cache lookups (keyed hash, bucket, constant-time compare), fresh seed.
            let cache = Cache::new(1 << 20);
            cache.insert(Arc::new(Bytes(cached.clone())));
            let get = |p: &[u8]| cache.get(p).is_some();
            t_hit.push(leak_t(&get, &hit_first, &hit_last));
            t_miss.push(leak_t(&get, &miss_first, &miss_last));
        }
        println!(
            "welch t per round: ct_eq {t_ct:.1?}, cache get (tail shared) {t_hit:.1?}, \
             cache get (tail differs) {t_miss:.1?}, naive == {t_naive:.0?}"
        );
        let abs = |v: &[f64]| v.iter().map(|t| t.abs()).collect::<Vec<_>>();
        let (m_ct, m_hit, m_miss, m_naive) = (
            median(abs(&t_ct)),
            median(abs(&t_hit)),
            median(abs(&t_miss)),
            median(abs(&t_naive)),
        );
        println!(
            "median |t|: ct_eq {m_ct:.1}, cache get {m_hit:.1} (tail shared), \
             {m_miss:.1} (tail differs), naive == {m_naive:.0}"
        );
        assert!(
            m_naive > 100.0,
            "the control did not detect memcmp's leak: {m_naive:.1}"
        );
        assert!(m_ct < 10.0, "ct_eq leaks: median |t| = {m_ct:.1}");
        assert!(m_hit < 10.0, "cache lookup leaks: median |t| = {m_hit:.1}");
        assert!(
            m_miss < 10.0,
            "a missed lookup leaks: median |t| = {m_miss:.1}"
        );
    }
}
