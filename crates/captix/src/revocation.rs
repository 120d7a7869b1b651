//! Revocation sources (spec §4.8, §10.4): the trait, an in-memory set, and a file of ids
//! reloaded when it changes.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
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

    /// Adds ids to the set (one generation step for all of them).
    pub fn extend(&self, ids: impl IntoIterator<Item = Vec<u8>>) {
        self.ids
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(ids);
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
/// looked at no more often than the poll interval, so a revocation written to it is enforced
/// within that interval (docs §10.4). Appending is the normal change and costs a read of the
/// appended lines only; a file replaced, shortened or rewritten is read whole. A last line
/// without its newline is read once it is complete. An unreadable or invalid file keeps the
/// last good set and is reported by [`FileRevocations::reload`]; a file that disappears means
/// nothing is revoked only if it never existed.
#[derive(Debug)]
pub struct FileRevocations {
    path: PathBuf,
    set: MemoryRevocations,
    poll: Duration,
    /// When the file was last looked at (checks read it without waiting for a reload).
    checked: Mutex<Instant>,
    /// What was read of it; held by the one thread that reloads.
    read: Mutex<ReadSoFar>,
}

/// How much of the file the set holds.
#[derive(Debug, Default)]
struct ReadSoFar {
    /// Modification time and size when last read.
    stamp: Option<(SystemTime, u64)>,
    /// The file's identity (inode on Unix): another one is another file.
    identity: u64,
    /// Bytes read, up to and including the last complete line's newline.
    offset: u64,
    /// That last complete line, newline included: if the bytes before `offset` are no
    /// longer these, the file was rewritten and is read whole.
    last_line: Vec<u8>,
}

/// At most this many bytes of one line (an id is 128 hex digits).
const MAX_LINE: usize = 4096;

impl FileRevocations {
    /// Reads the file now; polls it at most once per `poll` afterwards (1 s is a good value).
    pub fn open(path: impl AsRef<Path>, poll: Duration) -> Result<Self, crate::Error> {
        let me = FileRevocations {
            path: path.as_ref().to_path_buf(),
            set: MemoryRevocations::new(),
            poll,
            checked: Mutex::new(Instant::now()),
            read: Mutex::new(ReadSoFar::default()),
        };
        me.reload()?;
        Ok(me)
    }

    /// Reads what changed in the file; returns whether the set changed.
    pub fn reload(&self) -> Result<bool, crate::Error> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        self.reload_locked(&mut read)
    }

    fn reload_locked(&self, read: &mut ReadSoFar) -> Result<bool, crate::Error> {
        let io = |e| crate::Error::Io {
            context: format!("could not read revocation file {}", self.path.display()),
            source: e,
        };
        *self.checked.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().map_err(io)?;
        let stamp = (meta.modified().map_err(io)?, meta.len());
        if read.stamp == Some(stamp) {
            return Ok(false);
        }
        let identity = file_identity(&meta);
        let appended = identity == read.identity
            && read.offset > 0
            && meta.len() >= read.offset
            && same_bytes_at(
                &mut file,
                read.offset - read.last_line.len() as u64,
                &read.last_line,
            )
            .map_err(io)?;
        let from = if appended { read.offset } else { 0 };
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        file.read_to_end(&mut bytes).map_err(io)?;
        // Only complete lines: a line being written is read when its newline is there.
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut ids = HashSet::new();
        let lines = bytes[..complete].split(|b| *b == b'\n');
        for (n, line) in lines.enumerate() {
            let text = std::str::from_utf8(line).unwrap_or("\u{fffd}").trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let id = if line.len() <= MAX_LINE {
                RevocationId::from_hex(text)
            } else {
                Err(crate::Error::InvalidRestriction("line too long".into()))
            }
            .map_err(|e| {
                crate::Error::InvalidRestriction(format!(
                    "{} {}: {e}",
                    self.path.display(),
                    if appended {
                        format!("line {} of those appended", n + 1)
                    } else {
                        format!("line {}", n + 1)
                    }
                ))
            })?;
            ids.insert(id.0);
        }
        let last_start = bytes[..complete.saturating_sub(1)]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        if complete > 0 {
            read.last_line = bytes[last_start..complete].to_vec();
        } else if !appended {
            read.last_line.clear();
        }
        read.offset = from + complete as u64;
        read.identity = identity;
        // A torn last line leaves the stamp unset, so the next look reads on from `offset`.
        read.stamp = (complete == bytes.len()).then_some(stamp);
        if appended {
            let changed = !ids.is_empty();
            if changed {
                self.set.extend(ids);
            }
            Ok(changed)
        } else {
            self.set.replace(ids);
            Ok(true)
        }
    }

    fn maybe_reload(&self) {
        let due = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            >= self.poll;
        if !due {
            return;
        }
        // One thread reads; the others go on with the set as it is.
        if let Ok(mut read) = self.read.try_lock() {
            // An unreadable file keeps the last good set; `reload` reports why.
            let _ = self.reload_locked(&mut read);
        }
    }
}

/// Appends ids to a revocation file (created if missing), all lines in one write, synced
/// before it returns: the writer of `captix revoke --file` and of the issuer. Readers
/// ([`FileRevocations`]) read appended lines only and never take half a line.
pub fn append_to_file(path: &Path, ids: &[RevocationId]) -> std::io::Result<()> {
    use std::io::Write as _;
    let lines: String = ids.iter().map(|id| format!("{}\n", id.to_hex())).collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(lines.as_bytes())?;
    f.sync_data()
}

/// Whether the file holds `expected` at `at`.
fn same_bytes_at(file: &mut std::fs::File, at: u64, expected: &[u8]) -> std::io::Result<bool> {
    let mut got = vec![0u8; expected.len()];
    file.seek(SeekFrom::Start(at))?;
    match file.read_exact(&mut got) {
        Ok(()) => Ok(got == expected),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn file_identity(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    meta.ino() ^ meta.dev().rotate_left(32)
}

#[cfg(not(unix))]
fn file_identity(_: &std::fs::Metadata) -> u64 {
    0
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

    #[test]
    fn appended_lines_are_read_alone_and_other_changes_read_the_whole_file() {
        let dir = std::env::temp_dir().join(format!("captix-rev-append-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("revoked.txt");
        let id = |b: u8| RevocationId(vec![b; 64]);
        let line = |b: u8| format!("{}\n", id(b).to_hex());
        let revoked = |f: &FileRevocations, b: u8| f.first_revoked(&[id(b)]).expect("ok").is_some();
        std::fs::write(&path, format!("# ids\n{}{}", line(1), line(2))).expect("write");
        let f = FileRevocations::open(&path, Duration::ZERO).expect("open");
        assert!(revoked(&f, 1) && revoked(&f, 2) && !revoked(&f, 3));
        let append = |text: &str| {
            use std::io::Write as _;
            let mut w = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open");
            w.write_all(text.as_bytes()).expect("append");
        };
        // An append: read from where the last read ended.
        append(&line(3));
        assert!(f.reload().expect("reload"));
        assert!(revoked(&f, 1) && revoked(&f, 3));
        let offset = f.read.lock().expect("lock").offset;
        assert_eq!(offset, std::fs::metadata(&path).expect("meta").len());
        // A line being written is not read (and is no error) until its newline comes.
        let four = line(4);
        append(&four[..50]);
        assert!(!f.reload().expect("half a line is no error"));
        assert!(!revoked(&f, 4));
        append(&four[50..]);
        assert!(f.reload().expect("now complete"));
        assert!(revoked(&f, 4));
        // An invalid appended line is reported; nothing of it applies, and fixing it works.
        append("zz\n");
        assert!(f.reload().is_err());
        assert!(revoked(&f, 4));
        // Rewritten (not appended): read whole, so a removed id is no longer revoked.
        std::fs::write(&path, format!("{}{}", line(2), line(5))).expect("rewrite");
        assert!(f.reload().expect("reload"));
        assert!(!revoked(&f, 1) && revoked(&f, 2) && !revoked(&f, 3) && revoked(&f, 5));
        // Replaced by another file (write and rename), longer than before: read whole too.
        let other = dir.join("revoked.new");
        std::fs::write(&other, format!("{}{}{}", line(6), line(7), line(8))).expect("new");
        std::fs::rename(&other, &path).expect("rename");
        assert!(f.reload().expect("reload"));
        assert!(!revoked(&f, 2) && revoked(&f, 6) && revoked(&f, 8));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
