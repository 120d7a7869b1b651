//! Revocation on Redis (docs §15.2).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use captix::revocation::RevocationSource;
use captix::{Denial, RevocationId};

use crate::{Conn, Options};

struct Shared {
    conn: Conn,
    set_key: String,
    channel: String,
    ids: RwLock<HashSet<Vec<u8>>>,
    generation: AtomicU64,
    /// When the local copy was last confirmed against Redis.
    fresh: RwLock<Option<Instant>>,
    stop: AtomicBool,
}

/// Revoked ids in a Redis set, with a local copy on each replica.
///
/// The copy is re-read when a revocation is published and at least every `refresh`; a
/// revocation is enforced by every replica within `refresh` and one read of the set (within
/// milliseconds when the publish arrives). When Redis cannot be read for longer than `3 × refresh`, checks fail
/// closed with `store_unavailable` until it can.
pub struct RedisRevocations {
    shared: Arc<Shared>,
    refresh: Duration,
}

impl RedisRevocations {
    /// Connects to `url` and starts the background refresher (a thread with its own
    /// subscription). Fails if the first read fails.
    pub fn new(url: &str, options: Options, refresh: Duration) -> Result<Self, captix::Error> {
        let shared = Arc::new(Shared {
            conn: Conn::new(url, options.timeout)?,
            set_key: format!("{}:revoked", options.prefix),
            channel: format!("{}:revocations", options.prefix),
            ids: RwLock::new(HashSet::new()),
            generation: AtomicU64::new(0),
            fresh: RwLock::new(None),
            stop: AtomicBool::new(false),
        });
        reload(&shared).map_err(captix::Error::Denied)?;
        let s = shared.clone();
        let url = url.to_string();
        std::thread::Builder::new()
            .name("captix-redis-revocations".into())
            .spawn(move || listen(&s, &url, refresh))
            .map_err(|e| captix::Error::Io {
                context: "could not start the revocation refresher".into(),
                source: e,
            })?;
        Ok(RedisRevocations { shared, refresh })
    }

    /// Revokes an id for every replica: adds it to the set and publishes it.
    pub fn revoke(&self, id: &RevocationId) -> Result<(), Denial> {
        let hex = id.to_hex();
        // The set is the truth; the publish only wakes replicas before their refresh (two
        // commands, not a transaction: a cluster routes them to different nodes).
        self.shared.conn.with(|c| {
            redis::cmd("SADD")
                .arg(&self.shared.set_key)
                .arg(&hex)
                .query::<()>(c)
        })?;
        let _ = self.shared.conn.with(|c| {
            redis::cmd("PUBLISH")
                .arg(&self.shared.channel)
                .arg(&hex)
                .query::<()>(c)
        });
        reload(&self.shared)
    }

    /// Re-reads the set now.
    pub fn reload(&self) -> Result<(), Denial> {
        reload(&self.shared)
    }
}

impl Drop for RedisRevocations {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn reload(s: &Shared) -> Result<(), Denial> {
    let members: Vec<String> = s
        .conn
        .with(|c| redis::cmd("SMEMBERS").arg(&s.set_key).query(c))?;
    let ids: HashSet<Vec<u8>> = members.iter().filter_map(|m| hex::decode(m).ok()).collect();
    let changed = {
        let mut cur = s.ids.write().unwrap_or_else(|e| e.into_inner());
        let changed = *cur != ids;
        if changed {
            *cur = ids;
        }
        changed
    };
    if changed {
        s.generation.fetch_add(1, Ordering::Release);
    }
    *s.fresh.write().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    Ok(())
}

/// The refresher: waits for a published revocation (or the refresh interval) and re-reads.
fn listen(s: &Shared, url: &str, refresh: Duration) {
    while !s.stop.load(Ordering::Relaxed) {
        // Any node of a cluster delivers every publish (classic pub/sub is broadcast).
        let node = crate::node_urls(url).into_iter().next().unwrap_or_default();
        let subscribed = redis::Client::open(node)
            .and_then(|c| c.get_connection_with_timeout(refresh))
            .and_then(|mut c| {
                let mut ps = c.as_pubsub();
                ps.subscribe(&s.channel)?;
                ps.set_read_timeout(Some(refresh))?;
                while !s.stop.load(Ordering::Relaxed) {
                    match ps.get_message() {
                        Ok(_) => {}
                        Err(e) if e.is_timeout() => {}
                        Err(e) => return Err(e),
                    }
                    let _ = reload(s);
                }
                Ok(())
            });
        if subscribed.is_err() {
            let _ = reload(s);
            std::thread::sleep(refresh.min(Duration::from_millis(250)));
        }
    }
}

impl RedisRevocations {
    fn stale(&self) -> bool {
        let fresh = *self.shared.fresh.read().unwrap_or_else(|e| e.into_inner());
        fresh.is_none_or(|t| t.elapsed() > self.refresh * 3)
    }
}

impl RevocationSource for RedisRevocations {
    fn generation(&self) -> u64 {
        if self.stale() {
            // A new number on every call while stale: cached tickets are re-checked, and the
            // check fails closed.
            return self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        }
        self.shared.generation.load(Ordering::Acquire)
    }

    fn first_revoked(&self, chain: &[RevocationId]) -> Result<Option<usize>, Denial> {
        if self.stale() {
            return Err(crate::unavailable(
                "the revocation list could not be refreshed",
            ));
        }
        let ids = self.shared.ids.read().unwrap_or_else(|e| e.into_inner());
        Ok(chain.iter().position(|c| ids.contains(&c.0)))
    }
}
