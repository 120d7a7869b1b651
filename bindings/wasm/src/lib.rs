//! WebAssembly bindings of captix (spec §13). Conversion only: every decision is the core's.
//!
//! Values cross the boundary as JSON text; the npm package's `index.js` turns them into
//! objects and errors into `Error`s carrying `code`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use captix::audit::{MemoryAudit, Redaction};
use captix::budget::MemoryBudgets;
use captix::revocation::MemoryRevocations;
use captix::{
    Budget, Call, KeySet, PublicKey, RevocationId, RowFilter, SigningKey, Ticket, UnverifiedTicket,
    Verifier,
};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

/// A JS `Error` with a `code` property.
fn error(code: &str, message: impl std::fmt::Display) -> JsValue {
    let e = js_sys::Error::new(&message.to_string());
    let _ = js_sys::Reflect::set(&e, &"code".into(), &code.into());
    e.into()
}

fn from_captix(e: captix::Error) -> JsValue {
    error(e.code(), e)
}

fn from_denial(d: captix::Denial) -> JsValue {
    error(d.code.as_str(), d)
}

fn parse<'a, T: Deserialize<'a>>(json: &'a str, what: &str) -> Result<T, JsValue> {
    serde_json::from_str(json).map_err(|e| error("invalid_argument", format!("{what}: {e}")))
}

fn to_json(v: &impl serde::Serialize) -> Result<String, JsValue> {
    serde_json::to_string(v).map_err(|e| error("internal", e))
}

/// `{"secretKey","publicKey","keyId"}` for a new root key.
#[wasm_bindgen(js_name = generateKey)]
pub fn generate_key() -> Result<String, JsValue> {
    let k = SigningKey::generate();
    to_json(&serde_json::json!({
        "secretKey": k.to_text().as_str(),
        "publicKey": k.public().to_text(),
        "keyId": k.key_id().to_string(),
    }))
}

/// `{"publicKey","keyId"}` of a secret key's text.
#[wasm_bindgen(js_name = publicKeyOf)]
pub fn public_key_of(secret_key: &str) -> Result<String, JsValue> {
    let k = SigningKey::from_text(secret_key).map_err(from_captix)?;
    to_json(
        &serde_json::json!({ "publicKey": k.public().to_text(), "keyId": k.key_id().to_string() }),
    )
}

/// Restrictions, as the JS API spells them.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    agent: Option<String>,
    user: Option<String>,
    issuer: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    rows: Vec<String>,
    #[serde(default)]
    budgets: Vec<String>,
    expires_at: Option<u64>,
    not_before: Option<u64>,
    resource: Option<String>,
    #[serde(default)]
    datalog: Vec<String>,
}

struct Parsed {
    rows: Vec<RowFilter>,
    budgets: Vec<Budget>,
}

fn parse_spec(spec: &Spec) -> Result<Parsed, JsValue> {
    let rows = spec
        .rows
        .iter()
        .map(|r| r.parse::<RowFilter>().map_err(from_captix))
        .collect::<Result<_, _>>()?;
    let budgets = spec
        .budgets
        .iter()
        .map(|b| b.parse::<Budget>().map_err(from_captix))
        .collect::<Result<_, _>>()?;
    Ok(Parsed { rows, budgets })
}

macro_rules! restrict {
    ($b:expr, $spec:expr, $parsed:expr) => {{
        let mut b = $b;
        for r in $parsed.rows {
            b = b.row(r);
        }
        for bu in $parsed.budgets {
            b = b.budget(bu);
        }
        if let Some(t) = $spec.expires_at {
            b = b.expires_at(t);
        }
        if let Some(t) = $spec.not_before {
            b = b.not_before(t);
        }
        if let Some(r) = &$spec.resource {
            b = b.resource(r.clone());
        }
        for c in &$spec.datalog {
            b = b.datalog(c.clone());
        }
        b
    }};
}

/// Mints a ticket with a secret key's text and a spec (`agent`, `user`, `tools`, ...).
#[wasm_bindgen]
pub fn mint(secret_key: &str, spec_json: &str) -> Result<String, JsValue> {
    let key = SigningKey::from_text(secret_key).map_err(from_captix)?;
    let spec: Spec = parse(spec_json, "mint spec")?;
    let (Some(agent), Some(user)) = (&spec.agent, &spec.user) else {
        return Err(error("invalid_argument", "mint needs an agent and a user"));
    };
    let parsed = parse_spec(&spec)?;
    let mut b = Ticket::mint(&key, agent.clone(), user.clone());
    if let Some(i) = &spec.issuer {
        b = b.issuer(i.clone());
    }
    for s in &spec.scopes {
        b = b.scope(s.clone());
    }
    for t in &spec.tools {
        b = b.tool(t.clone());
    }
    let t = restrict!(b, spec, parsed).sign().map_err(from_captix)?;
    Ok(t.as_str().to_string())
}

/// Appends an attenuation block (`tools` narrows; no key needed).
#[wasm_bindgen]
pub fn attenuate(ticket: &str, spec_json: &str) -> Result<String, JsValue> {
    let base = UnverifiedTicket::parse(ticket).map_err(from_denial)?;
    let spec: Spec = parse(spec_json, "attenuation spec")?;
    if spec.agent.is_some()
        || spec.user.is_some()
        || spec.issuer.is_some()
        || !spec.scopes.is_empty()
    {
        return Err(error(
            "invalid_argument",
            "an attenuation cannot change who the ticket is for",
        ));
    }
    let parsed = parse_spec(&spec)?;
    let mut b = base.attenuate();
    for t in &spec.tools {
        b = b.tool(t.clone());
    }
    let t = restrict!(b, spec, parsed)
        .sign_unverified()
        .map_err(from_captix)?;
    Ok(t.as_str().to_string())
}

fn key_set(json: &str) -> Result<KeySet, JsValue> {
    let texts: Vec<String> = parse(json, "public keys")?;
    let mut keys = KeySet::new();
    for t in texts {
        keys.insert(PublicKey::from_text(&t).map_err(from_captix)?);
    }
    Ok(keys)
}

/// Every block of a ticket; with public keys, signatures are verified (an invalid one throws).
#[wasm_bindgen]
pub fn inspect(ticket: &str, public_keys_json: Option<String>) -> Result<String, JsValue> {
    let report = match public_keys_json {
        Some(k) => Ticket::parse(ticket, &key_set(&k)?)
            .map_err(from_denial)?
            .inspect(),
        None => UnverifiedTicket::parse(ticket)
            .map_err(from_denial)?
            .inspect(),
    };
    to_json(&report)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    public_keys: Vec<String>,
    resource: Option<String>,
    #[serde(default = "yes")]
    budgets: bool,
    #[serde(default)]
    audit: bool,
    #[serde(default)]
    redact: Option<Vec<String>>,
    cache_capacity: Option<usize>,
}

fn yes() -> bool {
    true
}

/// A verifier with in-memory budgets, revocation and (optionally) an audit log.
#[wasm_bindgen]
pub struct WasmVerifier {
    inner: Verifier,
    revocations: Arc<MemoryRevocations>,
    audit: Option<Arc<MemoryAudit>>,
}

#[wasm_bindgen]
impl WasmVerifier {
    /// `{publicKeys, resource?, budgets = true, audit = false, redact?, cacheCapacity?}`.
    #[wasm_bindgen(constructor)]
    pub fn new(options_json: &str) -> Result<WasmVerifier, JsValue> {
        let o: Options = parse(options_json, "verifier options")?;
        let keys =
            key_set(&serde_json::to_string(&o.public_keys).map_err(|e| error("internal", e))?)?;
        let revocations = Arc::new(MemoryRevocations::new());
        let mut b = Verifier::builder(keys).revocations(revocations.clone());
        if let Some(r) = o.resource {
            b = b.resource(r);
        }
        if o.budgets {
            b = b.budgets(Arc::new(MemoryBudgets::new()));
        }
        if let Some(n) = o.cache_capacity {
            b = b.cache_capacity(n);
        }
        let audit = o.audit.then(|| Arc::new(MemoryAudit::new()));
        if let Some(a) = &audit {
            let redaction = match o.redact {
                Some(keep) => Redaction::Except(keep),
                None => Redaction::Keep,
            };
            b = b.audit(a.clone(), redaction);
        }
        Ok(WasmVerifier {
            inner: b.build(),
            revocations,
            audit,
        })
    }

    /// The decision JSON for a call (`argsJson` is the arguments object as JSON text).
    pub fn check(&self, ticket: &str, tool: &str, args_json: &str, time: f64) -> String {
        let decision = Call::new(tool, args_json).and_then(|c| {
            let c = c.at(time.max(0.0) as u64);
            self.inner.check(ticket, &c)
        });
        match &decision {
            Ok(a) => a.to_json().to_string(),
            Err(_) => captix::decision_json(&decision),
        }
    }

    /// The tools the ticket may call at `time` (JSON array); throws if the ticket is invalid.
    #[wasm_bindgen(js_name = callableTools)]
    pub fn callable_tools(&self, ticket: &str, time: f64) -> Result<String, JsValue> {
        let tools = self
            .inner
            .callable_tools(ticket, time.max(0.0) as u64)
            .map_err(from_denial)?;
        to_json(&tools)
    }

    /// Revokes a block by its hex revocation id: every ticket containing it is denied.
    pub fn revoke(&self, id_hex: &str) -> Result<(), JsValue> {
        let id = RevocationId::from_hex(id_hex).map_err(from_captix)?;
        self.revocations.revoke(&id);
        Ok(())
    }

    /// Audit lines written since the last call (JSON array of strings, each one JSON line).
    #[wasm_bindgen(js_name = drainAudit)]
    pub fn drain_audit(&self) -> Result<String, JsValue> {
        let lines = self.audit.as_ref().map(|a| a.drain()).unwrap_or_default();
        to_json(&lines)
    }

    /// Number of cached tickets.
    pub fn cached(&self) -> usize {
        self.inner.cached()
    }
}

/// The stable error codes (spec §8), for programs that switch on them.
#[wasm_bindgen]
pub fn codes() -> Result<String, JsValue> {
    to_json(
        &captix::Code::ALL
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
    )
}
