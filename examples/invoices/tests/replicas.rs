//! The `captix-invoices` binary run twice with `--redis`: both replicas spend from one budget
//! and honour one revocation list. (The flag was once parsed and ignored; this runs the real
//! binary so that cannot come back.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use captix::{SigningKey, Ticket};
use captix_redis::{Options, RedisRevocations};

#[path = "../../../crates/redis/tests/support/server.rs"]
mod server;

struct Replica {
    child: Child,
    addr: SocketAddr,
}

/// The one public resource both replicas serve (behind a load balancer, say).
const RESOURCE: &str = "https://invoices.example/mcp";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Replica {
    fn start(pubkey: &Path, redis: &str) -> Self {
        Self::start_with(pubkey, redis, &[], &[])
    }

    /// With more arguments and environment (e.g. `TOKIO_WORKER_THREADS`).
    fn start_with(pubkey: &Path, redis: &str, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_captix-invoices"))
            .args(extra)
            .envs(env.iter().copied())
            .args([
                "--port",
                "0",
                "--resource",
                RESOURCE,
                "--redis",
                redis,
                "--authorization-server",
                "https://auth.example",
                "--pubkey",
            ])
            .arg(pubkey)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start captix-invoices");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        // "invoices MCP server on http://127.0.0.1:PORT/mcp (resource ...)"
        let addr = line
            .trim()
            .split_once("http://")
            .and_then(|(_, rest)| rest.split_once("/mcp").map(|(a, _)| a))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        Replica { child, addr }
    }

    /// One tools/call; returns the HTTP status.
    fn call(&self, ticket: &str) -> u16 {
        Self::call_at(self.addr, ticket)
    }

    fn call_at(addr: SocketAddr, ticket: &str) -> u16 {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"acme"}}}"#;
        let mut s = TcpStream::connect(addr).expect("connect");
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
             content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
             authorization: Bearer {ticket}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_replicas_of_the_binary_share_budgets_and_revocations_through_redis() {
    let redis = server::Redis::start();
    let dir = std::env::temp_dir().join(format!("captix-replicas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pubkey = dir.join("root.pub");
    let _ = std::fs::remove_file(&pubkey);
    let key = SigningKey::from_seed(&[31u8; 32]);
    key.public().save(&pubkey).expect("save public key");
    // Audience-bound (both replicas are one public resource) and expiring, as every server
    // requires by default.
    let ticket = Ticket::mint(&key, "billing-agent", "alice")
        .tool("list_invoices")
        .row("*:org=acme".parse().expect("row"))
        .budget("3".parse().expect("budget"))
        .resource(RESOURCE)
        .expires_at(now() + 600)
        .sign()
        .expect("mint");

    let a = Replica::start(&pubkey, &redis.url());
    let b = Replica::start(&pubkey, &redis.url());
    // Three calls in all, whichever replica takes them; in-memory budgets would allow six.
    // (An allowed call reaches rmcp, which answers 400 without an MCP session: the guard
    // has spent the budget by then.)
    let statuses: Vec<u16> = [&a, &b, &a, &b, &a, &b]
        .iter()
        .map(|r| r.call(ticket.as_str()))
        .collect();
    assert!(
        statuses[..3]
            .iter()
            .all(|s| *s != 429 && *s != 401 && *s != 403),
        "{statuses:?}"
    );
    // A lifetime budget never refills: 403, not 429 (docs §14.1).
    assert_eq!(&statuses[3..], &[403, 403, 403], "{statuses:?}");

    // Revoked through Redis by someone else: both replicas refuse it within their refresh.
    let other = key_ticket(&key);
    assert_ne!(a.call(other.as_str()), 401);
    let revocations =
        RedisRevocations::new(&redis.url(), Options::default(), Duration::from_secs(1))
            .expect("connect");
    let root_block = other.revocation_ids().next().expect("authority id").clone();
    revocations.revoke(&root_block).expect("revoke");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (sa, sb) = (a.call(other.as_str()), b.call(other.as_str()));
        if sa == 401 && sb == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "still {sa} {sb} after 10 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Docs §14.1: a check that waits on Redis runs off the runtime's workers. The server runs on
/// one worker; Redis is stopped (SIGSTOP) while three calls that must spend in Redis are in
/// flight; a call whose ticket has no budget, sent after them, is answered while they still
/// wait, and they are answered once Redis resumes. With the checks on the worker, the first
/// stalled call would hold it and the last call would wait behind it.
#[test]
fn a_stalled_redis_holds_only_the_calls_that_need_it() {
    let redis = server::Redis::start();
    let dir = std::env::temp_dir().join(format!("captix-stall-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pubkey = dir.join("root.pub");
    let key = SigningKey::from_seed(&[32u8; 32]);
    key.public().save(&pubkey).expect("save public key");
    let budgeted = Ticket::mint(&key, "billing-agent", "alice")
        .tool("list_invoices")
        .budget("1000/min".parse().expect("budget"))
        .resource(RESOURCE)
        .expires_at(now() + 600)
        .sign()
        .expect("mint");
    let free = key_ticket(&key);
    let replica = Replica::start_with(
        &pubkey,
        &redis.url(),
        &["--redis-timeout-ms", "20000"],
        &[("TOKIO_WORKER_THREADS", "1")],
    );
    // Both tickets verified and cached, Redis connected.
    assert_ne!(replica.call(budgeted.as_str()), 401);
    assert_ne!(replica.call(free.as_str()), 401);

    redis.pause();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stalled: Vec<_> = (0..3)
        .map(|i| {
            let (order, addr, ticket) = (order.clone(), replica.addr, budgeted.to_string());
            std::thread::spawn(move || {
                let r = Replica::call_at(addr, &ticket);
                order
                    .lock()
                    .expect("lock")
                    .push(format!("budgeted {i}: {r}"));
            })
        })
        .collect();
    // Sequencing only (no time is asserted): let the three reach the server first.
    std::thread::sleep(Duration::from_millis(500));
    let r = replica.call(free.as_str());
    order.lock().expect("lock").push(format!("free: {r}"));
    redis.resume();
    for t in stalled {
        t.join().expect("thread");
    }
    let order = order.lock().expect("lock").clone();
    assert!(order[0].starts_with("free"), "{order:?}");
    assert!(
        order[1..].iter().all(|o| !o.ends_with(": 503")),
        "the stalled calls were answered once Redis resumed: {order:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn key_ticket(key: &SigningKey) -> Ticket {
    Ticket::mint(key, "billing-agent", "bob")
        .tool("list_invoices")
        .resource(RESOURCE)
        .expires_at(now() + 600)
        .sign()
        .expect("mint")
}
