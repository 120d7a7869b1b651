//! The captix story on embedded defaults: mint for an agent, attenuate for a sub-agent, and
//! see calls allowed and denied with their reasons. Every decision comes from the library.
//!
//! Run: `cargo run -p captix --example demo`

use captix::{Call, KeySet, SigningKey, Ticket, UnverifiedTicket};

const RESOURCE: &str = "https://mcp.example/invoices";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let root = SigningKey::generate();
    let keys = KeySet::from(root.public());

    println!("== 1. The issuer mints a ticket for billing-agent, acting for alice");
    let ticket = Ticket::mint(&root, "billing-agent", "alice")
        .issuer("https://auth.example")
        .tool("list_invoices")
        .tool("get_invoice")
        .tool("create_refund")
        .row("*:org=acme".parse()?)
        .row("create_refund:amount<=500".parse()?)
        .budget("100/min".parse()?)
        .expires_at(now + 3600)
        .resource(RESOURCE)
        .sign()?;
    print_ticket(&ticket);

    println!("\n== 2. The agent, offline and with no key, narrows it for a sub-agent");
    let holder_copy = UnverifiedTicket::parse(ticket.as_str())?;
    let sub = holder_copy
        .attenuate()
        .tool("list_invoices")
        .row("list_invoices:status=open|paid".parse()?)
        .budget("10".parse()?)
        .expires_at(now + 300)
        .sign_unverified()?;
    let sub = sub.verify(&keys)?; // what the server will do
    print_ticket(&sub);

    println!("\n== 3. The MCP server checks each of the sub-agent's calls");
    let calls = [
        ("list_invoices", r#"{"org":"acme","status":"open"}"#),
        ("list_invoices", r#"{"org":"globex","status":"open"}"#),
        ("list_invoices", r#"{"org":"acme","status":"void"}"#),
        ("list_invoices", r#"{"org":"acme"}"#),
        ("get_invoice", r#"{"org":"acme","id":7}"#),
        ("create_refund", r#"{"org":"acme","amount":20}"#),
        (
            "list_invoices",
            r#"{"org":"acme","org":"globex","status":"open"}"#,
        ),
    ];
    for (tool, args) in calls {
        let decision = Call::new(tool, args)
            .map(|c| c.at(now).resource(RESOURCE))
            .and_then(|c| captix::verify(sub.as_str(), &c, &keys));
        match decision {
            Ok(a) => println!(
                "  ALLOW {tool} {args}\n        agent {} for {}, filters: {}",
                a.identity().agent,
                a.identity().user,
                a.filters()
                    .iter()
                    .map(|f| format!("{} ({} constraint(s))", f.arg, f.constraints.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(d) => println!("  DENY  {tool} {args}\n        {}: {}", d.code, d.reason),
        }
    }

    println!("\n== 4. Time passes: at +5 minutes the sub-agent's ticket has expired, the agent's has not");
    let later = Call::new("list_invoices", r#"{"org":"acme","status":"open"}"#)?
        .at(now + 300)
        .resource(RESOURCE);
    for (who, t) in [("sub-agent", sub.as_str()), ("agent", ticket.as_str())] {
        match captix::verify(t, &later, &keys) {
            Ok(_) => println!("  {who}: ALLOW"),
            Err(d) => println!("  {who}: DENY {}: {}", d.code, d.reason),
        }
    }

    println!("\n== 5. A tampered ticket is refused");
    let mut tampered = sub.as_str().to_string();
    let i = tampered.len() - 10;
    let c = if &tampered[i..=i] == "A" { "B" } else { "A" };
    tampered.replace_range(i..=i, c);
    match captix::verify(&tampered, &later.clone().at(now), &keys) {
        Ok(_) => println!("  ALLOW (this would be a bug)"),
        Err(d) => println!("  {}: {}", d.code, d.reason),
    }
    Ok(())
}

fn print_ticket(t: &Ticket) {
    let report = t.inspect();
    println!(
        "  {} bytes, root key {}",
        report.bytes,
        report.key_id.as_deref().unwrap_or("-")
    );
    for b in &report.blocks {
        println!(
            "  block {} ({}), revocation id {}…",
            b.index,
            b.kind,
            &b.revocation_id[..16]
        );
        for r in &b.restrictions {
            println!("    - {r}");
        }
        if let Some(d) = &b.description {
            if let Some(id) = &d.identity {
                println!("    - agent {} for user {}", id.agent, id.user);
            }
            if !d.grants.is_empty() {
                println!("    - grants [{}]", d.grants.join(", "));
            }
            for bu in &d.budgets {
                println!("    - budget {bu}");
            }
        }
    }
}
