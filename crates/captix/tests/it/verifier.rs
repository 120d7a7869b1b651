//! The cached `Verifier`: same answers as the reference path, budgets, revocation, audit.

use std::sync::Arc;

use captix::audit::{verify_log, Durability, FileAudit, MemoryAudit, Redaction};
use captix::budget::MemoryBudgets;
use captix::revocation::MemoryRevocations;
use captix::{Call, Code, KeySet, SigningKey, Ticket, Verifier};
use proptest::prelude::*;

use crate::common::{build, call, grants, key, restrictions};

const NOW: u64 = 1_800_000_000;
const RES: &str = "https://mcp.example/invoices";

fn root() -> SigningKey {
    SigningKey::from_seed(&[3u8; 32])
}

fn ticket(k: &SigningKey) -> Ticket {
    Ticket::mint(k, "agent", "alice")
        .tool("list_invoices")
        .tool("get_invoice")
        .row("*:org=acme".parse().expect("row"))
        .budget("5".parse().expect("budget"))
        .expires_at(NOW + 3600)
        .resource(RES)
        .sign()
        .expect("mint")
}

fn list(org: &str) -> Call {
    Call::new("list_invoices", &format!(r#"{{"org":"{org}"}}"#))
        .expect("args")
        .at(NOW)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Cold check, warm (cached) check and the reference path agree on every call.
    #[test]
    fn cached_checks_equal_the_reference_path(
        (g, auth, rest) in (grants(), restrictions(), prop::collection::vec(restrictions(), 0..7)),
        calls in prop::collection::vec(call(), 16),
    ) {
        let k = key();
        let t = build(&k, &g, &auth, &rest);
        // Equal answers, not budgets, are the point here: the same calls repeat.
        let v = Verifier::builder(KeySet::from(k.public()))
            .without_budgets()
            .allow_tickets_without_expiry()
            .allow_tickets_without_audience()
            .build();
        for c in &calls {
            let reference = t.authorize(c);
            for _ in 0..2 {
                let cached = v.check(t.as_str(), c);
                prop_assert_eq!(cached.as_ref().err(), reference.as_ref().err());
            }
        }
        prop_assert_eq!(v.cached(), 1);
    }
}

#[test]
fn budgets_attenuate_and_are_shared_by_parent_and_child() {
    let k = root();
    let parent = ticket(&k);
    let child = parent
        .attenuate()
        .budget("3/min".parse().expect("b"))
        .sign()
        .expect("att");
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .budgets(Arc::new(MemoryBudgets::new()))
        .build();
    for _ in 0..3 {
        v.check(child.as_str(), &list("acme"))
            .expect("child within 3/min");
    }
    let d = v
        .check(child.as_str(), &list("acme"))
        .expect_err("child's own budget");
    assert_eq!(
        (d.code, d.block, d.retry_after),
        (Code::BudgetExhausted, Some(1), Some(20))
    );
    assert!(d.reason.contains("3 calls per 1min"), "{}", d.reason);
    // The refused call spent nothing: the parent has 5 - 3 = 2 left.
    v.check(parent.as_str(), &list("acme")).expect("parent 4th");
    v.check(parent.as_str(), &list("acme")).expect("parent 5th");
    let d = v
        .check(parent.as_str(), &list("acme"))
        .expect_err("parent lifetime budget");
    assert_eq!(
        (d.code, d.block, d.retry_after),
        (Code::BudgetExhausted, Some(0), None)
    );
    // The child refills its own window but the parent's lifetime budget binds it.
    let later = list("acme").at(NOW + 120);
    let d = v
        .check(child.as_str(), &later)
        .expect_err("parent binds child");
    assert_eq!((d.code, d.block), (Code::BudgetExhausted, Some(0)));
    // A denied call (wrong org) spends nothing either.
    let fresh = ticket(&k);
    for _ in 0..10 {
        assert_eq!(
            v.check(fresh.as_str(), &list("globex"))
                .expect_err("row")
                .code,
            Code::ArgDenied
        );
    }
    for _ in 0..5 {
        v.check(fresh.as_str(), &list("acme"))
            .expect("fresh budget intact");
    }
}

#[test]
fn revocation_cascades_to_cached_descendants() {
    let k = root();
    let parent = ticket(&k);
    let child = parent
        .attenuate()
        .tool("list_invoices")
        .sign()
        .expect("att");
    let sibling = ticket(&k);
    let revoked = Arc::new(MemoryRevocations::new());
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .revocations(revoked.clone())
        .build();
    v.check(child.as_str(), &list("acme")).expect("cached now");
    v.check(parent.as_str(), &list("acme")).expect("cached now");
    // Revoke the parent's authority block: the parent and every descendant are denied.
    revoked.revoke(parent.revocation_ids().next().expect("authority id"));
    let d = v
        .check(child.as_str(), &list("acme"))
        .expect_err("child revoked");
    assert_eq!((d.code, d.block), (Code::Revoked, Some(0)));
    assert_eq!(
        v.check(parent.as_str(), &list("acme"))
            .expect_err("parent")
            .code,
        Code::Revoked
    );
    v.check(sibling.as_str(), &list("acme"))
        .expect("an unrelated ticket is unaffected");
    // Revoking only the child's block leaves the parent valid.
    let p2 = ticket(&k);
    let c2 = p2.attenuate().tool("list_invoices").sign().expect("att");
    revoked.revoke(c2.revocation_ids().nth(1).expect("child id"));
    assert_eq!(
        v.check(c2.as_str(), &list("acme"))
            .expect_err("child")
            .block,
        Some(1)
    );
    v.check(p2.as_str(), &list("acme"))
        .expect("parent of a revoked child");
}

#[test]
fn resource_is_the_servers() {
    let k = root();
    let t = ticket(&k);
    let elsewhere = Verifier::builder(KeySet::from(k.public()))
        .resource("https://other.example")
        .build();
    let c = list("acme").resource(RES); // a caller cannot choose the server's resource
    assert_eq!(
        elsewhere
            .check(t.as_str(), &c)
            .expect_err("other server")
            .code,
        Code::WrongResource
    );
}

#[test]
fn hand_written_checks_fall_back_and_still_spend() {
    let k = root();
    let t = Ticket::mint(&k, "a", "u")
        .tool("t")
        .budget("2".parse().expect("b"))
        .datalog(r#"check if arg("/x", $x), $x.length() <= 3"#)
        .expires_at(NOW + 60)
        .sign()
        .expect("mint");
    let v = Verifier::builder(KeySet::from(k.public()))
        .budgets(Arc::new(MemoryBudgets::new()))
        .build();
    let ok = Call::new("t", r#"{"x":"abc"}"#).expect("args").at(NOW);
    let long = Call::new("t", r#"{"x":"abcd"}"#).expect("args").at(NOW);
    assert_eq!(
        v.check(t.as_str(), &long).expect_err("check").code,
        Code::CheckFailed
    );
    v.check(t.as_str(), &ok).expect("1");
    v.check(t.as_str(), &ok).expect("2");
    assert_eq!(
        v.check(t.as_str(), &ok).expect_err("3").code,
        Code::BudgetExhausted
    );
}

#[test]
fn callable_tools_follow_grants_and_tool_lists() {
    let k = root();
    let t = ticket(&k);
    let child = t
        .attenuate()
        .tool("list_invoices")
        .tool("create_refund")
        .sign()
        .expect("att");
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .build();
    assert_eq!(
        v.callable_tools(t.as_str(), NOW).expect("valid"),
        vec!["get_invoice", "list_invoices"]
    );
    assert_eq!(
        v.callable_tools(child.as_str(), NOW).expect("valid"),
        vec!["list_invoices"]
    );
    assert_eq!(
        v.callable_tools(child.as_str(), NOW + 3600)
            .expect_err("expired")
            .code,
        Code::Expired
    );
}

#[test]
fn every_decision_is_audited_and_the_log_verifies() {
    let k = root();
    let t = ticket(&k);
    let dir = std::env::temp_dir().join(format!("captix-vaudit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("audit.jsonl");
    let _ = std::fs::remove_file(&path);
    let sink = Arc::new(FileAudit::open(&path, Durability::Flush).expect("open"));
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .audit(sink, Redaction::Except(vec!["/org".into()]))
        .build();
    let checked = v.check_audited(t.as_str(), &list("acme"));
    let seq = checked.audit_seq.expect("audited");
    v.record_outcome(seq, NOW, "success", 3).expect("outcome");
    v.check(t.as_str(), &list("globex")).expect_err("denied");
    v.check("captix1_garbage", &list("acme"))
        .expect_err("malformed");
    let text = std::fs::read_to_string(&path).expect("read");
    let records = verify_log(text.as_bytes()).expect("chain holds");
    assert_eq!(records.len(), 4);
    assert_eq!(records[0].decision.as_deref(), Some("allow"));
    assert_eq!(records[0].agent.as_deref(), Some("agent"));
    assert_eq!(records[0].chain.len(), 1);
    assert_eq!(records[1].outcome.as_deref(), Some("success"));
    assert_eq!(records[1].decision_seq, Some(seq));
    assert_eq!(records[2].code.as_deref(), Some("arg_denied"));
    assert_eq!(records[2].args.as_ref().expect("args")["/org"], "globex");
    assert_eq!(records[3].code.as_deref(), Some("malformed"));
    assert!(records[3].agent.is_none());
    // Deleting the second line is detected at the line after it.
    let lines: Vec<&str> = text.lines().collect();
    let cut = [lines[0], lines[2], lines[3]].join("\n");
    assert_eq!(verify_log(cut.as_bytes()).expect_err("deleted").line, 2);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn an_audit_sink_that_fails_fails_the_call() {
    struct Broken;
    impl captix::audit::AuditSink for Broken {
        fn append(&self, _: captix::audit::Record) -> Result<u64, captix::Denial> {
            Err(captix::Denial::new(Code::StoreUnavailable, "disk full"))
        }
    }
    let k = root();
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .audit(Arc::new(Broken), Redaction::Keep)
        .build();
    assert_eq!(
        v.check(ticket(&k).as_str(), &list("acme"))
            .expect_err("unaudited")
            .code,
        Code::StoreUnavailable
    );
    let _ = MemoryAudit::new();
}

#[test]
fn the_cache_is_bounded_and_drops_expired_tickets() {
    let k = root();
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .cache_bytes(64 * 8192)
        .build();
    // A ticket that expires last is the last to be evicted.
    let keeper = Ticket::mint(&k, "a", "u")
        .tool("t")
        .resource(RES)
        .expires_at(NOW + 100_000)
        .sign()
        .expect("mint");
    let call = Call::new("t", "{}").expect("args").at(NOW);
    v.check(keeper.as_str(), &call).expect("ok");
    for i in 0..200u64 {
        let t = Ticket::mint(&k, "a", "u")
            .tool("t")
            .resource(RES)
            .expires_at(NOW + 10 + i)
            .sign()
            .expect("mint");
        v.check(t.as_str(), &Call::new("t", "{}").expect("args").at(NOW))
            .expect("ok");
    }
    assert!(v.cached() < 200, "bounded: {}", v.cached());
    assert!(v.cached() > 0);
    assert!(v.cached_bytes() <= 64 * 8192, "{}", v.cached_bytes());
    let misses = v.cache_misses();
    v.check(keeper.as_str(), &call).expect("ok");
    assert_eq!(
        v.cache_misses(),
        misses,
        "the latest-expiring ticket was evicted"
    );
    v.evict_expired(NOW + 10_000);
    assert_eq!(v.cached(), 1, "only the keeper is still valid");
    v.evict_expired(NOW + 100_000);
    assert_eq!(v.cached(), 0);
}

/// The cache is what makes a warm check warm: the same ticket is parsed once, however often
/// it is checked; a distinct one is parsed once more; an evicted one again.
#[test]
fn the_cache_parses_each_ticket_once() {
    let k = root();
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .without_budgets()
        .build();
    let t = ticket(&k);
    for _ in 0..5 {
        v.check(t.as_str(), &list("acme")).expect("ok");
        v.check(t.as_str(), &list("globex")).expect_err("denied");
    }
    assert_eq!(v.cache_misses(), 1);
    let other = t.attenuate().tool("list_invoices").sign().expect("att");
    v.check(other.as_str(), &list("acme")).expect("ok");
    v.check(other.as_str(), &list("acme")).expect("ok");
    assert_eq!(v.cache_misses(), 2);
    assert_eq!(v.cached(), 2);
    v.evict_expired(NOW + 3600);
    assert_eq!(v.cached(), 0);
    let late = Call::new("list_invoices", r#"{"org":"acme"}"#)
        .expect("args")
        .at(NOW + 3600);
    v.check(t.as_str(), &late).expect_err("expired");
    assert_eq!(v.cache_misses(), 3);
}

/// A verifier enforces the budgets it reads unless told otherwise (the review of 2026-12-01
/// found `Verifier::builder(keys).build()` enforcing none).
#[test]
fn budgets_are_enforced_by_default() {
    let k = root();
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .build();
    let t = ticket(&k); // a lifetime budget of 5
    for i in 0..5 {
        v.check(t.as_str(), &list("acme"))
            .unwrap_or_else(|d| panic!("call {i}: {d}"));
    }
    let d = v
        .check(t.as_str(), &list("acme"))
        .expect_err("the sixth call");
    assert_eq!(d.code, Code::BudgetExhausted);
    let free = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .without_budgets()
        .build();
    for _ in 0..6 {
        free.check(t.as_str(), &list("acme"))
            .expect("the named opt-out");
    }
}

/// Safe defaults (docs §10.1): a verifier refuses tickets that never expire and, when it has a
/// resource, tickets that name none (MCP servers MUST check a token was issued for them);
/// each is a named opt-out. Resources compare in their normal form (§4.4).
#[test]
fn tickets_without_expiry_or_audience_are_refused_by_default() {
    let k = root();
    let keys = KeySet::from(k.public());
    let call = || Call::new("t", "{}").expect("args").at(NOW);
    let no_expiry = Ticket::mint(&k, "a", "u")
        .tool("t")
        .resource(RES)
        .sign()
        .expect("mint");
    let no_audience = Ticket::mint(&k, "a", "u")
        .tool("t")
        .expires_at(NOW + 60)
        .sign()
        .expect("mint");
    let v = Verifier::builder(keys.clone()).resource(RES).build();
    let d = v.check(no_expiry.as_str(), &call()).expect_err("no expiry");
    assert_eq!(d.code, Code::Expired, "{d}");
    assert!(d.reason.contains("never expires"), "{d}");
    let d = v
        .check(no_audience.as_str(), &call())
        .expect_err("no audience");
    assert_eq!(d.code, Code::WrongResource, "{d}");
    assert!(d.reason.contains("names no resource"), "{d}");
    assert_eq!(
        v.ticket_info(no_audience.as_str(), NOW)
            .expect_err("info")
            .code,
        Code::WrongResource
    );
    // The named opt-outs.
    let lax = Verifier::builder(keys.clone())
        .resource(RES)
        .allow_tickets_without_expiry()
        .allow_tickets_without_audience()
        .build();
    lax.check(no_expiry.as_str(), &call()).expect("opted out");
    lax.check(no_audience.as_str(), &call()).expect("opted out");
    // A verifier without a resource has no audience to require.
    Verifier::builder(keys.clone())
        .build()
        .check(no_audience.as_str(), &call())
        .expect("no resource configured");
    // Normal forms: scheme and host case, default port, empty path.
    let spelled = Ticket::mint(&k, "a", "u")
        .tool("t")
        .expires_at(NOW + 60)
        .resource("HTTPS://MCP.Example:443/invoices")
        .sign()
        .expect("mint");
    assert_eq!(
        spelled.blocks()[0]
            .description()
            .and_then(|d| d.resource.clone()),
        Some(RES.to_string())
    );
    v.check(spelled.as_str(), &call()).expect("same resource");
    let v2 = Verifier::builder(keys)
        .resource("https://MCP.EXAMPLE:443/invoices")
        .build();
    v2.check(spelled.as_str(), &call())
        .expect("verifier normalizes its own");
    let other = Verifier::builder(KeySet::from(k.public()))
        .resource("https://mcp.example/Invoices")
        .build();
    assert_eq!(
        other
            .check(spelled.as_str(), &call())
            .expect_err("path case")
            .code,
        Code::WrongResource
    );
}

/// A server may cap the lifetime it accepts (docs §10.1): a ticket valid longer than the cap
/// from the call's time is refused with `expired`, on the check and on `ticket_info`; a
/// ticket whose remaining life fits is accepted, and so is the same ticket later in its life.
#[test]
fn a_server_may_cap_the_lifetime_it_accepts() {
    let k = root();
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .max_lifetime(600)
        .build();
    let long = ticket(&k); // expires NOW + 3600
    let c = |t: u64| {
        Call::new("list_invoices", r#"{"org":"acme"}"#)
            .expect("args")
            .at(t)
    };
    let d = v
        .check(long.as_str(), &c(NOW))
        .expect_err("an hour > 10 min");
    assert_eq!(d.code, Code::Expired, "{d}");
    assert_eq!(d.restriction.as_deref(), Some("lifetime cap"), "{d}");
    assert!(
        d.reason.contains("3600 s more") && d.reason.contains("600 s"),
        "{d}"
    );
    assert_eq!(
        v.ticket_info(long.as_str(), NOW).expect_err("info").code,
        Code::Expired
    );
    v.check(long.as_str(), &c(NOW + 3000))
        .expect("10 minutes left: within the cap");
    let never = Ticket::mint(&k, "a", "u")
        .tool("t")
        .resource(RES)
        .sign()
        .expect("mint");
    let lax = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .allow_tickets_without_expiry()
        .max_lifetime(600)
        .build();
    let d = lax
        .check(never.as_str(), &Call::new("t", "{}").expect("args").at(NOW))
        .expect_err("a cap refuses a ticket that never expires");
    assert!(d.reason.contains("never expires"), "{d}");
}

/// Requests other than tool calls are audited with their method, target, identity and
/// verdict, in the same hash chain (docs §11.1, §14.5).
#[test]
fn requests_other_than_tool_calls_are_audited() {
    let k = root();
    let audit = Arc::new(MemoryAudit::new());
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .audit(audit.clone(), Redaction::Keep)
        .build();
    let t = ticket(&k);
    let info = v.ticket_info(t.as_str(), NOW).expect("valid");
    let seq = v
        .record_request(NOW, "resources/read", Some("file:///x"), Some(&info), None)
        .expect("recorded");
    assert_eq!(seq, Some(1));
    let denial = captix::Denial::new(Code::MethodNotAllowed, "not served");
    v.record_request(NOW, "prompts/get", Some("p"), None, Some(&denial))
        .expect("recorded");
    let lines = audit.lines();
    let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(first["method"], "resources/read");
    assert_eq!(first["target"], "file:///x");
    assert_eq!(first["agent"], "agent");
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["chain"].as_array().map(Vec::len), Some(1));
    let second: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
    assert_eq!(second["code"], "method_not_allowed");
    assert!(second.get("agent").is_none());
    let joined = lines.join("\n");
    assert_eq!(verify_log(joined.as_bytes()).map(|r| r.len()), Ok(2));
}

/// `authenticate` (what the MCP layer asks before reading a body) judges validity exactly as
/// `ticket_info` does: valid, expired, not yet valid, another audience, revoked, malformed.
#[test]
fn authenticate_agrees_with_ticket_info() {
    let k = root();
    let revoked = Arc::new(MemoryRevocations::new());
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .revocations(revoked.clone())
        .build();
    let valid = ticket(&k);
    let later = valid
        .attenuate()
        .not_before(NOW + 60)
        .sign()
        .expect("attenuate");
    let other = Ticket::mint(&k, "agent", "alice")
        .tool("list_invoices")
        .expires_at(NOW + 3600)
        .resource("https://elsewhere.example/mcp")
        .sign()
        .expect("mint");
    let gone = Ticket::mint(&k, "agent", "bob")
        .tool("list_invoices")
        .expires_at(NOW + 3600)
        .resource(RES)
        .sign()
        .expect("mint");
    revoked.revoke(gone.revocation_ids().next().expect("authority id"));
    let cases: [(&str, u64); 6] = [
        (valid.as_str(), NOW),
        (valid.as_str(), NOW + 7200),
        (later.as_str(), NOW),
        (other.as_str(), NOW),
        (gone.as_str(), NOW),
        ("captix1_not-a-ticket", NOW),
    ];
    let mut refused = 0;
    for (t, at) in cases {
        let info = v.ticket_info(t, at).map(|_| ());
        refused += usize::from(info.is_err());
        assert_eq!(v.authenticate(t, at).map(|_| ()), info, "{t:.20} at {at}");
    }
    assert_eq!(refused, 5, "every case but the first is refused");
}

/// A check through `authenticate`'s handle decides as a check by the ticket's bytes: the
/// call's restrictions, its time, and a revocation made after the handle was taken.
#[test]
fn a_check_by_handle_decides_as_a_check_by_bytes() {
    let k = root();
    let revoked = Arc::new(MemoryRevocations::new());
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .revocations(revoked.clone())
        .budgets(Arc::new(MemoryBudgets::new()))
        .build();
    let t = ticket(&k);
    let handle = v.authenticate(t.as_str(), NOW).expect("valid");
    let by_handle = |c: &Call| {
        v.try_check_authenticated(&handle, c)
            .expect("memory budgets never wait")
            .decision
            .map(|a| a.tool().map(str::to_string))
            .map_err(|d| d.code)
    };
    let by_bytes = |c: &Call| {
        v.check(t.as_str(), c)
            .map(|a| a.tool().map(str::to_string))
            .map_err(|d| d.code)
    };
    for c in [list("acme"), list("globex"), list("acme").at(NOW + 7200)] {
        assert_eq!(by_handle(&c), by_bytes(&c), "{c:?}");
    }
    revoked.revoke(t.revocation_ids().next().expect("authority id"));
    assert_eq!(by_handle(&list("acme")), Err(Code::Revoked));
}
