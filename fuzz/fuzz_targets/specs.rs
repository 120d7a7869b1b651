//! Row-filter, budget, tool, value, duration and time text forms (the CLI's `--row`,
//! `--budget`, `--tool`, `--expires`). Whatever parses must survive the trip through a signed
//! ticket: minted, read back from bytes with the same blocks, and enforced as written.
#![no_main]

use captix::{
    parse_duration, parse_value, time, Budget, Call, Code, Constraint, KeySet, RowFilter, Scalar,
    Ticket, ToolSel,
};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fn tool_of(sel: &ToolSel) -> String {
    match sel {
        ToolSel::Any => "t".to_string(),
        ToolSel::Named(n) => n.clone(),
    }
}

/// Reads the ticket back from its bytes: same blocks as the builder recorded.
fn round_trip(t: &Ticket, keys: &KeySet) {
    let back = Ticket::parse(t.as_str(), keys).expect("a freshly minted ticket reads back");
    assert_eq!(t.blocks().len(), back.blocks().len());
    for (a, b) in t.blocks().iter().zip(back.blocks()) {
        assert_eq!(a.content, b.content);
        assert_eq!(a.datalog(), b.datalog());
    }
}

/// Arguments `{"<key>": value}` when the pointer is one reference token.
fn args_at(pointer: &str, v: &serde_json::Value) -> Option<String> {
    let token = pointer.strip_prefix('/')?;
    if token.contains('/') {
        return None;
    }
    let key = token.replace("~1", "/").replace("~0", "~");
    Some(serde_json::json!({ key: v }).to_string())
}

fn json(s: &Scalar) -> serde_json::Value {
    serde_json::to_value(s).expect("scalar to JSON")
}

fn row(filter: RowFilter) {
    let common::Setup {
        root,
        keys,
        verifier,
        ..
    } = common::setup();
    let text = serde_json::to_string(&filter).expect("row to JSON");
    let again: RowFilter = serde_json::from_str(&text).expect("row from its JSON");
    assert_eq!(again, filter);
    let tool = tool_of(&filter.tool);
    let Ok(t) = Ticket::mint(root, "fuzz", "fuzz")
        .tool(tool.as_str())
        .row(filter.clone())
        .sign()
    else {
        return; // over a size limit: refused at mint, fine
    };
    round_trip(&t, keys);
    // A value the filter admits is allowed; one it refuses is denied with arg_denied.
    let (good, bad) = match &filter.constraint {
        Constraint::Eq(v) => (Some(json(v)), Some(serde_json::json!([]))),
        Constraint::OneOf(vs) => (vs.first().map(json), Some(serde_json::json!({}))),
        Constraint::Prefix(p) => (
            Some(serde_json::json!(format!("{p}x"))),
            Some(serde_json::json!(7)),
        ),
        Constraint::Range { min, max } => (
            min.or(*max).map(serde_json::Value::from),
            Some(serde_json::json!("not a number")),
        ),
    };
    for (value, allowed) in [(good, true), (bad, false)] {
        let Some(value) = value else { continue };
        let Some(args) = args_at(&filter.arg, &value) else {
            continue;
        };
        let Ok(call) = Call::new(tool.as_str(), &args) else {
            continue;
        };
        let call = call.at(common::NOW);
        let d = verifier.check(t.as_str(), &call);
        if allowed {
            assert!(d.is_ok(), "{filter:?} refused {args}: {:?}", d.err());
        } else {
            assert_eq!(
                d.as_ref().err().map(|e| e.code),
                Some(Code::ArgDenied),
                "{filter:?} {args}"
            );
        }
        common::check_paths(verifier, t.as_str().as_bytes(), &call, keys);
    }
}

fn budget(b: Budget) {
    let common::Setup { root, keys, .. } = common::setup();
    let text = serde_json::to_string(&b).expect("budget to JSON");
    let again: Budget = serde_json::from_str(&text).expect("budget from its JSON");
    assert_eq!(again, b);
    let tool = tool_of(&b.tool);
    if let Ok(t) = Ticket::mint(root, "fuzz", "fuzz")
        .tool(tool.as_str())
        .budget(b)
        .sign()
    {
        round_trip(&t, keys);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = s.parse::<RowFilter>() {
        row(f);
    }
    if let Ok(b) = s.parse::<Budget>() {
        budget(b);
    }
    if let Ok(sel) = s.parse::<ToolSel>() {
        assert_eq!(sel.as_str(), s);
    }
    if let Ok(v) = parse_value(s) {
        // Canonical integers and booleans keep their spelling.
        if matches!(v, Scalar::Int(_) | Scalar::Bool(_)) {
            assert_eq!(v.to_string(), s);
        }
    }
    if let Ok(secs) = parse_duration(s) {
        assert!(secs <= i64::MAX as u64);
    }
    let _ = time::parse_rfc3339(s);
});
