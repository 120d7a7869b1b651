//! Revocation sources (spec §4.8, §10.4): the trait, an in-memory set, and a file of ids
//! reloaded when it changes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::error::Denial;
use crate::ticket::RevocationId;

/// Where revoked ids come from. Checked on every call, cached ticket or not.
pub trait RevocationSource: Send + Sync {
    /// A number that changes whenever the revoked set may have changed. A verifier re-checks a
    /// cached ticket's chain only when it differs from the one it saw last, so it must change
    /// on every revocation. A source that cannot tell returns a new number on every call.
    fn generation(&self) -> u64;

    /// The position of the first revoked id of the chain, or `None`. An unreachable source
    /// returns `store_unavailable`.
    fn first_revoked(&self, chain: &[RevocationId]) -> Result<Option<usize>, Denial>;
}

/// An in-memory set of revoked ids.
#[derive(Debug, Default)]
pub struct MemoryRevocations {
    ids: RwLock<HashSet<Vec<u8>>>,
    generation: AtomicU64,
}

impl MemoryRevocations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Revokes an id: every ticket containing that block is denied from now on.
    pub fn revoke(&self, id: &RevocationId) {
        self.ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.0.clone());
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Replaces the whole set.
    pub fn replace(&self, ids: HashSet<Vec<u8>>) {
        *self.ids.write().unwrap_or_else(|e| e.into_inner()) = ids;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Number of revoked ids.
    pub fn len(&self) -> usize {
        self.ids.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RevocationSource for MemoryRevocations {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn first_revoked(&self, chain: &[RevocationId]) -> Result<Option<usize>, Denial> {
        let ids = self.ids.read().unwrap_or_else(|e| e.into_inner());
        if ids.is_empty() {
            return Ok(None);
        }
        Ok(chain.iter().position(|id| ids.contains(&id.0)))
    }
}

/// Nothing is ever revoked.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRevocations;

impl RevocationSource for NoRevocations {
    fn generation(&self) -> u64 {
        0
    }
    fn first_revoked(&self, _: &[RevocationId]) -> Result<Option<usize>, Denial> {
        Ok(None)
    }
}

/// A text file of revoked ids, one hex id per line (`#` comments and blank lines ignored),
/// reloaded when its modification time or size changes. The file is looked at no more often
/// than the poll interval, so a revocation written to it is enforced within that interval
/// (docs §10.4). An unreadable or invalid file keeps the last good set and is reported by
/// [`FileRevocations::reload`]; a file that disappears means nothing is revoked only if it
/// never existed.
#[derive(Debug)]
pub struct FileRevocations {
    path: PathBuf,
    set: MemoryRevocations,
    poll: Duration,
    last: Mutex<(Instant, Option<(SystemTime, u64)>)>,
}

impl FileRevocations {
    /// Reads the file now; polls it at most once per `poll` afterwards (1 s is a good value).
    pub fn open(path: impl AsRef<Path>, poll: Duration) -> Result<Self, crate::Error> {
        let me = FileRevocations {
            path: path.as_ref().to_path_buf(),
            set: MemoryRevocations::new(),
            poll,
            last: Mutex::new((Instant::now(), None)),
        };
        me.reload()?;
        Ok(me)
    }

    /// Rereads the file if it changed; returns whether the set was replaced.
    pub fn reload(&self) -> Result<bool, crate::Error> {
        let io = |e| crate::Error::Io {
            context: format!("could not read revocation file {}", self.path.display()),
            source: e,
        };
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                last.0 = Instant::now();
                return Ok(false);
            }
            Err(e) => return Err(io(e)),
        };
        let stamp = (meta.modified().map_err(io)?, meta.len());
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            last.0 = Instant::now();
            if last.1 == Some(stamp) {
                return Ok(false);
            }
        }
        let text = std::fs::read_to_string(&self.path).map_err(io)?;
        let mut ids = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = RevocationId::from_hex(line).map_err(|e| {
                crate::Error::InvalidRestriction(format!(
                    "{} line {}: {e}",
                    self.path.display(),
                    n + 1
                ))
            })?;
            ids.insert(id.0);
        }
        self.set.replace(ids);
        self.last.lock().unwrap_or_else(|e| e.into_inner()).1 = Some(stamp);
        Ok(true)
    }

    fn maybe_reload(&self) {
        let due = {
            let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            last.0.elapsed() >= self.poll
        };
        if due {
            // An unreadable file keeps the last good set; `reload` reports why.
            let _ = self.reload();
        }
    }
}

impl RevocationSource for FileRevocations {
    fn generation(&self) -> u64 {
        self.maybe_reload();
        self.set.generation()
    }

    fn first_revoked(&self, chain: &[RevocationId]) -> Result<Option<usize>, Denial> {
        self.set.first_revoked(chain)
    }
}

impl<T: RevocationSource + ?Sized> RevocationSource for std::sync::Arc<T> {
    fn generation(&self) -> u64 {
        (**self).generation()
    }
    fn first_revoked(&self, chain: &[RevocationId]) -> Result<Option<usize>, Denial> {
        (**self).first_revoked(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_set_changes_generation() {
        let m = MemoryRevocations::new();
        let g = m.generation();
        let chain = [RevocationId(vec![1]), RevocationId(vec![2])];
        assert_eq!(m.first_revoked(&chain).expect("ok"), None);
        m.revoke(&RevocationId(vec![2]));
        assert_ne!(m.generation(), g);
        assert_eq!(m.first_revoked(&chain).expect("ok"), Some(1));
    }

    #[test]
    fn file_is_reloaded_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("captix-rev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("revoked.txt");
        let _ = std::fs::remove_file(&path);
        let f = FileRevocations::open(&path, Duration::ZERO).expect("missing file is empty");
        let chain = [RevocationId(vec![0xab])];
        assert_eq!(f.first_revoked(&chain).expect("ok"), None);
        std::fs::write(&path, "# revoked\nab\n").expect("write");
        let g = f.generation();
        assert_eq!(f.first_revoked(&chain).expect("ok"), Some(0));
        std::fs::write(&path, "zz\n").expect("write");
        assert!(f.reload().is_err(), "invalid line reported");
        assert_eq!(f.generation(), g, "the last good set is kept");
        assert_eq!(f.first_revoked(&chain).expect("ok"), Some(0));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
