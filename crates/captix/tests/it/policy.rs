//! The server policy (docs §16): scopes and rate limits per tool, per agent, per user, per
//! (agent, user) and in all, enforced by the verifier with the ticket's budgets.

use std::sync::Arc;

use captix::budget::MemoryBudgets;
use captix::{Call, Code, KeySet, Policy, SigningKey, Ticket, Verifier};

const NOW: u64 = 1_800_000_000;
const RES: &str = "https://mcp.example/invoices";

const POLICY: &str = r#"
[tool.create_refund]
scopes = ["invoices:write"]
limits = ["2/min per agent"]

[tool.list_invoices]
limits = ["3/min per user", "4/hour per agent and user"]

[tool.get_invoice]
limits = ["2/min"]
"#;

fn root() -> SigningKey {
    SigningKey::from_seed(&[9u8; 32])
}

/// A ticket of `agent` for `user`, with these scopes and a ticket budget.
fn ticket(agent: &str, user: &str, scopes: &[&str], budget: &str) -> String {
    let key = root();
    let mut b = Ticket::mint(&key, agent, user)
        .tool("list_invoices")
        .tool("get_invoice")
        .tool("create_refund")
        .budget(budget.parse().expect("budget"))
        .expires_at(NOW + 3600)
        .resource(RES);
    for s in scopes {
        b = b.scope(*s);
    }
    b.sign().expect("mint").as_str().to_string()
}

fn verifier(store: Arc<MemoryBudgets>) -> Verifier {
    Verifier::builder(KeySet::from(root().public()))
        .resource(RES)
        .budgets(store)
        .policy(Policy::from_toml(POLICY).expect("policy"))
        .build()
}

fn call(tool: &str, at: u64) -> Call {
    Call::new(tool, "{}").expect("call").at(at)
}

fn code(v: &Verifier, t: &str, tool: &str, at: u64) -> String {
    match v.check(t, &call(tool, at)) {
        Ok(_) => "allow".into(),
        Err(d) => d.code.to_string(),
    }
}

#[test]
fn a_scope_the_policy_requires_is_checked_before_anything_is_spent() {
    let v = verifier(Arc::new(MemoryBudgets::new()));
    let plain = ticket("a", "u", &[], "1");
    let d = v
        .check(&plain, &call("create_refund", NOW))
        .expect_err("no scope");
    assert_eq!(d.code, Code::ScopeMissing);
    assert!(d.reason.contains("invoices:write"), "{}", d.reason);
    // Its lifetime budget of 1 was not touched by the refusal.
    assert_eq!(code(&v, &plain, "get_invoice", NOW), "allow");
    // tools/list leaves out the tool the ticket cannot call here.
    let info = v.ticket_info(&plain, NOW).expect("valid");
    assert_eq!(info.tools, vec!["get_invoice", "list_invoices"]);
    let scoped = ticket("a", "u", &["invoices:write"], "100");
    assert_eq!(code(&v, &scoped, "create_refund", NOW), "allow");
    assert_eq!(v.policy().scopes("create_refund"), vec!["invoices:write"]);
}

#[test]
fn a_limit_per_agent_holds_across_every_ticket_of_the_agent() {
    let v = verifier(Arc::new(MemoryBudgets::new()));
    // Three tickets (three chains, as an issuer may mint) of agent a for different users.
    let ts: Vec<String> = ["u1", "u2", "u3"]
        .iter()
        .map(|u| ticket("a", u, &["invoices:write"], "100"))
        .collect();
    assert_eq!(code(&v, &ts[0], "create_refund", NOW), "allow");
    assert_eq!(code(&v, &ts[1], "create_refund", NOW), "allow");
    let d = v
        .check(&ts[2], &call("create_refund", NOW))
        .expect_err("2/min per agent");
    assert_eq!(d.code, Code::RateLimited);
    assert_eq!(d.retry_after, Some(30), "one unit back in 60/2 s");
    assert!(
        d.reason.contains("per agent") && d.reason.contains("\"a\""),
        "{}",
        d.reason
    );
    assert_eq!(d.block, None, "the server, not a block, denied");
    // Another agent has its own count; the agent's count refills.
    let other = ticket("b", "u1", &["invoices:write"], "100");
    assert_eq!(code(&v, &other, "create_refund", NOW), "allow");
    assert_eq!(code(&v, &ts[2], "create_refund", NOW + 30), "allow");
}

#[test]
fn limits_per_user_per_pair_and_in_all() {
    let v = verifier(Arc::new(MemoryBudgets::new()));
    // 3/min per user: agents a and b acting for alice share it.
    let a = ticket("a", "alice", &[], "100");
    let b = ticket("b", "alice", &[], "100");
    let c = ticket("a", "carol", &[], "100");
    assert_eq!(code(&v, &a, "list_invoices", NOW), "allow");
    assert_eq!(code(&v, &b, "list_invoices", NOW), "allow");
    assert_eq!(code(&v, &a, "list_invoices", NOW), "allow");
    assert_eq!(code(&v, &b, "list_invoices", NOW), "rate_limited");
    assert_eq!(code(&v, &c, "list_invoices", NOW), "allow", "carol's own");
    // 4/hour per (agent, user): a for alice spent 2; after the minute refills, two more.
    assert_eq!(code(&v, &a, "list_invoices", NOW + 60), "allow");
    assert_eq!(code(&v, &a, "list_invoices", NOW + 60), "allow");
    let d = v
        .check(&a, &call("list_invoices", NOW + 60))
        .expect_err("4/hour");
    assert!(d.reason.contains("per agent and user"), "{}", d.reason);
    assert_eq!(
        code(&v, &b, "list_invoices", NOW + 60),
        "allow",
        "b for alice is another pair"
    );
    // 2/min in all: whoever calls.
    assert_eq!(code(&v, &a, "get_invoice", NOW), "allow");
    assert_eq!(code(&v, &c, "get_invoice", NOW), "allow");
    assert_eq!(code(&v, &b, "get_invoice", NOW), "rate_limited");
}

#[test]
fn the_ticket_budget_and_the_limits_are_spent_all_or_nothing() {
    let store = Arc::new(MemoryBudgets::new());
    let v = verifier(store.clone());
    // The ticket's lifetime budget of 2 runs out first: the user's limit is not spent by the
    // refused call.
    let small = ticket("a", "dave", &[], "2");
    assert_eq!(code(&v, &small, "list_invoices", NOW), "allow");
    assert_eq!(code(&v, &small, "list_invoices", NOW), "allow");
    assert_eq!(code(&v, &small, "list_invoices", NOW), "budget_exhausted");
    let other = ticket("b", "dave", &[], "100");
    assert_eq!(
        code(&v, &other, "list_invoices", NOW),
        "allow",
        "dave's third unit"
    );
    assert_eq!(code(&v, &other, "list_invoices", NOW), "rate_limited");
    // The limit refused: the ticket's budget was not spent by the refusal.
    let two = ticket("c", "erin", &[], "4");
    for _ in 0..3 {
        assert_eq!(code(&v, &two, "list_invoices", NOW), "allow");
    }
    assert_eq!(code(&v, &two, "list_invoices", NOW), "rate_limited");
    assert_eq!(
        code(&v, &two, "list_invoices", NOW + 60),
        "allow",
        "the fourth unit was kept"
    );
    assert_eq!(
        code(&v, &two, "list_invoices", NOW + 120),
        "budget_exhausted"
    );
}

#[test]
fn a_verifier_without_ticket_budgets_still_applies_the_policy() {
    let v = Verifier::builder(KeySet::from(root().public()))
        .resource(RES)
        .without_budgets()
        .policy(Policy::from_toml(POLICY).expect("policy"))
        .build();
    let t = ticket("a", "u", &[], "1");
    assert_eq!(code(&v, &t, "get_invoice", NOW), "allow");
    assert_eq!(
        code(&v, &t, "get_invoice", NOW),
        "allow",
        "the ticket's budget is not enforced"
    );
    assert_eq!(
        code(&v, &t, "get_invoice", NOW),
        "rate_limited",
        "the policy's is"
    );
}

#[test]
fn many_threads_never_exceed_a_limit() {
    let store = Arc::new(MemoryBudgets::new());
    let v = Arc::new(verifier(store));
    let allowed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for i in 0..16 {
            let (v, allowed) = (v.clone(), &allowed);
            s.spawn(move || {
                let t = ticket("a", &format!("u{i}"), &[], "100");
                for _ in 0..4 {
                    if v.check(&t, &call("get_invoice", NOW)).is_ok() {
                        allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.into_inner(), 2, "2/min in all, 64 attempts");
    // Counted by each thread in its own shard, summed when read.
    let counts: std::collections::HashMap<_, _> = v.decisions().into_iter().collect();
    assert_eq!((counts["allow"], counts["rate_limited"]), (2, 62));
}
