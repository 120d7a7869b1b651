//! The issuer's state (docs §17.6): clients' secret hashes, issued-ticket records and used
//! assertion ids. SQLite by default (one file, nothing to start); Redis for many replicas.

use crate::Error;

#[cfg(feature = "server")]
pub use crate::stores::{open, RedisStore, SqliteStore};

/// One issued ticket, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The authority block's revocation id (hex): the ticket's identity.
    pub revocation_id: String,
    /// The client it was issued to.
    pub client: String,
    /// The user it acts for.
    pub user: String,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// Its audience.
    pub resource: String,
    /// When it was issued and when it expires (Unix seconds).
    pub issued: u64,
    /// Expiry.
    pub expires: u64,
    /// When it was revoked, if it was.
    pub revoked: Option<u64>,
}

/// The longest `tickets` window: records are kept at least this long (SQLite).
pub const MAX_TICKETS_WINDOW: u64 = 7 * 86_400;
/// Records are kept this long after their ticket expires (long enough to answer about it).
pub(crate) const KEEP_AFTER_EXPIRY: u64 = 86_400;

/// A per-client issuance limit: at most `max` tickets in any `window` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssueLimit {
    /// Tickets.
    pub max: u64,
    /// Seconds.
    pub window: u64,
}

/// Whether a grant was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded: the ticket may be given.
    Yes,
    /// The client had its share: the oldest of its tickets in the window leaves it in this
    /// many seconds.
    Full {
        /// Seconds until a ticket may be given again.
        retry_after: u64,
    },
}

impl Recorded {
    /// `Full` when `count` tickets (the oldest issued at `oldest`) fill `limit` at `now`.
    pub fn of(count: u64, oldest: Option<u64>, limit: IssueLimit, now: u64) -> Recorded {
        if count < limit.max {
            return Recorded::Yes;
        }
        let since = now.saturating_sub(limit.window);
        Recorded::Full {
            retry_after: oldest
                .unwrap_or(since)
                .saturating_add(limit.window)
                .saturating_sub(now)
                .max(1),
        }
    }
}

/// What a revocation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The id is newly revoked: write it where the servers read.
    New,
    /// It was revoked before: nothing to write.
    Already,
    /// The ticket already has the most revoked descendants allowed: revoke the ticket itself.
    TooMany,
}

/// Where the issuer keeps its state. Every method is one atomic step, also across replicas
/// sharing the store.
pub trait Store: Send + Sync {
    /// The client's secret hash, if it has one.
    fn secret_hash(&self, client: &str) -> Result<Option<[u8; 32]>, Error>;
    /// Sets (or replaces) the client's secret hash.
    fn set_secret_hash(&self, client: &str, hash: &[u8; 32]) -> Result<(), Error>;
    /// Marks an assertion id used until `expires`; false if it was used before (a replay).
    fn use_assertion(&self, client: &str, jti: &str, expires: u64) -> Result<bool, Error>;
    /// Whether a ticket issued to `client` at `now` would be recorded under `limit` (read
    /// only: a refusal is answered before anything is signed; `record` decides atomically).
    fn room(&self, client: &str, now: u64, limit: IssueLimit) -> Result<Recorded, Error>;
    /// Records an issued ticket unless its client already got `limit.max` tickets in the
    /// `limit.window` seconds before `issued.issued` (nothing recorded then).
    fn record(&self, issued: &Issued, limit: IssueLimit) -> Result<Recorded, Error>;
    /// The record of a ticket issued to `client`, by its authority block's revocation id.
    fn issued(&self, client: &str, revocation_id: &str) -> Result<Option<Issued>, Error>;
    /// Revokes `id`, the ticket `root` (issued to `client`) or a ticket attenuated from it;
    /// at most `max_under` distinct ids per root. For a new id it calls `write` (which puts
    /// the id where the servers read it) before recording it: if `write` fails, nothing is
    /// recorded and a retry writes again. Revoking the root marks its record.
    fn revoke(
        &self,
        client: &str,
        root: &str,
        id: &str,
        at: u64,
        max_under: u64,
        write: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Result<Revoked, Error>;
}

/// A store in memory: one process, nothing kept across restarts (tests, embedding, `captix
/// issuer check-policy`). Keeps the same laws as the SQLite and Redis stores.
#[derive(Default)]
pub struct MemoryStore {
    inner: std::sync::Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    secrets: std::collections::HashMap<String, [u8; 32]>,
    assertions: std::collections::HashMap<(String, String), u64>,
    tickets: std::collections::HashMap<(String, String), Issued>,
    revoked: std::collections::HashMap<String, std::collections::HashSet<String>>,
}

impl Memory {
    fn room(&self, client: &str, now: u64, limit: IssueLimit) -> Recorded {
        let since = now.saturating_sub(limit.window);
        let mine = self
            .tickets
            .values()
            .filter(|r| r.client == client && r.issued > since)
            .map(|r| r.issued);
        let (count, oldest) = mine.fold((0u64, None::<u64>), |(n, o), t| {
            (n + 1, Some(o.map_or(t, |o| o.min(t))))
        });
        Recorded::of(count, oldest, limit, now)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn secret_hash(&self, client: &str) -> Result<Option<[u8; 32]>, Error> {
        Ok(self.inner().secrets.get(client).copied())
    }

    fn set_secret_hash(&self, client: &str, hash: &[u8; 32]) -> Result<(), Error> {
        self.inner().secrets.insert(client.to_string(), *hash);
        Ok(())
    }

    fn use_assertion(&self, client: &str, jti: &str, expires: u64) -> Result<bool, Error> {
        let mut m = self.inner();
        let now = crate::config::unix_now();
        m.assertions.retain(|_, exp| exp.saturating_add(120) >= now);
        let key = (client.to_string(), jti.to_string());
        if m.assertions.contains_key(&key) {
            return Ok(false);
        }
        m.assertions.insert(key, expires);
        Ok(true)
    }

    fn room(&self, client: &str, now: u64, limit: IssueLimit) -> Result<Recorded, Error> {
        Ok(self.inner().room(client, now, limit))
    }

    fn record(&self, t: &Issued, limit: IssueLimit) -> Result<Recorded, Error> {
        let mut m = self.inner();
        let now = crate::config::unix_now();
        m.tickets.retain(|_, r| {
            r.expires.saturating_add(KEEP_AFTER_EXPIRY) >= now
                || r.issued.saturating_add(MAX_TICKETS_WINDOW) >= now
        });
        let room = m.room(&t.client, t.issued, limit);
        if room == Recorded::Yes {
            m.tickets
                .insert((t.client.clone(), t.revocation_id.clone()), t.clone());
        }
        Ok(room)
    }

    fn issued(&self, client: &str, revocation_id: &str) -> Result<Option<Issued>, Error> {
        let key = (client.to_string(), revocation_id.to_string());
        Ok(self.inner().tickets.get(&key).cloned())
    }

    fn revoke(
        &self,
        client: &str,
        root: &str,
        id: &str,
        at: u64,
        max_under: u64,
        write: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Result<Revoked, Error> {
        let mut m = self.inner();
        let key = (client.to_string(), root.to_string());
        if !m.tickets.contains_key(&key) {
            return Err(Error::Store(format!("no ticket {root} of client {client}")));
        }
        let under = m.revoked.entry(root.to_string()).or_default();
        if under.contains(id) {
            return Ok(Revoked::Already);
        }
        if id != root && under.len() as u64 >= max_under {
            return Ok(Revoked::TooMany);
        }
        write()?;
        under.insert(id.to_string());
        if id == root {
            if let Some(r) = m.tickets.get_mut(&key) {
                r.revoked.get_or_insert(at);
            }
        }
        Ok(Revoked::New)
    }
}
