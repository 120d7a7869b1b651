//! The stores: SQLite and Redis (docs §17.6).

use std::path::Path;
use std::sync::Mutex;

use crate::store::{Issued, Store};
use crate::Error;

fn db(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteStore {
    /// Opens (or creates, mode 0600) the database and its tables.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = rusqlite::Connection::open(path)
            .map_err(|e| Error::Store(format!("{}: {e}", path.display())))?;
        restrict(path)?;
        Self::init(conn)
    }

    /// An in-memory database (tests, `check-policy`).
    pub fn memory() -> Result<Self, Error> {
        Self::init(rusqlite::Connection::open_in_memory().map_err(db)?)
    }

    fn init(conn: rusqlite::Connection) -> Result<Self, Error> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA busy_timeout = 2000;
             CREATE TABLE IF NOT EXISTS clients (
                 id TEXT PRIMARY KEY, secret_sha256 BLOB NOT NULL, updated INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS tickets (
                 revocation_id TEXT PRIMARY KEY, client TEXT NOT NULL, user TEXT NOT NULL,
                 scopes TEXT NOT NULL, resource TEXT NOT NULL, issued INTEGER NOT NULL,
                 expires INTEGER NOT NULL, revoked INTEGER);
             CREATE TABLE IF NOT EXISTS assertions (
                 client TEXT NOT NULL, jti TEXT NOT NULL, expires INTEGER NOT NULL,
                 PRIMARY KEY (client, jti));
             CREATE INDEX IF NOT EXISTS assertions_expires ON assertions (expires);",
        )
        .map_err(db)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(unix)]
fn restrict(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::Store(format!("{}: {e}", path.display())))
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> Result<(), Error> {
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Store for SqliteStore {
    fn secret_hash(&self, client: &str) -> Result<Option<[u8; 32]>, Error> {
        let conn = self.conn();
        let mut q = conn
            .prepare_cached("SELECT secret_sha256 FROM clients WHERE id = ?1")
            .map_err(db)?;
        let mut rows = q.query([client]).map_err(db)?;
        let Some(row) = rows.next().map_err(db)? else {
            return Ok(None);
        };
        let blob: Vec<u8> = row.get(0).map_err(db)?;
        Ok(blob.try_into().ok())
    }

    fn set_secret_hash(&self, client: &str, hash: &[u8; 32]) -> Result<(), Error> {
        self.conn()
            .execute(
                "INSERT INTO clients (id, secret_sha256, updated) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET secret_sha256 = ?2, updated = ?3",
                rusqlite::params![client, &hash[..], unix_now() as i64],
            )
            .map_err(db)?;
        Ok(())
    }

    fn use_assertion(&self, client: &str, jti: &str, expires: u64) -> Result<bool, Error> {
        let conn = self.conn();
        // Ids are kept until their assertion expires (plus the allowed skew), then forgotten.
        conn.execute(
            "DELETE FROM assertions WHERE expires < ?1",
            [unix_now().saturating_sub(120) as i64],
        )
        .map_err(db)?;
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO assertions (client, jti, expires) VALUES (?1, ?2, ?3)",
                rusqlite::params![client, jti, expires as i64],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn record(&self, t: &Issued) -> Result<(), Error> {
        self.conn()
            .execute(
                "INSERT INTO tickets (revocation_id, client, user, scopes, resource, issued, expires, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
                rusqlite::params![
                    t.revocation_id,
                    t.client,
                    t.user,
                    t.scopes,
                    t.resource,
                    t.issued as i64,
                    t.expires as i64
                ],
            )
            .map_err(db)?;
        Ok(())
    }

    fn issued(&self, revocation_id: &str) -> Result<Option<Issued>, Error> {
        let conn = self.conn();
        let mut q = conn
            .prepare_cached(
                "SELECT revocation_id, client, user, scopes, resource, issued, expires, revoked
                 FROM tickets WHERE revocation_id = ?1",
            )
            .map_err(db)?;
        let mut rows = q.query([revocation_id]).map_err(db)?;
        let Some(r) = rows.next().map_err(db)? else {
            return Ok(None);
        };
        let int = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        Ok(Some(Issued {
            revocation_id: r.get(0).map_err(db)?,
            client: r.get(1).map_err(db)?,
            user: r.get(2).map_err(db)?,
            scopes: r.get(3).map_err(db)?,
            resource: r.get(4).map_err(db)?,
            issued: int(5).map_err(db)?,
            expires: int(6).map_err(db)?,
            revoked: r
                .get::<_, Option<i64>>(7)
                .map_err(db)?
                .map(|v| v.max(0) as u64),
        }))
    }

    fn mark_revoked(&self, revocation_id: &str, at: u64) -> Result<(), Error> {
        self.conn()
            .execute(
                "UPDATE tickets SET revoked = ?2 WHERE revocation_id = ?1 AND revoked IS NULL",
                rusqlite::params![revocation_id, at as i64],
            )
            .map_err(db)?;
        Ok(())
    }
}

/// The Redis store, shared by every issuer replica (docs §17.6 key layout).
pub struct RedisStore {
    conn: captix_redis::Conn,
    prefix: String,
}

impl RedisStore {
    /// Connects (lazily) to `url`.
    pub fn new(url: &str) -> Result<Self, Error> {
        let options = captix_redis::Options::default();
        Ok(RedisStore {
            conn: captix_redis::Conn::new(url, options.timeout).map_err(db)?,
            prefix: format!("{}:issuer", options.prefix),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut captix_redis::redis::Connection) -> captix_redis::redis::RedisResult<T>,
    ) -> Result<T, Error> {
        self.conn.with(f).map_err(|d| Error::Store(d.reason))
    }

    fn ticket_key(&self, revocation_id: &str) -> String {
        format!("{}:ticket:{revocation_id}", self.prefix)
    }
}

impl Store for RedisStore {
    fn secret_hash(&self, client: &str) -> Result<Option<[u8; 32]>, Error> {
        let key = format!("{}:secrets", self.prefix);
        let v: Option<Vec<u8>> = self.with(|c| {
            captix_redis::redis::cmd("HGET")
                .arg(&key)
                .arg(client)
                .query(c)
        })?;
        Ok(v.and_then(|b| b.try_into().ok()))
    }

    fn set_secret_hash(&self, client: &str, hash: &[u8; 32]) -> Result<(), Error> {
        let key = format!("{}:secrets", self.prefix);
        self.with(|c| {
            captix_redis::redis::cmd("HSET")
                .arg(&key)
                .arg(client)
                .arg(&hash[..])
                .query::<()>(c)
        })
    }

    fn use_assertion(&self, client: &str, jti: &str, expires: u64) -> Result<bool, Error> {
        use sha2::Digest as _;
        // One key per (client, jti), unambiguous whatever the two hold.
        let id = hex::encode(sha2::Sha256::digest(format!("{client}\0{jti}")));
        let key = format!("{}:jti:{id}", self.prefix);
        let set: Option<String> = self.with(|c| {
            captix_redis::redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("EXAT")
                .arg(expires.saturating_add(120))
                .query(c)
        })?;
        Ok(set.is_some())
    }

    fn record(&self, t: &Issued) -> Result<(), Error> {
        let key = self.ticket_key(&t.revocation_id);
        self.with(|c| {
            captix_redis::redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(&key)
                .arg("client")
                .arg(&t.client)
                .arg("user")
                .arg(&t.user)
                .arg("scopes")
                .arg(&t.scopes)
                .arg("resource")
                .arg(&t.resource)
                .arg("issued")
                .arg(t.issued)
                .arg("expires")
                .arg(t.expires)
                .ignore()
                // Kept a day past expiry: long enough to answer a revocation of it.
                .cmd("EXPIREAT")
                .arg(&key)
                .arg(t.expires.saturating_add(86_400))
                .ignore()
                .query::<()>(c)
        })
    }

    fn issued(&self, revocation_id: &str) -> Result<Option<Issued>, Error> {
        let key = self.ticket_key(revocation_id);
        let map: std::collections::HashMap<String, String> =
            self.with(|c| captix_redis::redis::cmd("HGETALL").arg(&key).query(c))?;
        if map.is_empty() {
            return Ok(None);
        }
        let text = |k: &str| map.get(k).cloned().unwrap_or_default();
        let int = |k: &str| map.get(k).and_then(|v| v.parse().ok());
        Ok(Some(Issued {
            revocation_id: revocation_id.to_string(),
            client: text("client"),
            user: text("user"),
            scopes: text("scopes"),
            resource: text("resource"),
            issued: int("issued").unwrap_or(0),
            expires: int("expires").unwrap_or(0),
            revoked: int("revoked"),
        }))
    }

    fn mark_revoked(&self, revocation_id: &str, at: u64) -> Result<(), Error> {
        let key = self.ticket_key(revocation_id);
        self.with(|c| {
            captix_redis::redis::cmd("HSETNX")
                .arg(&key)
                .arg("revoked")
                .arg(at)
                .query::<()>(c)
        })
    }
}

/// The store a configuration names.
pub fn open(at: &crate::config::StoreAt) -> Result<Box<dyn Store>, Error> {
    Ok(match at {
        crate::config::StoreAt::Sqlite(p) => Box::new(SqliteStore::open(p)?),
        crate::config::StoreAt::Redis(url) => Box::new(RedisStore::new(url)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_survives_a_reopen_and_is_private() {
        let dir = std::env::temp_dir().join(format!("captix-issuer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("issuer.db");
        let _ = std::fs::remove_file(&path);
        SqliteStore::open(&path)
            .expect("open")
            .set_secret_hash("bot", &[3; 32])
            .expect("set");
        let again = SqliteStore::open(&path).expect("reopen");
        assert_eq!(again.secret_hash("bot").expect("read"), Some([3; 32]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "no access for group or others");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
