//! Hostile input (issue 8): tickets, arguments and restriction texts written by an attacker.
//! Every case asserts the documented code (spec §6.3, §7, §8), that nothing panics, and that
//! the work is bounded: refused before signature work where the spec says so, with the memory
//! held at once measured by a counting allocator (no timing is asserted).

use std::sync::Arc;

use biscuit_auth::builder::Algorithm;
use biscuit_auth::format::schema;
use biscuit_auth::{BlockBuilder, KeyPair};
use captix::limits::{
    DATALOG_MAX_FACTS, MAX_ARGS_BYTES, MAX_ARGS_DEPTH, MAX_ARGS_LEAVES, MAX_BLOCKS,
    MAX_TICKET_BYTES,
};
use captix::revocation::MemoryRevocations;
use captix::{
    Budget, Call, Code, Decision, KeySet, RowFilter, SigningKey, Ticket, UnverifiedTicket,
    Verifier, PREFIX,
};
use prost::Message;

#[path = "support/counting.rs"]
mod counting;
use counting::peak_bytes;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

const NOW: u64 = 1_800_000_000;

fn root() -> SigningKey {
    SigningKey::from_seed(&[9u8; 32])
}

fn keys() -> KeySet {
    KeySet::from(root().public())
}

fn base() -> Ticket {
    Ticket::mint(&root(), "billing-agent", "alice")
        .tool("list_invoices")
        .tool("get_invoice")
        .row("*:org=acme".parse().expect("row"))
        .row("*:n<=10".parse().expect("row"))
        .expires_at(NOW + 3600)
        .sign()
        .expect("mint")
}

fn call(tool: &str, args: &str) -> Call {
    Call::new(tool, args).expect("call").at(NOW)
}

fn ok_call() -> Call {
    call("list_invoices", r#"{"org":"acme","n":1}"#)
}

/// The outcome on every path: the reference path, the cached verifier (twice: miss, hit),
/// and the unverified reader. All must agree; returns the code (or "allow").
fn outcome(ticket: &str, call: &Call) -> String {
    let keys = keys();
    let reference = captix::verify(ticket, call, &keys);
    // The paths' evaluation is compared; what a server accepts at all is tested elsewhere.
    let v = Verifier::builder(keys)
        .allow_tickets_without_expiry()
        .allow_tickets_without_audience()
        .build();
    let cold = v.check(ticket, call);
    let warm = v.check(ticket, call);
    let code = |d: &Decision| match d {
        Ok(_) => "allow".to_string(),
        Err(e) => e.code.as_str().to_string(),
    };
    assert_eq!(
        code(&reference),
        code(&cold),
        "reference and verifier disagree"
    );
    assert_eq!(code(&cold), code(&warm), "cache miss and hit disagree");
    if let Err(e) = &reference {
        assert!(!e.reason.is_empty(), "a denial without a reason: {e:?}");
    }
    code(&reference)
}

/// The text form of encoded token bytes.
fn text_of(raw: &[u8]) -> String {
    format!(
        "{PREFIX}{}",
        base64::encode_config(raw, base64::URL_SAFE_NO_PAD)
    )
}

/// The text form of a token built with plain Biscuit.
fn text(b: &biscuit_auth::Biscuit) -> String {
    text_of(&b.to_vec().expect("bytes"))
}

fn encode(outer: &schema::Biscuit) -> String {
    text_of(&outer.encode_to_vec())
}

fn decode(ticket: &str) -> schema::Biscuit {
    let bytes =
        base64::decode_config(&ticket[PREFIX.len()..], base64::URL_SAFE_NO_PAD).expect("base64");
    schema::Biscuit::decode(bytes.as_slice()).expect("protobuf")
}

fn key_pair(seed: u8) -> KeyPair {
    use rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([seed; 32]);
    KeyPair::new_with_rng(Algorithm::Ed25519, &mut rng)
}

// ---- §7.1 ticket size and block limits ----

#[test]
fn ticket_size_limit_is_exact() {
    // Garbage of exactly the limit is decoded (and is malformed); one byte more is refused
    // before decoding.
    let at = format!("{PREFIX}{}", "A".repeat(MAX_TICKET_BYTES - PREFIX.len()));
    assert_eq!(at.len(), MAX_TICKET_BYTES);
    assert_eq!(outcome(&at, &ok_call()), "malformed");
    let over = format!("{at}A");
    assert_eq!(outcome(&over, &ok_call()), "ticket_too_large");
    assert_eq!(
        UnverifiedTicket::parse(&over).err().map(|d| d.code),
        Some(Code::TicketTooLarge)
    );
}

#[test]
fn a_real_ticket_just_under_the_size_limit_verifies() {
    // Attenuate with row filters until the next block would not fit; the builder refuses
    // that block, and the largest ticket it made verifies and allows.
    let mut t = base();
    let refused = loop {
        let next = t
            .attenuate()
            .row(
                format!("get_invoice:org^={}", "a".repeat(300))
                    .parse()
                    .expect("row"),
            )
            .sign();
        match next {
            Ok(n) => t = n,
            Err(e) => break e,
        }
    };
    assert!(refused.to_string().contains("bytes"), "{refused}");
    assert!(
        t.as_str().len() > MAX_TICKET_BYTES - 2048,
        "{}",
        t.as_str().len()
    );
    assert!(t.as_str().len() <= MAX_TICKET_BYTES);
    assert_eq!(outcome(t.as_str(), &ok_call()), "allow");
}

#[test]
fn a_ticket_of_a_megabyte_is_refused_holding_no_copy_of_it() {
    let huge = format!("{PREFIX}{}", "A".repeat(1 << 20));
    let v = Verifier::builder(keys()).build();
    let c = ok_call();
    let (d, peak) = peak_bytes(|| v.check(&huge, &c));
    assert_eq!(d.err().map(|e| e.code), Some(Code::TicketTooLarge));
    assert!(peak < 16 * 1024, "refusing held {peak} bytes");
    let junk = vec![0xffu8; 1 << 20];
    let (d, peak) = peak_bytes(|| v.check_bytes(&junk, &c));
    assert_eq!(d.err().map(|e| e.code), Some(Code::TicketTooLarge));
    assert!(peak < 16 * 1024, "refusing bytes held {peak} bytes");
}

#[test]
fn block_limit_is_exact() {
    let mut t = base();
    for _ in 1..MAX_BLOCKS {
        t = t
            .attenuate()
            .tool("list_invoices")
            .sign()
            .expect("attenuate");
    }
    assert_eq!(t.blocks().len(), MAX_BLOCKS);
    assert_eq!(outcome(t.as_str(), &ok_call()), "allow");
    // The builder will not make block 33 …
    let refused = t
        .attenuate()
        .tool("list_invoices")
        .sign()
        .expect_err("refused");
    assert!(refused.to_string().contains("blocks"), "{refused}");
    // … and one made with Biscuit directly is refused by the reader.
    let more = t
        .biscuit()
        .append_with_keypair(&key_pair(3), BlockBuilder::new())
        .expect("append");
    let text = text(&more);
    assert_eq!(outcome(&text, &ok_call()), "too_many_blocks");
}

#[test]
fn a_ten_thousand_block_chain_is_refused_before_any_signature_work() {
    // A real signed chain of 10,000 blocks: far over the size limit.
    let mut b = base().biscuit().clone();
    for i in 0..10_000u32 {
        b = b
            .append_with_keypair(&key_pair((i % 251) as u8), BlockBuilder::new())
            .expect("append");
    }
    let text = text(&b);
    assert!(text.len() > 50 * MAX_TICKET_BYTES, "{}", text.len());
    let v = Verifier::builder(keys()).build();
    let c = ok_call();
    let (d, peak) = peak_bytes(|| v.check(&text, &c));
    assert_eq!(d.err().map(|e| e.code), Some(Code::TicketTooLarge));
    assert!(peak < 16 * 1024, "held {peak} bytes");

    // Thousands of empty block entries crafted into the protobuf (two bytes each) fit in the
    // size limit: they are counted and refused before any block is parsed or signature checked.
    let mut raw = base64::decode_config(&base().as_str()[PREFIX.len()..], base64::URL_SAFE_NO_PAD)
        .expect("base64");
    let entries = (MAX_TICKET_BYTES * 3 / 4 - raw.len() - 16) / 2;
    assert!(entries > 5_000, "{entries}");
    for _ in 0..entries {
        raw.extend_from_slice(&[0x1a, 0x00]); // field 3 (blocks), length 0
    }
    let crafted = text_of(&raw);
    assert!(crafted.len() <= MAX_TICKET_BYTES, "{}", crafted.len());
    let (d, peak) = peak_bytes(|| v.check(&crafted, &c));
    let e = d.expect_err("denied");
    assert_eq!(e.code, Code::TooManyBlocks);
    assert!(
        e.reason.contains(&format!("{} blocks", entries + 1)),
        "{}",
        e.reason
    );
    assert!(peak < 1 << 20, "held {peak} bytes");
    assert_eq!(outcome(&crafted, &c), "too_many_blocks");
}

// ---- forged and spliced chains ----

#[test]
fn a_ticket_resigned_with_another_root_is_refused() {
    let attacker = SigningKey::from_seed(&[66u8; 32]);
    let forged = Ticket::mint(&attacker, "billing-agent", "alice")
        .tool("delete_everything")
        .sign()
        .expect("mint");
    assert_eq!(
        outcome(forged.as_str(), &call("delete_everything", "{}")),
        "unknown_key"
    );
    // The same key id as the real root (the id is public): the signature check catches it.
    let mut outer = decode(forged.as_str());
    outer.root_key_id = decode(base().as_str()).root_key_id;
    let same_id = encode(&outer);
    assert_eq!(
        outcome(&same_id, &call("delete_everything", "{}")),
        "bad_signature"
    );
    // The real authority block with the attacker's later blocks spliced in is refused too.
    let mut spliced = decode(base().as_str());
    let theirs = decode(
        forged
            .attenuate()
            .tool("delete_everything")
            .sign()
            .expect("att")
            .as_str(),
    );
    spliced.blocks = theirs.blocks;
    assert_eq!(outcome(&encode(&spliced), &ok_call()), "bad_signature");
}

#[test]
fn a_sealed_ticket_cannot_be_extended() {
    let sealed = base().biscuit().seal().expect("seal");
    let sealed_text = text(&sealed);
    assert_eq!(outcome(&sealed_text, &ok_call()), "allow");
    // The builder refuses to attenuate it …
    let t = UnverifiedTicket::parse(&sealed_text).expect("parse");
    assert!(t
        .attenuate()
        .tool("list_invoices")
        .sign_unverified()
        .is_err());
    // … and a block appended by hand fails the sealed proof.
    let mut outer = decode(&sealed_text);
    let child = base()
        .attenuate()
        .tool("list_invoices")
        .sign()
        .expect("att");
    outer.blocks.push(decode(child.as_str()).blocks[0].clone());
    assert_eq!(outcome(&encode(&outer), &ok_call()), "bad_signature");
}

#[test]
fn an_expired_parent_is_expired_whatever_the_child_says() {
    let parent = Ticket::mint(&root(), "a", "u")
        .tool("list_invoices")
        .expires_at(NOW + 10)
        .sign()
        .expect("mint");
    let later = Call::new("list_invoices", "{}").expect("call").at(NOW + 20);
    // A child that says a later expiry does not extend the parent's …
    let child = parent
        .attenuate()
        .expires_at(NOW + 1000)
        .sign()
        .expect("att");
    assert_eq!(outcome(child.as_str(), &later), "expired");
    let e = captix::verify(child.as_str(), &later, &keys()).expect_err("denied");
    assert_eq!(e.block, Some(0));
    // … nor does a hand-built block with its own time check.
    let child = parent
        .biscuit()
        .append_with_keypair(
            &key_pair(4),
            BlockBuilder::new()
                .code(format!(
                    "check if time($t), $t < {};",
                    biscuit_auth::builder::date(
                        &(std::time::UNIX_EPOCH + std::time::Duration::from_secs(NOW + 1000))
                    )
                ))
                .expect("code"),
        )
        .expect("append");
    let text = text(&child);
    assert_eq!(outcome(&text, &later), "expired");
    let e = captix::verify(&text, &later, &keys()).expect_err("denied");
    assert_eq!(e.block, Some(0));
}

// ---- Datalog that tries to grant ----

fn appended(t: &Ticket, block: BlockBuilder) -> String {
    let b = t
        .biscuit()
        .append_with_keypair(&key_pair(5), block)
        .expect("append");
    text(&b)
}

#[test]
fn block_datalog_cannot_grant() {
    let t = base();
    let delete = call("delete_invoice", r#"{"org":"acme","n":1}"#);
    for code in [
        r#"allow_tool("delete_invoice");"#,
        r#"allow_tool($t) <- tool($t);"#,
        r#"allow_tool("delete_invoice"); arg("/org", "acme"); tool("list_invoices");"#,
        r#"check if true; allow_tool($t) <- tool($t), arg($p, $v);"#,
    ] {
        let text = appended(&t, BlockBuilder::new().code(code).expect("code"));
        assert_eq!(outcome(&text, &delete), "tool_not_granted", "{code}");
        // Nor widen a row filter by asserting the argument it wants.
        let globex = call("list_invoices", r#"{"org":"globex","n":1}"#);
        assert_eq!(outcome(&text, &globex), "arg_denied", "{code}");
    }
    // A third-party block (signed by another key) cannot grant either: the policy trusts only
    // the authority block.
    let outsider = key_pair(6);
    let request = t.biscuit().third_party_request().expect("request");
    let block = request
        .create_block(
            &outsider.private(),
            BlockBuilder::new()
                .code(r#"allow_tool("delete_invoice");"#)
                .expect("code"),
        )
        .expect("block");
    let third = t
        .biscuit()
        .append_third_party(outsider.public(), block)
        .expect("append");
    let text = text(&third);
    assert_eq!(outcome(&text, &delete), "tool_not_granted");
    assert_eq!(outcome(&text, &ok_call()), "allow");
}

#[test]
fn a_hand_written_check_cannot_grant() {
    // Hand-written Datalog in a captix block is a check: a fact or rule is refused at signing.
    let t = base();
    assert!(t
        .attenuate()
        .datalog(r#"allow_tool("delete_invoice")"#)
        .sign()
        .is_err());
    assert!(t
        .attenuate()
        .datalog("allow_tool($t) <- tool($t)")
        .sign()
        .is_err());
    let child = t.attenuate().datalog("check if true").sign().expect("att");
    assert_eq!(
        outcome(child.as_str(), &call("delete_invoice", "{}")),
        "tool_not_granted"
    );
}

#[test]
fn an_unguarded_check_is_allowed_or_check_failed_and_a_guarded_one_is_deterministic() {
    // `n` is an integer: starts_with fails to evaluate on it, and holds on /org. Biscuit's fact
    // order varies between runs, so the answer does (spec §4.10; found by the datalog fuzz
    // target). Only these two answers are possible.
    let c = ok_call();
    let unguarded = base()
        .attenuate()
        .datalog(r#"check if arg($p, $v), $v.starts_with("ac")"#)
        .sign()
        .expect("att");
    for _ in 0..64 {
        match captix::verify(unguarded.as_str(), &c, &keys()) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!((e.code, e.block), (Code::CheckFailed, None), "{e:?}");
                assert!(e.reason.contains("failed to evaluate"), "{}", e.reason);
            }
        }
    }
    let guarded = base()
        .attenuate()
        .datalog(r#"check if arg($p, $v), $v.type() == "string", $v.starts_with("ac")"#)
        .sign()
        .expect("att");
    for _ in 0..64 {
        assert_eq!(outcome(guarded.as_str(), &c), "allow");
    }
}

// ---- §7.2 Datalog run limits ----

#[test]
fn run_limits_cut_off_hostile_rules_with_their_own_code() {
    let t = base();
    // Facts: 70 x 70 derived pairs, over the fact limit.
    let flood = (0..70).map(|i| format!("a({i});")).collect::<String>()
        + "p($x, $y) <- a($x), a($y); check if p(1, 2);";
    let text = appended(&t, BlockBuilder::new().code(flood).expect("code"));
    assert_eq!(outcome(&text, &ok_call()), "limits_exceeded");
    // Iterations: a successor chain needs one iteration per step, over the iteration limit.
    let edges = (0..80)
        .map(|i| format!("e({i}, {});", i + 1))
        .collect::<String>();
    let steps = edges + "r(0); r($y) <- r($x), e($x, $y); check if r(80);";
    let text = appended(&t, BlockBuilder::new().code(steps).expect("code"));
    let e = captix::verify(&text, &ok_call(), &keys()).expect_err("denied");
    assert_eq!(e.code, Code::LimitsExceeded, "{e:?}");
    // A join of five predicates over 60 facts (777,600,000 combinations) in one check: Biscuit
    // checks its time limit only between steps, so this would run for many minutes. The work
    // bound refuses it before any Datalog runs.
    let facts = (0..60).map(|i| format!("a({i});")).collect::<String>();
    let join =
        facts + "check if a($x), a($y), a($z), a($w), a($v), $x + $y + $z + $w + $v == 1000;";
    let joined = appended(&t, BlockBuilder::new().code(join).expect("code"));
    let e = captix::verify(&joined, &ok_call(), &keys()).expect_err("denied");
    assert_eq!(e.code, Code::LimitsExceeded, "{e:?}");
    assert!(
        e.reason.contains("units of work for this call"),
        "{}",
        e.reason
    );
    assert_eq!(outcome(&joined, &ok_call()), "limits_exceeded");
    // Joins on constant pointers are cheap whatever the arguments: allowed.
    let pair = t
        .attenuate()
        .datalog(r#"check if arg("/org", $o), arg("/n", $n), $o.length() > $n"#)
        .sign()
        .expect("att");
    assert_eq!(outcome(pair.as_str(), &ok_call()), "allow");
    // A hostile block does not hide an expiry or a missing grant behind limits_exceeded.
    let late = Call::new("list_invoices", r#"{"org":"acme","n":1}"#)
        .expect("call")
        .at(NOW + 7200);
    assert_eq!(outcome(&text, &late), "expired");
    assert_eq!(
        outcome(&text, &call("delete_invoice", "{}")),
        "tool_not_granted"
    );
}

#[test]
fn the_largest_valid_ticket_stays_within_the_run_limits() {
    // As many blocks as fit (32, or the byte limit first), each with a row filter, a budget
    // and a tool list, and a call at the argument limits (1,024 leaves): the facts needed
    // stay far below the limit, so no valid ticket is denied by the deterministic limits;
    // the time limit (500 ms) is a backstop only.
    let mut t = Ticket::mint(&root(), "a", "u")
        .tool("t")
        .row("*:k0=v".parse().expect("row"))
        .expires_at(NOW + 3600)
        .sign()
        .expect("mint");
    for i in 1..MAX_BLOCKS {
        let next = t
            .attenuate()
            .tool("t")
            .row(format!("t:k{}=v", i % 8).parse::<RowFilter>().expect("row"))
            .budget(
                format!("t:{}/min", 1000 + i)
                    .parse::<Budget>()
                    .expect("budget"),
            )
            .sign();
        match next {
            Ok(n) => t = n,
            Err(captix::Error::Denied(d)) if d.code == captix::Code::TicketTooLarge => break,
            Err(e) => panic!("attenuate: {e:?}"),
        }
    }
    assert!(t.blocks().len() >= 28, "{} blocks", t.blocks().len());
    let mut args = serde_json::Map::new();
    for i in 0..MAX_ARGS_LEAVES {
        args.insert(format!("k{i}"), serde_json::json!("v"));
    }
    let args = serde_json::Value::Object(args).to_string();
    let c = Call::new("t", &args).expect("at the leaf limit").at(NOW);
    let facts_needed = MAX_ARGS_LEAVES as u64 + 4 + 4 * MAX_BLOCKS as u64;
    assert!(
        facts_needed * 3 < DATALOG_MAX_FACTS,
        "limit too tight: {facts_needed}"
    );
    // Busy machine: every other core spins while the check runs.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect();
    let r = captix::verify(t.as_str(), &c, &keys());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spinners {
        s.join().expect("spinner");
    }
    assert!(r.is_ok(), "{:?}", r.err());
    assert_eq!(outcome(t.as_str(), &c), "allow");
}

// ---- §3.2, §7.1 arguments ----

fn args_code(args: &str) -> String {
    match Call::new("list_invoices", args) {
        Ok(c) => outcome(base().as_str(), &c.at(NOW)),
        Err(e) => {
            assert!(!e.reason.is_empty());
            e.code.as_str().to_string()
        }
    }
}

fn nested(depth: usize) -> String {
    // depth 1 is the arguments object itself.
    let mut s = String::from(r#"{"org":"acme","n":1,"x":"#);
    s.push_str(&"[".repeat(depth - 1));
    s.push('1');
    s.push_str(&"]".repeat(depth - 1));
    s.push('}');
    s
}

#[test]
fn argument_depth_limit_is_exact_and_deep_input_cannot_overflow_the_stack() {
    assert_eq!(args_code(&nested(MAX_ARGS_DEPTH)), "allow");
    assert_eq!(args_code(&nested(MAX_ARGS_DEPTH + 1)), "args_too_deep");
    // 30,000 levels, just under the size limit: refused at level 17, no recursion beyond.
    let deep = nested(30_000);
    assert!(deep.len() < MAX_ARGS_BYTES);
    let (code, peak) = peak_bytes(|| args_code(&deep));
    assert_eq!(code, "args_too_deep");
    assert!(peak < 1 << 20, "held {peak} bytes");
    let objects = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
    assert!(objects.len() < MAX_ARGS_BYTES);
    assert_eq!(args_code(&objects), "args_too_deep");
}

#[test]
fn argument_size_and_leaf_limits_are_exact() {
    let padded = |len: usize| {
        let head = r#"{"org":"acme","n":1,"pad":""#;
        let pad = len - head.len() - 2;
        format!("{head}{}\"}}", "x".repeat(pad))
    };
    assert_eq!(padded(MAX_ARGS_BYTES).len(), MAX_ARGS_BYTES);
    assert_eq!(args_code(&padded(MAX_ARGS_BYTES)), "allow");
    assert_eq!(args_code(&padded(MAX_ARGS_BYTES + 1)), "args_too_large");
    let spaces = vec![b' '; 100 << 20];
    let (code, peak) = peak_bytes(|| captix::Args::from_slice(&spaces).err().map(|e| e.code));
    assert_eq!(code, Some(Code::ArgsTooLarge));
    assert!(peak < 4096, "held {peak} bytes");
    let leaves = |n: usize| {
        let items = (0..n - 2)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        format!(r#"{{"org":"acme","n":1,"xs":[{items}]}}"#)
    };
    assert_eq!(args_code(&leaves(MAX_ARGS_LEAVES)), "allow");
    assert_eq!(args_code(&leaves(MAX_ARGS_LEAVES + 1)), "args_too_large");
}

#[test]
fn duplicate_keys_are_refused_at_any_depth_and_spelling() {
    for dup in [
        r#"{"org":"acme","org":"globex"}"#,
        r#"{"org":"acme","n":1,"f":{"a":1,"a":2}}"#,
        r#"{"org":"acme","\u006frg":"globex"}"#,
        r#"{"org":"acme","n":1,"xs":[{"k":1},{"k":1,"k":2}]}"#,
    ] {
        assert_eq!(args_code(dup), "args_duplicate_key", "{dup}");
    }
    // Distinct keys that only look alike are not duplicates, and do not satisfy a filter on
    // the real key: /оrg (Cyrillic о) is another argument.
    assert_eq!(args_code(r#"{"оrg":"acme","n":1}"#), "arg_denied");
    assert_eq!(args_code(r#"{"org":"acme","оrg":"globex","n":1}"#), "allow");
}

#[test]
fn non_utf8_is_refused() {
    let c = ok_call();
    let mut bytes = base().as_str().as_bytes().to_vec();
    bytes[20] = 0xff;
    let v = Verifier::builder(keys()).build();
    assert_eq!(
        v.check_bytes(&bytes, &c).err().map(|e| e.code),
        Some(Code::Malformed)
    );
    assert_eq!(
        captix::Args::from_slice(b"{\"org\":\"\xff\xfe\"}")
            .err()
            .map(|e| e.code),
        Some(Code::ArgsMalformed)
    );
    // A lone surrogate escape is not a Unicode scalar value.
    assert_eq!(args_code(r#"{"org":"\ud800","n":1}"#), "args_malformed");
}

#[test]
fn nan_infinite_and_huge_numbers_never_satisfy_a_numeric_filter() {
    // Not JSON at all:
    for bad in [
        r#"{"org":"acme","n":NaN}"#,
        r#"{"org":"acme","n":Infinity}"#,
        r#"{"org":"acme","n":-Infinity}"#,
    ] {
        assert_eq!(args_code(bad), "args_malformed", "{bad}");
    }
    // JSON numbers that are not 64-bit integers yield no fact, so `n <= 10` denies them
    // (spec §3.2) rather than wrapping or saturating into range.
    for n in [
        "1e400",
        "-1e400",
        "18446744073709551616",
        "-9223372036854775809",
        "1.5",
        "1e0",
        "-0.0",
        "9223372036854775808",
    ] {
        let args = format!(r#"{{"org":"acme","n":{n}}}"#);
        let code = args_code(&args);
        assert!(
            code == "arg_denied" || code == "args_malformed",
            "{n}: {code}"
        );
        assert_ne!(code, "allow", "{n}");
    }
    assert_eq!(
        args_code(r#"{"org":"acme","n":-9223372036854775808}"#),
        "allow"
    );
    assert_eq!(args_code(r#"{"org":"acme","n":11}"#), "arg_denied");
}

#[test]
fn range_and_budget_texts_cannot_overflow() {
    for bad in [
        "*:n>9223372036854775807",
        "*:n<-9223372036854775808",
        "*:n<=9223372036854775808",
        "*:n>=-9223372036854775809",
        "*:n<=99999999999999999999999",
        "*:n<=1e3",
        "*:n<=0x10",
    ] {
        assert!(bad.parse::<RowFilter>().is_err(), "{bad} parsed");
    }
    // The extreme bounds themselves are fine and enforced exactly.
    let t = Ticket::mint(&root(), "a", "u")
        .tool("t")
        .row("*:n<9223372036854775807".parse().expect("row"))
        .row("*:m>-9223372036854775808".parse().expect("row"))
        .sign()
        .expect("mint");
    let at = |n: &str, m: &str| outcome(t.as_str(), &call("t", &format!(r#"{{"n":{n},"m":{m}}}"#)));
    assert_eq!(at("9223372036854775806", "-9223372036854775807"), "allow");
    assert_eq!(at("9223372036854775807", "0"), "arg_denied");
    assert_eq!(at("0", "-9223372036854775808"), "arg_denied");
    for bad in [
        "18446744073709551615",
        "9223372036854775808/min",
        "18446744073709551616/min",
        "1/99999999999999999999d",
        "1/106751991167301d",
        "-1/min",
        "1/0s",
    ] {
        assert!(bad.parse::<Budget>().is_err(), "{bad} parsed");
    }
    // One limit for every store (spec §4.5): (window + 1) × (calls + 1) < 2^53.
    assert!("9223372036854775807/min".parse::<Budget>().is_err());
    assert!("147659004176080/min".parse::<Budget>().is_ok());
    assert!("147659004176081/min".parse::<Budget>().is_err());
    assert!(captix::parse_duration("213503982334602d").is_err());
}

// ---- §4.2 tool names ----

#[test]
fn look_alike_tool_names_are_not_granted() {
    let t = base();
    for tool in [
        "lіst_invoices",         // Cyrillic і
        "list_invoіces",         // Cyrillic і
        "list_invoices\u{200b}", // zero-width space
        "\u{feff}list_invoices", // byte order mark
        "ｌｉｓｔ_invoices",     // fullwidth
        "LIST_INVOICES",
        "list_invoices ",
        "list_invoices\0",
        "list\u{0332}_invoices", // combining low line
    ] {
        assert_eq!(
            outcome(t.as_str(), &call(tool, r#"{"org":"acme","n":1}"#)),
            "tool_not_granted",
            "{tool:?}"
        );
    }
    // NFC and NFD spellings are different names: no normalisation widens a grant.
    let nfc = Ticket::mint(&root(), "a", "u")
        .tool("caf\u{e9}")
        .sign()
        .expect("mint");
    assert_eq!(outcome(nfc.as_str(), &call("caf\u{e9}", "{}")), "allow");
    assert_eq!(
        outcome(nfc.as_str(), &call("cafe\u{301}", "{}")),
        "tool_not_granted"
    );
    // Control characters cannot be granted at all; over-long names cannot be called.
    assert!(Ticket::mint(&root(), "a", "u")
        .tool("list\ninvoices")
        .sign()
        .is_err());
    assert_eq!(
        Call::new("x".repeat(129), "{}").err().map(|e| e.code),
        Some(Code::ArgsMalformed)
    );
}

// ---- revocation of any block, whatever the chain ----

#[test]
fn revoking_any_block_of_a_long_chain_revokes_the_ticket() {
    let mut t = base();
    for _ in 0..7 {
        t = t.attenuate().tool("list_invoices").sign().expect("att");
    }
    for id in t.revocation_ids().cloned().collect::<Vec<_>>() {
        let revocations = Arc::new(MemoryRevocations::new());
        revocations.revoke(&id);
        let v = Verifier::builder(keys()).revocations(revocations).build();
        assert_eq!(
            v.check(t.as_str(), &ok_call()).err().map(|e| e.code),
            Some(Code::Revoked)
        );
    }
}

// ---- §7.2 the work bound covers expressions (class: datalog_expression_cost) ----

/// A holder's Datalog is charged for what it makes Biscuit do, before it runs: closures by
/// the length of what they iterate, strings by their bytes, interning by the symbol table,
/// joins by the facts every level scans. Each construct of the review is refused at a size
/// that would run for seconds, and a small use of it still runs. (No timing: a construct
/// that slipped through would hold this test for minutes, which CI would notice.)
#[test]
fn hand_written_datalog_costs_what_its_expressions_cost() {
    let t = base();
    let arr = |n: usize| {
        format!(
            "[{}]",
            (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        )
    };
    let with = |src: String| t.attenuate().datalog(src).sign().expect("att");
    // The review's ticket: three nested .all() over 300 elements ran 10.9 s.
    let a = arr(300);
    let cubic = with(format!(
        "check if {a}.all($x -> {a}.all($y -> {a}.all($z -> $x + $y + $z >= 0)))"
    ));
    assert_eq!(outcome(cubic.as_str(), &ok_call()), "limits_exceeded");
    let e = captix::verify(cubic.as_str(), &ok_call(), &keys()).expect_err("refused");
    assert!(e.reason.contains("units of work"), "{}", e.reason);
    // A closure on the left of its operator (`.try_or()` puts it there) is charged too, and a
    // regular expression inside one is refused (found by the review of the fix: a four-level
    // nesting inside `.try_or(false)` ran 32 s).
    let a100 = arr(100);
    let hidden = with(format!(
        "check if {a100}.all($w -> {a100}.all($x -> {a100}.all($y -> $y >= 0))).try_or(false)"
    ));
    assert_eq!(outcome(hidden.as_str(), &ok_call()), "limits_exceeded");
    let hidden_regex = with(r#"check if "abc".matches("^a").try_or(false)"#.into());
    assert_eq!(
        outcome(hidden_regex.as_str(), &ok_call()),
        "limits_exceeded"
    );
    let small_try = with("check if [1, 2].all($x -> $x > 0).try_or(false)".into());
    assert_eq!(outcome(small_try.as_str(), &ok_call()), "allow");
    // Small closures are within the bound, allowed or denied by what they say.
    let a3 = arr(3);
    let small = with(format!("check if {a3}.all($x -> {a3}.any($y -> $x == $y))"));
    assert_eq!(outcome(small.as_str(), &ok_call()), "allow");
    let small_no = with(format!("check if {a3}.all($x -> $x > 5)"));
    assert_eq!(outcome(small_no.as_str(), &ok_call()), "check_failed");
    // String concatenation in a closure interns a new string per run.
    let strs = format!(
        "[{}]",
        (0..60)
            .map(|i| format!("\"{i:0>40}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let concat = with(format!(
        "check if {strs}.all($x -> {strs}.all($y -> ($x + $y).length() < 0))"
    ));
    assert_eq!(outcome(concat.as_str(), &ok_call()), "limits_exceeded");
    // Set operations cost their sizes.
    let set = format!(
        "{{{}}}",
        (0..400)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let sets = with(format!(
        "check if {set}.all($x -> {set}.union({set}).contains(-1))"
    ));
    assert_eq!(outcome(sets.as_str(), &ok_call()), "limits_exceeded");
    // A regular expression cannot be bounded by its length: refused at any size.
    let regex = with(r#"check if arg("/org", $o), $o.matches("^ac")"#.into());
    assert_eq!(outcome(regex.as_str(), &ok_call()), "limits_exceeded");
    let e = captix::verify(regex.as_str(), &ok_call(), &keys()).expect_err("refused");
    assert!(e.reason.contains("regular expression"), "{}", e.reason);
    // Every join level scans every fact: 1,024 arguments against 300 foreign facts is over a
    // million fact tests, though only 1,024 combinations.
    let facts: String = (0..300).map(|i| format!("b({i});")).collect();
    let scan = appended(
        &t,
        BlockBuilder::new()
            .code(facts + "check if arg($p, $v), b($v);")
            .expect("code"),
    );
    let wide_args = format!(
        "{{\"org\":\"acme\",\"n\":1,{}}}",
        (0..1000)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let wide = call("list_invoices", &wide_args);
    assert_eq!(outcome(&scan, &wide), "limits_exceeded");
    // ... and the vocabulary still has precedence over the refusal.
    let late = Call::new("list_invoices", &wide_args)
        .expect("call")
        .at(NOW + 7200);
    assert_eq!(outcome(&scan, &late), "expired");
}

// ---- §6.2 descriptions compared as terms (class: printed_datalog_trusted) ----

/// Biscuit prints strings without escaping them. A description is compared with the decoded
/// block, so a quote cannot make one check read as another, honest strings with quotes and
/// backslashes verify beside hand-written checks, and the work bound counts every fact.
#[test]
fn descriptions_are_compared_as_terms_not_printed_text() {
    let t = base();
    // The injection: Datalog `check if arg("/org", "zz") or tool("list_invoices")` whose
    // printed form equals that of the described row `org = "zz\") or tool(\"list_invoices"`.
    let block = BlockBuilder::new()
        .code(r#"check if arg("/org", "zz") or tool("list_invoices")"#)
        .expect("code")
        .context(
            r#"{"captix":1,"rows":[{"tool":"*","arg":"/org","eq":"zz\") or tool(\"list_invoices"}]}"#
                .to_string(),
        );
    let injected = appended(&t, block);
    assert_eq!(outcome(&injected, &ok_call()), "malformed");
    // Honest tickets with quotes and backslashes, beside a hand-written check (the review saw
    // them denied with limits_exceeded).
    let honest = Ticket::mint(&root(), "agent", "O\"Brien")
        .tool("list_invoices")
        .row("list_invoices:path^=C:\\Users\\".parse().expect("row"))
        .expires_at(NOW + 3600)
        .datalog(r#"check if arg("/path", $p), $p.starts_with("C:\\")"#)
        .sign()
        .expect("mint");
    let c = call("list_invoices", r#"{"path":"C:\\Users\\me"}"#);
    assert_eq!(outcome(honest.as_str(), &c), "allow");
    let other = call("list_invoices", r#"{"path":"D:\\Users\\me"}"#);
    assert_eq!(outcome(honest.as_str(), &other), "arg_denied");
    // Facts whose strings hold quotes and `;` are still facts: a five-way join over them is
    // bounded by their real number.
    let facts: String = (0..60)
        .map(|i| format!("a(\"\\\"); x({i}); y(\\\"\");"))
        .collect();
    let join = appended(
        &t,
        BlockBuilder::new()
            .code(facts + "check if a($x), a($y), a($z), a($w), a($v), $x == \"\";")
            .expect("code"),
    );
    assert_eq!(outcome(&join, &ok_call()), "limits_exceeded");
}

// ---- §6.1 one text form (class: text_form_ambiguity) ----

/// The signatures cover the blocks, not the outer protobuf message: a token re-encoded with an
/// unknown field, a repeated scalar or a prefix field is another string that would verify.
/// Only the message's own encoding is accepted (found by the review of the fix).
#[test]
fn only_the_canonical_encoding_verifies() {
    let t = base();
    let raw = t.biscuit().to_vec().expect("bytes");
    assert_eq!(outcome(&text_of(&raw), &ok_call()), "allow");
    let mut trailing = raw.clone();
    trailing.extend_from_slice(&[0x78, 0x00]); // field 15, varint 0
    let mut leading = vec![0x78, 0x05];
    leading.extend_from_slice(&raw);
    let outer = schema::Biscuit::decode(raw.as_slice()).expect("decode");
    let mut repeated = raw.clone();
    if let Some(id) = outer.root_key_id {
        repeated.push(0x08); // field 1, varint: the root key id again
        let mut v = u64::from(id);
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            repeated.push(if v == 0 { b } else { b | 0x80 });
            if v == 0 {
                break;
            }
        }
    }
    for (what, bytes) in [
        ("trailing", trailing),
        ("leading", leading),
        ("repeated", repeated),
    ] {
        assert_eq!(outcome(&text_of(&bytes), &ok_call()), "malformed", "{what}");
    }
}

/// A block carries at most 16 budgets (spec §7.1): each may hold store state for as long as
/// its block can be presented.
#[test]
fn budgets_per_block_are_bounded() {
    let t = base();
    let mut a = t.attenuate();
    for i in 0..16 {
        a = a.budget(format!("{}", 100 + i).parse().expect("budget"));
    }
    let ok = a.budget("1".parse().expect("budget"));
    assert!(
        ok.sign().is_err(),
        "17 budgets are refused when attenuating"
    );
    let mut a = t.attenuate();
    for i in 0..16 {
        a = a.budget(format!("{}", 100 + i).parse().expect("budget"));
    }
    assert_eq!(outcome(a.sign().expect("16").as_str(), &ok_call()), "allow");
}

/// A holder can sign a check whose expression's operations do not form one value (found by
/// the `ticket` fuzz target, `fuzz/regressions/ticket/inspect-unprintable-expression`): Biscuit's
/// printer would panic on it (its `Display` unwraps), so inspection shows the check as
/// unprintable, and verification denies it like any failing foreign check.
#[test]
fn a_check_that_biscuit_cannot_print_is_inspected_and_denied() {
    use biscuit_auth::builder::{
        int, pred, string, var, Binary, Check, CheckKind, Expression, Op, Rule, Term,
    };
    let t = base();
    let broken = |ops: Vec<Op>| Check {
        queries: vec![Rule::new(
            pred("query", &[] as &[Term]),
            vec![pred("tool", &[var("t")])],
            vec![Expression { ops }],
            vec![],
        )],
        kind: CheckKind::One,
    };
    for ops in [
        vec![Op::Value(int(1)), Op::Binary(Binary::Equal)],
        vec![Op::Value(int(1)), Op::Value(string("x"))],
        vec![Op::Binary(Binary::LessThan)],
    ] {
        let block = BlockBuilder::new()
            .check(broken(ops.clone()))
            .expect("check");
        let text = appended(&t, block);
        let unverified = captix::UnverifiedTicket::parse(&text).expect("parses");
        let report = unverified.inspect();
        assert!(
            report.blocks[1]
                .datalog
                .contains("check with an expression that does not print"),
            "{ops:?}: {}",
            report.blocks[1].datalog
        );
        let c = call("list_invoices", r#"{"org":"acme","n":1}"#);
        assert_ne!(outcome(&text, &c), "allow", "{ops:?}");
    }
}
