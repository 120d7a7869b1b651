//! Strategies for random vocabulary tickets and calls.

use captix::{
    Budget, Call, Constraint, Description, RowFilter, Scalar, SigningKey, Ticket, ToolSel,
};
use proptest::prelude::*;

/// Applies the restrictions shared by both builders.
macro_rules! apply {
    ($b:expr, $d:expr) => {{
        let mut b = $b;
        let d = $d;
        if let Some(t) = d.not_before {
            b = b.not_before(t);
        }
        if let Some(t) = d.expires {
            b = b.expires_at(t);
        }
        if let Some(r) = &d.resource {
            b = b.resource(r.clone());
        }
        for r in &d.rows {
            b = b.row(r.clone());
        }
        for bu in &d.budgets {
            b = b.budget(bu.clone());
        }
        for c in &d.checks {
            b = b.datalog(c.clone());
        }
        b
    }};
}

/// What an authority block grants: tools, URI patterns, prompts.
#[derive(Clone, Debug)]
pub struct Grants {
    tools: Vec<&'static str>,
    uris: Vec<&'static str>,
    prompts: Vec<&'static str>,
}

pub const TOOLS: &[&str] = &["a", "b", "c"];
/// URI patterns: a prefix, an exact URI inside it, another prefix, everything.
const URI_PATTERNS: &[&str] = &["file:///d/*", "file:///d/a", "file:///e/*", "*"];
/// URIs read: inside both, inside the first prefix only, inside the other, in none.
const URIS: &[&str] = &["file:///d/a", "file:///d/b", "file:///e/x", "file:///f"];
const PROMPTS: &[&str] = &["p", "q"];
const POINTERS: &[&str] = &["/org", "/n", "/f/s"];

pub fn key() -> SigningKey {
    SigningKey::from_seed(&[42u8; 32])
}

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        prop::sample::select(vec!["acme", "ac", "globex", ""]).prop_map(|s| Scalar::Str(s.into())),
        prop::sample::select(vec![-1i64, 0, 5, 10]).prop_map(Scalar::Int),
        any::<bool>().prop_map(Scalar::Bool),
    ]
}

fn constraint() -> impl Strategy<Value = Constraint> {
    prop_oneof![
        scalar().prop_map(Constraint::Eq),
        prop::sample::subsequence(vec!["acme", "ac", "globex"], 1..=3).prop_map(|v| {
            Constraint::OneOf(v.into_iter().map(|s| Scalar::Str(s.into())).collect())
        }),
        prop::sample::subsequence(vec![-1i64, 0, 5, 10], 1..=3)
            .prop_map(|v| Constraint::OneOf(v.into_iter().map(Scalar::Int).collect())),
        prop::sample::select(vec!["a", "ac", "g", ""]).prop_map(|p| Constraint::Prefix(p.into())),
        (prop::option::of(-2i64..8), prop::option::of(0i64..12))
            .prop_filter("a bound", |(a, b)| a.is_some() || b.is_some())
            .prop_map(|(min, max)| match (min, max) {
                (Some(a), Some(b)) if a > b => Constraint::Range {
                    min: Some(b),
                    max: Some(a)
                },
                _ => Constraint::Range { min, max },
            }),
    ]
}

fn tool_sel() -> impl Strategy<Value = ToolSel> {
    prop_oneof![
        Just(ToolSel::Any),
        prop::sample::select(TOOLS.to_vec()).prop_map(|t| ToolSel::Named(t.into())),
    ]
}

fn row() -> impl Strategy<Value = RowFilter> {
    (
        tool_sel(),
        prop::sample::select(POINTERS.to_vec()),
        constraint(),
    )
        .prop_map(|(tool, arg, constraint)| RowFilter {
            tool,
            arg: arg.into(),
            constraint,
        })
}

/// Restrictions of one block (no identity, no grants).
pub fn restrictions() -> impl Strategy<Value = Description> {
    (
        prop::option::of(0u64..60),
        prop::option::of(40u64..120),
        prop::option::of(prop::sample::select(vec!["r1", "r2"])),
        prop::option::of(prop::sample::subsequence(TOOLS.to_vec(), 0..=3)),
        prop::collection::vec(row(), 0..3),
        prop::collection::vec(
            (tool_sel(), 0u64..5, prop::sample::select(vec![0u64, 60])),
            0..2,
        ),
        prop::option::of(prop::sample::subsequence(URI_PATTERNS.to_vec(), 0..=3)),
        prop::option::of(prop::sample::subsequence(PROMPTS.to_vec(), 0..=2)),
    )
        .prop_map(|(nbf, exp, res, tools, rows, budgets, uris, prompts)| {
            let mut d = Description::new();
            d.not_before = nbf;
            d.expires = exp.map(|e| e.max(nbf.unwrap_or(0) + 1));
            d.resource = res.map(String::from);
            d.tools = tools.map(|t| t.into_iter().map(String::from).collect());
            d.rows = rows;
            d.uris = uris.map(|t| t.into_iter().map(String::from).collect());
            d.prompts = prompts.map(|t| t.into_iter().map(String::from).collect());
            d.budgets = budgets
                .into_iter()
                .map(|(tool, max_calls, window)| Budget {
                    tool,
                    max_calls,
                    window,
                })
                .collect();
            d
        })
}

pub fn grants() -> impl Strategy<Value = Grants> {
    (
        prop::sample::subsequence(TOOLS.to_vec(), 0..=3),
        prop::sample::subsequence(URI_PATTERNS.to_vec(), 0..=2),
        prop::sample::subsequence(PROMPTS.to_vec(), 0..=2),
    )
        .prop_map(|(tools, uris, prompts)| Grants {
            tools,
            uris,
            prompts,
        })
}

fn arg_value() -> impl Strategy<Value = Option<serde_json::Value>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec!["acme", "ac", "acme2", "globex", "g", ""])
            .prop_map(|s| Some(serde_json::Value::from(s))),
        prop::sample::select(vec![-3i64, -1, 0, 5, 7, 10, 11]).prop_map(|i| Some(i.into())),
        any::<bool>().prop_map(|b| Some(b.into())),
        Just(Some(serde_json::Value::Null)),
        Just(Some(serde_json::json!(1.5))),
    ]
}

/// A tool call (half of them), a resource read or a prompt request.
pub fn call() -> impl Strategy<Value = Call> {
    let other = (
        prop::sample::select(
            URIS.iter()
                .chain(&["p", "q", "r"])
                .copied()
                .collect::<Vec<_>>(),
        ),
        0u64..130,
        prop::option::of(prop::sample::select(vec!["r1", "r2"])),
    )
        .prop_map(|(name, time, res)| {
            let c = match name.strip_prefix("file:") {
                Some(_) => Call::read(name),
                None => Call::prompt(name),
            };
            let mut c = c.expect("valid target").at(time);
            if let Some(r) = res {
                c = c.resource(r);
            }
            c
        });
    prop_oneof![tool_call(), other]
}

fn tool_call() -> impl Strategy<Value = Call> {
    (
        prop::sample::select(vec!["a", "b", "c", "z"]),
        arg_value(),
        arg_value(),
        arg_value(),
        0u64..130,
        prop::option::of(prop::sample::select(vec!["r1", "r2"])),
    )
        .prop_map(|(tool, org, n, s, time, res)| {
            let mut args = serde_json::Map::new();
            if let Some(v) = org {
                args.insert("org".into(), v);
            }
            if let Some(v) = n {
                args.insert("n".into(), v);
            }
            if let Some(v) = s {
                args.insert("f".into(), serde_json::json!({ "s": v }));
            }
            let mut c = Call::new(tool, &serde_json::Value::Object(args).to_string())
                .expect("valid args")
                .at(time);
            if let Some(r) = res {
                c = c.resource(r);
            }
            c
        })
}

/// Mints from an authority description and appends the attenuation descriptions.
pub fn build(
    key: &SigningKey,
    grants: &Grants,
    auth: &Description,
    chain: &[Description],
) -> Ticket {
    let mut b = Ticket::mint(key, "agent", "user");
    for g in &grants.tools {
        b = b.tool(*g);
    }
    for g in &grants.uris {
        b = b.uri(*g);
    }
    for g in &grants.prompts {
        b = b.prompt(*g);
    }
    let mut t = apply!(b, auth).sign().expect("mint");
    for d in chain {
        let mut a = t.attenuate();
        if let Some(tools) = d.tools.clone() {
            a = a.only_tools(tools);
        }
        if let Some(uris) = d.uris.clone() {
            a = a.only_uris(uris);
        }
        if let Some(prompts) = d.prompts.clone() {
            a = a.only_prompts(prompts);
        }
        t = apply!(a, d).sign().expect("attenuate");
    }
    t
}
