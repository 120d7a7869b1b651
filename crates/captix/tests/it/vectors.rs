//! Runs every conformance vector in `test-vectors/` (spec §9) on both verification paths.

use std::collections::BTreeSet;
use std::path::PathBuf;

use std::sync::Arc;

use captix::budget::MemoryBudgets;
use captix::revocation::MemoryRevocations;
use captix::{Call, Code, Compiled, KeySet, PublicKey, Ticket, Verifier};
use serde_json::Value;

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-vectors")
}

/// Every `*.json` file of the folder: none is skipped.
fn load() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(folder()).expect("test-vectors folder") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).expect("read");
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            out.push((
                p.file_name().expect("name").to_string_lossy().into_owned(),
                v,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The vector's root keys.
fn keys_of(v: &Value) -> KeySet {
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| PublicKey::from_text(k.as_str().expect("key text")).expect("key"))
        .collect()
}

fn run(v: &Value) -> (String, Option<usize>) {
    let keys = keys_of(v);
    let c = &v["call"];
    let call = match c["method"].as_str().expect("method") {
        captix::TOOLS_CALL => Call::new(
            c["tool"].as_str().expect("tool"),
            c["args"].as_str().expect("args text"),
        ),
        captix::RESOURCES_READ => Call::read(c["uri"].as_str().expect("uri")),
        captix::PROMPTS_GET => Call::prompt(c["prompt"].as_str().expect("prompt")),
        other => panic!("{}: unknown method {other}", v["name"]),
    };
    let mut call = match call {
        Ok(call) => call.at(c["time"].as_u64().expect("time")),
        Err(d) => return (d.code.as_str().to_string(), d.block),
    };
    if let Some(r) = c["resource"].as_str() {
        call = call.resource(r);
    }
    let ticket = v["ticket"].as_str().expect("ticket");
    let reference = captix::verify(ticket, &call, &keys);
    // Law 2 (§6.6) through the Verifier: configured with the call's resource, with a budget
    // store and a revocation source (nothing revoked, budgets roomy enough for one call),
    // cold and warm, it gives the same denial, block and reason.
    // What a server accepts at all (expiry, audience required) is the Verifier's own rule
    // (§10.1), tested on its own; here the two paths' evaluation is compared.
    let mut builder = Verifier::builder(keys.clone())
        .budgets(Arc::new(MemoryBudgets::new()))
        .revocations(Arc::new(MemoryRevocations::new()))
        .allow_tickets_without_expiry()
        .allow_tickets_without_audience();
    if let Some(r) = &call.resource {
        builder = builder.resource(r.clone());
    }
    let verifier = builder.build();
    let unnamed = Call {
        resource: None,
        ..call.clone()
    };
    for pass in ["cold", "warm"] {
        let checked = verifier.check(ticket, &unnamed);
        let expect_budget = matches!(&checked, Err(d) if d.code == Code::BudgetExhausted);
        assert!(
            !expect_budget || pass == "warm",
            "budget exhausted on the first call"
        );
        if !expect_budget {
            assert_eq!(
                checked.as_ref().err(),
                reference.as_ref().err(),
                "the Verifier ({pass}) differs from the reference path"
            );
        }
    }
    // The hot path, where the ticket compiles, must agree.
    if let Ok(t) = Ticket::parse(ticket, &keys) {
        // The displayed source, printed from decoded terms, reads as Biscuit prints it.
        for b in t.blocks() {
            let biscuit = t.biscuit().print_block_source(b.index).expect("source");
            assert_eq!(b.datalog(), biscuit, "block {}", b.index);
        }
        if let Some(compiled) = Compiled::compile(&t) {
            let hot = compiled.check(&call);
            assert_eq!(
                hot.as_ref().err(),
                reference.as_ref().err(),
                "hot path differs"
            );
        }
    }
    match reference {
        Ok(_) => ("allow".to_string(), None),
        Err(d) => (d.code.as_str().to_string(), d.block),
    }
}

#[test]
fn every_vector_gives_its_expected_outcome() {
    let vectors = load();
    assert!(vectors.len() >= 60, "only {} vectors", vectors.len());
    let mut failures = Vec::new();
    let mut outcomes = BTreeSet::new();
    for (file, v) in &vectors {
        for field in [
            "name", "section", "comment", "ticket", "call", "expect", "keys",
        ] {
            assert!(!v[field].is_null(), "{file}: no {field}");
        }
        let want = v["expect"]["outcome"].as_str().expect("outcome");
        let want_block = v["expect"]["block"].as_u64().map(|b| b as usize);
        let (got, block) = run(v);
        outcomes.insert(got.clone());
        if got != want || (want_block.is_some() && block != want_block) {
            failures.push(format!(
                "{file}: want {want} {want_block:?}, got {got} {block:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every stateless code appears in some vector.
    for code in [
        "allow",
        "malformed",
        "ticket_too_large",
        "too_many_blocks",
        "bad_signature",
        "unknown_key",
        "expired",
        "not_yet_valid",
        "wrong_resource",
        "tool_not_granted",
        "arg_denied",
        "check_failed",
        "args_malformed",
        "args_duplicate_key",
        "args_too_large",
        "args_too_deep",
        "limits_exceeded",
        "invalid_time",
    ] {
        assert!(outcomes.contains(code), "no vector has outcome {code}");
    }
}

/// Spec §4.7: every description of `test-vectors/datalog/` generates exactly the decoded terms
/// the vector gives (what another implementation's generator must produce).
#[test]
fn descriptions_generate_the_terms_of_the_datalog_vectors() {
    let dir = folder().join("datalog");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).expect("test-vectors/datalog") {
        let p = e.expect("entry").path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).expect("read"))
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let d: captix::Description =
            serde_json::from_value(v["description"].clone()).expect("description");
        let index = v["index"].as_u64().expect("index") as usize;
        let terms = captix::testing::generated_terms(&d, index).expect("generates");
        assert_eq!(terms, v["block"], "{}", p.display());
        seen += 1;
    }
    assert!(seen >= 14, "read the Datalog vectors: {seen}");
}

/// The JSON terms are the decoded bytes: for every vector ticket that verifies, each described
/// block's decoded terms equal the terms its description generates.
#[test]
fn decoded_blocks_are_the_terms_their_descriptions_generate() {
    let mut compared = 0;
    for (name, v) in load() {
        let Ok(t) = Ticket::parse(v["ticket"].as_str().expect("ticket"), &keys_of(&v)) else {
            continue;
        };
        let decoded = captix::testing::decoded_terms(&t);
        for (b, terms) in t.blocks().iter().zip(&decoded) {
            if let Some(d) = b.description() {
                let generated = captix::testing::generated_terms(d, b.index).expect("generates");
                assert_eq!(&generated, terms, "{name} block {}", b.index);
                compared += 1;
            }
        }
    }
    assert!(compared > 50, "compared {compared} blocks");
}
