//! The load test of `scripts/load` (not a unit test): four replicas of `captix-invoices` on
//! loopback sharing one Redis (budgets from leases, revocation), a server policy with
//! per-user limits, and 1,000 agents each with its own ticket and budget, called at a fixed
//! rate for a fixed time. Reports throughput and latency, then replays every call the replicas
//! admitted (from their audit logs, at the second each was decided) into one in-memory GCRA
//! per budget and per limit: a call that one store would have refused is an overspend, and
//! the run fails.
//!
//!     load --server PATH [--seconds 10] [--rate 3000] [--agents 1000] [--threads 32]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use captix::budget::{gcra, State};
use captix::{SigningKey, Ticket};

#[path = "../../../crates/redis/tests/support/server.rs"]
mod server;

const RESOURCE: &str = "https://invoices.example/mcp";
const REPLICAS: usize = 4;
/// Each agent's budget (its ticket's), and the policy's limit per user.
const AGENT_BUDGET: (u64, u64) = (120, 60);
const USER_LIMIT: (u64, u64) = (400, 10);
const USERS: usize = 50;

struct Opts {
    server: PathBuf,
    seconds: u64,
    rate: u64,
    agents: usize,
    threads: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        server: PathBuf::new(),
        seconds: 10,
        rate: 3000,
        agents: 1000,
        threads: 32,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        let n = || {
            v.parse::<u64>()
                .unwrap_or_else(|_| die(&format!("{}: not a number", args[i])))
        };
        match args[i].as_str() {
            "--server" => o.server = PathBuf::from(&v),
            "--seconds" => o.seconds = n(),
            "--rate" => o.rate = n(),
            "--agents" => o.agents = n() as usize,
            "--threads" => o.threads = n() as usize,
            other => die(&format!("unknown argument {other}")),
        }
        i += 2;
    }
    if !o.server.is_file() {
        die("--server PATH: the captix-invoices binary");
    }
    o
}

fn die(msg: &str) -> ! {
    eprintln!("load: {msg}");
    std::process::exit(2);
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_replica(o: &Opts, dir: &Path, redis: &str, n: usize) -> (Proc, SocketAddr, PathBuf) {
    let audit = dir.join(format!("audit-{n}.jsonl"));
    let mut child = Command::new(&o.server)
        .args([
            "--port",
            "0",
            "--resource",
            RESOURCE,
            "--redis",
            redis,
            "--lease",
        ])
        .args(["--authorization-server", "https://auth.example"])
        .arg("--pubkey")
        .arg(dir.join("root.pub"))
        .arg("--policy")
        .arg(dir.join("policy.toml"))
        .arg("--audit")
        .arg(&audit)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| die(&format!("{}: {e}", o.server.display())));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .unwrap_or_else(|e| die(&format!("replica {n}: {e}")));
    let addr = line
        .split_once("http://")
        .and_then(|(_, r)| r.split_once("/mcp"))
        .and_then(|(a, _)| a.parse().ok())
        .unwrap_or_else(|| die(&format!("replica {n}: unexpected first line {line:?}")));
    (Proc(child), addr, audit)
}

const BODY: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"acme"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"load","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;

/// One `tools/call` on a new connection; the HTTP status.
fn call(addr: SocketAddr, ticket: &str) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let req = format!(
        "POST /mcp HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\n\
         mcp-method: tools/call\r\nmcp-name: list_invoices\r\nauthorization: Bearer {ticket}\r\n\
         content-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut out = Vec::new();
    if s.write_all(req.as_bytes()).is_err() || s.read_to_end(&mut out).is_err() {
        return 0;
    }
    std::str::from_utf8(&out[..out.len().min(16)])
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let o = opts();
    let dir = std::env::temp_dir().join(format!("captix-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| die(&format!("{}: {e}", dir.display())));
    let key = SigningKey::from_seed(&[77u8; 32]);
    key.public()
        .save(&dir.join("root.pub"))
        .unwrap_or_else(|e| die(&format!("public key: {e}")));
    std::fs::write(
        dir.join("policy.toml"),
        format!(
            "[tool.list_invoices]\nlimits = [\"{}/{}s per user\"]\n",
            USER_LIMIT.0, USER_LIMIT.1
        ),
    )
    .unwrap_or_else(|e| die(&format!("policy: {e}")));
    let expires = captix::time::now() + 3600;
    let tickets: Vec<String> = (0..o.agents)
        .map(|i| {
            Ticket::mint(&key, format!("agent-{i}"), format!("user-{}", i % USERS))
                .tool("list_invoices")
                .row("*:org=acme".parse().expect("row"))
                .budget(
                    format!("{}/{}s", AGENT_BUDGET.0, AGENT_BUDGET.1)
                        .parse()
                        .expect("budget"),
                )
                .resource(RESOURCE)
                .expires_at(expires)
                .sign()
                .expect("mint")
                .to_string()
        })
        .collect();
    let redis = server::Redis::start();
    let url = redis.url();
    let replicas: Vec<(Proc, SocketAddr, PathBuf)> = (0..REPLICAS)
        .map(|n| start_replica(&o, &dir, &url, n))
        .collect();
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.1).collect();
    println!(
        "load: {} replicas, {} agents ({} users), {} calls/s for {} s, {} client threads",
        REPLICAS, o.agents, USERS, o.rate, o.seconds, o.threads
    );

    let tickets = Arc::new(tickets);
    let results = Arc::new(Mutex::new((Vec::<u64>::new(), HashMap::<u16, u64>::new())));
    let start = Instant::now();
    let end = start + Duration::from_secs(o.seconds);
    let threads = o.threads;
    let per_thread = Duration::from_secs_f64(threads as f64 / o.rate as f64);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (tickets, results, addrs) = (tickets.clone(), results.clone(), addrs.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut codes: HashMap<u16, u64> = HashMap::new();
                let mut next = start + per_thread.mul_f64(t as f64 / threads as f64);
                let mut k = 0usize;
                while next < end {
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let began = Instant::now();
                    // Every agent's calls spread over every replica.
                    let agent = (t * 7919 + k * threads) % tickets.len();
                    let code = call(addrs[(t + k) % addrs.len()], &tickets[agent]);
                    lat.push(began.elapsed().as_micros() as u64);
                    *codes.entry(code).or_default() += 1;
                    k += 1;
                    next += per_thread;
                }
                let mut r = results.lock().expect("lock");
                r.0.extend(lat);
                for (c, n) in codes {
                    *r.1.entry(c).or_default() += n;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (mut lat, codes) = results.lock().expect("lock").clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let mut codes: Vec<(u16, u64)> = codes.into_iter().collect();
    codes.sort_unstable();
    println!(
        "calls: {} in {:.1} s ({:.0}/s); latency p50 {} µs, p99 {} µs, max {} µs",
        lat.len(),
        elapsed,
        lat.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or(0)
    );
    println!("statuses: {codes:?} (200 ran, 429 budget or limit, 0 no answer)");
    drop(replicas); // flushes nothing more: the audit logs are complete per decision

    // Replay every admitted call, at the second it was decided, into one GCRA per budget.
    let mut admitted: Vec<(u64, String, String)> = Vec::new();
    for n in 0..REPLICAS {
        let text = std::fs::read_to_string(dir.join(format!("audit-{n}.jsonl")))
            .unwrap_or_else(|e| die(&format!("audit log {n}: {e}")));
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if v["kind"] == "decision" && v["decision"] == "allow" && v["tool"] == "list_invoices" {
                admitted.push((
                    v["time"].as_u64().unwrap_or(0),
                    v["agent"].as_str().unwrap_or("").to_string(),
                    v["user"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
    }
    admitted.sort();
    let allowed_200 = codes.iter().find(|(c, _)| *c == 200).map_or(0, |(_, n)| *n);
    let mut agents: HashMap<&str, State> = HashMap::new();
    let mut users: HashMap<&str, State> = HashMap::new();
    let mut over = 0;
    for (t, agent, user) in &admitted {
        let a = agents.entry(agent).or_default();
        match gcra(*a, *t, AGENT_BUDGET.0, AGENT_BUDGET.1) {
            Ok(s) => *a = s,
            Err(_) => over += 1,
        }
        let u = users.entry(user).or_default();
        match gcra(*u, *t, USER_LIMIT.0, USER_LIMIT.1) {
            Ok(s) => *u = s,
            Err(_) => over += 1,
        }
    }
    println!(
        "admitted (audit logs): {}; answered 200: {allowed_200}; overspent: {over}",
        admitted.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    if over > 0 {
        die(&format!("{over} admitted calls exceed a budget or limit"));
    }
    if admitted.is_empty() {
        die("no call was admitted");
    }
}
