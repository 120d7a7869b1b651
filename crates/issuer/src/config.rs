//! The issuer's configuration file (docs §17.1): where it listens, its keys and stores, and the
//! policy that maps OAuth scopes, clients and user attributes to ticket contents.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use captix::{Budget, Constraint, PublicKey, RowFilter, Scalar, ToolSel};
use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;

/// The longest ticket lifetime a configuration may give: one day.
pub const MAX_LIFETIME: u64 = 86_400;
/// The lifetime when the file names none: 15 minutes.
pub const DEFAULT_LIFETIME: u64 = 900;
/// How many tickets a client may get when the file does not say: 60 an hour.
pub const DEFAULT_TICKETS: crate::store::IssueLimit = crate::store::IssueLimit {
    max: 60,
    window: 3600,
};

/// A read and checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The issuer identifier (RFC 8414 §2): an https URL (http only on loopback), no query or
    /// fragment, no trailing `/`.
    pub issuer: String,
    /// Where `serve` listens.
    pub listen: SocketAddr,
    /// A TLS proxy terminates connections in front (`listen` may then be non-loopback, and
    /// the per-address connection limit is the proxy's).
    pub behind_tls_proxy: bool,
    /// Signing key files, the first signs (§17.5 rotation); all are the issuer's.
    pub keys: Vec<PathBuf>,
    /// Where clients' secrets, issued tickets and used assertions are kept.
    pub store: StoreAt,
    /// The hash-chained audit log, if any.
    pub audit: Option<PathBuf>,
    /// Where revocations go: the servers' revocation source.
    pub revocations: RevocationsAt,
    /// Scopes, clients, users: what a ticket may carry.
    pub policy: Mapping,
}

/// The store of clients' secrets, issued tickets and used assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreAt {
    /// An SQLite file (the default: `issuer.db` beside the configuration).
    Sqlite(PathBuf),
    /// A Redis shared by many issuer replicas.
    Redis(String),
}

/// Where revoked ids are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationsAt {
    /// A revocation file the servers read (`--revoked FILE`), one hex id per line.
    File(PathBuf),
    /// The Redis revocation set the servers read (`--redis URL`).
    Redis(String),
}

/// The policy part: scopes to capabilities, clients, users (docs §17.2).
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    /// Default and longest ticket lifetime, seconds.
    pub lifetime: u64,
    /// Resources (normalized RFC 8707 URIs) and the scopes each understands.
    pub resources: BTreeMap<String, Vec<String>>,
    /// What each scope grants.
    pub scopes: BTreeMap<String, Scope>,
    /// The clients (agents) and what each may have.
    pub clients: BTreeMap<String, Client>,
    /// Users' attributes, for row templates (`{user.org}`).
    pub users: BTreeMap<String, BTreeMap<String, String>>,
}

/// What one scope grants.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Tools granted.
    pub tools: Vec<String>,
    /// Resource URI patterns granted (spec §4.11).
    pub uris: Vec<String>,
    /// Prompts granted.
    pub prompts: Vec<String>,
    /// Row filters on this scope's tools, values possibly templated from user attributes.
    pub rows: Vec<RowTemplate>,
    /// Budgets on this scope's tools.
    pub budgets: Vec<Budget>,
}

/// A row filter whose value may be a user attribute: `org={user.org}` gives
/// `org = <the user's org>`, a string put into the filter as a value (never re-parsed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowTemplate {
    /// The filter; for a template its value is replaced.
    pub filter: RowFilter,
    /// The attribute whose value replaces the filter's (equal or prefix), if templated.
    pub attribute: Option<String>,
}

impl RowTemplate {
    /// The filter for a user with these attributes; `None` when an attribute is missing.
    pub fn fill(&self, attrs: &BTreeMap<String, String>) -> Option<RowFilter> {
        let Some(name) = &self.attribute else {
            return Some(self.filter.clone());
        };
        // An empty value would make a prefix row admit everything: it is no value.
        let value = attrs.get(name).filter(|v| !v.is_empty())?.clone();
        let mut f = self.filter.clone();
        f.constraint = match f.constraint {
            Constraint::Prefix(_) => Constraint::Prefix(value),
            _ => Constraint::Eq(Scalar::Str(value)),
        };
        Some(f)
    }
}

/// One client (an agent, by OAuth client id).
#[derive(Clone, Debug)]
pub struct Client {
    /// The scopes it may have.
    pub scopes: Vec<String>,
    /// The user its `client_credentials` tickets act for (default: the client id).
    pub user: String,
    /// Its tickets' lifetime, at most the file's.
    pub lifetime: Option<u64>,
    /// Budgets on every ticket it gets (`*` for all its calls).
    pub budgets: Vec<Budget>,
    /// Its public key for `private_key_jwt` (RFC 7523, EdDSA); without one it authenticates
    /// with a client secret.
    pub public_key: Option<PublicKey>,
    /// How many tickets it may get in a window (`tickets = "60/hour"`, the default).
    pub tickets: crate::store::IssueLimit,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            scopes: vec![],
            user: String::new(),
            lifetime: None,
            budgets: vec![],
            public_key: None,
            tickets: DEFAULT_TICKETS,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    issuer: Spanned<String>,
    listen: Option<Spanned<String>>,
    keys: Spanned<Vec<Spanned<String>>>,
    store: Option<Spanned<String>>,
    audit: Option<Spanned<String>>,
    revocations: Spanned<String>,
    lifetime: Option<Spanned<String>>,
    #[serde(default)]
    behind_tls_proxy: bool,
    #[serde(default)]
    resources: BTreeMap<Spanned<String>, ResourceT>,
    #[serde(default)]
    scopes: BTreeMap<Spanned<String>, ScopeT>,
    #[serde(default)]
    clients: BTreeMap<Spanned<String>, ClientT>,
    #[serde(default)]
    users: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceT {
    scopes: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeT {
    #[serde(default)]
    tools: Vec<Spanned<String>>,
    #[serde(default)]
    uris: Vec<Spanned<String>>,
    #[serde(default)]
    prompts: Vec<Spanned<String>>,
    #[serde(default)]
    rows: Vec<Spanned<String>>,
    #[serde(default)]
    budgets: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientT {
    scopes: Vec<Spanned<String>>,
    user: Option<Spanned<String>>,
    lifetime: Option<Spanned<String>>,
    #[serde(default)]
    budgets: Vec<Spanned<String>>,
    public_key: Option<Spanned<String>>,
    tickets: Option<Spanned<String>>,
}

/// At most this many bytes of configuration.
const MAX_FILE: usize = 1 << 20;

impl Config {
    /// Reads and checks a configuration file; relative paths in it are relative to its folder.
    pub fn load(path: &Path) -> Result<Config, crate::Error> {
        let wrap = |source| crate::Error::Config {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| wrap(ConfigError::whole(format!("could not read: {e}"))))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base).map_err(wrap)
    }

    /// Reads a configuration from its text; relative paths are relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
        if text.len() > MAX_FILE {
            return Err(ConfigError::whole("the file is larger than 1 MiB"));
        }
        let at = |span: Range<usize>, message: String| {
            let before = &text[..span.start.min(text.len())];
            ConfigError {
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
                message,
            }
        };
        let file: File = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().to_string()))?;
        let path = |s: &Spanned<String>| {
            let p = PathBuf::from(s.get_ref());
            if p.is_absolute() {
                p
            } else {
                base.join(p)
            }
        };

        let issuer = file.issuer.get_ref().clone();
        check_issuer(&issuer).map_err(|m| at(file.issuer.span(), m))?;
        let listen = match &file.listen {
            None => SocketAddr::from(([127, 0, 0, 1], 8789)),
            Some(l) => l.get_ref().parse().map_err(|_| {
                at(
                    l.span(),
                    format!(
                        "listen {:?}: not an address like 127.0.0.1:8789",
                        l.get_ref()
                    ),
                )
            })?,
        };
        // `serve` speaks plain HTTP: secrets and tickets cross the wire in the clear unless a
        // TLS proxy in front terminates the connection. Loopback only, unless the file says so.
        if !listen.ip().is_loopback() && !file.behind_tls_proxy {
            let span = file.listen.as_ref().map_or(0..0, |l| l.span());
            return Err(at(span, format!("listen {listen}: not a loopback address; the issuer serves plain HTTP, so put a TLS proxy in front and set behind_tls_proxy = true")));
        }
        if file.keys.get_ref().is_empty() {
            return Err(at(
                file.keys.span(),
                "keys: name at least one signing key file".into(),
            ));
        }
        let keys = file.keys.get_ref().iter().map(path).collect();
        let store = match &file.store {
            None => StoreAt::Sqlite(base.join("issuer.db")),
            Some(s) if is_redis(s.get_ref()) => StoreAt::Redis(s.get_ref().clone()),
            Some(s) => StoreAt::Sqlite(path(s)),
        };
        let revocations = if is_redis(file.revocations.get_ref()) {
            RevocationsAt::Redis(file.revocations.get_ref().clone())
        } else {
            RevocationsAt::File(path(&file.revocations))
        };
        let lifetime = match &file.lifetime {
            None => DEFAULT_LIFETIME,
            Some(l) => lifetime_of(l).map_err(|m| at(l.span(), m))?,
        };

        let mut policy = Mapping {
            lifetime,
            ..Mapping::default()
        };
        for (name, s) in &file.scopes {
            let scope = scope_of(name.get_ref(), s, &at)?;
            policy.scopes.insert(name.get_ref().clone(), scope);
        }
        // A tool two scopes grant must carry the same rows in both: a ticket holds the rows of
        // every granted scope at once, so differing rows would intersect, not unite.
        let mut seen: BTreeMap<&str, (&str, Vec<&RowTemplate>)> = BTreeMap::new();
        for (name, s) in &policy.scopes {
            for t in &s.tools {
                let rows: Vec<_> = s.rows.iter().filter(|r| r.filter.tool.covers(t)).collect();
                if let Some((other, theirs)) = seen.get(t.as_str()) {
                    if *theirs != rows {
                        let span = file
                            .scopes
                            .keys()
                            .find(|k| k.get_ref() == name)
                            .map_or(0..0, |k| k.span());
                        return Err(at(
                            span,
                            format!(
                                "scopes {other:?} and {name:?} both grant tool {t:?} with different rows: a ticket with both would need both"
                            ),
                        ));
                    }
                } else {
                    seen.insert(t, (name, rows));
                }
            }
        }
        for (uri, r) in &file.resources {
            let u = uri.get_ref();
            if !(u.starts_with("https://") || u.starts_with("http://")) || u.contains('#') {
                return Err(at(
                    uri.span(),
                    format!(
                        "resource {u:?}: not an absolute http(s) URI without fragment (RFC 8707)"
                    ),
                ));
            }
            let mut scopes = Vec::new();
            for s in &r.scopes {
                if !policy.scopes.contains_key(s.get_ref()) {
                    return Err(at(
                        s.span(),
                        format!(
                            "resource {u:?}: scope {:?} is not defined under [scopes]",
                            s.get_ref()
                        ),
                    ));
                }
                scopes.push(s.get_ref().clone());
            }
            policy
                .resources
                .insert(captix::normalize_resource(u), scopes);
        }
        if policy.resources.is_empty() {
            return Err(ConfigError::whole(
                "no [resources.\"URI\"]: a ticket must name its resource (audience)",
            ));
        }
        for (user, attrs) in &file.users {
            let mut map = BTreeMap::new();
            for (k, v) in attrs {
                if v.get_ref().is_empty() {
                    return Err(at(v.span(), format!("user {:?}: attribute {:?} is empty (a prefix row of it would admit everything)", user.get_ref(), k.get_ref())));
                }
                map.insert(k.get_ref().clone(), v.get_ref().clone());
            }
            policy.users.insert(user.get_ref().clone(), map);
        }
        for (id, c) in &file.clients {
            let client = client_of(id, c, &policy, &at)?;
            policy.clients.insert(id.get_ref().clone(), client);
        }
        Ok(Config {
            issuer,
            listen,
            behind_tls_proxy: file.behind_tls_proxy,
            keys,
            store,
            audit: file.audit.as_ref().map(path),
            revocations,
            policy,
        })
    }
}

pub(crate) use captix::time::now as unix_now;

fn is_redis(s: &str) -> bool {
    s.starts_with("redis://") || s.starts_with("rediss://")
}

/// RFC 8414 §2: the issuer is an https URL with no query or fragment. Plain http is accepted
/// for loopback hosts only (development and tests).
fn check_issuer(issuer: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("issuer {issuer:?}: {why}"));
    let rest = if let Some(r) = issuer.strip_prefix("https://") {
        r
    } else if let Some(r) = issuer.strip_prefix("http://") {
        let host = r.split(['/', ':']).next().unwrap_or("");
        if !(host == "127.0.0.1" || host == "localhost" || r.starts_with("[::1]")) {
            return bad("must be https (http only for 127.0.0.1, localhost or [::1])");
        }
        r
    } else {
        return bad("must be an https URL (RFC 8414 §2)");
    };
    if rest.is_empty() || rest.starts_with('/') {
        return bad("has no host");
    }
    if issuer.contains(['?', '#']) {
        return bad("must have no query or fragment (RFC 8414 §2)");
    }
    // RFC 8414 §3.3: the metadata's `issuer` is this exact string, and the endpoints' paths
    // are built from it: no trailing `/` to strip, and a path of plain segments only (it
    // becomes a route; `{x}` or `*` would match any path).
    if issuer.ends_with('/') {
        return bad("must not end with `/` (the metadata names it exactly as written)");
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if !authority.chars().all(|c| plain(c) || "[]:".contains(c)) {
        return bad("the host must be a name, an IPv4 address or a bracketed IPv6 address, with an optional port");
    }
    if !path
        .split('/')
        .skip(1)
        .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && seg.chars().all(plain))
    {
        return bad("the path must be segments of letters, digits, `-`, `.`, `_` or `~`");
    }
    Ok(())
}

fn lifetime_of(l: &Spanned<String>) -> Result<u64, String> {
    let secs = captix::parse_duration(l.get_ref())?;
    if secs == 0 || secs > MAX_LIFETIME {
        return Err(format!("lifetime {:?}: between 1s and 1d", l.get_ref()));
    }
    Ok(secs)
}

type At<'a> = dyn Fn(Range<usize>, String) -> ConfigError + 'a;

fn scope_of(name: &str, s: &ScopeT, at: &At<'_>) -> Result<Scope, ConfigError> {
    let mut scope = Scope::default();
    let err = |v: &Spanned<String>, why: String| at(v.span(), format!("scope {name:?}: {why}"));
    if !captix::is_scope_token(name) {
        return Err(ConfigError::whole(format!(
            "scope {name:?} is not an OAuth scope-token (RFC 6749 §3.3)"
        )));
    }
    for t in &s.tools {
        captix::validate_tool_name(t.get_ref()).map_err(|e| err(t, e.to_string()))?;
        scope.tools.push(t.get_ref().clone());
    }
    for u in &s.uris {
        captix::validate_uri(u.get_ref(), true).map_err(|e| err(u, e.to_string()))?;
        scope.uris.push(u.get_ref().clone());
    }
    for p in &s.prompts {
        captix::validate_prompt_name(p.get_ref()).map_err(|e| err(p, e.to_string()))?;
        scope.prompts.push(p.get_ref().clone());
    }
    if scope.tools.is_empty() && scope.uris.is_empty() && scope.prompts.is_empty() {
        return Err(ConfigError::whole(format!(
            "scope {name:?} grants nothing: give it tools, uris or prompts"
        )));
    }
    for r in &s.rows {
        let text = r.get_ref();
        // `TOOL:ARG…` names one of the scope's tools; `ARG…` applies to each of them.
        let op = text.find(['=', '<', '>', '^']).unwrap_or(text.len());
        let named = text[..op].contains(':') && !text.starts_with('/');
        let targets: Vec<String> = if named {
            let tool = text.split_once(':').map_or("", |(t, _)| t);
            if !scope.tools.iter().any(|t| t == tool) {
                return Err(err(
                    r,
                    format!("row {text:?}: names {tool:?}, not a tool of this scope"),
                ));
            }
            vec![text.to_string()]
        } else {
            scope.tools.iter().map(|t| format!("{t}:{text}")).collect()
        };
        for form in targets {
            let filter: RowFilter = form
                .parse()
                .map_err(|e: captix::Error| err(r, e.to_string()))?;
            let attribute = template_of(&filter.constraint).map_err(|m| err(r, m))?;
            scope.rows.push(RowTemplate { filter, attribute });
        }
    }
    for b in &s.budgets {
        let budget: Budget = b
            .get_ref()
            .parse()
            .map_err(|e: captix::Error| err(b, e.to_string()))?;
        match &budget.tool {
            ToolSel::Named(t) if scope.tools.contains(t) => {}
            _ => {
                return Err(err(b, format!("budget {:?}: name one of this scope's tools (a `*` budget belongs to a client)", b.get_ref())));
            }
        }
        scope.budgets.push(budget);
    }
    Ok(scope)
}

/// The attribute a constraint's value names (`{user.NAME}`), if it is a template.
fn template_of(c: &Constraint) -> Result<Option<String>, String> {
    let value = match c {
        Constraint::Eq(Scalar::Str(v)) | Constraint::Prefix(v) => v.as_str(),
        _ => return Ok(None),
    };
    let Some(rest) = value.strip_prefix("{user.") else {
        return if value.contains("{user.") {
            Err(format!(
                "{value:?}: a template must be the whole value, like {{user.org}}"
            ))
        } else {
            Ok(None)
        };
    };
    match rest.strip_suffix('}') {
        Some(name)
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(Some(name.to_string()))
        }
        _ => Err(format!(
            "{value:?}: a template is {{user.NAME}}, NAME of letters, digits, _ or -"
        )),
    }
}

fn client_of(
    id: &Spanned<String>,
    c: &ClientT,
    policy: &Mapping,
    at: &At<'_>,
) -> Result<Client, ConfigError> {
    let name = id.get_ref();
    // Client ids travel in forms, headers and tickets: visible ASCII, bounded.
    if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(at(
            id.span(),
            format!("client {name:?}: an id is 1 to 128 visible ASCII characters"),
        ));
    }
    let err = |v: &Spanned<String>, why: String| at(v.span(), format!("client {name:?}: {why}"));
    let mut client = Client {
        user: c
            .user
            .as_ref()
            .map_or_else(|| name.clone(), |u| u.get_ref().clone()),
        ..Client::default()
    };
    if client.user.is_empty() || client.user.len() > 256 {
        return Err(at(
            id.span(),
            format!("client {name:?}: user must be 1 to 256 bytes"),
        ));
    }
    let empty = BTreeMap::new();
    let attrs = policy.users.get(&client.user).unwrap_or(&empty);
    for s in &c.scopes {
        let Some(scope) = policy.scopes.get(s.get_ref()) else {
            return Err(err(
                s,
                format!("scope {:?} is not defined under [scopes]", s.get_ref()),
            ));
        };
        // Every template this client can meet has its value: a grant never fails at run time
        // for want of an attribute.
        for r in &scope.rows {
            if let Some(a) = &r.attribute {
                if !attrs.contains_key(a) {
                    return Err(err(
                        s,
                        format!(
                            "scope {:?} needs attribute {a:?} of user {:?} ([users.\"{}\"])",
                            s.get_ref(),
                            client.user,
                            client.user
                        ),
                    ));
                }
            }
        }
        client.scopes.push(s.get_ref().clone());
    }
    if let Some(l) = &c.lifetime {
        let secs = lifetime_of(l).map_err(|m| err(l, m))?;
        if secs > policy.lifetime {
            return Err(err(
                l,
                format!("lifetime {:?} is longer than the file's", l.get_ref()),
            ));
        }
        client.lifetime = Some(secs);
    }
    let tools: BTreeSet<&String> = client
        .scopes
        .iter()
        .filter_map(|s| policy.scopes.get(s))
        .flat_map(|s| &s.tools)
        .collect();
    for b in &c.budgets {
        let budget: Budget = b
            .get_ref()
            .parse()
            .map_err(|e: captix::Error| err(b, e.to_string()))?;
        if let ToolSel::Named(t) = &budget.tool {
            if !tools.contains(t) {
                return Err(err(
                    b,
                    format!(
                        "budget {:?}: tool {t:?} is in none of its scopes",
                        b.get_ref()
                    ),
                ));
            }
        }
        client.budgets.push(budget);
    }
    if let Some(t) = &c.tickets {
        // The budget form without a tool: `N/WINDOW`, a window required.
        let b: Budget = t
            .get_ref()
            .parse()
            .map_err(|e: captix::Error| err(t, format!("tickets: {e}")))?;
        if b.tool != ToolSel::Any || b.window == 0 || b.max_calls == 0 {
            return Err(err(
                t,
                format!("tickets {:?}: write N/WINDOW, like 60/hour", t.get_ref()),
            ));
        }
        client.tickets = crate::store::IssueLimit {
            max: b.max_calls,
            window: b.window,
        };
    }
    if let Some(k) = &c.public_key {
        client.public_key =
            Some(PublicKey::from_text(k.get_ref()).map_err(|e| err(k, e.to_string()))?);
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
issuer = "http://127.0.0.1:8789"
keys = ["issuer.key"]
revocations = "revoked.txt"

[resources."http://127.0.0.1:8788/mcp"]
scopes = ["invoices:read"]

[scopes."invoices:read"]
tools = ["list_invoices", "get_invoice"]
rows = ["org={user.org}"]
budgets = ["list_invoices:100/min"]

[clients.bot]
scopes = ["invoices:read"]
user = "svc"

[users.svc]
org = "acme"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/captix"))
    }

    #[test]
    fn a_good_file_reads_with_paths_beside_it() {
        let c = parse(GOOD).expect("config");
        assert_eq!(c.issuer, "http://127.0.0.1:8789");
        assert_eq!(c.keys, vec![PathBuf::from("/etc/captix/issuer.key")]);
        assert_eq!(c.store, StoreAt::Sqlite("/etc/captix/issuer.db".into()));
        assert_eq!(c.policy.lifetime, DEFAULT_LIFETIME);
        let scope = &c.policy.scopes["invoices:read"];
        assert_eq!(
            scope.rows.len(),
            2,
            "the row applies to each tool of the scope"
        );
        assert_eq!(scope.rows[0].attribute.as_deref(), Some("org"));
        let attrs = &c.policy.users["svc"];
        assert_eq!(
            scope.rows[0].fill(attrs).expect("filled"),
            "list_invoices:org=acme".parse().expect("row")
        );
    }

    #[test]
    fn bad_files_name_the_line_and_the_reason() {
        let cases: &[(&str, &str, usize, &str)] = &[
            (
                "issuer = \"http://127.0.0.1:8789\"",
                "issuer = \"http://evil.example\"",
                2,
                "must be https",
            ),
            (
                "issuer = \"http://127.0.0.1:8789\"",
                "issuer = \"https://as.example/?a=b\"",
                2,
                "no query",
            ),
            (
                "rows = [\"org={user.org}\"]",
                "rows = [\"org=x-{user.org}\"]",
                11,
                "whole value",
            ),
            (
                "rows = [\"org={user.org}\"]",
                "rows = [\"other:org=acme\"]",
                11,
                "not a tool of this scope",
            ),
            (
                "budgets = [\"list_invoices:100/min\"]",
                "budgets = [\"*:100/min\"]",
                12,
                "belongs to a client",
            ),
            (
                "org = \"acme\"",
                "team = \"a\"",
                15,
                "needs attribute \"org\"",
            ),
            (
                "user = \"svc\"",
                "user = \"svc\"\nlifetime = \"2d\"",
                17,
                "between 1s and 1d",
            ),
            (
                "scopes = [\"invoices:read\"]\nuser",
                "scopes = [\"invoices:write\"]\nuser",
                15,
                "not defined",
            ),
            ("keys = [\"issuer.key\"]", "keys = []", 3, "at least one"),
            (
                "keys = [\"issuer.key\"]",
                "listen = \"0.0.0.0:8789\"\nkeys = [\"k\"]",
                3,
                "TLS proxy",
            ),
            (
                "tools = [\"list_invoices\", \"get_invoice\"]",
                "tools = [\"list invoices\\n\"]",
                10,
                "tool",
            ),
            (
                "revocations = \"revoked.txt\"",
                "revocations = \"revoked.txt\"\nsurprise = 1",
                5,
                "unknown field",
            ),
        ];
        for (from, to, line, says) in cases {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let e = parse(&text).expect_err(to);
            assert!(e.to_string().contains(says), "{to}: {e}");
            assert_eq!(e.line, *line, "{to}: {e}");
        }
    }

    #[test]
    fn two_scopes_may_not_give_one_tool_different_rows() {
        let text = GOOD.replace(
            "[clients.bot]",
            "[scopes.\"invoices:all\"]\ntools = [\"list_invoices\"]\n\n[clients.bot]",
        );
        let e = parse(&text).expect_err("conflict");
        assert!(e.message.contains("different rows"), "{e}");
    }

    #[test]
    fn a_template_value_is_a_value_never_syntax() {
        // An attribute holding the short form's syntax stays one string value.
        let c = parse(&GOOD.replace("org = \"acme\"", "org = \"acme|globex\"")).expect("config");
        let f = c.policy.scopes["invoices:read"].rows[0]
            .fill(&c.policy.users["svc"])
            .expect("filled");
        assert_eq!(
            f.constraint,
            Constraint::Eq(Scalar::Str("acme|globex".into()))
        );
    }
}
