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
