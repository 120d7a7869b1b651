//! The most expensive tickets the Datalog work bound admits (spec §7.2), one per construct a
//! holder can write: for each, the largest size the bound still admits is found first, then
//! criterion measures the reference path (`captix::verify`: parse, verify, authorize) on it.
//! The bound is sound when every line stays within a few milliseconds.
//!
//! Ids: `worst_case/<construct>`; the admitted size of each is printed before it runs.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::time::Duration;

use biscuit_auth::{BlockBuilder, KeyPair};
use captix::{Call, Code, KeySet, SigningKey, Ticket};
use criterion::{criterion_group, criterion_main, Criterion};

const NOW: u64 = 1_800_000_000;

fn root() -> SigningKey {
    SigningKey::from_seed(&[12u8; 32])
}

fn base() -> Ticket {
    Ticket::mint(&root(), "agent", "alice")
        .tool("t")
        .expires_at(NOW + 3600)
        .sign()
        .expect("mint")
}

/// A hand-written check in a captix block.
fn check(src: &str) -> Option<String> {
    base()
        .attenuate()
        .datalog(src)
        .sign()
        .ok()
        .map(|t| t.as_str().to_string())
}

/// A foreign block (plain Biscuit Datalog) appended to the base ticket.
fn foreign(code: &str) -> Option<String> {
    let block = BlockBuilder::new().code(code).ok()?;
    let kp = KeyPair::new();
    let b = base().biscuit().append_with_keypair(&kp, block).ok()?;
    let bytes = b.to_vec().ok()?;
    let text = format!(
        "{}{}",
        captix::PREFIX,
        base64::encode_config(bytes, base64::URL_SAFE_NO_PAD) // no padding (spec §6.1)
    );
    (text.len() <= captix::limits::MAX_TICKET_BYTES).then_some(text)
}

fn list(n: usize, f: impl Fn(usize) -> String) -> String {
    (0..n).map(f).collect::<Vec<_>>().join(", ")
}

fn plain_call() -> Call {
    Call::new("t", r#"{"org":"acme"}"#).expect("call").at(NOW)
}

/// A call at the argument limits: 1,024 string leaves of 50 bytes.
fn wide_call() -> Call {
    let args = list(1024, |i| format!("\"k{i}\":\"{}\"", "y".repeat(50)));
    Call::new("t", &format!("{{{args}}}"))
        .expect("call")
        .at(NOW)
}

type Build = fn(usize) -> Option<String>;
/// A construct: its name, its ticket at size `n`, the call it is checked with.
type Construct = (&'static str, Build, fn() -> Call);

/// Constructs, each sized by `n`.
fn constructs() -> Vec<Construct> {
    vec![
        (
            "nested_closures",
            |n| {
                let a = format!("[{}]", list(n, |i| i.to_string()));
                check(&format!(
                    "check if {a}.all($x -> {a}.all($y -> {a}.all($z -> $x + $y + $z < 0)))"
                ))
            },
            plain_call,
        ),
        (
            "closure_concat",
            |n| {
                let a = format!("[{}]", list(n, |i| format!("\"{i:0>60}\"")));
                check(&format!(
                    "check if {a}.all($x -> ($x + $x + $x).length() < 0)"
                ))
            },
            plain_call,
        ),
        (
            "closure_type",
            |n| {
                let a = format!("[{}]", list(n, |i| i.to_string()));
                let syms = list(250, |i| format!("\"s{i:0>8}\""));
                check(&format!(
                    "check if {a}.all($x -> $x.type() == \"string\"), [{syms}].length() > 0"
                ))
            },
            plain_call,
        ),
        (
            "set_union",
            |n| {
                let s = format!("{{{}}}", list(n, |i| i.to_string()));
                check(&format!(
                    "check if {s}.all($x -> {s}.union({s}).intersection({s}).contains(-1))"
                ))
            },
            plain_call,
        ),
        (
            "join",
            |n| {
                let facts: String = (0..n).map(|i| format!("a({i});")).collect();
                foreign(&format!("{facts} check if a($x), a($y), $x + $y < 0;"))
            },
            plain_call,
        ),
        (
            "scan",
            |n| {
                let facts: String = (0..n).map(|i| format!("b({i});")).collect();
                foreign(&format!("{facts} check if arg($p, $v), b($v);"))
            },
            wide_call,
        ),
        (
            "string_args",
            |n| {
                let pat = "z".repeat(n);
                check(&format!(
                    "check if arg($p, $v), $v.type() == \"string\", $v.contains(\"{pat}\")"
                ))
            },
            wide_call,
        ),
        (
            "rules",
            |n| {
                let edges: String = (0..n).map(|i| format!("e({i}, {});", i + 1)).collect();
                foreign(&format!(
                    "{edges} r(0); r($y) <- r($x), e($x, $y); check if r(-1);"
                ))
            },
            plain_call,
        ),
    ]
}

fn admitted(text: &str, call: &Call, keys: &KeySet) -> bool {
    !matches!(captix::verify(text, call, keys), Err(d) if d.code == Code::LimitsExceeded)
}

/// The largest `n` whose ticket the bound admits (and which fits the size limit).
fn largest(build: Build, call: &Call, keys: &KeySet) -> Option<(usize, String)> {
    let ok = |n: usize| build(n).filter(|t| admitted(t, call, keys));
    let mut lo = 1;
    ok(lo)?;
    let mut hi = 2;
    while hi < 1 << 20 && ok(hi).is_some() {
        lo = hi;
        hi *= 2;
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if ok(mid).is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    ok(lo).map(|t| (lo, t))
}

fn worst_case(c: &mut Criterion) {
    let keys = KeySet::from(root().public());
    let mut g = c.benchmark_group("worst_case");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for (name, build, call) in constructs() {
        let call = call();
        match largest(build, &call, &keys) {
            Some((n, text)) => {
                let outcome = match captix::verify(&text, &call, &keys) {
                    Ok(_) => "allow".to_string(),
                    Err(d) => d.code.to_string(),
                };
                println!(
                    "worst_case/{name}: n = {n}, {} bytes, {outcome}",
                    text.len()
                );
                g.bench_function(name, |b| {
                    b.iter(|| captix::verify(black_box(&text), black_box(&call), &keys))
                });
            }
            None => println!("worst_case/{name}: refused at every size"),
        }
    }
    g.finish();
}

criterion_group!(benches, worst_case);
criterion_main!(benches);
