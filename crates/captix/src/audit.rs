//! The audit log (docs §11): one JSON line per decision and per outcome, each carrying the
//! SHA-256 of the previous line so that an edited or deleted line is detected.

use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::args::Scalar;
use crate::call::{Call, Target};
use crate::error::{Code, Denial};

/// The `prev` of the first line of a log.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Which argument values an audit record keeps (docs §11.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Redaction {
    /// Every argument value.
    #[default]
    Keep,
    /// Argument pointers only; every value replaced by `"[redacted]"`.
    Values,
    /// Only the values at these pointers; the others replaced by `"[redacted]"`.
    Except(Vec<String>),
    /// No arguments at all.
    Omit,
}

/// One line of the audit log (docs §11.1).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Record format version: 1.
    pub v: u32,
    /// Position in the log, from 1.
    pub seq: u64,
    /// Time of the event, Unix seconds.
    pub time: u64,
    /// `decision` or `outcome`.
    pub kind: String,
    /// The agent, when the ticket could be read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent: Option<String>,
    /// The user, when the ticket could be read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<String>,
    /// Revocation ids of the ticket's chain (hex), authority first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub chain: Vec<String>,
    /// The request's method, for requests other than a tool call (`resources/read`,
    /// `initialize`, ...); absent for `tools/call`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub method: Option<String>,
    /// What a request other than a tool call names (a resource URI, a prompt name), if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
    /// The tool called.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tool: Option<String>,
    /// The arguments as `{pointer: value}`, after redaction.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub args: Option<serde_json::Map<String, serde_json::Value>>,
    /// `allow` or `deny` (decision records).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decision: Option<String>,
    /// The denial code.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<String>,
    /// The block that denied.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub block: Option<usize>,
    /// The denial reason.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// For outcome records: the `seq` of the decision.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decision_seq: Option<u64>,
    /// For outcome records: `success`, `tool_error` or `error`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outcome: Option<String>,
    /// For outcome records: how long the call took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration_ms: Option<u64>,
    /// For issuer records: the audience asked for or granted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource: Option<String>,
    /// For issuer records: the scopes the client asked for (space-separated, bounded).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope_requested: Option<String>,
    /// For `grant` records: the scopes granted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope_granted: Option<String>,
    /// For `refusal` records: the client id a request claimed without authenticating
    /// (request data, not an identity; `agent` is only ever an authenticated client).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub claimed: Option<String>,
    /// SHA-256 (hex) of the previous line's bytes, or [`GENESIS`].
    pub prev: String,
}

impl Record {
    fn empty(kind: &str, time: u64) -> Self {
        Record {
            v: 1,
            seq: 0,
            time,
            kind: kind.to_string(),
            agent: None,
            user: None,
            chain: vec![],
            method: None,
            target: None,
            tool: None,
            args: None,
            decision: None,
            code: None,
            block: None,
            reason: None,
            decision_seq: None,
            outcome: None,
            duration_ms: None,
            resource: None,
            scope_requested: None,
            scope_granted: None,
            claimed: None,
            prev: String::new(),
        }
    }

    /// An issuer record (docs §17.7): `kind` is `grant`, `refusal` or `revocation`; `agent`
    /// is the client, `user` the subject, `chain` the ticket's revocation id, `code` and
    /// `reason` the OAuth error of a refusal. Request data is bounded here.
    pub fn issuer(
        kind: &str,
        time: u64,
        client: Option<&str>,
        user: Option<&str>,
        scope_requested: Option<&str>,
        refusal: Option<(&str, &str)>,
    ) -> Self {
        let mut r = Record::empty(kind, time);
        r.agent = client.map(|c| bounded(c, 256));
        r.user = user.map(|u| bounded(u, 256));
        r.scope_requested = scope_requested.map(|s| bounded(s, 1024));
        if let Some((code, reason)) = refusal {
            r.code = Some(bounded(code, 64));
            r.reason = Some(bounded(reason, 1024));
        }
        r
    }

    /// A decision record (seq and prev are set by the sink).
    pub fn decision(
        call: &Call,
        identity: Option<(&str, &str)>,
        chain: &[crate::RevocationId],
        denial: Option<&Denial>,
        redaction: &Redaction,
    ) -> Self {
        let mut r = Record::empty("decision", call.time);
        if let Some((agent, user)) = identity {
            r.agent = Some(agent.to_string());
            r.user = Some(user.to_string());
        }
        r.chain = chain.iter().map(|c| c.to_hex()).collect();
        match &call.target {
            Target::Tool(t) => {
                r.tool = Some(t.clone());
                r.args = redact(call, redaction);
            }
            // Spec §11.1: a resource read or prompt request names its method and target.
            Target::Uri(_) | Target::Prompt(_) => {
                r.method = Some(call.target.method().to_string());
                r.target = Some(call.target.name().to_string());
            }
        }
        r.set_verdict(denial);
        r
    }

    /// A decision record for a request other than a tool call (an MCP method the server
    /// governs by its own configuration): who, which method and target, allow or deny.
    pub fn request(
        time: u64,
        method: &str,
        target: Option<&str>,
        identity: Option<(&str, &str)>,
        chain: &[String],
        denial: Option<&Denial>,
    ) -> Self {
        let mut r = Record::empty("decision", time);
        if let Some((agent, user)) = identity {
            r.agent = Some(agent.to_string());
            r.user = Some(user.to_string());
        }
        r.chain = chain.to_vec();
        // Bounded: a target is request data of any length.
        r.method = Some(bounded(method, 256));
        r.target = target.map(|t| bounded(t, 1024));
        r.set_verdict(denial);
        r
    }

    fn set_verdict(&mut self, denial: Option<&Denial>) {
        match denial {
            None => self.decision = Some("allow".into()),
            Some(d) => {
                self.decision = Some("deny".into());
                self.code = Some(d.code.as_str().to_string());
                self.block = d.block;
                // Bounded: a reason may quote request data.
                self.reason = Some(bounded(&d.reason, 1024));
            }
        }
    }

    /// An outcome record for the decision with this `seq`.
    pub fn outcome(time: u64, decision_seq: u64, outcome: &str, duration_ms: u64) -> Self {
        let mut r = Record::empty("outcome", time);
        r.decision_seq = Some(decision_seq);
        r.outcome = Some(outcome.to_string());
        r.duration_ms = Some(duration_ms);
        r
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn bounded(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn redact(call: &Call, how: &Redaction) -> Option<serde_json::Map<String, serde_json::Value>> {
    let value = |v: &Scalar| match v {
        Scalar::Bool(b) => serde_json::Value::Bool(*b),
        Scalar::Int(i) => serde_json::Value::from(*i),
        Scalar::Str(s) => serde_json::Value::String(s.clone()),
        Scalar::Null => serde_json::Value::Null,
    };
    let hidden = || serde_json::Value::String("[redacted]".into());
    if *how == Redaction::Omit {
        return None;
    }
    Some(
        call.args
            .leaves()
            .iter()
            .map(|(p, v)| {
                let keep = match how {
                    Redaction::Keep => true,
                    Redaction::Except(keep) => keep.iter().any(|k| k == p),
                    _ => false,
                };
                (p.clone(), if keep { value(v) } else { hidden() })
            })
            .collect(),
    )
}

/// Where audit records go. Implementations assign `seq` and `prev`.
pub trait AuditSink: Send + Sync {
    /// Appends a record; returns its `seq`. A sink that cannot write fails the call
    /// (`store_unavailable`): an unaudited call is not allowed.
    fn append(&self, record: Record) -> Result<u64, Denial>;
}

/// How hard the file sink tries to keep a line (docs §11.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// One `write` per line, no buffering in the process: a line survives a crash of the
    /// process once `append` returns, not a crash of the machine.
    #[default]
    Flush,
    /// Also `fsync` after every line: survives a machine crash; slower.
    Sync,
}

struct Tail {
    file: std::fs::File,
    seq: u64,
    prev: String,
    /// The file's length after this sink's last write: another length means another process
    /// appended since (docs §11.3).
    end: u64,
}

/// An append-only JSON-lines file sink with a hash chain.
pub struct FileAudit {
    path: PathBuf,
    durability: Durability,
    tail: Mutex<Tail>,
}

impl FileAudit {
    /// Opens (or creates, mode 0600) a log, continuing the chain of its last complete line.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, crate::Error> {
        let path = path.as_ref().to_path_buf();
        let io = |e| crate::Error::Io {
            context: format!("could not open audit log {}", path.display()),
            source: e,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(&path).map_err(io)?;
        let mut tail = Tail {
            file,
            seq: 0,
            prev: GENESIS.to_string(),
            end: u64::MAX,
        };
        tail.file.lock().map_err(io)?;
        let caught_up = catch_up(&mut tail);
        let _ = tail.file.unlock();
        caught_up.map_err(io)?;
        Ok(FileAudit {
            path,
            durability,
            tail: Mutex::new(tail),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Continues the chain from the file's last complete line if the file is not as this sink
/// left it (first open, or another process appended). Call with the file locked.
fn catch_up(tail: &mut Tail) -> std::io::Result<()> {
    let len = tail.file.metadata()?.len();
    if len == tail.end {
        return Ok(());
    }
    let (seq, prev, torn) = last_line(&mut tail.file)?;
    let mut end = len;
    if torn {
        // A line cut short (machine crash mid-write): end it so the next line starts clean;
        // `captix audit verify` reports the cut line.
        tail.file.write_all(b"\n")?;
        end += 1;
    }
    (tail.seq, tail.prev, tail.end) = (seq, prev, end);
    Ok(())
}

/// Finds the seq and hash of the last complete line, and whether the file ends mid-line.
fn last_line(file: &mut std::fs::File) -> std::io::Result<(u64, String, bool)> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok((0, GENESIS.to_string(), false));
    }
    let start = len.saturating_sub(1 << 20);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let torn = buf.last() != Some(&b'\n');
    let lines: Vec<&[u8]> = buf
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let complete = if torn {
        &lines[..lines.len().saturating_sub(1)]
    } else {
        &lines[..]
    };
    for line in complete.iter().rev() {
        if let Ok(r) = serde_json::from_slice::<Record>(line) {
            return Ok((r.seq, hex::encode(Sha256::digest(line)), torn));
        }
    }
    Ok((0, GENESIS.to_string(), torn))
}

impl AuditSink for FileAudit {
    /// Appends under an exclusive lock of the file (advisory, `flock`): several processes
    /// may write one log (a server and `captix issuer client-secret`, say), each continuing
    /// the chain from the last line whoever wrote it.
    fn append(&self, record: Record) -> Result<u64, Denial> {
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let fail = |e: std::io::Error| {
            Denial::new(
                Code::StoreUnavailable,
                format!("could not write the audit log {}: {e}", self.path.display()),
            )
        };
        tail.file.lock().map_err(fail)?;
        let written = catch_up(&mut tail)
            .map_err(fail)
            .and_then(|()| self.write_locked(&mut tail, record));
        let _ = tail.file.unlock();
        written
    }
}

impl FileAudit {
    fn write_locked(&self, tail: &mut Tail, mut record: Record) -> Result<u64, Denial> {
        record.seq = tail.seq + 1;
        record.prev = tail.prev.clone();
        let mut line = serde_json::to_vec(&record)
            .map_err(|e| crate::budget::store_unavailable(&format!("audit record: {e}")))?;
        let hash = hex::encode(Sha256::digest(&line));
        line.push(b'\n');
        let fail = |e: std::io::Error| {
            Denial::new(
                Code::StoreUnavailable,
                format!("could not write the audit log {}: {e}", self.path.display()),
            )
        };
        tail.file.write_all(&line).map_err(fail)?;
        if self.durability == Durability::Sync {
            tail.file.sync_data().map_err(fail)?;
        }
        tail.seq = record.seq;
        tail.prev = hash;
        tail.end = tail.end.saturating_add(line.len() as u64);
        Ok(record.seq)
    }
}

/// An in-memory sink: keeps the lines until drained (tests, demos, and the WASM binding, which
/// hands them to a JavaScript callback). The chain continues across drains.
#[derive(Default)]
pub struct MemoryAudit {
    state: Mutex<MemoryLog>,
}

#[derive(Default)]
struct MemoryLog {
    lines: Vec<String>,
    seq: u64,
    prev: Option<String>,
}

impl MemoryAudit {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lines not yet drained.
    pub fn lines(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines
            .clone()
    }

    /// Takes the lines written since the last drain.
    pub fn drain(&self) -> Vec<String> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).lines)
    }
}

impl AuditSink for MemoryAudit {
    fn append(&self, mut record: Record) -> Result<u64, Denial> {
        let mut log = self.state.lock().unwrap_or_else(|e| e.into_inner());
        record.seq = log.seq + 1;
        record.prev = log.prev.clone().unwrap_or_else(|| GENESIS.to_string());
        let line = serde_json::to_string(&record)
            .map_err(|e| crate::budget::store_unavailable(&format!("audit record: {e}")))?;
        log.prev = Some(hex::encode(Sha256::digest(line.as_bytes())));
        log.seq = record.seq;
        log.lines.push(line);
        Ok(record.seq)
    }
}

/// Where a log's chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The 1-based line number of the first line that does not fit the chain.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// Checks a whole log: every line parses, `seq` counts up from 1 by one, and each `prev` is the
/// SHA-256 of the previous line. Returns the records, or the first broken line. A log cut
/// after its last line cannot be told from a shorter log: anchor the last hash elsewhere
/// (docs §11.4).
pub fn verify_log(reader: impl BufRead) -> Result<Vec<Record>, Broken> {
    let mut prev = GENESIS.to_string();
    let mut out = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| Broken {
            line: n,
            reason: format!("unreadable: {e}"),
        })?;
        let r: Record = serde_json::from_slice(&line).map_err(|e| Broken {
            line: n,
            reason: format!("not an audit record: {e}"),
        })?;
        if r.prev != prev {
            return Err(Broken {
                line: n,
                reason: "its prev hash does not match the line before: a line was edited, \
                         inserted or deleted"
                    .into(),
            });
        }
        let want = out.len() as u64 + 1;
        if r.seq != want {
            return Err(Broken {
                line: n,
                reason: format!("seq is {}, expected {want}", r.seq),
            });
        }
        prev = hex::encode(Sha256::digest(&line));
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(org: &str) -> Call {
        Call::new("list_invoices", &format!(r#"{{"org":"{org}","n":1}}"#))
            .expect("call")
            .at(5)
    }

    fn log(n: usize) -> String {
        let m = MemoryAudit::new();
        for i in 0..n {
            let d = Denial::new(Code::ArgDenied, "no");
            m.append(Record::decision(
                &call(&format!("o{i}")),
                Some(("a", "u")),
                &[],
                (i % 2 == 1).then_some(&d),
                &Redaction::Keep,
            ))
            .expect("append");
        }
        m.lines().join("\n") + "\n"
    }

    #[test]
    fn an_intact_log_verifies() {
        let records = verify_log(log(5).as_bytes()).expect("intact");
        assert_eq!(records.len(), 5);
        assert_eq!(records[1].code.as_deref(), Some("arg_denied"));
        assert_eq!(records[0].args.as_ref().expect("args")["/org"], "o0");
    }

    #[test]
    fn edits_and_deletions_are_found_at_the_right_line() {
        let text = log(5);
        let lines: Vec<&str> = text.lines().collect();
        let deleted = [&lines[..2], &lines[3..]].concat().join("\n");
        assert_eq!(verify_log(deleted.as_bytes()).expect_err("deleted").line, 3);
        let edited = text.replacen("\"o1\"", "\"o9\"", 1);
        assert_eq!(verify_log(edited.as_bytes()).expect_err("edited").line, 3);
        let garbage = text.replacen("{\"v\"", "{\"w\"", 1);
        assert_eq!(verify_log(garbage.as_bytes()).expect_err("garbage").line, 1);
        let swapped = [lines[1], lines[0], lines[2]].join("\n");
        assert_eq!(verify_log(swapped.as_bytes()).expect_err("swapped").line, 1);
    }

    #[test]
    fn redaction() {
        let c = call("acme");
        let keep_org =
            Record::decision(&c, None, &[], None, &Redaction::Except(vec!["/org".into()]));
        let args = keep_org.args.expect("args");
        assert_eq!(args["/org"], "acme");
        assert_eq!(args["/n"], "[redacted]");
        assert!(Record::decision(&c, None, &[], None, &Redaction::Omit)
            .args
            .is_none());
        let values = Record::decision(&c, None, &[], None, &Redaction::Values)
            .args
            .expect("args");
        assert_eq!(values["/org"], "[redacted]");
    }

    #[test]
    fn file_sink_continues_the_chain_across_reopen_and_torn_lines() {
        let dir = std::env::temp_dir().join(format!("captix-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        {
            let f = FileAudit::open(&path, Durability::Flush).expect("open");
            for _ in 0..3 {
                f.append(Record::decision(
                    &call("acme"),
                    None,
                    &[],
                    None,
                    &Redaction::Keep,
                ))
                .expect("append");
            }
        }
        {
            let f = FileAudit::open(&path, Durability::Sync).expect("reopen");
            assert_eq!(
                f.append(Record::outcome(6, 3, "success", 12))
                    .expect("append"),
                4
            );
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(verify_log(text.as_bytes()).expect("intact").len(), 4);
        // A torn last line (machine crash mid-write) is reported, and writing goes on.
        std::fs::write(&path, format!("{text}{{\"v\":1,\"se")).expect("tear");
        let f = FileAudit::open(&path, Durability::Flush).expect("reopen torn");
        f.append(Record::outcome(7, 3, "success", 1))
            .expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(verify_log(text.as_bytes()).expect_err("torn").line, 5);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn two_writers_of_one_log_keep_one_chain() {
        // A server and `captix issuer client-secret` append to the same file: each continues
        // from the last line, whoever wrote it.
        let dir = std::env::temp_dir().join(format!("captix-audit-two-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        let a = std::sync::Arc::new(FileAudit::open(&path, Durability::Flush).expect("a"));
        let b = std::sync::Arc::new(FileAudit::open(&path, Durability::Flush).expect("b"));
        let mut seqs = vec![];
        for i in 0..6 {
            let sink = if i % 3 == 0 { &b } else { &a };
            seqs.push(
                sink.append(Record::outcome(i, 1, "success", 1))
                    .expect("append"),
            );
        }
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        // Concurrently too.
        let threads: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .map(|sink| {
                std::thread::spawn(move || {
                    for i in 0..50 {
                        sink.append(Record::outcome(i, 1, "success", 1))
                            .expect("append");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            verify_log(text.as_bytes()).expect("one intact chain").len(),
            106
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
