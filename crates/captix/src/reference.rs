//! The reference path (spec §6.3): Biscuit's authorizer with the ambient facts of §3 and
//! the policy of §4.2, its failures mapped to captix denials by the one precedence walk.

use std::sync::Arc;

#[cfg(feature = "datalog")]
use biscuit_auth::builder::Term;
#[cfg(feature = "datalog")]
use biscuit_auth::builder::{
    fact, pred, string, var, AuthorizerBuilder, Binary, Expression, Op, Policy, PolicyKind, Rule,
};
#[cfg(feature = "datalog")]
use biscuit_auth::AuthorizerLimits;

use crate::call::Call;
#[cfg(feature = "datalog")]
use crate::call::Target;
#[cfg(feature = "datalog")]
use crate::decision::Allowed;
use crate::decision::{Decision, Summary};
use crate::error::{Code, Denial};
use crate::keys::KeySet;
#[cfg(feature = "datalog")]
use crate::limits::{DATALOG_MAX_FACTS, DATALOG_MAX_ITERATIONS, DATALOG_MAX_TIME};
#[cfg(feature = "datalog")]
use crate::restriction::{date_term, Class, Restriction};
use crate::restriction::{not_granted, walk, Walk};
#[cfg(feature = "datalog")]
use crate::ticket::Content;
use crate::ticket::{BlockView, Ticket};

/// Verifies a ticket's text against a call on the reference path: parse, verify signatures,
/// run Biscuit's authorizer (spec §6.3). Budgets are reported, not spent; revocation is not
/// consulted (a `Verifier` does both).
///
/// Without the `datalog` feature a vocabulary ticket is decided on the compiled path and any
/// other is refused (spec §6.5).
pub fn verify(ticket: &str, call: &Call, keys: &KeySet) -> Decision {
    call.check_time()?;
    Ticket::parse(ticket, keys)?.authorize(call)
}

/// The Datalog run limits used for every authorization (spec §7.2).
#[cfg(feature = "datalog")]
pub fn run_limits() -> AuthorizerLimits {
    AuthorizerLimits {
        max_facts: DATALOG_MAX_FACTS,
        max_iterations: DATALOG_MAX_ITERATIONS,
        max_time: DATALOG_MAX_TIME,
    }
}

impl Ticket {
    /// Checks a call against this ticket on the reference path: Biscuit's authorizer with the
    /// ambient facts of spec §3 and the policy of spec §4.2.
    pub fn authorize(&self, call: &Call) -> Decision {
        // Without Biscuit's authorizer a vocabulary ticket is decided on the compiled path: the
        // same decision (spec §6.6, law 2). (A `Verifier` compiles once, and takes
        // `authorize_with` only for a ticket that does not compile.)
        #[cfg(not(feature = "datalog"))]
        if let Some(c) = crate::compiled::Compiled::compile(self) {
            call.check_time()?;
            let i = c.evaluate(call, call.resource.as_deref())?;
            return Ok(c.allowed(i, call));
        }
        self.authorize_with(call, Arc::new(Summary::of(self)))
    }

    pub(crate) fn authorize_with(&self, call: &Call, summary: Arc<Summary>) -> Decision {
        call.check_time()?;
        self.evaluate(call, summary)
    }
}

/// Without Biscuit's authorizer (the crate's `datalog` feature off, as in the npm package's
/// lean module): a ticket that needs the reference path is never allowed. It is refused as one
/// over the work bound is (spec §7.2): the vocabulary's denial when a described restriction
/// fails, else `limits_exceeded`.
#[cfg(not(feature = "datalog"))]
impl Ticket {
    fn evaluate(&self, call: &Call, summary: Arc<Summary>) -> Decision {
        let _ = summary;
        Err(self
            .vocabulary_denial(call)
            .unwrap_or_else(|| Denial::new(Code::LimitsExceeded, crate::limits::NO_DATALOG_REASON)))
    }
}

#[cfg(feature = "datalog")]
impl Ticket {
    fn evaluate(&self, call: &Call, summary: Arc<Summary>) -> Decision {
        let internal = |e: biscuit_auth::error::Token| {
            Denial::new(
                Code::Malformed,
                format!("the authorizer refused the ticket: {e}"),
            )
        };
        // Spec §7.2: a ticket whose Datalog could need more work than the limit does not run.
        if let Some(reason) = crate::work::over_limit(self.blocks(), call) {
            return Err(self
                .vocabulary_denial(call)
                .unwrap_or_else(|| Denial::new(Code::LimitsExceeded, reason)));
        }
        // Spec §3.1: time, method, and the target as tool(<name>), uri(<uri>) or prompt(<name>).
        let target = match &call.target {
            Target::Tool(t) => fact("tool", &[string(t)]),
            Target::Uri(u) => fact("uri", &[string(u)]),
            Target::Prompt(p) => fact("prompt", &[string(p)]),
        };
        let mut b = AuthorizerBuilder::new()
            .set_limits(run_limits())
            .fact(fact("time", &[date_term(call.time)]))
            .and_then(|b| b.fact(fact("method", &[string(call.target.method())])))
            .and_then(|b| b.fact(target))
            .map_err(internal)?;
        if let Some(r) = &call.resource {
            b = b.fact(fact("resource", &[string(r)])).map_err(internal)?;
        }
        for (p, v) in call.args.leaves() {
            b = b
                .fact(fact("arg", &[string(p), v.to_term()]))
                .map_err(internal)?;
        }
        // Spec §4.2: allow if tool($tool), allow_tool($tool)
        //   or uri($uri), allow_uri($uri)
        //   or uri($uri), allow_uri_prefix($prefix), $uri.starts_with($prefix)
        //   or prompt($prompt), allow_prompt($prompt)
        let query = |target: &str, grant: &str, exprs: Vec<Expression>| {
            let grant_term = if exprs.is_empty() { target } else { "prefix" };
            Rule::new(
                pred("allow", &[] as &[Term]),
                vec![
                    pred(target, &[var(target)]),
                    pred(grant, &[var(grant_term)]),
                ],
                exprs,
                vec![],
            )
        };
        let starts_with = Expression {
            ops: vec![
                Op::Value(var("uri")),
                Op::Value(var("prefix")),
                Op::Binary(Binary::Prefix),
            ],
        };
        let policy = Policy {
            queries: vec![
                query("tool", "allow_tool", vec![]),
                query("uri", "allow_uri", vec![]),
                query("uri", "allow_uri_prefix", vec![starts_with]),
                query("prompt", "allow_prompt", vec![]),
            ],
            kind: PolicyKind::Allow,
        };
        b = b.policy(policy).map_err(internal)?;
        let mut authorizer = b.build(&self.inner).map_err(internal)?;
        match authorizer.authorize() {
            Ok(_) => Ok(Allowed::new(summary, self.blocks(), &call.target)),
            Err(e) => Err(self.explain(e, call)),
        }
    }

    /// Maps Biscuit's failure to the denial of spec §6.3: the first failing check in (block,
    /// check) order, else the missing grant.
    fn explain(&self, e: biscuit_auth::error::Token, call: &Call) -> Denial {
        use biscuit_auth::error::{FailedCheck, Logic, MatchedPolicy, Token};
        let (checks, granted) = match e {
            Token::FailedLogic(Logic::Unauthorized { checks, policy }) => {
                (checks, matches!(policy, MatchedPolicy::Allow(_)))
            }
            Token::FailedLogic(Logic::NoMatchingPolicy { checks }) => (checks, false),
            // Both stop the whole evaluation, so Biscuit names no failing check. The
            // vocabulary is read natively so that such a block cannot hide an expiry or a
            // missing grant behind a different code (spec §6.3).
            Token::RunLimit(l) => {
                return self.vocabulary_denial(call).unwrap_or_else(|| {
                    Denial::new(
                        Code::LimitsExceeded,
                        format!("the ticket's Datalog exceeded the run limits: {l}"),
                    )
                })
            }
            Token::Execution(x) => {
                return self.vocabulary_denial(call).unwrap_or_else(|| {
                    Denial::new(
                        Code::CheckFailed,
                        format!("a hand-written check failed to evaluate: {x}"),
                    )
                })
            }
            other => return Denial::new(Code::Malformed, format!("authorization failed: {other}")),
        };
        let mut failed: Vec<(usize, usize)> = checks
            .iter()
            .filter_map(|c| match c {
                FailedCheck::Block(b) => Some((b.block_id as usize, b.check_id as usize)),
                FailedCheck::Authorizer(_) => None,
            })
            .collect();
        failed.sort_unstable();
        let class = |&(b, c): &(usize, usize)| {
            // A hand-written or foreign check is about the call.
            self.restriction_at(b, c).map_or(Class::Call, |r| r.class())
        };
        match walk(&failed, class, |_| true, || granted.then_some(())) {
            Walk::Denied(&(block, check)) => self.denial_for(block, check, call),
            Walk::NotGranted => not_granted(&call.target),
            Walk::Granted(()) => Denial::new(
                Code::Malformed,
                "authorization failed without a failing check",
            ),
        }
    }

    fn restriction_at(&self, block: usize, check: usize) -> Option<Restriction> {
        self.blocks()
            .get(block)
            .and_then(BlockView::description)
            .and_then(|d| d.restrictions().into_iter().nth(check))
    }

    fn denial_for(&self, block: usize, check: usize, call: &Call) -> Denial {
        let view = self.blocks().get(block);
        if let Some(r) = self.restriction_at(block, check) {
            return r.denial(block, call, call.resource.as_deref());
        }
        let kind = match view.map(|v| &v.content) {
            Some(Content::Described(_)) => "hand-written",
            _ => "foreign block's",
        };
        Denial::new(
            Code::CheckFailed,
            format!("block {block}: a {kind} Datalog check (number {check}) failed"),
        )
        .at(block, format!("datalog check {check}"))
    }
}

impl Ticket {
    /// The first failing vocabulary restriction by the precedence of spec §6.3, read from the
    /// descriptions without Datalog, for when Biscuit stopped before naming a failing check.
    /// Hand-written and foreign checks are not evaluated here.
    fn vocabulary_denial(&self, call: &Call) -> Option<Denial> {
        let resource = call.resource.as_deref();
        let described = self.restrictions();
        // Without a described authority block the grants are not known: taken as granted.
        let granted = || {
            let authority = self.blocks().first().and_then(BlockView::description);
            authority
                .is_none_or(|d| d.grants(&call.target))
                .then_some(())
        };
        match walk(
            &described,
            |(_, r)| r.class(),
            |(_, r)| r.fails(call, resource),
            granted,
        ) {
            Walk::Denied((block, r)) => Some(r.denial(*block, call, resource)),
            Walk::NotGranted => Some(not_granted(&call.target)),
            Walk::Granted(()) => None,
        }
    }
}

/// The reference path's API in a build without Datalog (spec §6.5), over every conformance
/// vector: `cargo test -p captix --no-default-features --lib` (scripts/test runs it).
#[cfg(all(test, not(feature = "datalog")))]
mod without_datalog {
    use crate::call::Call;
    use crate::keys::{KeySet, PublicKey};
    use serde_json::Value;

    /// The vector's outcome through `verify`: `allow` or the denial's code.
    fn outcome(v: &Value) -> String {
        let keys: KeySet = v["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| PublicKey::from_text(k.as_str().expect("key")).expect("key"))
            .collect();
        let c = &v["call"];
        let call = match c["method"].as_str().expect("method") {
            crate::call::TOOLS_CALL => Call::new(
                c["tool"].as_str().expect("tool"),
                c["args"].as_str().expect("args"),
            ),
            crate::call::RESOURCES_READ => Call::read(c["uri"].as_str().expect("uri")),
            _ => Call::prompt(c["prompt"].as_str().expect("prompt")),
        };
        let mut call = match call {
            Ok(call) => call.at(c["time"].as_u64().expect("time")),
            Err(d) => return d.code.as_str().to_string(),
        };
        if let Some(r) = c["resource"].as_str() {
            call = call.resource(r);
        }
        match super::verify(v["ticket"].as_str().expect("ticket"), &call, &keys) {
            Ok(_) => "allow".into(),
            Err(d) => d.code.as_str().to_string(),
        }
    }

    /// Every vector answers as in the full build, except that a ticket that needs the reference
    /// path, where no vocabulary restriction fails, is `limits_exceeded`; never an allow the
    /// vector denies. Vocabulary tickets are still allowed (on the compiled path).
    #[test]
    fn every_vector_by_the_law_of_a_build_without_datalog() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors");
        let (mut allowed, mut refused) = (0, 0);
        for entry in std::fs::read_dir(dir).expect("vectors") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            let want = v["expect"]["outcome"].as_str().expect("outcome");
            let got = outcome(&v);
            if got == want {
                allowed += usize::from(got == "allow");
                continue;
            }
            assert_eq!(
                got, "limits_exceeded",
                "{}: got {got}, want {want}",
                v["name"]
            );
            assert!(
                ["allow", "check_failed", "limits_exceeded", "malformed"].contains(&want),
                "{}: a vocabulary denial ({want}) must come first",
                v["name"]
            );
            refused += 1;
        }
        assert!(
            refused >= 8,
            "only {refused} vectors need the reference path"
        );
        assert!(allowed >= 20, "only {allowed} vocabulary vectors allowed");
    }
}
