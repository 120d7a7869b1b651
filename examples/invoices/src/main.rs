//! `captix-invoices`: the example MCP server on loopback.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use captix::audit::{Durability, FileAudit, Redaction};
use captix::budget::MemoryBudgets;
use captix::revocation::FileRevocations;
use clap::Parser;

/// An MCP server over SQLite invoices, guarded by captix tickets.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The issuer's public key file (repeat for several)
    #[arg(long, required = true)]
    pubkey: Vec<PathBuf>,
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 8788)]
    port: u16,
    /// This server's canonical resource URI (RFC 8707), which tickets must name; replicas
    /// behind one public URL share it (default: http://127.0.0.1:PORT/mcp)
    #[arg(long)]
    resource: Option<String>,
    /// The authorization server that mints tickets for this resource, advertised in the RFC
    /// 9728 metadata (repeatable; at least one)
    #[arg(long = "authorization-server", value_name = "URL", required = true)]
    authorization_servers: Vec<String>,
    /// Require a scope for calls of a tool, as TOOL=SCOPE (`*` for every tool; repeatable)
    #[arg(long = "tool-scope", value_name = "TOOL=SCOPE")]
    tool_scopes: Vec<String>,
    /// Admit an MCP method beyond the lifecycle and tools, optionally needing a scope, as
    /// METHOD or METHOD=SCOPE (e.g. resources/list; repeatable). Others are refused, 403
    #[arg(long = "allow-method", value_name = "METHOD[=SCOPE]")]
    allow_methods: Vec<String>,
    /// The server's own policy (TOML: scopes and rate limits per tool, per agent, per user;
    /// docs §16), shared with every replica that reads the same file
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Append the audit log to this file
    #[arg(long)]
    audit: Option<PathBuf>,
    /// Revoked ids, one hex id per line, re-read within a second of a change
    #[arg(long)]
    revoked: Option<PathBuf>,
    /// Keep budget state in this file across restarts
    #[arg(long, conflicts_with = "redis")]
    budgets: Option<PathBuf>,
    /// Keep budgets and revocations in this Redis, shared with other replicas
    /// (e.g. redis://127.0.0.1:6379/)
    #[arg(long, conflicts_with = "revoked")]
    redis: Option<String>,
    /// With --redis: spend budgets from leases (docs §15.4), one round trip per slice of calls;
    /// every replica sharing a budget must lease
    #[arg(long, requires = "redis")]
    lease: bool,
    /// With --redis: the timeout of each Redis call, in milliseconds; past it a call fails
    /// closed
    #[arg(long, requires = "redis", default_value_t = 200, value_name = "MS")]
    redis_timeout_ms: u64,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut keys = captix::KeySet::new();
    for p in &args.pubkey {
        keys.insert(captix::PublicKey::load(p)?);
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let addr = listener.local_addr()?;
    let resource = captix::normalize_resource(
        &args
            .resource
            .clone()
            .unwrap_or_else(|| format!("http://{addr}/mcp")),
    );
    let budgets = Arc::new(match &args.budgets {
        Some(p) => MemoryBudgets::load(p)?,
        None => MemoryBudgets::new(),
    });
    let mut builder = captix::Verifier::builder(keys)
        .resource(resource.clone())
        .budgets(budgets.clone());
    // With --lease: what the replica holds goes back at shutdown.
    let mut leases = None;
    if let Some(url) = &args.redis {
        let options = captix_redis::Options {
            timeout: Duration::from_millis(args.redis_timeout_ms),
            ..captix_redis::Options::default()
        };
        builder = if args.lease {
            let store = captix_redis::leased(url, options.clone(), Default::default())?;
            leases = Some(store.clone());
            builder.budgets(store)
        } else {
            builder.budgets(Arc::new(captix_redis::RedisBudgets::new(
                url,
                options.clone(),
            )?))
        };
        builder = builder.revocations(Arc::new(captix_redis::RedisRevocations::new(
            url,
            options,
            Duration::from_secs(1),
        )?));
    }
    if let Some(p) = &args.policy {
        let text = std::fs::read_to_string(p)
            .map_err(|e| format!("could not read the policy {}: {e}", p.display()))?;
        let policy =
            captix::Policy::from_toml(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        builder = builder.policy(policy);
    }
    if let Some(p) = &args.revoked {
        builder = builder.revocations(Arc::new(FileRevocations::open(p, Duration::from_secs(1))?));
    }
    if let Some(p) = &args.audit {
        builder = builder.audit(
            Arc::new(FileAudit::open(p, Durability::Flush)?),
            Redaction::Keep,
        );
    }
    let mut servers = args.authorization_servers.iter();
    let mut config = captix_mcp::Config::new(servers.next().cloned().unwrap_or_default());
    for s in servers {
        config = config.authorization_server(s);
    }
    for t in &args.tool_scopes {
        let (tool, scope) = t
            .split_once('=')
            .ok_or_else(|| format!("--tool-scope {t:?}: expected TOOL=SCOPE"))?;
        config = config.tool_scope(tool, scope);
    }
    for m in &args.allow_methods {
        config = match m.split_once('=') {
            Some((method, scope)) => config.method_scope(method, scope),
            None => config.allow_method(m),
        };
    }
    let app = captix_example_invoices::app(Arc::new(builder.build()), config)?;
    // A closed stdout (a supervisor that read the address and went away) is not an error.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "invoices MCP server on http://{addr}/mcp (resource {resource})"
    );
    let _ = writeln!(
        out,
        "metadata: http://{addr}/.well-known/oauth-protected-resource/mcp"
    );
    let _ = out.flush();
    let saver = args.budgets.clone().map(|path| {
        let budgets = budgets.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if let Err(e) = budgets.save(&path, captix::time::now()) {
                    eprintln!("warning: could not save budgets to {}: {e}", path.display());
                }
            }
        })
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    if let Some(leases) = leases {
        leases.settle_all(captix::time::now());
    }
    if let (Some(path), Some(task)) = (&args.budgets, saver) {
        task.abort();
        budgets.save(path, captix::time::now())?;
    }
    Ok(())
}
