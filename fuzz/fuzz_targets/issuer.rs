//! The issuer's inputs (docs §17): its configuration file, a token request's `scope`,
//! `resource` and `authorization_details` against a fixed policy, and client assertions.
//! Whatever is granted stays within the policy; no assertion passes without the client's key.
//!
//! Input: one mode byte, then `c` the configuration text; `g` SCOPE \n RESOURCE \n DETAILS
//! (an empty line for an absent parameter); `j` a compact JWT.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use captix_issuer::client_auth::{authenticate, Presented};
use captix_issuer::config::Mapping;
use captix_issuer::grant::{decide, Request};
use captix_issuer::store::MemoryStore;
use captix_issuer::Config;
use libfuzzer_sys::fuzz_target;

const POLICY: &str = r#"
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
prompts = ["triage"]
rows = ["org={user.org}"]
[scopes.write]
tools = ["create_refund"]
rows = ["amount<=500"]
budgets = ["create_refund:5/hour"]
[scopes.admin]
tools = ["delete_all"]
[clients.bot]
scopes = ["read", "write"]
user = "svc"
budgets = ["*:100/min"]
public_key = "ed25519/02b18522d629ebee152e50b9ee78bb05010be210d568019c072d2878965c778f"
[users.svc]
org = "acme"
"#;

fn policy() -> &'static Mapping {
    static P: OnceLock<Mapping> = OnceLock::new();
    P.get_or_init(|| {
        Config::parse(POLICY, Path::new("/"))
            .expect("policy")
            .policy
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut chars = text.chars();
    let mode = chars.next();
    let rest = chars.as_str();
    match mode {
        Some('c') => {
            let _ = Config::parse(rest, Path::new("/"));
        }
        Some('g') => grant(rest),
        Some('j') => {
            let p = Presented::Assertion {
                id: None,
                jwt: rest.to_string(),
            };
            let r = authenticate(
                &p,
                policy(),
                "https://as.example",
                &MemoryStore::new(),
                1_800_000_000,
            );
            assert!(r.is_err(), "an assertion passed without the client's key");
        }
        _ => {}
    }
});

fn grant(rest: &str) {
    let mut parts = rest.splitn(3, '\n');
    fn opt(s: Option<&str>) -> Option<&str> {
        s.filter(|s| !s.is_empty())
    }
    let (scope, resource, details) = (opt(parts.next()), opt(parts.next()), opt(parts.next()));
    let p = policy();
    let req = Request {
        client: "bot",
        user: None,
        scope,
        resource,
        details,
    };
    let Ok(g) = decide(p, &req) else {
        return;
    };
    // Within the policy: scopes the client may have for a known resource, and only what they
    // grant.
    let client = &p.clients["bot"];
    assert!(p.resources.contains_key(&g.resource));
    let mut tools = BTreeSet::new();
    let mut uris = Vec::new();
    for s in &g.scopes {
        assert!(client.scopes.contains(s) && p.resources[&g.resource].contains(s));
        tools.extend(p.scopes[s].tools.iter().cloned());
        uris.extend(p.scopes[s].uris.iter().cloned());
    }
    assert!(
        g.tools.iter().all(|t| tools.contains(t)),
        "a tool beyond the scopes"
    );
    assert!(
        g.uris.iter().all(|u| uris
            .iter()
            .any(|granted| captix::uri_pattern_admits(granted, u))),
        "a URI beyond the scopes"
    );
    // Every row of the scopes is still there (details only add).
    if g.tools.iter().any(|t| t == "list_invoices") {
        let org: captix::RowFilter = "list_invoices:org=acme".parse().expect("row");
        assert!(g.rows.contains(&org), "the org row was dropped");
    }
    // And it mints into a ticket that reads back with the same contents.
    let key = captix::SigningKey::from_seed(&[5; 32]);
    if let Ok(t) = g.mint(&key, "https://as.example", 1_800_000_000) {
        let keys = captix::KeySet::from(key.public());
        let back = captix::Ticket::parse(t.as_str(), &keys).expect("reads back");
        assert_eq!(back.grants(), g.tools.as_slice());
        assert_eq!(back.expires(), Some(1_800_000_000 + g.lifetime));
    }
}
