//! `captix demo`: the whole story on built-in defaults, on the real library paths.

use std::fmt::Write;
use std::sync::Arc;

use captix::audit::{verify_log, MemoryAudit, Redaction};
use captix::budget::MemoryBudgets;
use captix::revocation::MemoryRevocations;
use captix::{Call, KeySet, SigningKey, Ticket, UnverifiedTicket, Verifier};

use crate::error::CliError;
use crate::render;

const RESOURCE: &str = "https://mcp.example/invoices";

pub fn run() -> Result<String, CliError> {
    let mut out = String::new();
    let now = crate::now();
    let o = &mut out;

    heading(
        o,
        "1. The issuer makes a root key and mints a ticket for billing-agent, acting for alice",
    );
    let root = SigningKey::generate();
    let ticket = Ticket::mint(&root, "billing-agent", "alice")
        .issuer("https://auth.example")
        .tool("list_invoices")
        .tool("get_invoice")
        .tool("create_refund")
        .uri("invoices://acme/*")
        .prompt("triage")
        .row(spec("*:org=acme")?)
        .row(spec("create_refund:amount<=500")?)
        .budget(budget("100/min")?)
        .expires_at(now + 3600)
        .resource(RESOURCE)
        .sign()?;
    let _ = writeln!(
        o,
        "$ captix mint --key root.key --agent billing-agent --user alice \\"
    );
    let _ = writeln!(
        o,
        "    --tool list_invoices --tool get_invoice --tool create_refund \\"
    );
    let _ = writeln!(
        o,
        "    --row '*:org=acme' --row 'create_refund:amount<=500' --budget 100/min --ttl 1h \\"
    );
    let _ = writeln!(
        o,
        "    --uri 'invoices://acme/*' --prompt triage --resource {RESOURCE}"
    );
    let _ = writeln!(o, "{}\n", render::short(ticket.as_str()));
    o.push_str(&render::inspect_text(&ticket.inspect(), false, None));

    heading(
        o,
        "2. The agent narrows it for a sub-agent: offline, no key, only ever narrower",
    );
    let sub = UnverifiedTicket::parse(ticket.as_str())?
        .attenuate()
        .tool("list_invoices")
        .uri("invoices://acme/summary")
        .only_prompts::<&str>([])
        .row(spec("list_invoices:status=open|paid")?)
        .budget(budget("3")?)
        .expires_at(now + 300)
        .sign_unverified()?;
    let _ = writeln!(o, "$ captix attenuate AGENT_TICKET --tool list_invoices --row 'list_invoices:status=open|paid' \\");
    let _ = writeln!(
        o,
        "    --uri invoices://acme/summary --no-prompts --budget 3 --ttl 5min"
    );
    let _ = writeln!(o, "{}\n", render::short(sub.as_str()));
    let report = sub.inspect();
    if let Some(b) = report.blocks.last() {
        let _ = writeln!(o, "block {} ({}) adds:", b.index, b.kind);
        for r in &b.restrictions {
            let _ = writeln!(o, "  restriction    {r}");
        }
        for bu in b.description.iter().flat_map(|d| &d.budgets) {
            let _ = writeln!(o, "  budget         {bu}");
        }
    }

    heading(
        o,
        "3. The MCP server checks every call (cached after the first: no Datalog, no signatures)",
    );
    let revocations = Arc::new(MemoryRevocations::new());
    let audit = Arc::new(MemoryAudit::new());
    let server = Verifier::builder(KeySet::from(root.public()))
        .resource(RESOURCE)
        .budgets(Arc::new(MemoryBudgets::new()))
        .revocations(revocations.clone())
        .audit(audit.clone(), Redaction::Keep)
        .build();
    let tools = server.callable_tools(sub.as_str(), now)?;
    let _ = writeln!(o, "tools/list for the sub-agent: {}\n", tools.join(", "));
    let calls = [
        ("list_invoices", r#"{"org":"acme","status":"open"}"#),
        ("list_invoices", r#"{"org":"globex","status":"open"}"#),
        ("list_invoices", r#"{"org":"acme","status":"void"}"#),
        ("get_invoice", r#"{"org":"acme","id":7}"#),
        (
            "list_invoices",
            r#"{"org":"acme","org":"globex","status":"open"}"#,
        ),
    ];
    for (tool, args) in calls {
        check(o, &server, sub.as_str(), "sub-agent", tool, args, now);
    }
    // Resources and prompts: granted by URI pattern and name, narrowed the same way.
    for uri in [
        "invoices://acme/summary",
        "invoices://globex/summary",
        "invoices://acme/../globex/summary",
    ] {
        let what = format!("resources/read {uri}");
        show(
            o,
            "sub-agent",
            &what,
            Call::read(uri)
                .map(|c| c.at(now))
                .and_then(|c| server.check(sub.as_str(), &c)),
        );
    }
    let what = "prompts/get triage";
    show(
        o,
        "sub-agent",
        what,
        Call::prompt("triage")
            .map(|c| c.at(now))
            .and_then(|c| server.check(sub.as_str(), &c)),
    );
    show(
        o,
        "agent",
        what,
        Call::prompt("triage")
            .map(|c| c.at(now))
            .and_then(|c| server.check(ticket.as_str(), &c)),
    );

    heading(o, "4. The sub-agent's budget of 3 calls (one spent above) runs out; each call also drew on the agent's 100/min");
    for _ in 0..3 {
        check(
            o,
            &server,
            sub.as_str(),
            "sub-agent",
            "list_invoices",
            r#"{"org":"acme","status":"paid"}"#,
            now,
        );
    }
    check(
        o,
        &server,
        ticket.as_str(),
        "agent",
        "get_invoice",
        r#"{"org":"acme","id":7}"#,
        now,
    );

    heading(
        o,
        "5. The issuer revokes the agent's ticket: the sub-agent's ticket falls with it",
    );
    let root_id = ticket
        .revocation_ids()
        .next()
        .cloned()
        .ok_or_else(|| CliError::usage("no block"))?;
    let _ = writeln!(o, "$ revoke {}\n", render::short(&root_id.to_hex()));
    revocations.revoke(&root_id);
    check(
        o,
        &server,
        ticket.as_str(),
        "agent",
        "list_invoices",
        r#"{"org":"acme"}"#,
        now,
    );
    check(
        o,
        &server,
        sub.as_str(),
        "sub-agent",
        "list_invoices",
        r#"{"org":"acme","status":"open"}"#,
        now,
    );

    heading(
        o,
        "6. The audit trail: who did what on whose behalf, hash-chained",
    );
    let lines = audit.lines();
    let records = verify_log(lines.join("\n").as_bytes()).map_err(|b| {
        CliError::usage(format!(
            "audit chain broken at line {}: {}",
            b.line, b.reason
        ))
    })?;
    o.push_str(&render::audit_text(&records));
    let _ = writeln!(
        o,
        "\n$ captix audit verify audit.jsonl\nok: {} records, hash chain intact",
        records.len()
    );
    #[cfg(feature = "issuer")]
    crate::demo_issuer::run(o)?;
    let _ = writeln!(
        o,
        "\nNext: `captix keygen --out root`, then `captix mint --help` to make your own tickets."
    );
    Ok(out)
}

pub(crate) fn heading(o: &mut String, title: &str) {
    let _ = writeln!(o, "\n== {title}\n");
}

fn spec(s: &str) -> Result<captix::RowFilter, CliError> {
    Ok(s.parse()?)
}

fn budget(s: &str) -> Result<captix::Budget, CliError> {
    Ok(s.parse()?)
}

pub(crate) fn check(
    o: &mut String,
    v: &Verifier,
    ticket: &str,
    who: &str,
    tool: &str,
    args: &str,
    now: u64,
) {
    let decision = Call::new(tool, args)
        .map(|c| c.at(now))
        .and_then(|c| v.check(ticket, &c));
    show(o, who, &format!("{tool} {args}"), decision);
}

fn show(o: &mut String, who: &str, what: &str, decision: captix::Decision) {
    match decision {
        Ok(_) => {
            let _ = writeln!(o, "{who:<9} {what}\n          ALLOW");
        }
        Err(d) => {
            let _ = writeln!(
                o,
                "{who:<9} {what}\n          DENY {}: {}",
                d.code, d.reason
            );
        }
    }
}
