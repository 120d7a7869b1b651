//! The `captix` command line.
#![forbid(unsafe_code)]

mod cli;
mod demo;
#[cfg(feature = "issuer")]
mod demo_issuer;
mod error;
#[cfg(feature = "issuer")]
mod issuer;
mod render;

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use captix::{
    Budget, Call, KeySet, PublicKey, RowFilter, SigningKey, Ticket, UnverifiedTicket, PREFIX,
};
use clap::Parser;
use serde_json::json;

use cli::{AuditCommand, Cli, Command, Restrictions};
use error::{io_reason, CliError};

/// What a command printed and how it ends.
pub struct Output {
    /// Text for standard output.
    pub stdout: String,
    /// Notes for standard error (the command succeeded; something deserves a look).
    pub notes: String,
    /// The exit code.
    pub exit: i32,
}

impl Output {
    fn ok(stdout: String) -> Self {
        Output::exit(stdout, 0)
    }

    fn exit(stdout: String, exit: i32) -> Self {
        Output {
            stdout,
            notes: String::new(),
            exit,
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let json = wants_json(&cli.command);
    let (stdout, stderr, exit) = match run(cli.command) {
        Ok(o) => (o.stdout, o.notes, o.exit),
        Err(e) if json => {
            let v = json!({ "error": { "code": e.code, "message": e.message, "hint": e.hint } });
            (format!("{v}\n"), String::new(), e.exit)
        }
        Err(e) => (String::new(), format!("{e}\n"), e.exit),
    };
    // A closed pipe (`captix inspect ... | head`) is not an error.
    let _ = std::io::stdout().lock().write_all(stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(stderr.as_bytes());
    std::process::exit(exit);
}

fn wants_json(c: &Command) -> bool {
    match c {
        Command::Keygen { json, .. } | Command::Inspect { json, .. } => *json,
        Command::Mint(m) => m.restrict.json,
        Command::Attenuate(a) => a.restrict.json,
        Command::Verify(v) => v.json,
        Command::Audit {
            command: AuditCommand::Verify { json, .. } | AuditCommand::Show { json, .. },
        } => *json,
        Command::Revoke { json, .. } => *json,
        #[cfg(feature = "issuer")]
        Command::Issuer {
            command: cli::IssuerCommand::CheckPolicy { json, .. },
        } => *json,
        #[cfg(feature = "issuer")]
        Command::Issuer { .. } => false,
        Command::Demo => false,
    }
}

fn run(command: Command) -> Result<Output, CliError> {
    match command {
        Command::Keygen { out, json } => keygen(&out, json),
        Command::Mint(m) => mint(m),
        Command::Attenuate(a) => attenuate(a),
        Command::Inspect {
            ticket,
            pubkey,
            datalog,
            json,
        } => inspect(ticket.as_deref(), &pubkey, datalog, json),
        Command::Verify(v) => verify(v),
        Command::Audit { command } => audit(command),
        Command::Revoke {
            ids,
            file,
            redis,
            json,
        } => revoke(&ids, file.as_deref(), redis.as_deref(), json),
        #[cfg(feature = "issuer")]
        Command::Issuer { command } => issuer::run(command),
        Command::Demo => demo::run().map(Output::ok),
    }
}

use captix::time::now;

fn keygen(out: &Path, json: bool) -> Result<Output, CliError> {
    let key_path = out.with_extension("key");
    let pub_path = out.with_extension("pub");
    if key_path.exists() || pub_path.exists() {
        return Err(CliError::io(format!(
            "{} or {} already exists",
            key_path.display(),
            pub_path.display()
        ))
        .hint("choose another --out NAME; captix never overwrites a key"));
    }
    let key = SigningKey::generate();
    key.save(&key_path)?;
    key.public().save(&pub_path)?;
    let stdout = if json {
        format!(
            "{}\n",
            json!({ "key_id": key.key_id().to_string(), "secret_key": key_path, "public_key": pub_path })
        )
    } else {
        format!(
            "key id {}\nsecret key  {} (mode 0600: keep it private)\npublic key  {}\n",
            key.key_id(),
            key_path.display(),
            pub_path.display()
        )
    };
    Ok(Output::ok(stdout))
}

fn parse_time(s: &str, flag: &str) -> Result<u64, CliError> {
    captix::time::parse_rfc3339(s).map_err(|e| CliError::usage(format!("invalid {flag}: {e}")))
}

/// The message of a restriction error without its "invalid restriction" prefix.
fn inner(e: captix::Error) -> String {
    match e {
        captix::Error::InvalidRestriction(m) => m,
        other => other.to_string(),
    }
}

fn parse_restrictions(r: &Restrictions) -> Result<captix::Restrictions, CliError> {
    let mut rows = Vec::new();
    for spec in &r.rows {
        rows.push(spec.parse::<RowFilter>().map_err(|e| {
            CliError::usage(format!("invalid --row {spec:?}: {}", inner(e)))
                .hint("examples: '*:org=acme', 'list_invoices:status=open|paid', 'create_refund:amount<=500'")
        })?);
    }
    let mut budgets = Vec::new();
    for spec in &r.budgets {
        budgets.push(spec.parse::<Budget>().map_err(|e| {
            CliError::usage(format!("invalid --budget {spec:?}: {}", inner(e)))
                .hint("examples: '100/min', 'list_invoices:10/5min', '50' (lifetime)")
        })?);
    }
    let expires = match (&r.ttl, &r.expires) {
        (Some(ttl), _) => Some(
            now()
                + captix::parse_duration(ttl)
                    .map_err(|e| CliError::usage(format!("invalid --ttl: {e}")))?,
        ),
        (None, Some(t)) => {
            let t = parse_time(t, "--expires")?;
            if t <= now() {
                return Err(CliError::usage(format!(
                    "--expires {} is not in the future: the ticket would never be valid",
                    captix::time::rfc3339(t)
                ))
                .hint("give a later time, or a duration with --ttl"));
            }
            Some(t)
        }
        (None, None) => None,
    };
    let not_before = r
        .not_before
        .as_deref()
        .map(|t| parse_time(t, "--not-before"))
        .transpose()?;
    Ok(captix::Restrictions {
        rows,
        budgets,
        expires,
        not_before,
        resource: r.resource.clone(),
        checks: r.checks.clone(),
    })
}

fn ticket_output(text: &str, ids: Vec<String>, json: bool) -> Output {
    if json {
        Output::ok(format!(
            "{}\n",
            json!({ "ticket": text, "revocation_ids": ids })
        ))
    } else {
        Output::ok(format!("{text}\n"))
    }
}

/// The lifetime of a ticket minted without --ttl, --expires or --no-expiry.
const DEFAULT_TTL: u64 = 3600;

fn mint(m: cli::MintArgs) -> Result<Output, CliError> {
    let key = SigningKey::load(&m.key).map_err(|e| {
        let hint = match &e {
            captix::Error::InvalidKey(msg) if msg.contains("chmod") => None,
            captix::Error::InvalidKey(_) => {
                Some("--key takes the NAME.key file written by `captix keygen`")
            }
            _ => None,
        };
        let mut err = CliError::from(e);
        if let Some(h) = hint {
            err = err.hint(h);
        }
        if err.exit == 1 {
            err.exit = 2;
        }
        err
    })?;
    let mut parsed = parse_restrictions(&m.restrict)?;
    // A ticket expires unless asked not to (servers refuse one that never does).
    if parsed.expires.is_none() && !m.no_expiry {
        parsed.expires = Some(now() + DEFAULT_TTL);
    }
    let mut b = Ticket::mint(&key, &m.agent, &m.user);
    if let Some(i) = &m.issuer {
        b = b.issuer(i.clone());
    }
    for s in &m.scopes {
        b = b.scope(s.clone());
    }
    for t in &m.tools {
        b = b.tool(t.clone());
    }
    for u in &m.uris {
        b = b.uri(u.clone());
    }
    for p in &m.prompts {
        b = b.prompt(p.clone());
    }
    let t = b.restrict(parsed).sign().map_err(build_error)?;
    let ids = t.revocation_ids().map(|i| i.to_hex()).collect();
    Ok(ticket_output(t.as_str(), ids, m.restrict.json))
}

fn build_error(e: captix::Error) -> CliError {
    let mut err = CliError::from(e);
    err.exit = 2;
    err
}

fn attenuate(a: cli::AttenuateArgs) -> Result<Output, CliError> {
    let text = read_ticket(a.ticket.as_deref())?;
    let base = UnverifiedTicket::parse(&text)?;
    let parsed = parse_restrictions(&a.restrict)?;
    not_narrowing(&base, &a, &parsed)?;
    // A list given (or forbidden with --no-…) restricts; none given leaves that kind alone.
    let mut b = base.attenuate();
    if a.no_tools || !a.tools.is_empty() {
        b = b.only_tools(a.tools.clone());
    }
    if a.no_uris || !a.uris.is_empty() {
        b = b.only_uris(a.uris.clone());
    }
    if a.no_prompts || !a.prompts.is_empty() {
        b = b.only_prompts(a.prompts.clone());
    }
    let t = b.restrict(parsed).sign_unverified().map_err(build_error)?;
    let ids = t
        .blocks()
        .iter()
        .map(|b| b.revocation_id.to_hex())
        .collect();
    let mut out = ticket_output(t.as_str(), ids, a.restrict.json);
    out.notes = left_open(&base, &a);
    Ok(out)
}

/// Spec §4.11: a tool list does not restrict resources or prompts. An attenuation that
/// narrows the tools and leaves resources or prompts the ticket grants is said on standard
/// error: the holder may have meant "only this tool".
fn left_open(base: &UnverifiedTicket, a: &cli::AttenuateArgs) -> String {
    let Some(authority) = base.blocks().first().and_then(|b| b.description()) else {
        return String::new();
    };
    let narrows_tools = a.no_tools || !a.tools.is_empty();
    let mut open = Vec::new();
    if !authority.uri_grants.is_empty() && !a.no_uris && a.uris.is_empty() {
        open.push(("resources", "--no-uris"));
    }
    if !authority.prompt_grants.is_empty() && !a.no_prompts && a.prompts.is_empty() {
        open.push(("prompts", "--no-prompts"));
    }
    if !narrows_tools || open.is_empty() {
        return String::new();
    }
    let what: Vec<&str> = open.iter().map(|(w, _)| *w).collect();
    let flags: Vec<&str> = open.iter().map(|(_, f)| *f).collect();
    format!(
        "note: the tool list does not restrict {}: the new ticket still allows what the ticket \
         allowed of them; add {} (or --uri/--prompt) to narrow them too\n",
        what.join(" and "),
        flags.join(" ")
    )
}

/// An attenuation can only narrow (spec §4.9): a restriction that cannot (a later expiry, a
/// tool the ticket does not grant, a budget no tighter than one already there) would be
/// accepted and do nothing, so it is reported instead of silently written.
fn not_narrowing(
    base: &UnverifiedTicket,
    a: &cli::AttenuateArgs,
    r: &captix::Restrictions,
) -> Result<(), CliError> {
    let described: Vec<_> = base
        .blocks()
        .iter()
        .filter_map(|b| b.description().map(|d| (b.index, d)))
        .collect();
    let refuse = |what: String| {
        Err(
            CliError::usage(format!("{what}: an attenuation can only narrow a ticket"))
                .hint("`captix inspect` shows what the ticket allows now"),
        )
    };
    if let (Some(new), Some(old)) = (
        r.expires,
        described.iter().filter_map(|(_, d)| d.expires).min(),
    ) {
        if new > old {
            return refuse(format!(
                "the expiry {} is after the ticket's own, {}",
                captix::time::rfc3339(new),
                captix::time::rfc3339(old)
            ));
        }
    }
    let grants = described
        .first()
        .map(|(_, d)| d.grants.clone())
        .unwrap_or_default();
    for t in &a.tools {
        let listed = described
            .iter()
            .all(|(_, d)| d.tools.as_ref().is_none_or(|l| l.contains(t)));
        if !grants.contains(t) || !listed {
            return refuse(format!("the ticket does not allow tool {t:?}"));
        }
    }
    // A pattern narrows when a grant, and every block's URI list, admits it whole.
    let covered =
        |list: &[String], p: &String| list.iter().any(|g| captix::uri_pattern_admits(g, p));
    for u in &a.uris {
        let granted = described
            .first()
            .is_some_and(|(_, d)| covered(&d.uri_grants, u));
        let listed = described
            .iter()
            .all(|(_, d)| d.uris.as_ref().is_none_or(|l| covered(l, u)));
        if !granted || !listed {
            return refuse(format!("the ticket does not allow reading {u:?}"));
        }
    }
    for p in &a.prompts {
        let granted = described
            .first()
            .is_some_and(|(_, d)| d.prompt_grants.contains(p));
        let listed = described
            .iter()
            .all(|(_, d)| d.prompts.as_ref().is_none_or(|l| l.contains(p)));
        if !granted || !listed {
            return refuse(format!("the ticket does not allow prompt {p:?}"));
        }
    }
    for new in &r.budgets {
        let tighter = described.iter().find_map(|(i, d)| {
            d.budgets
                .iter()
                .find(|old| {
                    old.window == new.window
                        && old.max_calls <= new.max_calls
                        && (old.tool == captix::ToolSel::Any || old.tool == new.tool)
                })
                .map(|old| (*i, old))
        });
        if let Some((i, old)) = tighter {
            return refuse(format!("budget {new} is no tighter than block {i}'s {old}"));
        }
    }
    Ok(())
}

fn load_keys(paths: &[std::path::PathBuf]) -> Result<KeySet, CliError> {
    let mut keys = KeySet::new();
    for p in paths {
        let k = PublicKey::load(p).map_err(|e| {
            let mut err = CliError::from(e);
            err.exit = 2;
            if err.hint.is_none() {
                err = err.hint("--pubkey takes the NAME.pub file written by `captix keygen`");
            }
            err
        })?;
        keys.insert(k);
    }
    Ok(keys)
}

fn inspect(
    ticket: Option<&str>,
    pubkeys: &[std::path::PathBuf],
    datalog: bool,
    json: bool,
) -> Result<Output, CliError> {
    let text = read_ticket(ticket)?;
    let unverified = UnverifiedTicket::parse(&text)?;
    let (report, problem) = if pubkeys.is_empty() {
        (unverified.inspect(), None)
    } else {
        let keys = load_keys(pubkeys)?;
        match Ticket::parse(&text, &keys) {
            Ok(t) => (t.inspect(), None),
            Err(d) => (unverified.inspect(), Some(d)),
        }
    };
    let exit = if problem.is_some() { 1 } else { 0 };
    let stdout = if json {
        let mut v = serde_json::to_value(&report).map_err(|e| CliError::io(e.to_string()))?;
        if let Some(d) = &problem {
            v["signatures"] = json!("invalid");
            v["problem"] = render::denial_json(d);
        }
        format!(
            "{}\n",
            serde_json::to_string_pretty(&v).map_err(|e| CliError::io(e.to_string()))?
        )
    } else {
        render::inspect_text(&report, datalog, problem.as_ref())
    };
    Ok(Output::exit(stdout, exit))
}

fn verify(v: cli::VerifyArgs) -> Result<Output, CliError> {
    let text = read_ticket(v.ticket.as_deref())?;
    let keys = load_keys(&v.pubkey)?;
    let args = match (&v.args, v.arg.is_empty()) {
        (Some(a), _) => a.clone(),
        (None, false) => args_from_pairs(&v.arg)?,
        (None, true) => "{}".to_string(),
    };
    let time = match &v.at {
        Some(t) => parse_time(t, "--at")?,
        None => now(),
    };
    // Arguments that are not a JSON object, or a URI that is not one, are a usage error
    // (exit 2), not a denial.
    let call = match (&v.tool, &v.uri, &v.prompt) {
        (_, Some(uri), _) => Call::read(uri.clone())
            .map_err(|d| CliError::usage(format!("invalid --uri: {}", d.reason)))?,
        (_, _, Some(p)) => Call::prompt(p.clone())
            .map_err(|d| CliError::usage(format!("invalid --prompt: {}", d.reason)))?,
        (tool, None, None) => Call::new(tool.clone().unwrap_or_default(), &args).map_err(|d| {
            CliError::usage(format!("invalid --args: {}", d.reason)).hint(
                "--args takes a JSON object, e.g. '{\"org\":\"acme\"}'; or use --arg KEY=VALUE",
            )
        })?,
    };
    let c = call.at(time);
    let c = match &v.resource {
        Some(r) => c.resource(r.clone()),
        None => c,
    };
    let decision = match &v.revoked {
        // Spec §6.3 step 6: revocation before the call's restrictions.
        Some(path) => {
            let source =
                captix::revocation::FileRevocations::open(path, std::time::Duration::from_secs(0))
                    .map_err(|e| {
                        let mut err = CliError::from(e);
                        err.exit = 2;
                        err
                    })?;
            captix::Ticket::parse(&text, &keys).and_then(|t| {
                let chain: Vec<_> = t.revocation_ids().cloned().collect();
                use captix::revocation::RevocationSource as _;
                match source.first_revoked(&chain)? {
                    Some(i) => Err(captix::Denial::new(
                        captix::Code::Revoked,
                        format!("block {i} of the ticket's chain has been revoked"),
                    )
                    .at(i, "revocation")),
                    None => t.authorize(&c),
                }
            })
        }
        None => captix::verify(&text, &c, &keys),
    };
    let exit = if decision.is_ok() { 0 } else { 1 };
    let stdout = match (&decision, v.json) {
        (_, true) => format!("{}\n", captix::decision_json(&decision)),
        (Ok(a), false) => render::allowed_text(a, true),
        (Err(d), false) => render::denial_text(d),
    };
    Ok(Output::exit(stdout, exit))
}

/// `--arg org=acme --arg filter/status=open` → `{"org":"acme","filter":{"status":"open"}}`.
fn args_from_pairs(pairs: &[String]) -> Result<String, CliError> {
    let mut root = serde_json::Map::new();
    for pair in pairs {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            CliError::usage(format!("invalid --arg {pair:?}: expected KEY=VALUE"))
                .hint("e.g. --arg org=acme --arg amount=20")
        })?;
        let value = match captix::parse_value(v)
            .map_err(|e| CliError::usage(format!("invalid --arg {pair:?}: {e}")))?
        {
            captix::Scalar::Bool(b) => json!(b),
            captix::Scalar::Int(i) => json!(i),
            captix::Scalar::Str(s) => json!(s),
            captix::Scalar::Null => serde_json::Value::Null,
        };
        let parts: Vec<&str> = k.split('/').collect();
        let mut map = &mut root;
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() {
                return Err(CliError::usage(format!(
                    "invalid --arg {pair:?}: empty key"
                )));
            }
            if i + 1 == parts.len() {
                if map.insert(part.to_string(), value.clone()).is_some() {
                    return Err(CliError::usage(format!("--arg {k} is given twice")));
                }
            } else {
                let next = map.entry(part.to_string()).or_insert_with(|| json!({}));
                map = next.as_object_mut().ok_or_else(|| {
                    CliError::usage(format!("--arg {k}: {part} is both a value and an object"))
                })?;
            }
        }
    }
    Ok(serde_json::Value::Object(root).to_string())
}

fn audit(command: AuditCommand) -> Result<Output, CliError> {
    let open = |file: &Path| {
        std::fs::File::open(file)
            .map(std::io::BufReader::new)
            .map_err(|e| {
                CliError::io(format!(
                    "could not read audit log {}: {}",
                    file.display(),
                    io_reason(&e)
                ))
            })
    };
    match command {
        AuditCommand::Verify { file, json } => match captix::audit::verify_log(open(&file)?) {
            Ok(records) => {
                let last = records.last().map(|r| r.seq).unwrap_or(0);
                let stdout = if json {
                    format!(
                        "{}\n",
                        json!({ "intact": true, "records": records.len(), "last_seq": last })
                    )
                } else {
                    format!(
                        "ok: {} records, hash chain intact (last seq {last})\n",
                        records.len()
                    )
                };
                Ok(Output::ok(stdout))
            }
            Err(b) => {
                let stdout = if json {
                    format!(
                        "{}\n",
                        json!({ "intact": false, "line": b.line, "reason": b.reason })
                    )
                } else {
                    format!("BROKEN at line {}: {}\n", b.line, b.reason)
                };
                Ok(Output::exit(stdout, 1))
            }
        },
        AuditCommand::Show { file, json } => {
            let mut records = Vec::new();
            let mut broken = None;
            match captix::audit::verify_log(open(&file)?) {
                Ok(r) => records = r,
                Err(b) => broken = Some(b),
            }
            if let Some(b) = broken {
                // Show what parses, and say where the chain breaks.
                let text = std::fs::read_to_string(&file).map_err(|e| {
                    CliError::io(format!(
                        "could not read audit log {}: {}",
                        file.display(),
                        io_reason(&e)
                    ))
                })?;
                let parsed: Vec<captix::audit::Record> = text
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                let out = if json {
                    format!(
                        "{}\n",
                        json!({ "intact": false, "broken": { "line": b.line, "reason": b.reason },
                                "records": parsed })
                    )
                } else {
                    let mut out = render::audit_text(&parsed);
                    out.push_str(&format!(
                        "\nWARNING: the hash chain breaks at line {}: {}\n",
                        b.line, b.reason
                    ));
                    out
                };
                return Ok(Output::exit(out, 1));
            }
            if json {
                return Ok(Output::ok(format!(
                    "{}\n",
                    json!({ "intact": true, "records": records })
                )));
            }
            Ok(Output::ok(render::audit_text(&records)))
        }
    }
}

/// Adds the ids to the revocation set of the Redis at `url` (docs §15.2).
#[cfg(feature = "redis")]
fn revoke_in_redis(url: &str, ids: &[captix::RevocationId]) -> Result<(), CliError> {
    let source = captix_redis::RedisRevocations::new(
        url,
        captix_redis::Options::default(),
        std::time::Duration::from_secs(1),
    )
    .map_err(|e| CliError::io(format!("could not reach redis at {url}: {e}")))?;
    for id in ids {
        source
            .revoke(id)
            .map_err(|d| CliError::io(format!("could not revoke in redis: {}", d.reason)))?;
    }
    Ok(())
}

#[cfg(not(feature = "redis"))]
fn revoke_in_redis(_: &str, _: &[captix::RevocationId]) -> Result<(), CliError> {
    Err(CliError::usage(
        "this captix was built without Redis support (cargo feature `redis`)",
    ))
}

fn revoke(
    ids: &[String],
    file: Option<&Path>,
    redis: Option<&str>,
    json: bool,
) -> Result<Output, CliError> {
    let mut parsed = Vec::new();
    for id in ids {
        if id.trim_ascii().starts_with(PREFIX) {
            // A ticket: its last block, so the ticket and its attenuations, not its parent.
            let t = UnverifiedTicket::parse(id)?;
            let last = t.blocks().last().map(|b| b.revocation_id.clone());
            parsed.extend(last);
            continue;
        }
        parsed.push(captix::RevocationId::from_hex(id).map_err(|_| {
            CliError::usage(format!(
                "the argument ({} bytes) is neither a revocation id nor a ticket",
                id.len()
            ))
            .hint("revocation ids are the hex strings `captix inspect` prints; a ticket starts with captix1_")
        })?);
    }
    if let Some(url) = redis {
        revoke_in_redis(url, &parsed)?;
    } else if let Some(path) = file {
        captix::revocation::append_to_file(path, &parsed).map_err(|e| {
            CliError::io(format!(
                "could not write revocation file {}: {}",
                path.display(),
                io_reason(&e)
            ))
        })?;
    }
    if json {
        let ids: Vec<String> = parsed.iter().map(|i| i.to_hex()).collect();
        return Ok(Output::ok(format!("{}\n", json!({ "revoked": ids }))));
    }
    Ok(Output::ok(format!(
        "revoked {} block{}\n",
        parsed.len(),
        if parsed.len() == 1 { "" } else { "s" }
    )))
}

/// A ticket from an argument (`captix1_...`), a file, or stdin (`-` or nothing).
fn read_ticket(arg: Option<&str>) -> Result<String, CliError> {
    let limit = captix::limits::MAX_TICKET_BYTES as u64 + 1024;
    let text = match arg {
        None | Some("-") => {
            let stdin = std::io::stdin();
            if arg.is_none() && stdin.is_terminal() {
                return Err(CliError::usage("no ticket given").hint(
                    "pass a ticket (captix1_...), a file, or pipe one in: ... | captix inspect -",
                ));
            }
            let mut s = String::new();
            stdin
                .lock()
                .take(limit)
                .read_to_string(&mut s)
                .map_err(|e| {
                    CliError::io(format!(
                        "could not read the ticket from standard input: {}",
                        io_reason(&e)
                    ))
                })?;
            s
        }
        Some(t) if t.trim_ascii().starts_with(PREFIX) => t.to_string(),
        // A ticket is a bearer credential: an argument that holds one is never echoed (it
        // would end up in terminal scroll-back and logs); say where it is and how long.
        Some(t) if t.contains(PREFIX) => {
            let at = t.find(PREFIX).unwrap_or(0);
            return Err(CliError::usage(format!(
                "the argument ({} bytes) holds a ticket after {at} other bytes (a `Bearer ` \
                 prefix?); it is not shown, as it is a credential",
                t.len()
            ))
            .hint("pass the ticket alone, starting with captix1_"));
        }
        Some(path) => {
            let p = Path::new(path);
            if !p.is_file() {
                return Err(CliError::usage(format!(
                    "the argument ({} bytes) is neither a ticket nor a readable file",
                    path.len()
                ))
                .hint("a ticket starts with captix1_; use - to read one from standard input"));
            }
            let mut s = String::new();
            std::fs::File::open(p)
                .and_then(|f| f.take(limit).read_to_string(&mut s))
                .map_err(|e| {
                    CliError::io(format!(
                        "could not read ticket file {path}: {}",
                        io_reason(&e)
                    ))
                })?;
            s
        }
    };
    // The same white space the library ignores (spec §6.1): ASCII only.
    Ok(text.trim_ascii().to_string())
}
