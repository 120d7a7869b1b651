//! From a request to a ticket's contents (docs §17.2–17.3): scopes (RFC 6749 §3.3), the
//! resource (RFC 8707) and `authorization_details` (RFC 9396) against the policy.

use std::collections::BTreeSet;

use captix::{Budget, RowFilter, SigningKey, Ticket, ToolSel};
use serde::{Deserialize, Serialize};

use crate::config::Mapping;
use crate::error::{quote, OAuthError};

/// The `type` of captix's authorization details (RFC 9396 §2).
pub const DETAILS_TYPE: &str = "captix";
/// At most this many requested scopes.
const MAX_SCOPES: usize = 32;
/// At most this many bytes of `authorization_details`.
pub const MAX_DETAILS: usize = 8192;
/// At most this many row filters in a ticket the issuer mints.
pub const MAX_ROWS: usize = 64;

/// What a client asks for.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    /// The authenticated client id.
    pub client: &'a str,
    /// The user the ticket acts for; `None` for the client's own (`client_credentials`).
    pub user: Option<&'a str>,
    /// The `scope` parameter, if given (space-separated).
    pub scope: Option<&'a str>,
    /// The `resource` parameter, if given.
    pub resource: Option<&'a str>,
    /// The `authorization_details` parameter, if given (a JSON array).
    pub details: Option<&'a str>,
}

/// RFC 9396 authorization details of type `captix`: less than the scopes give. Absent members
/// keep what the scopes grant; `rows` and `budgets` are added restrictions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Details {
    /// Always `captix`.
    #[serde(rename = "type")]
    pub kind: String,
    /// RFC 9396 §2.2: the resource; if given, it must be the request's resource.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub locations: Option<Vec<String>>,
    /// Only these tools (each granted by the scopes).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tools: Option<Vec<String>>,
    /// Only these resource URI patterns (each within a granted one).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uris: Option<Vec<String>>,
    /// Only these prompts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prompts: Option<Vec<String>>,
    /// More row filters (short forms, spec §4.6).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows: Option<Vec<String>>,
    /// More budgets (short forms).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub budgets: Option<Vec<String>>,
}

/// The authorization details as granted (RFC 9396 §7): every member filled in, rows and
/// budgets in their structured form (spec §6.2), which is what a reader compares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Granted {
    /// `captix`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The audience.
    pub locations: Vec<String>,
    /// Granted tools.
    pub tools: Vec<String>,
    /// Granted resource URI patterns.
    pub uris: Vec<String>,
    /// Granted prompts.
    pub prompts: Vec<String>,
    /// Every row filter of the ticket.
    pub rows: Vec<RowFilter>,
    /// Every budget of the ticket.
    pub budgets: Vec<Budget>,
}

/// A ticket's contents, decided; [`Grant::mint`] signs it.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The client (the ticket's agent).
    pub client: String,
    /// The user it acts for.
    pub user: String,
    /// Granted scopes, sorted.
    pub scopes: Vec<String>,
    /// The audience (normalized).
    pub resource: String,
    /// Granted tools.
    pub tools: Vec<String>,
    /// Granted resource URI patterns.
    pub uris: Vec<String>,
    /// Granted prompts.
    pub prompts: Vec<String>,
    /// Row filters.
    pub rows: Vec<RowFilter>,
    /// Budgets.
    pub budgets: Vec<Budget>,
    /// Lifetime, seconds.
    pub lifetime: u64,
    /// The granted authorization details, when some were requested (RFC 9396 §7).
    pub details: Option<Granted>,
}

impl Grant {
    /// Signs the ticket, valid from `now` for the grant's lifetime.
    pub fn mint(&self, key: &SigningKey, issuer: &str, now: u64) -> Result<Ticket, captix::Error> {
        let mut b = Ticket::mint(key, self.client.clone(), self.user.clone())
            .issuer(issuer)
            .resource(self.resource.clone())
            .expires_at(now.saturating_add(self.lifetime));
        for s in &self.scopes {
            b = b.scope(s.clone());
        }
        for t in &self.tools {
            b = b.tool(t.clone());
        }
        for u in &self.uris {
            b = b.uri(u.clone());
        }
        for p in &self.prompts {
            b = b.prompt(p.clone());
        }
        for r in &self.rows {
            b = b.row(r.clone());
        }
        for x in &self.budgets {
            b = b.budget(x.clone());
        }
        b.sign()
    }
}

/// Decides what `req` gets under `policy`, or why it gets nothing.
///
/// Scopes (RFC 6749 §3.3): without `scope`, every scope the client may have for the resource;
/// an unknown scope is refused; a known scope the client may not have is dropped (the response
/// then names the granted ones); none left is refused.
pub fn decide(policy: &Mapping, req: &Request<'_>) -> Result<Grant, OAuthError> {
    let client = policy.clients.get(req.client).ok_or_else(|| {
        OAuthError::invalid_client(format!("unknown client {}", quote(req.client, 64)))
    })?;
    let resource = match req.resource {
        Some(r) => {
            let r = captix::normalize_resource(r);
            if !policy.resources.contains_key(&r) {
                return Err(OAuthError::invalid_target(format!(
                    "unknown resource {}",
                    quote(&r, 100)
                )));
            }
            r
        }
        None if policy.resources.len() == 1 => {
            policy.resources.keys().next().cloned().unwrap_or_default()
        }
        None => {
            return Err(OAuthError::invalid_target(
                "name the resource (RFC 8707 `resource`): this issuer serves several",
            ))
        }
    };
    let understood = &policy.resources[&resource];
    let allowed: BTreeSet<&String> = client
        .scopes
        .iter()
        .filter(|s| understood.contains(s))
        .collect();
    let scopes: Vec<String> = match req.scope {
        None => allowed.iter().map(|s| s.to_string()).collect(),
        Some(text) => {
            let asked: Vec<&str> = text.split(' ').collect();
            if asked.len() > MAX_SCOPES {
                return Err(OAuthError::invalid_scope(format!(
                    "more than {MAX_SCOPES} scopes"
                )));
            }
            for s in &asked {
                if !captix::is_scope_token(s) {
                    return Err(OAuthError::invalid_scope(format!(
                        "{} is not a scope-token (scopes are separated by one space)",
                        quote(s, 64)
                    )));
                }
                if !policy.scopes.contains_key(*s) {
                    return Err(OAuthError::invalid_scope(format!(
                        "unknown scope {}",
                        quote(s, 64)
                    )));
                }
            }
            let asked: BTreeSet<&str> = asked.into_iter().collect();
            allowed
                .iter()
                .filter(|s| asked.contains(s.as_str()))
                .map(|s| s.to_string())
                .collect()
        }
    };
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope(format!(
            "client {} may have none of the requested scopes for {}",
            quote(req.client, 64),
            quote(&resource, 100)
        )));
    }

    let user = req.user.unwrap_or(&client.user);
    let mut g = Grant {
        client: req.client.to_string(),
        user: user.to_string(),
        scopes,
        resource,
        tools: vec![],
        uris: vec![],
        prompts: vec![],
        rows: vec![],
        budgets: client.budgets.clone(),
        lifetime: client.lifetime.unwrap_or(policy.lifetime),
        details: None,
    };
    let empty = Default::default();
    let attrs = policy.users.get(user).unwrap_or(&empty);
    for name in &g.scopes {
        let s = &policy.scopes[name];
        push_new(&mut g.tools, &s.tools);
        push_new(&mut g.uris, &s.uris);
        push_new(&mut g.prompts, &s.prompts);
        for r in &s.rows {
            // For a client's own user the configuration was checked: every template fills.
            // Another user may lack an attribute: then nothing is granted, never an
            // unrestricted tool.
            let f = r.fill(attrs).ok_or_else(|| {
                OAuthError::invalid_scope(format!(
                    "scope {name} needs attribute {} of user {}",
                    r.attribute.as_deref().unwrap_or("?"),
                    quote(user, 64)
                ))
            })?;
            if !g.rows.contains(&f) {
                g.rows.push(f);
            }
        }
        for b in &s.budgets {
            if !g.budgets.contains(b) {
                g.budgets.push(b.clone());
            }
        }
    }
    if let Some(text) = req.details {
        narrow(&mut g, text)?;
    }
    Ok(g)
}

fn push_new(into: &mut Vec<String>, from: &[String]) {
    for x in from {
        if !into.contains(x) {
            into.push(x.clone());
        }
    }
}

/// RFC 9396: the client asks for less than its scopes give. Anything not within the grant is
/// refused (`invalid_authorization_details`), never silently widened or dropped.
fn narrow(g: &mut Grant, text: &str) -> Result<(), OAuthError> {
    if text.len() > MAX_DETAILS {
        return Err(OAuthError::invalid_details(format!(
            "authorization_details is longer than {MAX_DETAILS} bytes"
        )));
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| OAuthError::invalid_details(format!("not a JSON array of objects: {e}")))?;
    let [one] = list.as_slice() else {
        return Err(OAuthError::invalid_details(format!(
            "give exactly one object of type {DETAILS_TYPE:?} (got {})",
            list.len()
        )));
    };
    let kind = one.get("type").and_then(|t| t.as_str()).unwrap_or("");
    if kind != DETAILS_TYPE {
        return Err(OAuthError::invalid_details(format!(
            "unknown type {} (this issuer knows {DETAILS_TYPE:?})",
            quote(kind, 40)
        )));
    }
    let d: Details = serde_json::from_value(one.clone())
        .map_err(|e| OAuthError::invalid_details(format!("{e}")))?;
    if let Some(locations) = &d.locations {
        if locations.is_empty()
            || locations
                .iter()
                .any(|l| captix::normalize_resource(l) != g.resource)
        {
            return Err(OAuthError::invalid_details(format!(
                "locations must name the requested resource {}",
                quote(&g.resource, 100)
            )));
        }
    }
    if let Some(tools) = &d.tools {
        for t in tools {
            if !g.tools.contains(t) {
                return Err(OAuthError::invalid_details(format!(
                    "tool {} is not granted by the scopes {}",
                    quote(t, 64),
                    g.scopes.join(" ")
                )));
            }
        }
        g.tools = dedup(tools);
        // Rows and budgets of tools no longer granted are dropped: they could deny nothing.
        g.rows.retain(|r| match &r.tool {
            ToolSel::Named(t) => tools.contains(t),
            ToolSel::Any => true,
        });
        g.budgets.retain(|b| match &b.tool {
            ToolSel::Named(t) => tools.contains(t),
            ToolSel::Any => true,
        });
    }
    if let Some(uris) = &d.uris {
        for u in uris {
            captix::validate_uri(u, true)
                .map_err(|e| OAuthError::invalid_details(e.to_string()))?;
            if !g.uris.iter().any(|p| captix::uri_pattern_admits(p, u)) {
                return Err(OAuthError::invalid_details(format!(
                    "resource pattern {} is not within the granted ones",
                    quote(u, 100)
                )));
            }
        }
        g.uris = dedup(uris);
    }
    if let Some(prompts) = &d.prompts {
        for p in prompts {
            if !g.prompts.contains(p) {
                return Err(OAuthError::invalid_details(format!(
                    "prompt {} is not granted by the scopes",
                    quote(p, 64)
                )));
            }
        }
        g.prompts = dedup(prompts);
    }
    if g.tools.is_empty() && g.uris.is_empty() && g.prompts.is_empty() {
        return Err(OAuthError::invalid_details(
            "the details leave nothing granted",
        ));
    }
    let covered = |sel: &ToolSel, what: &str, text: &str| match sel {
        ToolSel::Named(t) if !g.tools.contains(t) => Err(OAuthError::invalid_details(format!(
            "{what} {}: tool {} is not granted",
            quote(text, 100),
            quote(t, 64)
        ))),
        _ => Ok(()),
    };
    let mut rows = Vec::new();
    for r in d.rows.iter().flatten() {
        let f: RowFilter = r
            .parse()
            .map_err(|e: captix::Error| OAuthError::invalid_details(e.to_string()))?;
        covered(&f.tool, "row", r)?;
        rows.push(f);
    }
    let mut budgets = Vec::new();
    for b in d.budgets.iter().flatten() {
        let x: Budget = b
            .parse()
            .map_err(|e: captix::Error| OAuthError::invalid_details(e.to_string()))?;
        covered(&x.tool, "budget", b)?;
        budgets.push(x);
    }
    g.rows.extend(rows);
    g.budgets.extend(budgets);
    // The request's own excess is its error (400), not the server's (a ticket that cannot be
    // signed would otherwise answer 503, and a client would retry it forever).
    if g.rows.len() > MAX_ROWS {
        return Err(OAuthError::invalid_details(format!(
            "{} row filters: at most {MAX_ROWS}",
            g.rows.len()
        )));
    }
    if g.budgets.len() > captix::limits::MAX_BUDGETS_PER_BLOCK {
        return Err(OAuthError::invalid_details(format!(
            "{} budgets: at most {}",
            g.budgets.len(),
            captix::limits::MAX_BUDGETS_PER_BLOCK
        )));
    }
    // RFC 9396 §7: the response carries what was granted, with every member filled in.
    g.details = Some(Granted {
        kind: DETAILS_TYPE.into(),
        locations: vec![g.resource.clone()],
        tools: g.tools.clone(),
        uris: g.uris.clone(),
        prompts: g.prompts.clone(),
        rows: g.rows.clone(),
        budgets: g.budgets.clone(),
    });
    Ok(())
}

fn dedup(v: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    push_new(&mut out, v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn policy() -> Mapping {
        let text = r#"
issuer = "https://as.example"
keys = ["k"]
revocations = "r"
[resources."https://mcp.example/mcp"]
scopes = ["read", "write"]
[resources."https://other.example/mcp"]
scopes = ["read"]
[scopes.read]
tools = ["list_invoices", "get_invoice"]
uris = ["invoices://acme/*"]
rows = ["org={user.org}"]
[scopes.write]
tools = ["create_refund"]
budgets = ["create_refund:5/hour"]
[scopes.admin]
tools = ["delete_all"]
[clients.bot]
scopes = ["read", "write"]
user = "svc"
budgets = ["*:100/min"]
[users.svc]
org = "acme"
"#;
        Config::parse(text, std::path::Path::new("/"))
            .expect("config")
            .policy
    }

    fn ask<'a>(scope: Option<&'a str>, details: Option<&'a str>) -> Request<'a> {
        Request {
            client: "bot",
            user: None,
            scope,
            resource: Some("https://mcp.example/mcp"),
            details,
        }
    }

    #[test]
    fn scopes_map_to_tools_rows_and_budgets() {
        let g = decide(&policy(), &ask(Some("read"), None)).expect("grant");
        assert_eq!(g.scopes, ["read"]);
        assert_eq!(g.tools, ["list_invoices", "get_invoice"]);
        let row = |s: &str| s.parse::<RowFilter>().expect("row");
        assert_eq!(
            g.rows,
            [row("list_invoices:org=acme"), row("get_invoice:org=acme")]
        );
        assert_eq!(g.budgets, ["100/min".parse::<Budget>().expect("budget")]);
        let all = decide(&policy(), &ask(None, None)).expect("grant");
        assert_eq!(
            all.scopes,
            ["read", "write"],
            "no scope: all the client may have"
        );
    }

    #[test]
    fn scopes_beyond_the_client_are_dropped_and_unknown_ones_refused() {
        let g = decide(&policy(), &ask(Some("read admin"), None)).expect("grant");
        assert_eq!(
            g.scopes,
            ["read"],
            "admin is known but not the client's: dropped"
        );
        let only_admin = decide(&policy(), &ask(Some("admin"), None)).expect_err("none");
        assert_eq!(only_admin.code, "invalid_scope");
        let unknown = decide(&policy(), &ask(Some("read root"), None)).expect_err("unknown");
        assert_eq!(unknown.code, "invalid_scope");
        let double_space = decide(&policy(), &ask(Some("read  write"), None)).expect_err("empty");
        assert_eq!(double_space.code, "invalid_scope");
        // The other resource understands only `read`: `write` is not the client's there.
        let mut r = ask(Some("write"), None);
        r.resource = Some("https://other.example/mcp");
        assert_eq!(
            decide(&policy(), &r).expect_err("none").code,
            "invalid_scope"
        );
    }

    #[test]
    fn resources_must_be_known_and_named_when_several() {
        let mut r = ask(None, None);
        r.resource = Some("https://evil.example/mcp");
        assert_eq!(
            decide(&policy(), &r).expect_err("unknown").code,
            "invalid_target"
        );
        r.resource = None;
        assert_eq!(
            decide(&policy(), &r).expect_err("several").code,
            "invalid_target"
        );
        r.resource = Some("HTTPS://MCP.example/mcp");
        assert_eq!(
            decide(&policy(), &r).expect("normalized").resource,
            "https://mcp.example/mcp"
        );
    }

    #[test]
    fn details_narrow_and_never_widen() {
        let d = r#"[{"type":"captix","tools":["list_invoices"],"rows":["list_invoices:status=paid"],"budgets":["list_invoices:10"]}]"#;
        let g = decide(&policy(), &ask(Some("read"), Some(d))).expect("grant");
        assert_eq!(g.tools, ["list_invoices"]);
        let row = |s: &str| s.parse::<RowFilter>().expect("row");
        let rows = [
            row("list_invoices:org=acme"),
            row("list_invoices:status=paid"),
        ];
        assert_eq!(g.rows, rows);
        let granted = g.details.expect("details echoed");
        assert_eq!(granted.locations, ["https://mcp.example/mcp"]);
        assert_eq!(granted.rows, rows);
        for (bad, says) in [
            (
                r#"[{"type":"captix","tools":["create_refund"]}]"#,
                "not granted",
            ),
            (
                r#"[{"type":"captix","tools":[],"uris":[]}]"#,
                "nothing granted",
            ),
            (
                r#"[{"type":"captix","uris":["invoices://globex/*"]}]"#,
                "not within",
            ),
            (
                r#"[{"type":"captix","uris":["invoices://acme/../x"]}]"#,
                "segments are refused",
            ),
            (
                r#"[{"type":"captix","rows":["get_weather:a=1"]}]"#,
                "not granted",
            ),
            (
                r#"[{"type":"captix","locations":["https://other.example/mcp"]}]"#,
                "locations",
            ),
            (
                r#"[{"type":"captix","tool":["list_invoices"]}]"#,
                "unknown field",
            ),
            (r#"[{"type":"payment"}]"#, "unknown type"),
            (r#"[{"type":"captix"},{"type":"captix"}]"#, "exactly one"),
            (r#"{"type":"captix"}"#, "JSON array"),
            ("[", "JSON array"),
        ] {
            let e = decide(&policy(), &ask(Some("read"), Some(bad))).expect_err(bad);
            assert_eq!(e.code, "invalid_authorization_details", "{bad}");
            assert!(e.description.contains(says), "{bad}: {}", e.description);
        }
    }

    #[test]
    fn another_user_without_the_attribute_gets_nothing() {
        let mut r = ask(Some("read"), None);
        r.user = Some("alice");
        let e = decide(&policy(), &r).expect_err("no org for alice");
        assert_eq!(e.code, "invalid_scope");
        assert!(e.description.contains("attribute org"), "{}", e.description);
        r.scope = Some("write");
        assert_eq!(decide(&policy(), &r).expect("no template").user, "alice");
    }

    #[test]
    fn the_minted_ticket_carries_the_grant() {
        let key = SigningKey::from_seed(&[9; 32]);
        let g = decide(&policy(), &ask(Some("read"), None)).expect("grant");
        let t = g
            .mint(&key, "https://as.example", 1_800_000_000)
            .expect("mint");
        assert_eq!(t.identity().agent, "bot");
        assert_eq!(t.identity().user, "svc");
        assert_eq!(t.identity().scopes, ["read"]);
        assert_eq!(t.expires(), Some(1_800_000_000 + 900));
        let keys = captix::KeySet::from(key.public());
        let call = |tool: &str, args: &str| {
            captix::Call::new(tool, args)
                .expect("call")
                .at(1_800_000_001)
                .resource("https://mcp.example/mcp")
        };
        assert!(captix::verify(
            t.as_str(),
            &call("list_invoices", r#"{"org":"acme"}"#),
            &keys
        )
        .is_ok());
        let other = captix::verify(
            t.as_str(),
            &call("list_invoices", r#"{"org":"globex"}"#),
            &keys,
        );
        assert_eq!(other.expect_err("row").code, captix::Code::ArgDenied);
        let refund = captix::verify(
            t.as_str(),
            &call("create_refund", r#"{"org":"acme"}"#),
            &keys,
        );
        assert_eq!(
            refund.expect_err("scope").code,
            captix::Code::ToolNotGranted
        );
    }
}
