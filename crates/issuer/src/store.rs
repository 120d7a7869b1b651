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

/// Where the issuer keeps its state. Every method is one atomic step.
pub trait Store: Send + Sync {
    /// The client's secret hash, if it has one.
    fn secret_hash(&self, client: &str) -> Result<Option<[u8; 32]>, Error>;
    /// Sets (or replaces) the client's secret hash.
    fn set_secret_hash(&self, client: &str, hash: &[u8; 32]) -> Result<(), Error>;
    /// Marks an assertion id used until `expires`; false if it was used before (a replay).
    fn use_assertion(&self, client: &str, jti: &str, expires: u64) -> Result<bool, Error>;
    /// Records an issued ticket.
    fn record(&self, issued: &Issued) -> Result<(), Error>;
    /// The record of a ticket, by its authority block's revocation id.
    fn issued(&self, revocation_id: &str) -> Result<Option<Issued>, Error>;
    /// Marks a ticket revoked.
    fn mark_revoked(&self, revocation_id: &str, at: u64) -> Result<(), Error>;
}
