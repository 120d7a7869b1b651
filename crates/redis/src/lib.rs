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

/// One lazily (re)connected connection, for other captix crates that keep state in the same
/// Redis (the issuer's store).
pub struct Conn {
    client: redis::Client,
    timeout: Duration,
    conn: std::sync::Mutex<Option<redis::Connection>>,
}

impl Conn {
    /// A connection to `url` (made on first use), with this timeout on every call.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, captix::Error> {
        let client = redis::Client::open(url).map_err(|e| {
            captix::Error::InvalidRestriction(format!("invalid redis URL {url:?}: {e}"))
        })?;
        Ok(Conn {
            client,
            timeout,
            conn: std::sync::Mutex::new(None),
        })
    }

    /// Runs `f` on the connection, connecting first if needed; a failed call drops the
    /// connection so the next call reconnects. Failures are `store_unavailable` denials.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, captix::Denial> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let c = self
                .client
                .get_connection_with_timeout(self.timeout)
                .map_err(unavailable)?;
            c.set_read_timeout(Some(self.timeout))
                .map_err(unavailable)?;
            c.set_write_timeout(Some(self.timeout))
                .map_err(unavailable)?;
            *guard = Some(c);
        }
        let conn = guard.as_mut().ok_or_else(|| unavailable("no connection"))?;
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_timeout()
                    || e.is_connection_refusal()
                {
                    *guard = None;
                }
                Err(unavailable(e))
            }
        }
    }
}
