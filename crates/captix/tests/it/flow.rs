//! The story a new user follows: mint, attenuate, verify, read the reason.

use captix::{Call, Code, Content, KeySet, SigningKey, Ticket, UnverifiedTicket, PREFIX};

const NOW: u64 = 1_800_000_000;

fn setup() -> (SigningKey, KeySet, Ticket) {
    let root = SigningKey::from_seed(&[1u8; 32]);
    let keys = KeySet::from(root.public());
    let t = Ticket::mint(&root, "billing-agent", "alice")
        .issuer("https://auth.example")
        .scope("invoices:read")
        .tool("list_invoices")
        .tool("get_invoice")
        .tool("create_refund")
        .row("*:org=acme".parse().expect("row"))
        .row("create_refund:amount<=500".parse().expect("row"))
        .budget("100/min".parse().expect("budget"))
        .expires_at(NOW + 3600)
        .resource("https://mcp.example/invoices")
        .sign()
        .expect("mint");
    (root, keys, t)
}

fn call(tool: &str, args: &str) -> Call {
    Call::new(tool, args)
        .expect("args")
        .at(NOW)
        .resource("https://mcp.example/invoices")
}

#[test]
fn mint_verify_allow_reports_identity_filters_and_budgets() {
    let (_, keys, t) = setup();
    assert!(t.as_str().starts_with(PREFIX));
    let a = captix::verify(
        t.as_str(),
        &call("create_refund", r#"{"org":"acme","amount":20}"#),
        &keys,
    )
    .expect("allowed");
    assert_eq!(a.identity().agent, "billing-agent");
    assert_eq!(a.identity().user, "alice");
    assert_eq!(a.identity().issuer.as_deref(), Some("https://auth.example"));
    assert_eq!(a.identity().scopes, vec!["invoices:read".to_string()]);
    assert_eq!(a.filters().len(), 2);
    assert_eq!(a.filter("/org").expect("org").constraints.len(), 1);
    assert_eq!(a.budgets().len(), 1);
    assert_eq!(a.budgets()[0].budget.max_calls, 100);
    assert_eq!(a.chain().len(), 1);
    assert_eq!(a.expires(), Some(NOW + 3600));
    // list_invoices is not under the refund filter
    let a = captix::verify(
        t.as_str(),
        &call("list_invoices", r#"{"org":"acme"}"#),
        &keys,
    )
    .expect("allowed");
    assert_eq!(a.filters().len(), 1);
}

#[test]
fn each_restriction_denies_with_its_code_and_names_the_block() {
    let (_, keys, t) = setup();
    let child = t
        .attenuate()
        .tool("list_invoices")
        .row("list_invoices:status=open|paid".parse().expect("row"))
        .expires_at(NOW + 300)
        .sign()
        .expect("attenuate");
    let deny = |c: Call| captix::verify(child.as_str(), &c, &keys).expect_err("denied");

    let d = deny(call("list_invoices", r#"{"org":"globex","status":"open"}"#));
    assert_eq!((d.code, d.block), (Code::ArgDenied, Some(0)));
    assert!(d.reason.contains("/org"), "{}", d.reason);

    let d = deny(call("list_invoices", r#"{"org":"acme","status":"void"}"#));
    assert_eq!((d.code, d.block), (Code::ArgDenied, Some(1)));

    let d = deny(call("list_invoices", r#"{"org":"acme"}"#));
    assert_eq!(d.code, Code::ArgDenied);
    assert!(d.reason.contains("missing"), "{}", d.reason);

    let d = deny(call("get_invoice", r#"{"org":"acme"}"#));
    assert_eq!((d.code, d.block), (Code::ToolNotGranted, Some(1)));

    let d = deny(call("delete_everything", r#"{"org":"acme"}"#));
    assert_eq!(d.code, Code::ToolNotGranted);

    let d = deny(call("list_invoices", r#"{"org":"acme","status":"open"}"#).at(NOW + 300));
    assert_eq!((d.code, d.block), (Code::Expired, Some(1)));

    let wrong_res = Call::new("list_invoices", r#"{"org":"acme","status":"open"}"#)
        .expect("args")
        .at(NOW)
        .resource("https://evil.example");
    assert_eq!(deny(wrong_res).code, Code::WrongResource);

    let d = deny(call("list_invoices", r#"{"org":1,"status":"open"}"#));
    assert!(
        d.reason.contains("is a integer") || d.reason.contains("integer"),
        "{}",
        d.reason
    );

    captix::verify(
        child.as_str(),
        &call("list_invoices", r#"{"org":"acme","status":"paid"}"#),
        &keys,
    )
    .expect("allowed");
}

#[test]
fn a_tool_with_no_grant_is_denied_and_no_grant_allows_nothing() {
    let root = SigningKey::from_seed(&[2u8; 32]);
    let t = Ticket::mint(&root, "a", "u").sign().expect("mint");
    let d = captix::verify(
        t.as_str(),
        &Call::new("x", "{}").expect("args").at(NOW),
        &KeySet::from(root.public()),
    )
    .expect_err("nothing granted");
    assert_eq!(d.code, Code::ToolNotGranted);
    assert_eq!(d.block, Some(0));
}

#[test]
fn signatures_keys_and_garbage() {
    let (_, keys, t) = setup();
    let c = call("list_invoices", r#"{"org":"acme"}"#);
    let other = KeySet::from(SigningKey::from_seed(&[9u8; 32]).public());
    assert_eq!(
        captix::verify(t.as_str(), &c, &other)
            .expect_err("unknown")
            .code,
        Code::UnknownKey
    );

    // a different key that claims the same key id
    let mut s = t.as_str().to_string();
    let last = s.pop().expect("nonempty");
    s.push(if last == 'A' { 'B' } else { 'A' });
    let code = captix::verify(&s, &c, &keys).expect_err("tampered").code;
    assert!(
        matches!(code, Code::BadSignature | Code::Malformed),
        "{code}"
    );

    for garbage in [
        "",
        "hello",
        "captix1_",
        "captix1_!!!!",
        "captix1_AAAA",
        "eyJhbGciOi.x.y",
    ] {
        let code = captix::verify(garbage, &c, &keys)
            .expect_err("garbage")
            .code;
        assert_eq!(code, Code::Malformed, "{garbage:?}");
    }
    let huge = format!("{PREFIX}{}", "A".repeat(captix::limits::MAX_TICKET_BYTES));
    assert_eq!(
        captix::verify(&huge, &c, &keys).expect_err("huge").code,
        Code::TicketTooLarge
    );
}

#[test]
fn holders_attenuate_without_any_key_and_the_server_accepts_it() {
    let (_, keys, t) = setup();
    let unverified = UnverifiedTicket::parse(t.as_str()).expect("parse");
    let child = unverified
        .attenuate()
        .tool("list_invoices")
        .sign_unverified()
        .expect("attenuate");
    let report = child.inspect();
    assert_eq!(report.blocks.len(), 2);
    assert_eq!(report.blocks[1].kind, "attenuation");
    assert_eq!(
        report.blocks[1].restrictions,
        vec!["tools [list_invoices]".to_string()]
    );
    let verified = child.verify(&keys).expect("verifies");
    assert_eq!(verified.blocks().len(), 2);
    assert!(matches!(
        verified.blocks()[1].content,
        Content::Described(_)
    ));
    assert_eq!(
        captix::verify(
            child.as_str(),
            &call("get_invoice", r#"{"org":"acme"}"#),
            &keys
        )
        .expect_err("narrowed")
        .code,
        Code::ToolNotGranted
    );
}

#[test]
fn hand_written_checks_take_the_reference_path() {
    let (_, keys, t) = setup();
    let child = t
        .attenuate()
        .datalog(r#"check if arg("/org", $o), $o.length() < 5"#)
        .sign()
        .expect("attenuate");
    assert!(captix::Compiled::compile(&child).is_none());
    assert!(captix::Compiled::compile(&t).is_some());
    captix::verify(
        child.as_str(),
        &call("list_invoices", r#"{"org":"acme"}"#),
        &keys,
    )
    .expect("allowed");
    let bad = t.attenuate().datalog("check if nonsense(").sign();
    assert!(bad.is_err());
    let d = captix::verify(
        child.as_str(),
        &call("list_invoices", r#"{"org":"acmeco"}"#),
        &keys,
    )
    .expect_err("denied");
    assert_eq!(
        d.code,
        Code::ArgDenied,
        "the vocabulary filter of block 0 fails first"
    );
    let grandchild = Ticket::mint(&SigningKey::from_seed(&[1u8; 32]), "x", "y")
        .tool("t")
        .datalog(r#"check if arg("/k", $k), $k.length() < 3"#)
        .sign()
        .expect("mint");
    let d = captix::verify(
        grandchild.as_str(),
        &Call::new("t", r#"{"k":"long"}"#).expect("args").at(NOW),
        &keys,
    )
    .expect_err("denied");
    assert_eq!((d.code, d.block), (Code::CheckFailed, Some(0)));
}

#[test]
fn a_description_that_lies_is_malformed() {
    // Append, with plain Biscuit, a block whose captix description claims less than its Datalog.
    let (_, keys, t) = setup();
    let lying = biscuit_auth::BlockBuilder::new()
        .check(r#"check if tool("get_invoice")"#)
        .expect("check")
        .context(r#"{"captix":1}"#.to_string());
    let b = t.biscuit().append(lying).expect("append");
    let text = format!("{PREFIX}{}", base64_url(&b.to_vec().expect("bytes")));
    let d = Ticket::parse(&text, &keys).expect_err("lying block");
    assert_eq!((d.code, d.block), (Code::Malformed, Some(1)));
    // The same block without a description is a foreign block: enforced, not described.
    let foreign = biscuit_auth::BlockBuilder::new()
        .check(r#"check if tool("get_invoice")"#)
        .expect("check");
    let b = t.biscuit().append(foreign).expect("append");
    let text = format!("{PREFIX}{}", base64_url(&b.to_vec().expect("bytes")));
    let parsed = Ticket::parse(&text, &keys).expect("foreign block is fine");
    assert!(matches!(parsed.blocks()[1].content, Content::Foreign));
    assert!(captix::Compiled::compile(&parsed).is_none());
    let d = parsed
        .authorize(&call("list_invoices", r#"{"org":"acme"}"#))
        .expect_err("foreign check enforced");
    assert_eq!((d.code, d.block), (Code::CheckFailed, Some(1)));
}

pub fn base64_url(b: &[u8]) -> String {
    base64::encode_config(b, base64::URL_SAFE_NO_PAD)
}

#[test]
fn inspect_shows_every_block_in_plain_words() {
    let (_, _, t) = setup();
    let child = t
        .attenuate()
        .tool("list_invoices")
        .budget("10".parse().expect("b"))
        .sign()
        .expect("att");
    let r = child.inspect();
    assert_eq!(r.blocks[0].kind, "authority");
    assert!(
        r.blocks[0]
            .restrictions
            .iter()
            .any(|s| s == r#"row *:/org = "acme""#),
        "{:?}",
        r.blocks[0].restrictions
    );
    assert!(r.blocks[0]
        .datalog
        .contains("allow_tool(\"list_invoices\")"));
    assert_eq!(
        r.blocks[1].description.as_ref().expect("desc").budgets[0].max_calls,
        10
    );
    assert_eq!(r.blocks[1].revocation_id.len(), 128);
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["signatures"], "verified");
    assert_eq!(
        json["blocks"][1]["description"]["tools"][0],
        "list_invoices"
    );
}
