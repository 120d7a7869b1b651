//! The stores: SQLite and Redis (docs §17.6).

use std::path::Path;
use std::sync::Mutex;

use crate::config::unix_now;
use crate::store::{
    IssueLimit, Issued, Recorded, Revoked, Store, KEEP_AFTER_EXPIRY, MAX_TICKETS_WINDOW,
};
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
             CREATE INDEX IF NOT EXISTS tickets_client ON tickets (client, issued);
             CREATE INDEX IF NOT EXISTS tickets_expires ON tickets (expires);
             CREATE TABLE IF NOT EXISTS revoked (
                 id TEXT PRIMARY KEY, root TEXT NOT NULL, expires INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS revoked_root ON revoked (root);
             CREATE INDEX IF NOT EXISTS revoked_expires ON revoked (expires);
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

fn row_to_issued(r: &rusqlite::Row<'_>) -> rusqlite::Result<Issued> {
    let int = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
    Ok(Issued {
        revocation_id: r.get(0)?,
        client: r.get(1)?,
        user: r.get(2)?,
        scopes: r.get(3)?,
        resource: r.get(4)?,
        issued: int(5)?,
        expires: int(6)?,
        revoked: r.get::<_, Option<i64>>(7)?.map(|v| v.max(0) as u64),
    })
}

/// `Store::room` on a connection (or in a transaction).
fn sqlite_room(
    conn: &rusqlite::Connection,
    client: &str,
    now: u64,
    limit: IssueLimit,
) -> Result<Recorded, Error> {
    let since = now.saturating_sub(limit.window) as i64;
    let (count, oldest): (i64, Option<i64>) = conn
        .query_row(
            "SELECT COUNT(*), MIN(issued) FROM tickets WHERE client = ?1 AND issued > ?2",
            rusqlite::params![client, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db)?;
    let oldest = oldest.map(|o| o.max(0) as u64);
    Ok(Recorded::of(count.max(0) as u64, oldest, limit, now))
}

impl Store for SqliteStore {
    fn room(&self, client: &str, now: u64, limit: IssueLimit) -> Result<Recorded, Error> {
        sqlite_room(&self.conn(), client, now, limit)
    }

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

    fn record(&self, t: &Issued, limit: IssueLimit) -> Result<Recorded, Error> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        let now = unix_now();
        let old = now.saturating_sub(KEEP_AFTER_EXPIRY) as i64;
        // Kept a day past expiry, and as long as the longest `tickets` window counts them.
        tx.execute(
            "DELETE FROM tickets WHERE expires < ?1 AND issued < ?2",
            [old, now.saturating_sub(MAX_TICKETS_WINDOW) as i64],
        )
        .map_err(db)?;
        tx.execute("DELETE FROM revoked WHERE expires < ?1", [old])
            .map_err(db)?;
        let room = sqlite_room(&tx, &t.client, t.issued, limit)?;
        if room != Recorded::Yes {
            return Ok(room);
        }
        tx.execute(
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
        tx.commit().map_err(db)?;
        Ok(Recorded::Yes)
    }

    fn issued(&self, client: &str, revocation_id: &str) -> Result<Option<Issued>, Error> {
        let conn = self.conn();
        let mut q = conn
            .prepare_cached(
                "SELECT revocation_id, client, user, scopes, resource, issued, expires, revoked
                 FROM tickets WHERE revocation_id = ?1 AND client = ?2",
            )
            .map_err(db)?;
        let mut rows = q.query([revocation_id, client]).map_err(db)?;
        match rows.next().map_err(db)? {
            Some(r) => Ok(Some(row_to_issued(r).map_err(db)?)),
            None => Ok(None),
        }
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
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(db)?;
        let expires: Option<i64> = tx
            .query_row(
                "SELECT expires FROM tickets WHERE revocation_id = ?1 AND client = ?2",
                [root, client],
                |r| r.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(db)?;
        let Some(expires) = expires else {
            return Err(Error::Store(format!("no ticket {root} of client {client}")));
        };
        let known: i64 = tx
            .query_row("SELECT COUNT(*) FROM revoked WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .map_err(db)?;
        if known > 0 {
            return Ok(Revoked::Already);
        }
        let under: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM revoked WHERE root = ?1",
                [root],
                |r| r.get(0),
            )
            .map_err(db)?;
        if id != root && under.max(0) as u64 >= max_under {
            return Ok(Revoked::TooMany);
        }
        write()?;
        tx.execute(
            "INSERT INTO revoked (id, root, expires) VALUES (?1, ?2, ?3)",
            rusqlite::params![id, root, expires],
        )
        .map_err(db)?;
        if id == root {
            tx.execute(
                "UPDATE tickets SET revoked = ?2 WHERE revocation_id = ?1 AND revoked IS NULL",
                rusqlite::params![root, at as i64],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(Revoked::New)
    }
}

/// The Redis store, shared by every issuer replica (docs §17.6 key layout). Every key of a
/// client shares its hash tag, so each multi-key step is one script on one node of a cluster.
pub struct RedisStore {
    conn: captix_redis::Conn,
    prefix: String,
}

/// `record`: KEYS issued zset, ticket hash; ARGV now, since, max, rid, expireat, window,
/// then the record's fields. Returns {1, 0} recorded, or {0, issue time of the oldest}.
const RECORD: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(oldest[2])}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('HSET', KEYS[2], 'client', ARGV[7], 'user', ARGV[8], 'scopes', ARGV[9],
  'resource', ARGV[10], 'issued', ARGV[1], 'expires', ARGV[11])
redis.call('EXPIREAT', KEYS[2], ARGV[5])
return {1, 0}
";

/// `room`: KEYS issued zset; ARGV since, max. Returns {1, 0} room, or {0, oldest}.
const ROOM: &str = r"
local n = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
if n < tonumber(ARGV[2]) then return {1, 0} end
local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
return {0, tonumber(oldest[2])}
";

/// `revoke`, first step (read only): KEYS ticket hash, revoked set; ARGV id, root, max.
/// 0 new, 1 already, 2 too many, 3 no such ticket.
const REVOKE_CHECK: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 3 end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 1 end
if ARGV[1] ~= ARGV[2] and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 2 end
return 0
";

/// `revoke`, after the write: KEYS ticket hash, revoked set; ARGV id, root, at.
const REVOKE_MARK: &str = r"
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIREAT', KEYS[2], redis.call('EXPIRETIME', KEYS[1]))
if ARGV[1] == ARGV[2] then redis.call('HSETNX', KEYS[1], 'revoked', ARGV[3]) end
return 0
";

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
        f: impl FnOnce(
            &mut dyn captix_redis::redis::ConnectionLike,
        ) -> captix_redis::redis::RedisResult<T>,
    ) -> Result<T, Error> {
        self.conn.with(f).map_err(|d| Error::Store(d.reason))
    }

    /// A key of this client's: `captix:issuer:{<hex id>}:<rest>`.
    fn key(&self, client: &str, rest: &str) -> String {
        format!("{}:{{{}}}:{rest}", self.prefix, hex::encode(client))
    }
}

impl Store for RedisStore {
    fn room(&self, client: &str, now: u64, limit: IssueLimit) -> Result<Recorded, Error> {
        let issued = self.key(client, "issued");
        let (ok, oldest): (i64, u64) = self.with(|c| {
            captix_redis::redis::Script::new(ROOM)
                .key(&issued)
                .arg(now.saturating_sub(limit.window))
                .arg(limit.max)
                .invoke(c)
        })?;
        Ok(if ok == 1 {
            Recorded::Yes
        } else {
            Recorded::of(limit.max, Some(oldest), limit, now)
        })
    }

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
        let key = self.key(
            client,
            &format!("jti:{}", hex::encode(sha2::Sha256::digest(jti))),
        );
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

    fn record(&self, t: &Issued, limit: IssueLimit) -> Result<Recorded, Error> {
        let issued = self.key(&t.client, "issued");
        let ticket = self.key(&t.client, &format!("ticket:{}", t.revocation_id));
        let (ok, oldest): (i64, u64) = self.with(|c| {
            captix_redis::redis::Script::new(RECORD)
                .key(&issued)
                .key(&ticket)
                .arg(t.issued)
                .arg(t.issued.saturating_sub(limit.window))
                .arg(limit.max)
                .arg(&t.revocation_id)
                .arg(t.expires.saturating_add(KEEP_AFTER_EXPIRY))
                .arg(limit.window.max(1))
                .arg(&t.client)
                .arg(&t.user)
                .arg(&t.scopes)
                .arg(&t.resource)
                .arg(t.expires)
                .invoke(c)
        })?;
        if ok == 1 {
            return Ok(Recorded::Yes);
        }
        Ok(Recorded::of(limit.max, Some(oldest), limit, t.issued))
    }

    fn issued(&self, client: &str, revocation_id: &str) -> Result<Option<Issued>, Error> {
        let key = self.key(client, &format!("ticket:{revocation_id}"));
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

    fn revoke(
        &self,
        client: &str,
        root: &str,
        id: &str,
        at: u64,
        max_under: u64,
        write: &mut dyn FnMut() -> Result<(), Error>,
    ) -> Result<Revoked, Error> {
        let ticket = self.key(client, &format!("ticket:{root}"));
        let set = self.key(client, &format!("revoked:{root}"));
        // Check, write, mark: two replicas revoking one id at once may both write it (the
        // servers' set absorbs a duplicate); a failed write marks nothing.
        let r: i64 = self.with(|c| {
            captix_redis::redis::Script::new(REVOKE_CHECK)
                .key(&ticket)
                .key(&set)
                .arg(id)
                .arg(root)
                .arg(max_under)
                .invoke(c)
        })?;
        match r {
            0 => {}
            1 => return Ok(Revoked::Already),
            2 => return Ok(Revoked::TooMany),
            _ => return Err(Error::Store(format!("no ticket {root} of client {client}"))),
        }
        write()?;
        self.with(|c| {
            captix_redis::redis::Script::new(REVOKE_MARK)
                .key(&ticket)
                .key(&set)
                .arg(id)
                .arg(root)
                .arg(at)
                .invoke::<i64>(c)
        })?;
        Ok(Revoked::New)
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
