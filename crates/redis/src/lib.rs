//! # captix-redis — budgets and revocation on Redis, for servers with many replicas
//!
//! [`RedisBudgets`] is a [`captix::budget::BudgetStore`]: one call's spend over all its
//! budgets is one Lua script, atomic and all or nothing, with the GCRA of docs §10.3, so the
//! limits hold across every replica. [`RedisRevocations`] is a
//! [`captix::revocation::RevocationSource`]: revoked ids live in a Redis set; each replica
//! keeps a local copy, refreshed on a publish and at least every refresh interval, so checks
//! cost no round trip. [`leased`] spends budgets from leases ([`RedisLeases`], docs §15.4):
//! one round trip per slice of calls instead of per call, never overspending. An unreachable
//! Redis fails closed with `store_unavailable`; the stores
//! reconnect by themselves. Specified in docs §15.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod budgets;
mod leases;
mod revocations;

pub use budgets::{RedisBudgets, CLOCK_SKEW_MARGIN};
pub use leases::{leased, RedisLeases};
/// The `redis` crate this one is built on, for callers of [`Conn::with`].
pub use redis;
pub use revocations::RedisRevocations;

use std::time::Duration;

/// Connection settings shared by both stores.
#[derive(Clone, Debug)]
pub struct Options {
    /// Prefix of every key (default `captix`).
    pub prefix: String,
    /// Connect, read and write timeout (default 200 ms): past it, a call fails closed.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "captix".into(),
            timeout: Duration::from_millis(200),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> captix::Denial {
    captix::budget::store_unavailable(&format!("redis: {e}"))
}

/// `redis+cluster://HOST:PORT,HOST:PORT,…`: a Redis Cluster, from any of its nodes (docs §15).
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

enum Client {
    One(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

enum Connection {
    One(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Connection {
    fn as_dyn(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            Connection::One(c) => c,
            Connection::Cluster(c) => &mut **c,
        }
    }
}

/// The node URLs of a Redis URL: one for `redis://…`, each node of a `redis+cluster://…`.
pub fn node_urls(url: &str) -> Vec<String> {
    match url.strip_prefix(CLUSTER_SCHEME) {
        Some(nodes) => nodes
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| format!("redis://{n}"))
            .collect(),
        None => vec![url.to_string()],
    }
}

/// One lazily (re)connected connection, to one Redis or to a Redis Cluster
/// (`redis+cluster://…`), for the stores here and for other captix crates that keep state in
/// the same Redis (the issuer's store).
pub struct Conn {
    client: Client,
    timeout: Duration,
    conn: std::sync::Mutex<Option<Connection>>,
}

impl Conn {
    /// A connection to `url` (made on first use), with this timeout on every call. A cluster
    /// connection follows slot moves and failovers, retrying a call at most twice within the
    /// timeout's budget; past it, the call fails closed.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, captix::Error> {
        let invalid = |e: redis::RedisError| {
            captix::Error::InvalidRestriction(format!("invalid redis URL {url:?}: {e}"))
        };
        let client = if url.starts_with(CLUSTER_SCHEME) {
            let nodes = node_urls(url);
            if nodes.is_empty() {
                return Err(captix::Error::InvalidRestriction(format!(
                    "invalid redis URL {url:?}: no cluster node"
                )));
            }
            Client::Cluster(
                redis::cluster::ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .min_retry_wait(10)
                    .max_retry_wait(100)
                    .build()
                    .map_err(invalid)?,
            )
        } else {
            Client::One(redis::Client::open(url).map_err(invalid)?)
        };
        Ok(Conn {
            client,
            timeout,
            conn: std::sync::Mutex::new(None),
        })
    }

    fn connect(&self) -> redis::RedisResult<Connection> {
        match &self.client {
            Client::One(client) => {
                let c = client.get_connection_with_timeout(self.timeout)?;
                c.set_read_timeout(Some(self.timeout))?;
                c.set_write_timeout(Some(self.timeout))?;
                Ok(Connection::One(c))
            }
            Client::Cluster(client) => Ok(Connection::Cluster(Box::new(client.get_connection()?))),
        }
    }

    /// Runs `f` on the connection, connecting first if needed; a failed call drops the
    /// connection so the next call reconnects. Failures are `store_unavailable` denials.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut dyn redis::ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, captix::Denial> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(self.connect().map_err(unavailable)?);
        }
        let conn = guard.as_mut().ok_or_else(|| unavailable("no connection"))?;
        match f(conn.as_dyn()) {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_connection_refusal()
                    || e.is_cluster_error()
                {
                    *guard = None;
                }
                Err(unavailable(e))
            }
        }
    }
}
