//! Rendering decisions, tickets and audit logs for people and for programs.

use std::fmt::Write;

use captix::audit::Record;
use captix::{Allowed, Denial, Report};
use serde_json::Value;

pub fn allowed_text(a: &Allowed, shown_not_spent: bool) -> String {
    let mut s = String::new();
    let id = a.identity();
    match a.target() {
        captix::Target::Tool(t) => writeln!(s, "ALLOW {t}"),
        captix::Target::Uri(u) => writeln!(s, "ALLOW read {u}"),
        captix::Target::Prompt(p) => writeln!(s, "ALLOW prompt {p}"),
    }
    .ok();
    let _ = write!(s, "  agent {} acting for {}", id.agent, id.user);
    if let Some(iss) = &id.issuer {
        let _ = write!(s, " (issued by {iss})");
    }
    s.push('\n');
    for f in a.filters() {
        for c in &f.constraints {
            let _ = writeln!(
                s,
                "  row filter {} {} (block {})",
                f.arg, c.constraint, c.block
            );
        }
    }
    for b in a.budgets() {
        let _ = writeln!(
            s,
            "  budget {} (block {}){}",
            b.budget,
            b.block,
            if shown_not_spent {
                ", shown, not spent"
            } else {
                ""
            }
        );
    }
    if let Some(e) = a.expires() {
        let _ = writeln!(s, "  valid until {}", captix::time::rfc3339(e));
    }
    let chain: Vec<String> = a.chain().iter().map(|c| short(&c.to_hex())).collect();
    let _ = writeln!(s, "  chain {}", chain.join(" > "));
    s
}

pub fn denial_text(d: &Denial) -> String {
    let mut s = format!("DENY {}\n  {}\n", d.code, d.reason);
    if let Some(r) = d.retry_after {
        let _ = writeln!(s, "  retry after {r}s");
    }
    s
}

pub fn denial_json(d: &Denial) -> Value {
    serde_json::to_value(captix::DecisionJson(&Err(d.clone()))).unwrap_or(Value::Null)
}

pub fn short(hex: &str) -> String {
    format!("{}…", &hex[..hex.len().min(12)])
}

pub fn inspect_text(r: &Report, datalog: bool, sig_problem: Option<&Denial>) -> String {
    let mut s = String::new();
    let sig = match (sig_problem, &r.signatures) {
        (Some(d), _) => format!("INVALID ({}: {})", d.code, d.reason),
        (None, captix::Signatures::Verified) => "verified".into(),
        (None, _) => "not checked (pass --pubkey FILE to check them)".into(),
    };
    let _ = writeln!(
        s,
        "ticket: {} bytes, {} block{}, root key {}",
        r.bytes,
        r.blocks.len(),
        if r.blocks.len() == 1 { "" } else { "s" },
        r.key_id.as_deref().unwrap_or("(none)")
    );
    let _ = writeln!(s, "signatures: {sig}");
    for b in &r.blocks {
        let _ = writeln!(s, "\nblock {} ({})", b.index, b.kind);
        let _ = writeln!(s, "  revocation id  {}", b.revocation_id);
        if let Some(d) = &b.description {
            if let Some(id) = &d.identity {
                let _ = writeln!(s, "  agent          {}", id.agent);
                let _ = writeln!(s, "  acting for     {}", id.user);
                if let Some(i) = &id.issuer {
                    let _ = writeln!(s, "  issued by      {i}");
                }
                if !id.scopes.is_empty() {
                    let _ = writeln!(s, "  scopes         {}", id.scopes.join(", "));
                }
            }
            if !d.grants.is_empty() {
                let _ = writeln!(s, "  grants         {}", d.grants.join(", "));
            }
            if !d.uri_grants.is_empty() {
                let _ = writeln!(s, "  grants reading {}", d.uri_grants.join(", "));
            }
            if !d.prompt_grants.is_empty() {
                let _ = writeln!(s, "  grants prompts {}", d.prompt_grants.join(", "));
            }
            for r in &b.restrictions {
                let _ = writeln!(s, "  restriction    {r}");
            }
            for bu in &d.budgets {
                let _ = writeln!(s, "  budget         {bu}");
            }
        }
        if let Some(p) = &b.problem {
            let _ = writeln!(s, "  problem        {p}");
        }
        if b.kind == "foreign" {
            let _ = writeln!(
                s,
                "  (written by another Biscuit tool: its Datalog is enforced as is)"
            );
        }
        if datalog {
            let _ = writeln!(s, "  datalog:");
            for line in b.datalog.lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
    }
    s
}

pub fn audit_text(records: &[Record]) -> String {
    let mut s = String::new();
    for r in records {
        let when = captix::time::rfc3339(r.time);
        match r.kind.as_str() {
            "outcome" => {
                let _ = writeln!(
                    s,
                    "#{:<4} {when}  outcome of #{}: {} in {} ms",
                    r.seq,
                    r.decision_seq.unwrap_or(0),
                    r.outcome.as_deref().unwrap_or("?"),
                    r.duration_ms.unwrap_or(0)
                );
            }
            "grant" | "refusal" | "revocation" | "client_secret" => {
                let who = match (&r.agent, &r.user, &r.claimed) {
                    (Some(a), Some(u), _) => format!("{} for {}", clean(a), clean(u)),
                    (Some(a), None, _) => clean(a),
                    (None, _, Some(c)) => format!("claimed {:?} (not authenticated)", c),
                    _ => "(no client)".into(),
                };
                let what = match r.kind.as_str() {
                    "grant" => "GRANT".to_string(),
                    "revocation" => "REVOKE".to_string(),
                    "client_secret" => "NEW SECRET".to_string(),
                    _ => format!("REFUSE {}", r.code.as_deref().unwrap_or("?")),
                };
                let scopes = r
                    .scope_granted
                    .as_ref()
                    .or(r.scope_requested.as_ref())
                    .map(|s| format!("scope {s:?}"))
                    .unwrap_or_default();
                let what = clean(&what);
                let line = format!("#{:<4} {when}  {what:<22} {who}  {scopes}", r.seq);
                let _ = writeln!(s, "{}", line.trim_end());
                if let Some(reason) = &r.reason {
                    let _ = writeln!(s, "       {}", clean(reason));
                }
                if let Some(id) = r.chain.first() {
                    let _ = writeln!(s, "       ticket {}", short(id));
                }
            }
            _ => {
                let who = match (&r.agent, &r.user) {
                    (Some(a), Some(u)) => format!("{} for {}", clean(a), clean(u)),
                    _ => "(unreadable ticket)".into(),
                };
                let args = r
                    .args
                    .as_ref()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| clean(&format!("{k}={v}")))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                let verdict = match r.decision.as_deref() {
                    Some("allow") => "ALLOW".to_string(),
                    _ => format!("DENY {}", r.code.as_deref().unwrap_or("?")),
                };
                let _ = writeln!(
                    s,
                    "#{:<4} {when}  {verdict:<22} {who}  {} {args}",
                    r.seq,
                    clean(r.tool.as_deref().unwrap_or("?"))
                );
                if let Some(reason) = &r.reason {
                    let _ = writeln!(s, "       {}", clean(reason));
                }
                if r.chain.len() > 1 {
                    let chain: Vec<String> = r.chain.iter().map(|c| short(c)).collect();
                    let _ = writeln!(s, "       via {}", chain.join(" > "));
                }
            }
        }
    }
    s
}

/// Text from a record for a terminal: control characters (newlines, escape sequences) are
/// written escaped, so a value can neither forge a line nor drive the terminal.
fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_values_cannot_forge_lines_or_drive_the_terminal() {
        let mut refusal = Record::issuer(
            "refusal",
            1_800_000_000,
            None,
            None,
            None,
            Some(("invalid_client", "no")),
        );
        refusal.claimed = Some("x\n#99   GRANT  refund-bot\u{1b}[2K".into());
        let mut decision = Record::issuer(
            "grant",
            1_800_000_000,
            Some("a\nb"),
            Some("u\u{7}"),
            None,
            None,
        );
        decision.reason = Some("r\r\n#2 fake".into());
        let text = audit_text(&[refusal, decision]);
        assert_eq!(
            text.lines().count(),
            4,
            "two records of two lines each: {text}"
        );
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\r'));
        assert!(
            text.contains("claimed \"x\\n#99   GRANT  refund-bot\\u{1b}[2K\" (not authenticated)"),
            "{text}"
        );
        assert!(text.contains("a\\nb for u\\u{7}"), "{text}");
    }
}
