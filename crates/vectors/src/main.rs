//! Writes the conformance vectors of `test-vectors/` (spec §9), deterministically: fixed key
//! seeds, a seeded ChaCha20 generator for next-block keys, fixed times.
//!
//! Run: `cargo run -p captix-vectors -- test-vectors`

use std::path::PathBuf;

use captix::{SigningKey, Ticket, PREFIX};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

const NOW: u64 = 1_800_000_000;
const RES: &str = "https://mcp.example/invoices";

struct Gen {
    out: Vec<(String, Value)>,
    rng: ChaCha20Rng,
    root: SigningKey,
}

struct V<'a> {
    name: &'a str,
    section: &'a str,
    comment: &'a str,
    ticket: String,
    /// The MCP method: `tools/call` (with `tool` and `args`), `resources/read` (`tool` is the
    /// URI) or `prompts/get` (`tool` is the prompt's name).
    method: &'a str,
    tool: &'a str,
    args: &'a str,
    time: u64,
    resource: Option<&'a str>,
    expect: &'a str,
    block: Option<usize>,
    keys: Option<Vec<String>>,
}

impl Gen {
    /// `t` with a block appended by plain Biscuit (a fresh key from the seeded generator), as
    /// ticket text: foreign blocks, forged grants, hostile Datalog.
    fn append(&mut self, t: &Ticket, block: biscuit_auth::BlockBuilder) -> String {
        let kp = biscuit_auth::KeyPair::new_with_rng(
            biscuit_auth::builder::Algorithm::Ed25519,
            &mut self.rng,
        );
        let b = t.biscuit().append_with_keypair(&kp, block).expect("append");
        format!("{PREFIX}{}", b64(&b.to_vec().expect("bytes")))
    }

    fn push(&mut self, v: V<'_>) {
        let keys = v.keys.unwrap_or_else(|| vec![self.root.public().to_text()]);
        let mut call = match v.method {
            captix::TOOLS_CALL => json!({ "method": v.method, "tool": v.tool, "args": v.args }),
            captix::RESOURCES_READ => json!({ "method": v.method, "uri": v.tool }),
            captix::PROMPTS_GET => json!({ "method": v.method, "prompt": v.tool }),
            other => panic!("vector {}: unknown method {other}", v.name),
        };
        call["time"] = json!(v.time);
        if let Some(r) = v.resource {
            call["resource"] = json!(r);
        }
        let mut expect = json!({ "outcome": v.expect });
        if let Some(b) = v.block {
            expect["block"] = json!(b);
        }
        let doc = json!({
            "name": v.name,
            "section": v.section,
            "comment": v.comment,
            "keys": keys,
            "ticket": v.ticket,
            "call": call,
            "expect": expect,
        });
        assert!(
            !self.out.iter().any(|(n, _)| n == v.name),
            "duplicate vector name {}",
            v.name
        );
        self.out.push((v.name.to_string(), doc));
    }

    /// The standard authority block: three tools, org acme, refunds up to 500, one hour.
    fn base(&mut self) -> Ticket {
        Ticket::mint(&self.root, "billing-agent", "alice")
            .issuer("https://auth.example")
            .tool("list_invoices")
            .tool("get_invoice")
            .tool("create_refund")
            .row("*:org=acme".parse().expect("row"))
            .row("create_refund:amount<=500".parse().expect("row"))
            .budget("100/min".parse().expect("budget"))
            .expires_at(NOW + 3600)
            .resource(RES)
            .sign_with_rng(&mut self.rng)
            .expect("mint")
    }
}

fn v<'a>(
    name: &'a str,
    section: &'a str,
    comment: &'a str,
    ticket: &Ticket,
    tool: &'a str,
    args: &'a str,
    expect: &'a str,
) -> V<'a> {
    V {
        name,
        section,
        comment,
        ticket: ticket.as_str().to_string(),
        method: captix::TOOLS_CALL,
        tool,
        args,
        time: NOW,
        resource: Some(RES),
        expect,
        block: None,
        keys: None,
    }
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "test-vectors".into()),
    );
    let mut g = Gen {
        out: Vec::new(),
        rng: ChaCha20Rng::from_seed([7u8; 32]),
        root: SigningKey::from_seed(&[1u8; 32]),
    };
    let base = g.base();
    let acme = r#"{"org":"acme"}"#;

    // §4.2 grants
    g.push(v(
        "grant_allows",
        "4.2",
        "a granted tool with satisfied filters is allowed",
        &base,
        "list_invoices",
        acme,
        "allow",
    ));
    g.push(V {
        block: Some(0),
        ..v(
            "grant_missing",
            "4.2",
            "a tool the authority block does not grant is denied",
            &base,
            "delete_invoice",
            acme,
            "tool_not_granted",
        )
    });
    g.push(V {
        block: Some(0),
        ..v(
            "grant_before_rows",
            "6.3",
            "an ungranted tool is reported as such even when a row filter would also fail",
            &base,
            "delete_invoice",
            "{}",
            "tool_not_granted",
        )
    });
    g.push(V {
        time: NOW + 3600,
        block: Some(0),
        ..v(
            "validity_before_grant",
            "6.3",
            "an expired ticket is reported expired whatever the tool",
            &base,
            "delete_invoice",
            acme,
            "expired",
        )
    });
    let empty = Ticket::mint(&g.root, "a", "u")
        .sign_with_rng(&mut g.rng)
        .expect("mint");
    g.push(V {
        block: Some(0),
        ..v(
            "grant_none_allows_nothing",
            "4.2",
            "a ticket with no grant allows nothing",
            &empty,
            "list_invoices",
            "{}",
            "tool_not_granted",
        )
    });
    g.push(v(
        "grant_case_sensitive",
        "4.2",
        "tool names compare exactly: List_invoices is another tool",
        &base,
        "List_invoices",
        acme,
        "tool_not_granted",
    ));
    g.push(v(
        "grant_lookalike_unicode",
        "4.2",
        "a look-alike tool name (Cyrillic і) is another tool",
        &base,
        "l\u{0456}st_invoices",
        acme,
        "tool_not_granted",
    ));

    // §4.3 row filters
    g.push(V {
        block: Some(0),
        ..v(
            "row_eq_denied",
            "4.3",
            "org must equal acme",
            &base,
            "list_invoices",
            r#"{"org":"globex"}"#,
            "arg_denied",
        )
    });
    g.push(V {
        block: Some(0),
        ..v(
            "row_missing_denied",
            "4.3",
            "a missing argument never satisfies a filter",
            &base,
            "list_invoices",
            "{}",
            "arg_denied",
        )
    });
    g.push(V {
        block: Some(0),
        ..v(
            "row_wrong_type_denied",
            "4.3",
            "the string filter is not satisfied by an integer",
            &base,
            "list_invoices",
            r#"{"org":1}"#,
            "arg_denied",
        )
    });
    g.push(v(
        "row_nested_key_no_collision",
        "3.2",
        "{\"org\":{\"x\":\"acme\"}} yields /org/x, not /org",
        &base,
        "list_invoices",
        r#"{"org":{"x":"acme"}}"#,
        "arg_denied",
    ));
    g.push(v(
        "row_dotted_key_no_collision",
        "3.2",
        "a key named \"org/x\" is /org~1x, never /org/x",
        &base,
        "list_invoices",
        r#"{"org/x":"acme"}"#,
        "arg_denied",
    ));
    g.push(v(
        "row_range_allows",
        "4.3",
        "amount 500 is within <= 500",
        &base,
        "create_refund",
        r#"{"org":"acme","amount":500}"#,
        "allow",
    ));
    g.push(V {
        block: Some(0),
        ..v(
            "row_range_denied",
            "4.3",
            "amount 501 exceeds <= 500",
            &base,
            "create_refund",
            r#"{"org":"acme","amount":501}"#,
            "arg_denied",
        )
    });
    g.push(v(
        "row_range_float_denied",
        "3.2",
        "a non-integer number yields no fact, so the range denies",
        &base,
        "create_refund",
        r#"{"org":"acme","amount":1.5}"#,
        "arg_denied",
    ));
    g.push(v(
        "row_range_string_denied",
        "4.3",
        "an integer range is not satisfied by a string",
        &base,
        "create_refund",
        r#"{"org":"acme","amount":"5"}"#,
        "arg_denied",
    ));
    g.push(v(
        "row_range_huge_denied",
        "3.2",
        "an integer beyond 64 bits yields no fact",
        &base,
        "create_refund",
        r#"{"org":"acme","amount":99999999999999999999}"#,
        "arg_denied",
    ));
    g.push(v(
        "row_per_tool_scoped",
        "4.3",
        "the refund filter does not apply to list_invoices",
        &base,
        "list_invoices",
        r#"{"org":"acme","amount":100000}"#,
        "allow",
    ));
    let kinds = base
        .attenuate()
        .row("list_invoices:status=open|paid".parse().expect("row"))
        .row("list_invoices:number^=INV-".parse().expect("row"))
        .row("list_invoices:page>=1".parse().expect("row"))
        .row("list_invoices:page<10".parse().expect("row"))
        .row("list_invoices:filter/archived=false".parse().expect("row"))
        .sign_with_rng(&mut g.rng)
        .expect("att");
    let ok =
        r#"{"org":"acme","status":"paid","number":"INV-7","page":9,"filter":{"archived":false}}"#;
    g.push(v(
        "row_all_kinds_allow",
        "4.3",
        "one-of, prefix, range and nested boolean equality all satisfied",
        &kinds,
        "list_invoices",
        ok,
        "allow",
    ));
    g.push(V { block: Some(1), ..v("row_oneof_denied", "4.3", "status void is not one of open, paid", &kinds, "list_invoices", r#"{"org":"acme","status":"void","number":"INV-7","page":9,"filter":{"archived":false}}"#, "arg_denied") });
    g.push(V { block: Some(1), ..v("row_prefix_denied", "4.3", "number must start with INV-", &kinds, "list_invoices", r#"{"org":"acme","status":"paid","number":"CN-7","page":9,"filter":{"archived":false}}"#, "arg_denied") });
    g.push(V { block: Some(1), ..v("row_min_denied", "4.3", "page must be >= 1", &kinds, "list_invoices", r#"{"org":"acme","status":"paid","number":"INV-7","page":0,"filter":{"archived":false}}"#, "arg_denied") });
    g.push(V { block: Some(1), ..v("row_exclusive_max_denied", "4.3", "page < 10 excludes 10", &kinds, "list_invoices", r#"{"org":"acme","status":"paid","number":"INV-7","page":10,"filter":{"archived":false}}"#, "arg_denied") });
    g.push(V { block: Some(1), ..v("row_bool_denied", "4.3", "filter/archived must be false", &kinds, "list_invoices", r#"{"org":"acme","status":"paid","number":"INV-7","page":3,"filter":{"archived":true}}"#, "arg_denied") });
    g.push(v(
        "row_bool_string_denied",
        "4.3",
        "\"false\" (a string) is not false",
        &kinds,
        "list_invoices",
        r#"{"org":"acme","status":"paid","number":"INV-7","page":3,"filter":{"archived":"false"}}"#,
        "arg_denied",
    ));
    let arr = Ticket::mint(&g.root, "a", "u")
        .tool("t")
        .row("t:ids/0=7".parse().expect("row"))
        .sign_with_rng(&mut g.rng)
        .expect("mint");
    g.push(v(
        "row_array_pointer",
        "3.2",
        "array elements are addressed by index",
        &arr,
        "t",
        r#"{"ids":[7,8]}"#,
        "allow",
    ));

    // §4.4 time and audience
    g.push(V {
        time: NOW + 3600,
        block: Some(0),
        ..v(
            "expired_at_expiry",
            "4.4",
            "a ticket is no longer valid at its expiry second",
            &base,
            "list_invoices",
            acme,
            "expired",
        )
    });
    g.push(V {
        time: NOW + 3599,
        ..v(
            "valid_before_expiry",
            "4.4",
            "the last valid second",
            &base,
            "list_invoices",
            acme,
            "allow",
        )
    });
    let nbf = Ticket::mint(&g.root, "a", "u")
        .tool("t")
        .not_before(NOW)
        .sign_with_rng(&mut g.rng)
        .expect("mint");
    g.push(V {
        time: NOW - 1,
        block: Some(0),
        ..v(
            "not_yet_valid",
            "4.4",
            "one second before not-before",
            &nbf,
            "t",
            "{}",
            "not_yet_valid",
        )
    });
    g.push(v(
        "not_before_inclusive",
        "4.4",
        "valid from the not-before second on",
        &nbf,
        "t",
        "{}",
        "allow",
    ));
    g.push(V {
        resource: Some("https://other.example/"),
        block: Some(0),
        ..v(
            "wrong_resource",
            "4.4",
            "a ticket for another server is refused",
            &base,
            "list_invoices",
            acme,
            "wrong_resource",
        )
    });
    g.push(V {
        resource: None,
        ..v(
            "no_resource_given",
            "4.4",
            "a verifier that names no resource cannot satisfy an audience restriction",
            &base,
            "list_invoices",
            acme,
            "wrong_resource",
        )
    });

    // §4.9 attenuation chains
    let child = base
        .attenuate()
        .tool("list_invoices")
        .budget("10".parse().expect("b"))
        .expires_at(NOW + 300)
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(v(
        "child_allows",
        "4.9",
        "the sub-agent's narrower ticket allows its tool",
        &child,
        "list_invoices",
        acme,
        "allow",
    ));
    g.push(V {
        block: Some(1),
        ..v(
            "child_tool_narrowed",
            "4.9",
            "the child may not call get_invoice although the parent may",
            &child,
            "get_invoice",
            acme,
            "tool_not_granted",
        )
    });
    g.push(V {
        time: NOW + 300,
        block: Some(1),
        ..v(
            "child_expires_first",
            "4.9",
            "the child's shorter expiry applies",
            &child,
            "list_invoices",
            acme,
            "expired",
        )
    });
    g.push(V {
        block: Some(0),
        ..v(
            "child_keeps_parent_rows",
            "4.9",
            "the parent's org filter still binds the child",
            &child,
            "list_invoices",
            r#"{"org":"globex"}"#,
            "arg_denied",
        )
    });
    let widen = child
        .attenuate()
        .tool("delete_invoice")
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(V {
        block: Some(0),
        ..v(
            "attenuation_cannot_widen_tools",
            "4.9",
            "naming a new tool in an attenuation grants nothing: the authority's grants are checked first",
            &widen,
            "delete_invoice",
            acme,
            "tool_not_granted",
        )
    });
    let later = child
        .attenuate()
        .expires_at(NOW + 7200)
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(V {
        time: NOW + 400,
        block: Some(1),
        ..v(
            "attenuation_cannot_extend_expiry",
            "4.9",
            "a later expiry in a child block does not revive the ticket",
            &later,
            "list_invoices",
            acme,
            "expired",
        )
    });
    let mut chain = base.clone();
    for i in 1..8 {
        chain = chain
            .attenuate()
            .expires_at(NOW + 3600 - i * 100)
            .sign_with_rng(&mut g.rng)
            .expect("att");
    }
    g.push(v(
        "chain_8_blocks_allows",
        "4.9",
        "a chain of 8 blocks, all satisfied",
        &chain,
        "list_invoices",
        acme,
        "allow",
    ));
    g.push(V {
        time: NOW + 3000,
        block: Some(6),
        ..v(
            "chain_8_blocks_first_expiry",
            "4.9",
            "the first failing block in chain order is named",
            &chain,
            "list_invoices",
            acme,
            "expired",
        )
    });
    let narrowing = chain
        .attenuate()
        .row("list_invoices:org=acme|globex".parse().expect("row"))
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(V {
        block: Some(0),
        ..v(
            "chain_looser_row_does_not_widen",
            "4.9",
            "acme|globex in block 8 does not admit globex past block 0",
            &narrowing,
            "list_invoices",
            r#"{"org":"globex"}"#,
            "arg_denied",
        )
    });

    // §4.10 hand-written checks
    let custom = base
        .attenuate()
        .datalog(r#"check if arg("/org", $o), $o.length() <= 4"#)
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(v(
        "datalog_check_allows",
        "4.10",
        "a hand-written check that holds",
        &custom,
        "list_invoices",
        acme,
        "allow",
    ));
    let custom2 = Ticket::mint(&g.root, "a", "u")
        .tool("t")
        .datalog(r#"check if arg("/x", $x), $x.length() <= 2"#)
        .sign_with_rng(&mut g.rng)
        .expect("mint");
    g.push(V {
        block: Some(0),
        ..v(
            "datalog_check_denies",
            "4.10",
            "a hand-written check that fails gives check_failed",
            &custom2,
            "t",
            r#"{"x":"long"}"#,
            "check_failed",
        )
    });
    // A foreign block (plain Biscuit, no description) with rules that derive too many facts.
    let flood_src = (0..70).map(|i| format!("a({i});")).collect::<String>()
        + "p($x, $y) <- a($x), a($y); check if p(1, 2);";
    let flood = biscuit_auth::BlockBuilder::new()
        .code(flood_src)
        .expect("code");
    let flooded_text = g.append(&base, flood);
    g.push(V {
        ticket: flooded_text,
        ..v(
            "datalog_limits_exceeded",
            "7.2",
            "a foreign block whose rule multiplies facts (70 x 70) past the fact limit is cut off",
            &base,
            "list_invoices",
            acme,
            "limits_exceeded",
        )
    });
    let foreign = biscuit_auth::BlockBuilder::new()
        .code(r#"check if tool("get_invoice");"#)
        .expect("code");
    let foreign_text = g.append(&base, foreign);
    g.push(V {
        ticket: foreign_text.clone(),
        block: Some(1),
        ..v(
            "foreign_block_enforced",
            "6.2",
            "a block from another Biscuit tool is enforced by the reference path",
            &base,
            "list_invoices",
            acme,
            "check_failed",
        )
    });
    g.push(V {
        ticket: foreign_text,
        ..v(
            "foreign_block_allows",
            "6.2",
            "the foreign block's check holds",
            &base,
            "get_invoice",
            acme,
            "allow",
        )
    });
    let grant_try = biscuit_auth::BlockBuilder::new()
        .code(r#"allow_tool("delete_invoice");"#)
        .expect("code");
    let grant_text = g.append(&base, grant_try);
    g.push(V {
        ticket: grant_text,
        block: Some(0),
        ..v(
            "attenuation_fact_cannot_grant",
            "4.2",
            "allow_tool in an attenuation block is not trusted by the policy",
            &base,
            "delete_invoice",
            acme,
            "tool_not_granted",
        )
    });
    let lying = biscuit_auth::BlockBuilder::new()
        .code(r#"check if tool("get_invoice");"#)
        .expect("code")
        .context(r#"{"captix":2}"#.to_string());
    let lying_text = g.append(&base, lying);
    g.push(V {
        ticket: lying_text,
        block: Some(1),
        ..v(
            "description_mismatch",
            "6.2",
            "a captix description that does not match the block's Datalog is malformed",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });

    // §5 keys and signatures
    let other = SigningKey::from_seed(&[2u8; 32]);
    g.push(V {
        keys: Some(vec![other.public().to_text()]),
        ..v(
            "unknown_key_id",
            "5.3",
            "the verifier does not hold the key the ticket names",
            &base,
            "list_invoices",
            acme,
            "unknown_key",
        )
    });
    g.push(V {
        keys: Some(vec![other.public().to_text(), g.root.public().to_text()]),
        ..v(
            "key_rotation_two_keys",
            "5.3",
            "a verifier holding old and new keys picks by key id",
            &base,
            "list_invoices",
            acme,
            "allow",
        )
    });
    let resigned = Ticket::mint(&other, "billing-agent", "alice")
        .tool("list_invoices")
        .sign_with_rng(&mut g.rng)
        .expect("mint");
    g.push(v(
        "resigned_with_other_root",
        "5.3",
        "an equivalent ticket signed by another root key is refused",
        &resigned,
        "list_invoices",
        acme,
        "unknown_key",
    ));
    // Same key id, different key: build a biscuit whose key id claims the real root.
    let impostor = biscuit_auth::Biscuit::builder()
        .code(r#"agent("x"); allow_tool("list_invoices");"#)
        .expect("code")
        .root_key_id(g.root.key_id().0)
        .build_with_rng(
            &biscuit_auth::KeyPair::from(
                &biscuit_auth::PrivateKey::from_bytes(
                    &[2u8; 32],
                    biscuit_auth::builder::Algorithm::Ed25519,
                )
                .expect("pk"),
            ),
            biscuit_auth::datalog::SymbolTable::new(),
            &mut g.rng,
        )
        .expect("build");
    g.push(V { ticket: format!("{PREFIX}{}", b64(&impostor.to_vec().expect("bytes"))), ..v("wrong_key_same_key_id", "5.3", "a ticket signed by another key claiming the root's key id fails signature verification", &base, "list_invoices", acme, "bad_signature") });
    for (name, pos) in [
        ("tamper_authority_signature", 0.25),
        ("tamper_last_block", 0.97),
        ("tamper_middle", 0.5),
    ] {
        let t = child.as_str();
        let body = base64::decode_config(&t[PREFIX.len()..], base64::URL_SAFE_NO_PAD).expect("b64");
        let mut bytes = body.clone();
        let i = ((bytes.len() as f64) * pos) as usize;
        bytes[i] ^= 0x01;
        g.push(V { ticket: format!("{PREFIX}{}", b64(&bytes)), ..v(name, "6.3", "one flipped bit anywhere fails verification (signature, or decoding of what it signs)", &base, "list_invoices", acme, expect_for_tamper(&bytes, &g.root)) });
    }
    let stripped = {
        // Drop the last block of the child: the proof no longer matches.
        let mut outer = <biscuit_auth::format::schema::Biscuit as prost::Message>::decode(
            base64::decode_config(&child.as_str()[PREFIX.len()..], base64::URL_SAFE_NO_PAD)
                .expect("b64")
                .as_slice(),
        )
        .expect("decode");
        outer.blocks.pop();
        format!("{PREFIX}{}", b64(&prost::Message::encode_to_vec(&outer)))
    };
    g.push(V {
        ticket: stripped,
        ..v(
            "block_removed",
            "6.3",
            "removing an attenuation block breaks the proof",
            &base,
            "list_invoices",
            acme,
            "bad_signature",
        )
    });
    let sealed = base.biscuit().seal().expect("seal");
    g.push(V {
        ticket: format!("{PREFIX}{}", b64(&sealed.to_vec().expect("bytes"))),
        ..v(
            "sealed_ticket_allows",
            "6.3",
            "a sealed ticket verifies",
            &base,
            "list_invoices",
            acme,
            "allow",
        )
    });
    let mut sealed_plus = <biscuit_auth::format::schema::Biscuit as prost::Message>::decode(
        sealed.to_vec().expect("b").as_slice(),
    )
    .expect("decode");
    let child_outer = <biscuit_auth::format::schema::Biscuit as prost::Message>::decode(
        base64::decode_config(&child.as_str()[PREFIX.len()..], base64::URL_SAFE_NO_PAD)
            .expect("b64")
            .as_slice(),
    )
    .expect("decode");
    sealed_plus.blocks.push(child_outer.blocks[0].clone());
    g.push(V {
        ticket: format!(
            "{PREFIX}{}",
            b64(&prost::Message::encode_to_vec(&sealed_plus))
        ),
        ..v(
            "sealed_then_appended",
            "6.3",
            "a block spliced after a seal fails verification",
            &base,
            "list_invoices",
            acme,
            "bad_signature",
        )
    });

    // §6.1 encoding and §7 limits
    let t = base.as_str();
    g.push(V {
        ticket: t[PREFIX.len()..].to_string(),
        ..v(
            "missing_prefix",
            "6.1",
            "the bare base64 of a ticket lacks the captix1_ prefix",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });
    g.push(V {
        ticket: t[..t.len() / 2].to_string(),
        ..v(
            "truncated",
            "6.1",
            "half a ticket",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });
    g.push(V {
        ticket: "captix1_".into(),
        ..v(
            "empty_body",
            "6.1",
            "the prefix alone",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });
    g.push(V {
        ticket: "captix1_$$$$".into(),
        ..v(
            "not_base64",
            "6.1",
            "characters outside base64url",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });
    g.push(V {
        ticket: format!(
            "{PREFIX}{}",
            b64(b"\x00\x01garbage that is not protobuf\xff")
        ),
        ..v(
            "garbage_bytes",
            "6.1",
            "base64url of bytes that are not a Biscuit",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });
    g.push(V {
        ticket: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln".into(),
        ..v(
            "jwt_is_not_a_ticket",
            "6.1",
            "a JWT is refused without parsing",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });
    g.push(V {
        ticket: format!("{PREFIX}{}", "A".repeat(captix::limits::MAX_TICKET_BYTES)),
        ..v(
            "ticket_too_large",
            "7.1",
            "over the ticket size limit, refused before decoding",
            &base,
            "list_invoices",
            acme,
            "ticket_too_large",
        )
    });
    let mut many = base.biscuit().clone();
    for _ in 0..captix::limits::MAX_BLOCKS {
        let kp = biscuit_auth::KeyPair::new_with_rng(
            biscuit_auth::builder::Algorithm::Ed25519,
            &mut g.rng,
        );
        many = many
            .append_with_keypair(&kp, biscuit_auth::BlockBuilder::new())
            .expect("append");
    }
    g.push(V {
        ticket: format!("{PREFIX}{}", b64(&many.to_vec().expect("bytes"))),
        ..v(
            "too_many_blocks",
            "7.1",
            "33 blocks, over the block limit",
            &base,
            "list_invoices",
            acme,
            "too_many_blocks",
        )
    });
    let deep = format!(
        "{}{}{}",
        r#"{"org":"acme","x":"#,
        "[".repeat(captix::limits::MAX_ARGS_DEPTH),
        "]".repeat(captix::limits::MAX_ARGS_DEPTH) + "}"
    );
    g.push(v(
        "args_too_deep",
        "7.1",
        "arguments nested past the depth limit",
        &base,
        "list_invoices",
        Box::leak(deep.into_boxed_str()),
        "args_too_deep",
    ));
    let big = format!(
        r#"{{"org":"acme","x":"{}"}}"#,
        "y".repeat(captix::limits::MAX_ARGS_BYTES)
    );
    g.push(v(
        "args_too_large",
        "7.1",
        "arguments over the byte limit",
        &base,
        "list_invoices",
        Box::leak(big.into_boxed_str()),
        "args_too_large",
    ));
    g.push(v(
        "args_duplicate_key",
        "7.1",
        "a repeated key is refused, whichever value a parser would keep",
        &base,
        "list_invoices",
        r#"{"org":"globex","org":"acme"}"#,
        "args_duplicate_key",
    ));
    g.push(v(
        "args_duplicate_nested_key",
        "7.1",
        "duplicates are refused at any depth",
        &base,
        "list_invoices",
        r#"{"org":"acme","f":{"a":1,"a":1}}"#,
        "args_duplicate_key",
    ));
    g.push(v(
        "args_not_object",
        "3.2",
        "arguments must be a JSON object",
        &base,
        "list_invoices",
        r#"["acme"]"#,
        "args_malformed",
    ));
    g.push(v(
        "args_invalid_json",
        "3.2",
        "arguments that are not JSON",
        &base,
        "list_invoices",
        r#"{"org":acme}"#,
        "args_malformed",
    ));
    g.push(v(
        "args_nan",
        "3.2",
        "NaN is not JSON",
        &base,
        "list_invoices",
        r#"{"org":"acme","n":NaN}"#,
        "args_malformed",
    ));
    g.push(v(
        "args_trailing",
        "3.2",
        "text after the object",
        &base,
        "list_invoices",
        r#"{"org":"acme"} {}"#,
        "args_malformed",
    ));
    g.push(v(
        "args_escaped_unicode_key",
        "3.2",
        "escaped and literal keys decode to the same member",
        &base,
        "list_invoices",
        r#"{"\u006frg":"acme"}"#,
        "allow",
    ));
    g.push(v(
        "args_escaped_duplicate",
        "7.1",
        "a key and its escaped spelling are duplicates",
        &base,
        "list_invoices",
        r#"{"org":"acme","\u006frg":"globex"}"#,
        "args_duplicate_key",
    ));

    // §6.3 (added later, so earlier vectors keep their random bytes). A check that cannot evaluate (a date compared with an integer) stops Biscuit's whole run;
    // it must not change the denial of a call the vocabulary already denies (§6.3).
    let erroring = base
        .attenuate()
        .datalog(r#"check if time($t), $t < 2000000000"#)
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(v(
        "datalog_error_denies",
        "6.3",
        "a hand-written check that fails to evaluate denies with check_failed",
        &erroring,
        "list_invoices",
        acme,
        "check_failed",
    ));
    g.push(v(
        "datalog_error_keeps_grant_denial",
        "6.3",
        "an erroring check does not hide a missing grant",
        &erroring,
        "delete_invoice",
        acme,
        "tool_not_granted",
    ));
    g.push(V {
        time: NOW + 3600,
        block: Some(0),
        ..v(
            "datalog_error_keeps_expiry",
            "6.3",
            "an erroring check does not hide an expiry",
            &erroring,
            "list_invoices",
            acme,
            "expired",
        )
    });
    g.push(V {
        block: Some(0),
        ..v(
            "datalog_error_keeps_row_denial",
            "6.3",
            "an erroring check does not hide an earlier block's row filter",
            &erroring,
            "list_invoices",
            r#"{"org":"globex"}"#,
            "arg_denied",
        )
    });

    // §7.2 the work bound: a five-way join over 60 facts would run for minutes inside one
    // Biscuit step; it is refused before any Datalog runs.
    let join_src = (0..60).map(|i| format!("a({i});")).collect::<String>()
        + "check if a($x), a($y), a($z), a($w), a($v), $x + $y + $z + $w + $v == 1000;";
    let joined = g.append(
        &base,
        biscuit_auth::BlockBuilder::new()
            .code(join_src)
            .expect("code"),
    );
    g.push(V {
        ticket: joined,
        ..v(
            "datalog_work_exceeded",
            "7.2",
            "a foreign check joining five predicates over 60 facts is refused without running",
            &base,
            "list_invoices",
            acme,
            "limits_exceeded",
        )
    });

    // §6.2 (security review of 2026-12-01): descriptions are compared with the decoded block,
    // never with Biscuit's printed text, which does not escape strings. This block's Datalog
    // prints exactly as its description's row would, but means "org is zz, or the tool is
    // list_invoices".
    let injected = biscuit_auth::BlockBuilder::new()
        .code(r#"check if arg("/org", "zz") or tool("list_invoices")"#)
        .expect("code")
        .context(
            r#"{"captix":1,"rows":[{"tool":"*","arg":"/org","eq":"zz") or tool("list_invoices"}]}"#
                .to_string(),
        );
    let injected = g.append(&base, injected);
    g.push(V {
        ticket: injected,
        block: Some(1),
        ..v(
            "description_quote_injection",
            "6.2",
            "a description is compared with the decoded Datalog: a quote in a string cannot \
             make another check read as a row filter",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });
    // Quotes, backslashes, control characters and non-ASCII in every string field, on the
    // compiled path and (with a hand-written check) on the reference path.
    let odd_tool = "list\"in\\voices é";
    let odd = Ticket::mint(&g.root, "agent \"q\" \\ é", "O\"Brien \\ \n ü")
        .issuer("https://auth.example/\"iss\"\\\t")
        .scope("read:\"all\"\\\u{1}")
        .tool(odd_tool)
        .row(
            captix::RowFilter::new(
                captix::ToolSel::Any,
                "/o\"r\\g",
                captix::Constraint::Eq(captix::Scalar::Str("ac\"me\\\n\u{7f}ü".into())),
            )
            .expect("row"),
        )
        .row(
            captix::RowFilter::new(
                captix::ToolSel::Named(odd_tool.into()),
                "/path",
                captix::Constraint::Prefix("C:\\Users\\\"".into()),
            )
            .expect("row"),
        )
        .row(
            captix::RowFilter::new(
                captix::ToolSel::Any,
                "/s",
                captix::Constraint::OneOf(vec![
                    captix::Scalar::Str("a\"|b".into()),
                    captix::Scalar::Str("\\".into()),
                ]),
            )
            .expect("row"),
        )
        .budget(captix::Budget::new(captix::ToolSel::Named(odd_tool.into()), 5, 60).expect("b"))
        .expires_at(NOW + 3600)
        .resource("https://mcp.example/ré\"s\\")
        .sign_with_rng(&mut g.rng)
        .expect("mint");
    let odd_args = r#"{"o\"r\\g":"ac\"me\\\n\u007fü","path":"C:\\Users\\\"x","s":"a\"|b"}"#;
    let odd_res = "https://mcp.example/ré\"s\\";
    g.push(V {
        resource: Some(odd_res),
        ..v(
            "strings_escaped_allow",
            "6.2",
            "quotes, backslashes, control characters and non-ASCII in every string field",
            &odd,
            odd_tool,
            odd_args,
            "allow",
        )
    });
    g.push(V {
        resource: Some(odd_res),
        block: Some(0),
        ..v(
            "strings_escaped_denied",
            "4.3",
            "a value differing only after an escaped quote is another value",
            &odd,
            odd_tool,
            r#"{"o\"r\\g":"ac\"me\\\n\u007fü","path":"C:\\Users\\x","s":"a\"|b"}"#,
            "arg_denied",
        )
    });
    let odd_checked = odd
        .attenuate()
        .datalog(r#"check if arg("/s", $s), $s == "a\"|b""#)
        .tool(odd_tool)
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(V {
        resource: Some(odd_res),
        ..v(
            "strings_escaped_with_check_allow",
            "6.2",
            "the same strings beside a hand-written check: reference path, no limits_exceeded",
            &odd_checked,
            odd_tool,
            odd_args,
            "allow",
        )
    });
    g.push(V {
        resource: Some(odd_res),
        block: Some(1),
        ..v(
            "strings_escaped_with_check_denied",
            "4.10",
            "the hand-written check compares the unescaped value",
            &odd_checked,
            odd_tool,
            r#"{"o\"r\\g":"ac\"me\\\n\u007fü","path":"C:\\Users\\\"x","s":"\\"}"#,
            "check_failed",
        )
    });

    // §3.1 every u64 time: times after year 9999 are refused before any work, on every path.
    for (name, time) in [
        ("time_after_year_9999", captix::time::MAX_TIME + 1),
        ("time_u64_max", u64::MAX),
    ] {
        g.push(V {
            time,
            ..v(
                name,
                "3.1",
                "a call time outside the representable range is refused with its own code",
                &base,
                "list_invoices",
                acme,
                "invalid_time",
            )
        });
    }
    g.push(V {
        time: captix::time::MAX_TIME,
        block: Some(0),
        ..v(
            "time_last_second",
            "3.1",
            "the last representable second is a valid time (here past the expiry)",
            &base,
            "list_invoices",
            acme,
            "expired",
        )
    });

    // §6.1 one text form: unpadded base64url, ASCII white space around it only.
    let bytes = base.biscuit().to_vec().expect("bytes");
    g.push(V {
        ticket: format!(
            "{PREFIX}{}",
            base64::encode_config(&bytes, base64::URL_SAFE)
        ) + if bytes.len().is_multiple_of(3) {
            "=="
        } else {
            ""
        },
        ..v(
            "text_padded_base64",
            "6.1",
            "padded base64url is not the text form",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });
    g.push(V {
        ticket: format!("\u{2003}{}\u{a0}", base.as_str()),
        ..v(
            "text_unicode_whitespace",
            "6.1",
            "only ASCII white space around a ticket is ignored",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });
    g.push(V {
        ticket: format!(" \t{}\r\n", base.as_str()),
        ..v(
            "text_ascii_whitespace",
            "6.1",
            "ASCII white space around a ticket is ignored",
            &base,
            "list_invoices",
            acme,
            "allow",
        )
    });

    // §7.2 the work bound covers expressions: closures, regular expressions.
    let a300 = format!(
        "[{}]",
        (0..300)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let closures = base
        .attenuate()
        .datalog(format!(
            "check if {a300}.all($x -> {a300}.all($y -> {a300}.all($z -> $x + $y + $z >= 0)))"
        ))
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(v(
        "datalog_closures_exceeded",
        "7.2",
        "three nested closures over 300 elements (27 million runs) are refused without running",
        &closures,
        "list_invoices",
        acme,
        "limits_exceeded",
    ));
    let regex = base
        .attenuate()
        .datalog(r#"check if arg("/org", $o), $o.matches("^a")"#)
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(v(
        "datalog_regex_refused",
        "7.2",
        "a regular expression cannot be bounded: refused",
        &regex,
        "list_invoices",
        acme,
        "limits_exceeded",
    ));
    let a100 = format!(
        "[{}]",
        (0..100)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let try_or = base
        .attenuate()
        .datalog(format!(
            "check if {a100}.all($x -> {a100}.all($y -> {a100}.all($z -> $z >= 0))).try_or(false)"
        ))
        .sign_with_rng(&mut g.rng)
        .expect("att");
    g.push(v(
        "datalog_try_or_closure_exceeded",
        "7.2",
        "a closure on the left of its operator (.try_or) is charged like any other",
        &try_or,
        "list_invoices",
        acme,
        "limits_exceeded",
    ));
    let small = base
        .attenuate()
        .datalog(r#"check if arg("/org", $o), ["acme", "globex"].any($x -> $x == $o)"#)
        .sign_with_rng(&mut g.rng);
    if let Ok(small) = small {
        g.push(v(
            "datalog_closure_small_allows",
            "7.2",
            "a small closure is within the bound",
            &small,
            "list_invoices",
            acme,
            "allow",
        ));
    }

    // §4.5 one budget limit: (window + 1) × (calls + 1) < 2^53, or the block is malformed.
    let huge = g.append(
        &base,
        biscuit_auth::BlockBuilder::new()
            .code(r#"budget("*", 9007199254740991, 60);"#)
            .expect("code")
            .context(
                r#"{"captix":1,"budgets":[{"tool":"*","max_calls":9007199254740991,"window":60}]}"#
                    .to_string(),
            ),
    );
    g.push(V {
        ticket: huge,
        block: Some(1),
        ..v(
            "budget_over_exact_range",
            "4.5",
            "a budget beyond the exact range of every store is refused when read",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });

    // §4.11 resources and prompts (format 2). A ticket granting a document tree, one file and
    // a prompt, with the standard tools, a row filter on every tool and one hour.
    let docs = Ticket::mint(&g.root, "docs-agent", "alice")
        .tool("list_invoices")
        .uri("file:///docs/public/*")
        .uri("file:///docs/readme.md")
        .prompt("summarize")
        .prompt("triage")
        .row("*:org=acme".parse().expect("row"))
        .budget("1/min".parse().expect("budget"))
        .expires_at(NOW + 3600)
        .resource(RES)
        .sign_with_rng(&mut g.rng)
        .expect("mint");
    let read = |name: &'static str,
                comment: &'static str,
                t: &Ticket,
                uri: &'static str,
                expect: &'static str| V {
        method: captix::RESOURCES_READ,
        ..v(name, "4.11", comment, t, uri, "", expect)
    };
    let prompt = |name: &'static str,
                  comment: &'static str,
                  t: &Ticket,
                  p: &'static str,
                  expect: &'static str| V {
        method: captix::PROMPTS_GET,
        ..v(name, "4.11", comment, t, p, "", expect)
    };
    g.push(read(
        "uri_exact_grant_allows",
        "a granted URI is readable; row filters and budgets are about tool calls",
        &docs,
        "file:///docs/readme.md",
        "allow",
    ));
    g.push(read(
        "uri_prefix_grant_allows",
        "a pattern ending in * grants every URI that starts with what precedes it",
        &docs,
        "file:///docs/public/2026/report.md",
        "allow",
    ));
    g.push(V {
        block: Some(0),
        ..read(
            "uri_not_granted",
            "a URI no grant admits is denied",
            &docs,
            "file:///etc/passwd",
            "uri_not_granted",
        )
    });
    g.push(V {
        block: Some(0),
        ..read(
            "uri_exact_grant_is_not_a_prefix",
            "a grant without * admits that URI only",
            &docs,
            "file:///docs/readme.md.bak",
            "uri_not_granted",
        )
    });
    g.push(V {
        block: Some(0),
        ..read(
            "uri_prefix_is_a_string_prefix",
            "file:///docs/public/* does not admit file:///docs/publication",
            &docs,
            "file:///docs/publication",
            "uri_not_granted",
        )
    });
    g.push(read(
        "uri_dot_segments_refused",
        "a URI with a .. segment could leave a prefix grant on the server: refused before any work",
        &docs,
        "file:///docs/public/../private/salaries.md",
        "args_malformed",
    ));
    g.push(read(
        "uri_encoded_dots_refused",
        "percent-encoded dots are refused as well",
        &docs,
        "file:///docs/public/%2e%2e/private/salaries.md",
        "args_malformed",
    ));
    g.push(read(
        "uri_empty_segment_refused",
        "an empty path segment reads as an absolute path in many path joins: refused",
        &docs,
        "file:///docs/public//etc/passwd",
        "args_malformed",
    ));
    g.push(read(
        "uri_double_encoding_refused",
        "an encoded percent sign would become a dot for a server that decodes twice: refused",
        &docs,
        "file:///docs/public/%252e%252e/private",
        "args_malformed",
    ));
    g.push(read(
        "uri_non_ascii_refused",
        "characters outside ASCII must be percent-encoded (fullwidth dots normalise to ..)",
        &docs,
        "file:///docs/public/\u{ff0e}\u{ff0e}/private",
        "args_malformed",
    ));
    g.push(read(
        "uri_userinfo_refused",
        "user information in the authority is refused (a prefix could name another host)",
        &docs,
        "file://user@host/docs/public/a",
        "args_malformed",
    ));
    g.push(V {
        block: Some(0),
        ..read(
            "uri_tools_only_ticket",
            "a ticket that grants only tools reads nothing",
            &base,
            "file:///docs/readme.md",
            "uri_not_granted",
        )
    });
    g.push(V {
        time: NOW + 3600,
        block: Some(0),
        ..read(
            "uri_expired",
            "validity comes first for every method",
            &docs,
            "file:///docs/readme.md",
            "expired",
        )
    });
    g.push(V {
        resource: Some("https://other.example"),
        block: Some(0),
        ..read(
            "uri_wrong_resource",
            "the audience holds for every method",
            &docs,
            "file:///docs/readme.md",
            "wrong_resource",
        )
    });
    let narrowed = docs
        .attenuate()
        .uri("file:///docs/public/2026/*")
        .prompt("summarize")
        .tool("list_invoices")
        .sign_with_rng(&mut g.rng)
        .expect("attenuate");
    g.push(read(
        "uri_restriction_allows_within",
        "an attenuation's URI list admits what is inside it",
        &narrowed,
        "file:///docs/public/2026/q1.md",
        "allow",
    ));
    g.push(V {
        block: Some(1),
        ..read(
            "uri_restriction_denies_outside",
            "a granted URI outside the attenuation's URI list is denied by that block",
            &narrowed,
            "file:///docs/readme.md",
            "uri_not_granted",
        )
    });
    g.push(V {
        block: Some(1),
        ..prompt(
            "prompt_restriction_denies_outside",
            "a granted prompt outside the attenuation's prompt list is denied by that block",
            &narrowed,
            "triage",
            "prompt_not_granted",
        )
    });
    g.push(prompt(
        "prompt_grant_allows",
        "a granted prompt is allowed",
        &docs,
        "triage",
        "allow",
    ));
    g.push(V {
        block: Some(0),
        ..prompt(
            "prompt_not_granted",
            "a prompt the authority block does not grant is denied",
            &docs,
            "delete_everything",
            "prompt_not_granted",
        )
    });
    let uris_only = docs
        .attenuate()
        .uri("file:///docs/public/*")
        .sign_with_rng(&mut g.rng)
        .expect("attenuate");
    g.push(v(
        "uri_restriction_leaves_tools",
        "4.11",
        "a URI list restricts resource reads only: tool calls are as before",
        &uris_only,
        "list_invoices",
        acme,
        "allow",
    ));
    g.push(prompt(
        "uri_restriction_leaves_prompts",
        "a URI list restricts resource reads only: prompts are as before",
        &uris_only,
        "summarize",
        "allow",
    ));
    let tools_only = docs
        .attenuate()
        .tool("list_invoices")
        .row("*:org=acme".parse().expect("row"))
        .sign_with_rng(&mut g.rng)
        .expect("attenuate");
    g.push(read(
        "tool_restrictions_leave_uris",
        "tool lists and row filters restrict tool calls only: reads are as before",
        &tools_only,
        "file:///docs/readme.md",
        "allow",
    ));
    let nothing = docs
        .attenuate()
        .only_uris::<&str>([])
        .only_prompts::<&str>([])
        .sign_with_rng(&mut g.rng)
        .expect("attenuate");
    g.push(V {
        block: Some(1),
        ..read(
            "uris_empty_denies_every_read",
            "an empty URI list denies every read",
            &nothing,
            "file:///docs/readme.md",
            "uri_not_granted",
        )
    });
    g.push(V {
        block: Some(1),
        ..prompt(
            "prompts_empty_denies_every_prompt",
            "an empty prompt list denies every prompt",
            &nothing,
            "summarize",
            "prompt_not_granted",
        )
    });
    g.push(v(
        "empty_lists_leave_tools",
        "4.11",
        "empty URI and prompt lists leave tool calls as they were",
        &nothing,
        "list_invoices",
        acme,
        "allow",
    ));
    let forged = biscuit_auth::BlockBuilder::new()
        .code(
            r#"allow_uri("file:///etc/passwd"); allow_uri_prefix("file:///"); allow_prompt("x");"#,
        )
        .expect("code");
    let forged_text = g.append(&docs, forged);
    g.push(V {
        ticket: forged_text.clone(),
        block: Some(0),
        ..read(
            "attenuation_fact_cannot_grant_uri",
            "allow_uri and allow_uri_prefix in an attenuation block are not trusted by the policy",
            &docs,
            "file:///etc/passwd",
            "uri_not_granted",
        )
    });
    g.push(V {
        ticket: forged_text,
        block: Some(0),
        ..prompt(
            "attenuation_fact_cannot_grant_prompt",
            "allow_prompt in an attenuation block is not trusted by the policy",
            &docs,
            "x",
            "prompt_not_granted",
        )
    });
    let format1 = biscuit_auth::BlockBuilder::new().context(r#"{"captix":1}"#.to_string());
    let format1_text = g.append(&docs, format1);
    g.push(V { ticket: format1_text, ..v("format_1_refused", "6.2", "a block described in format 1 (whose tool checks denied every other method) is no longer read", &docs, "list_invoices", acme, "malformed") });

    // A description that names one hand-written check of a block carrying two: a reader that
    // does not parse hand-written checks (the npm package's lean module) still counts them.
    let hiding = biscuit_auth::BlockBuilder::new()
        .code(r#"check if tool("list_invoices"); check if tool("get_invoice");"#)
        .expect("code")
        .context(r#"{"captix":2,"checks":["check if tool(\"list_invoices\")"]}"#.to_string());
    let hiding_text = g.append(&base, hiding);
    g.push(V {
        ticket: hiding_text,
        block: Some(1),
        ..v(
            "description_hides_a_check",
            "6.2",
            "a description that names fewer hand-written checks than its block carries is \
             malformed",
            &base,
            "list_invoices",
            acme,
            "malformed",
        )
    });

    // Write, replacing the folder's JSON files.
    std::fs::create_dir_all(&dir).expect("mkdir");
    for entry in std::fs::read_dir(&dir).expect("read dir") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(p).expect("remove");
        }
    }
    for (name, doc) in &g.out {
        let text = serde_json::to_string_pretty(doc).expect("json") + "\n";
        std::fs::write(dir.join(format!("{name}.json")), text).expect("write");
    }
    eprintln!("wrote {} vectors to {}", g.out.len(), dir.display());
    let datalog = datalog_vectors();
    let ddir = dir.join("datalog");
    std::fs::create_dir_all(&ddir).expect("mkdir");
    for entry in std::fs::read_dir(&ddir).expect("read dir") {
        let p = entry.expect("entry").path();
        if p.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(p).expect("remove");
        }
    }
    for (name, doc) in &datalog {
        let text = serde_json::to_string_pretty(doc).expect("json") + "\n";
        std::fs::write(ddir.join(format!("{name}.json")), text).expect("write");
    }
    eprintln!(
        "wrote {} Datalog vectors to {}",
        datalog.len(),
        ddir.display()
    );
}

/// Spec §4.7: for each kind of restriction, a description and the decoded terms of the block
/// it generates (`spec/schema/datalog-vector.json`), so an implementation in another language
/// can check its generator term by term, without Biscuit's parser or printer.
fn datalog_vectors() -> Vec<(String, Value)> {
    let authority = |extra: Value| {
        let mut d = json!({
            "captix": 2,
            "identity": {"issuer": "https://auth.example", "agent": "billing-agent", "user": "alice", "scopes": ["invoices:read"]},
            "grants": ["list_invoices", "get_invoice"],
        });
        if let (Some(d), Some(e)) = (d.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                d.insert(k.clone(), v.clone());
            }
        }
        d
    };
    let cases: Vec<(&str, &str, usize, Value)> = vec![
        (
            "authority_facts",
            "identity, grants and budgets are facts, in description order",
            0,
            authority(
                json!({"budgets": [{"tool": "*", "max_calls": 100, "window": 60}, {"tool": "get_invoice", "max_calls": 10, "window": 0}]}),
            ),
        ),
        (
            "time_window",
            "not before and expires: dates compared with $time",
            1,
            json!({"captix": 2, "not_before": 1800000000u64, "expires": 1800003600u64}),
        ),
        (
            "audience",
            "resource: one fact in the check's body",
            1,
            json!({"captix": 2, "resource": "https://mcp.example/invoices"}),
        ),
        (
            "tools",
            "a tool list: one query per tool",
            1,
            json!({"captix": 2, "tools": ["list_invoices", "get_invoice"]}),
        ),
        (
            "tools_empty",
            "an empty tool list: the method query alone, false for every tool call",
            1,
            json!({"captix": 2, "tools": []}),
        ),
        (
            "uri_and_prompt_grants",
            "URI grants: allow_uri for a URI, allow_uri_prefix for a pattern ending in *; \
             then allow_prompt",
            0,
            authority(
                json!({"uri_grants": ["file:///docs/readme.md", "file:///docs/public/*"],
                "prompt_grants": ["summarize"]}),
            ),
        ),
        (
            "uris",
            "a URI list: the method query, then uri(<uri>) or starts_with for each pattern",
            1,
            json!({"captix": 2, "uris": ["file:///docs/readme.md", "file:///docs/public/*", "*"]}),
        ),
        (
            "uris_empty",
            "an empty URI list: the method query alone, false for every resource read",
            1,
            json!({"captix": 2, "uris": []}),
        ),
        (
            "prompts",
            "a prompt list: the method query, then one query per prompt",
            1,
            json!({"captix": 2, "prompts": ["summarize", "triage"]}),
        ),
        (
            "row_eq_named",
            "a row filter on one tool: the tool test, then the value",
            1,
            json!({"captix": 2, "rows": [{"tool": "list_invoices", "arg": "/org", "eq": "acme"}]}),
        ),
        (
            "row_one_of_any",
            "every tool, one of several integers: one query per value",
            1,
            json!({"captix": 2, "rows": [{"tool": "*", "arg": "/id", "one_of": [1, 2, 3]}]}),
        ),
        (
            "row_eq_bool",
            "a boolean value",
            1,
            json!({"captix": 2, "rows": [{"tool": "*", "arg": "/draft", "eq": false}]}),
        ),
        (
            "row_prefix",
            "a prefix: the type test first, then starts_with",
            1,
            json!({"captix": 2, "rows": [{"tool": "*", "arg": "/filter/status", "prefix": "op"}]}),
        ),
        (
            "row_range",
            "an integer range: the type test, then each bound",
            1,
            json!({"captix": 2, "rows": [{"tool": "create_refund", "arg": "/amount", "range": {"min": 1, "max": 500}}]}),
        ),
        (
            "row_range_max_only",
            "a range with one bound",
            1,
            json!({"captix": 2, "rows": [{"tool": "*", "arg": "/amount", "range": {"max": 100}}]}),
        ),
        (
            "row_quote_injection",
            "a string holding quotes and a backslash is one string term",
            1,
            json!({"captix": 2, "rows": [{"tool": "*", "arg": "/org", "eq": "zz\") or tool(\"t \\"}]}),
        ),
        (
            "hand_written",
            "a hand-written check: its own terms",
            1,
            json!({"captix": 2, "checks": ["check if time($t), $t < 2030-01-01T00:00:00Z"]}),
        ),
        (
            "attenuation_all",
            "every restriction of an attenuation block, in check order",
            1,
            json!({"captix": 2, "not_before": 1800000000u64, "expires": 1800000300u64, "resource": "https://mcp.example/invoices",
                "tools": ["list_invoices"], "rows": [{"tool": "*", "arg": "/org", "eq": "acme"}],
                "uris": ["file:///docs/*"], "prompts": ["summarize"],
                "budgets": [{"tool": "list_invoices", "max_calls": 10, "window": 300}]}),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, comment, index, description)| {
            let d: captix::Description =
                serde_json::from_value(description.clone()).expect("description");
            let block = captix::testing::generated_terms(&d, index).expect("generates");
            // The description as a reader parses it back: what the block's context holds.
            let context: Value = serde_json::to_value(&d).expect("json");
            assert_eq!(
                context, description,
                "{name}: the description is in its canonical form"
            );
            (
                format!("datalog_{name}"),
                json!({"name": format!("datalog_{name}"), "section": "4.7", "comment": comment,
                       "index": index, "description": description, "block": block}),
            )
        })
        .collect()
}

fn b64(b: &[u8]) -> String {
    base64::encode_config(b, base64::URL_SAFE_NO_PAD)
}

/// A flipped bit lands in a signature, a key or signed content: the expected code is what the
/// reference path says, which must be a refusal of the ticket itself.
fn expect_for_tamper(bytes: &[u8], root: &SigningKey) -> &'static str {
    let text = format!("{PREFIX}{}", b64(bytes));
    let d =
        captix::Ticket::parse(&text, &captix::KeySet::from(root.public())).expect_err("tampered");
    assert!(
        matches!(d.code, captix::Code::BadSignature | captix::Code::Malformed),
        "{d}"
    );
    d.code.as_str()
}
