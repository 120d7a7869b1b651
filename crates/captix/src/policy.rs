//! The server's own policy (docs §16): per tool (or `*`), the OAuth scopes a call needs and
//! rate limits that hold whatever tickets an agent or a user presents.
//!
//! > A ticket's budgets limit one chain; an issuer may mint many chains for one agent or one
//! > user. A server policy limits calls of a tool per agent, per user, per (agent, user) or in
//! > all, and may require scopes. The `Verifier` applies it after the ticket allows a
//! > tool call: a missing scope is `scope_missing`; otherwise the policy's limits and the
//! > ticket's budgets are spent together, all or nothing, in one step of the budget store, and
//! > an exhausted limit is `rate_limited` with the time until it refills.
//!
//! The file form is TOML:
//!
//! ```toml
//! [tool.create_refund]
//! scopes = ["invoices:write"]
//! limits = ["10/min per agent", "100/hour per user", "1000/min"]
//!
//! [tool."*"]
//! limits = ["600/min per agent and user"]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::block::Identity;
use crate::budget::BudgetKey;
use crate::error::{Code, Denial, Error};
use crate::forms::{format_duration, Budget, ToolSel};

/// Who a limit counts calls of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Per {
    /// Every call of the tool, whoever makes it.
    All,
    /// Each agent (the ticket's OAuth client id).
    Agent,
    /// Each user (on whose behalf).
    User,
    /// Each (agent, user) pair.
    AgentUser,
}

impl Per {
    fn suffix(self) -> &'static str {
        match self {
            Per::All => "",
            Per::Agent => " per agent",
            Per::User => " per user",
            Per::AgentUser => " per agent and user",
        }
    }
}

/// A rate limit: `max_calls` per `window` seconds, counted [`Per`] agent, user, both or all.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Calls allowed per window.
    pub max_calls: u64,
    /// Window length in seconds (never 0: a server limit refills).
    pub window: u64,
    /// Who it counts.
    pub per: Per,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} calls per {}{}",
            self.max_calls,
            format_duration(self.window),
            self.per.suffix()
        )
    }
}

/// Parses `N/WINDOW`, then optionally `per agent`, `per user`, `per agent and user` or
/// `in all` (the default): `10/min per agent`.
impl FromStr for Limit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let hint = "expected N/WINDOW [per agent | per user | per agent and user | in all], \
                    e.g. 10/min per agent";
        let bad = |why: String| Error::InvalidRestriction(format!("limit {s:?}: {why} ({hint})"));
        let s = s.trim();
        let (rate, per) = match s.split_once(char::is_whitespace) {
            None => (s, Per::All),
            Some((rate, rest)) => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let per = match words.as_slice() {
                    ["per", "agent"] => Per::Agent,
                    ["per", "user"] => Per::User,
                    ["per", "agent", "and", "user"] => Per::AgentUser,
                    ["in", "all"] => Per::All,
                    _ => return Err(bad(format!("{rest:?} is not a key"))),
                };
                (rate, per)
            }
        };
        if rate.contains(':') {
            return Err(bad("name the tool in the table, not in the limit".into()));
        }
        let b: Budget = rate.parse().map_err(|e: Error| bad(e.to_string()))?;
        if b.window == 0 {
            return Err(bad("a server limit needs a window (it refills)".into()));
        }
        Ok(Limit {
            max_calls: b.max_calls,
            window: b.window,
            per,
        })
    }
}

/// What the policy says of one tool (or of every tool, `*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolPolicy {
    /// Scopes the ticket's authority block must list, all of them.
    pub scopes: Vec<String>,
    /// Rate limits, each spent on every allowed call.
    pub limits: Vec<Limit>,
}

/// A server policy (docs §16): per tool, and for `*` every tool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    tools: BTreeMap<ToolSel, ToolPolicy>,
}

/// A policy file that does not read: where, and why. `line` and `column` are 1-based, or 0
/// when the input had no lines to point at (a JSON value built in memory): the message then
/// names the tool and the entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if *line > 0 { format!("policy line {line}, column {column}: ") } else { "policy: ".to_string() })]
pub struct PolicyError {
    /// 1-based line, 0 when not known.
    pub line: usize,
    /// 1-based column (in characters), 0 when not known.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The file's shape, whatever its syntax: `{"tool": {NAME: {"scopes": [..], "limits": [..]}}}`,
/// each string with where it was read (`S`: a TOML span, or nothing for JSON).
#[derive(serde::Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "S: serde::Deserialize<'de> + Ord")
)]
struct File<S: Ord> {
    #[serde(default = "BTreeMap::new")]
    tool: BTreeMap<S, ToolTable<S>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolTable<S> {
    #[serde(default = "Vec::new")]
    scopes: Vec<S>,
    #[serde(default = "Vec::new")]
    limits: Vec<S>,
}

/// Most limits one tool (with `*`) may have: each is a budget key spent on every call.
pub const MAX_LIMITS_PER_TOOL: usize = 8;

impl Policy {
    /// An empty policy: no scope required, no limit.
    pub fn new() -> Self {
        Policy::default()
    }

    /// Adds what `tool` (or `*`) requires; repeated calls for one tool add up.
    pub fn tool(mut self, tool: ToolSel, scopes: Vec<String>, limits: Vec<Limit>) -> Self {
        let t = self.tools.entry(tool).or_default();
        t.scopes.extend(scopes);
        t.limits.extend(limits);
        self
    }

    /// Reads the TOML form; errors name the line and column. (Not on WebAssembly, whose
    /// module stays small: the npm package parses TOML in JavaScript and gives the value to
    /// [`Policy::from_json`].)
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            PolicyError {
                line,
                column,
                message,
            }
        };
        let file: File<toml::Spanned<String>> = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            at(span, e.message().to_string())
        })?;
        Policy::build(file, |s| (s.get_ref().as_str(), s.span()), at)
    }

    /// Reads the JSON form, the same shape as the TOML file:
    /// `{"tool": {"create_refund": {"scopes": [..], "limits": [..]}}}`. Syntax errors name the
    /// line and column; the others name the tool and the entry.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let file: File<String> = serde_json::from_str(text).map_err(|e| PolicyError {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Policy::build(
            file,
            |s| (s.as_str(), ()),
            |(), message| PolicyError {
                line: 0,
                column: 0,
                message,
            },
        )
    }

    /// The policy of a read file; `get` gives a string and where it was read, `at` an error
    /// there.
    fn build<S: Ord, W>(
        file: File<S>,
        get: impl Fn(&S) -> (&str, W),
        at: impl Fn(W, String) -> PolicyError,
    ) -> Result<Policy, PolicyError> {
        let mut policy = Policy::new();
        for (name, table) in &file.tool {
            let (n, w) = get(name);
            let tool: ToolSel = n
                .parse()
                .map_err(|e: Error| at(w, format!("tool {n:?}: {e}")))?;
            let mut scopes = Vec::new();
            for s in &table.scopes {
                let (v, w) = get(s);
                if !is_scope_token(v) {
                    let m =
                        format!("tool {n:?}: {v:?} is not an OAuth scope-token (RFC 6749 §3.3)");
                    return Err(at(w, m));
                }
                scopes.push(v.to_string());
            }
            let mut limits = Vec::new();
            for l in &table.limits {
                let (v, w) = get(l);
                let limit: Limit = v
                    .parse()
                    .map_err(|e: Error| at(w, format!("tool {n:?}: {e}")))?;
                limits.push(limit);
            }
            policy = policy.tool(tool, scopes, limits);
        }
        for (tool, t) in &policy.tools {
            let with_any = match tool {
                ToolSel::Named(_) => policy
                    .tools
                    .get(&ToolSel::Any)
                    .map_or(0, |a| a.limits.len()),
                ToolSel::Any => 0,
            };
            if t.limits.len() + with_any > MAX_LIMITS_PER_TOOL {
                return Err(PolicyError {
                    line: 0,
                    column: 0,
                    message: format!(
                        "tool {tool} has {} limits with those of \"*\": at most {MAX_LIMITS_PER_TOOL}",
                        t.limits.len() + with_any
                    ),
                });
            }
        }
        Ok(policy)
    }

    /// True when the policy says nothing.
    pub fn is_empty(&self) -> bool {
        self.tools
            .values()
            .all(|t| t.scopes.is_empty() && t.limits.is_empty())
    }

    /// What applies to a call of `tool`: its own entry, then `*`'s.
    fn applying<'a>(&'a self, tool: &str) -> impl Iterator<Item = &'a ToolPolicy> + 'a {
        let tool = tool.to_string();
        self.tools
            .iter()
            .filter(move |(sel, _)| sel.covers(&tool))
            .map(|(_, t)| t)
    }

    /// The scopes a call of `tool` needs, sorted, without repeats.
    pub fn scopes<'a>(&'a self, tool: &str) -> Vec<&'a str> {
        let mut s: Vec<&str> = self
            .applying(tool)
            .flat_map(|t| t.scopes.iter().map(String::as_str))
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// Every scope the policy names, sorted (for RFC 9728 `scopes_supported`).
    pub fn all_scopes(&self) -> Vec<&str> {
        let mut s: Vec<&str> = self
            .tools
            .values()
            .flat_map(|t| t.scopes.iter().map(String::as_str))
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    /// The limits a call of `tool` spends from.
    pub fn limits(&self, tool: &str) -> Vec<Limit> {
        self.applying(tool)
            .flat_map(|t| t.limits.iter().cloned())
            .collect()
    }

    /// The denial for a call of `tool` by a ticket that lacks a scope it needs, if it does.
    pub(crate) fn scope_denial(&self, tool: &str, identity: &Identity) -> Option<Denial> {
        let needs = self.scopes(tool);
        let missing: Vec<&str> = needs
            .iter()
            .copied()
            .filter(|n| !identity.scopes.iter().any(|s| s == n))
            .collect();
        if missing.is_empty() {
            return None;
        }
        let mut d = Denial::new(
            Code::ScopeMissing,
            format!(
                "server policy: the tool {tool:?} needs the scope {}, which the ticket does not have",
                missing.join(" ")
            ),
        );
        d.restriction = Some(format!("server policy: scopes {}", needs.join(" ")));
        Some(d)
    }
}

/// The root of every budget key of a server policy (a chain's keys have its authority
/// block's revocation id): stores that group keys by root put the policy's together.
pub const POLICY_ROOT: &[u8] = b"captix-policy";

/// The budget key of a limit for one call (docs §16): the state of `limit` for this tool
/// selector and, by its [`Per`], this agent and/or user. Keys of the policy share the root
/// `captix-policy`; their id is a hash of what they count, so an agent or user name of any
/// length makes a fixed-size key.
pub(crate) fn limit_key(sel: &str, limit: &Limit, index: u32, identity: &Identity) -> BudgetKey {
    let who = match limit.per {
        Per::All => String::new(),
        Per::Agent => format!("agent\0{}", identity.agent),
        Per::User => format!("user\0{}", identity.user),
        Per::AgentUser => format!("agent\0{}\0user\0{}", identity.agent, identity.user),
    };
    let id = Sha256::digest(
        format!(
            "captix-policy\0{sel}\0{}/{}\0{who}",
            limit.max_calls, limit.window
        )
        .as_bytes(),
    );
    BudgetKey {
        root: POLICY_ROOT.to_vec(),
        block: id.to_vec(),
        index,
        max_calls: limit.max_calls,
        window: limit.window,
        expires: None,
    }
}

impl Policy {
    /// The limits of a call of `tool`, with their budget keys for this identity, in order.
    pub(crate) fn keyed(&self, tool: &str, identity: &Identity) -> Vec<(Limit, BudgetKey)> {
        self.tools
            .iter()
            .filter(|(sel, _)| sel.covers(tool))
            .flat_map(|(sel, t)| {
                t.limits.iter().enumerate().map(move |(i, l)| {
                    // Per the selector: a limit of "*" counts every tool's calls together.
                    (l.clone(), limit_key(sel.as_str(), l, i as u32, identity))
                })
            })
            .collect()
    }
}

/// The denial for an exhausted limit.
pub(crate) fn rate_limited(
    tool: &str,
    limit: &Limit,
    identity: &Identity,
    retry_after: Option<u64>,
) -> Denial {
    let whom = match limit.per {
        Per::All => String::new(),
        Per::Agent => format!(" (agent {:?})", identity.agent),
        Per::User => format!(" (user {:?})", identity.user),
        Per::AgentUser => format!(" (agent {:?}, user {:?})", identity.agent, identity.user),
    };
    let when = retry_after.map_or(String::new(), |s| {
        format!("; a call is possible again in {s}s")
    });
    let mut d = Denial::new(
        Code::RateLimited,
        format!("server policy: {tool:?} is limited to {limit}{whom}{when}"),
    );
    d.restriction = Some(format!("server policy: {limit}"));
    d.retry_after = retry_after;
    d
}

/// Whether `s` is an RFC 6749 §3.3 scope-token, `1*( %x21 / %x23-5B / %x5D-7E )`, of at
/// most 256 bytes (a bound of captix's: scopes travel in headers and tickets).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[tool.create_refund]
scopes = ["invoices:write"]
limits = ["10/min per agent", "100/hour per user", "1000/min"]

[tool."*"]
limits = ["600/min per agent and user"]
"#;

    fn id(agent: &str, user: &str) -> Identity {
        Identity {
            issuer: None,
            agent: agent.into(),
            user: user.into(),
            scopes: vec![],
        }
    }

    #[test]
    fn the_file_form_reads() {
        let p = Policy::from_toml(FILE).expect("reads");
        assert_eq!(p.scopes("create_refund"), vec!["invoices:write"]);
        assert!(p.scopes("list_invoices").is_empty());
        let l = p.limits("create_refund");
        assert_eq!(l.len(), 4, "its own and those of *");
        assert_eq!(l[0].to_string(), "600 calls per 1min per agent and user");
        assert_eq!(p.limits("list_invoices").len(), 1);
        assert_eq!(p.all_scopes(), vec!["invoices:write"]);
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let cases = [
            (
                "[tool.t]\nlimits = [\"10/min per nobody\"]\n",
                2,
                11,
                "is not a key",
            ),
            (
                "[tool.t]\nlimits = [\"10 per agent\"]\n",
                2,
                11,
                "needs a window",
            ),
            ("[tool.t]\nscopes = [\"a b\"]\n", 2, 11, "scope-token"),
            ("[tool.t]\nrate = 1\n", 2, 1, "unknown field"),
            ("[tool.\"a\\u0001\"]\n", 1, 7, "not a tool name"),
            ("[tool.t]\nlimits = [\"t:10/min\"]\n", 2, 11, "in the table"),
            ("[tool.t\nx", 1, 8, ""),
        ];
        for (text, line, column, says) in cases {
            let e = Policy::from_toml(text).expect_err(text);
            assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
            assert!(e.message.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn keys_count_what_their_limit_says() {
        let p = Policy::from_toml(FILE).expect("reads");
        let k = |a: &str, u: &str| {
            p.keyed("create_refund", &id(a, u))
                .into_iter()
                .map(|(_, k)| k.block)
                .collect::<Vec<_>>()
        };
        let (a1, a1b, a2) = (k("a1", "u1"), k("a1", "u2"), k("a2", "u1"));
        // order: "*" (per agent and user), then create_refund's three
        assert_ne!(a1[0], a1b[0], "per agent and user");
        assert_eq!(a1[1], a1b[1], "per agent: same agent, same key");
        assert_ne!(a1[1], a2[1], "per agent: another agent");
        assert_ne!(a1[2], a1b[2], "per user");
        assert_eq!(a1[2], a2[2], "per user: same user");
        assert_eq!(a1[3], a2[3], "in all");
        // A "*" limit counts every tool together.
        let any = |tool: &str| p.keyed(tool, &id("a1", "u1"))[0].1.block.clone();
        assert_eq!(any("create_refund"), any("list_invoices"));
    }

    #[test]
    fn the_json_form_is_the_same_policy() {
        let json = r#"{"tool": {"create_refund": {"scopes": ["invoices:write"],
            "limits": ["10/min per agent", "100/hour per user", "1000/min"]},
            "*": {"limits": ["600/min per agent and user"]}}}"#;
        assert_eq!(Policy::from_json(json), Policy::from_toml(FILE));
        let e = Policy::from_json(r#"{"tool": {"t": {"limits": ["10 per agent"]}}}"#)
            .expect_err("no window");
        assert_eq!((e.line, e.column), (0, 0));
        assert!(e.to_string().starts_with("policy: tool \"t\""), "{e}");
        let e = Policy::from_json("{\"tool\": {\"t\": {\"rate\": 1}}}").expect_err("unknown");
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn a_tool_has_at_most_eight_limits() {
        let many = (0..9)
            .map(|i| format!("\"{}/min\"", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let e = Policy::from_toml(&format!("[tool.t]\nlimits = [{many}]\n")).expect_err("too many");
        assert!(e.message.contains("at most 8"), "{e}");
    }
}
