//! WebAssembly bindings of captix (docs §13). Conversion only: every decision is the core's.
//!
//! Values cross the boundary as JSON text; the npm package's `index.js` turns them into
//! objects and errors into `Error`s carrying `code`.
#![forbid(unsafe_code)]

use std::sync::Arc;

use captix::audit::{MemoryAudit, Redaction};
use captix::revocation::MemoryRevocations;
use captix::{
    Args, Budget, Call, KeySet, PublicKey, RevocationId, RowFilter, SigningKey, Ticket,
    UnverifiedTicket, Verifier,
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

/// A denial as a JS `Error` with `code`, `reason`, and `block`/`restriction` when a block denied.
fn from_denial(d: captix::Denial) -> JsValue {
    let e = error(d.code.as_str(), &d);
    let _ = js_sys::Reflect::set(&e, &"reason".into(), &d.reason.as_str().into());
    if let Some(b) = d.block {
        let _ = js_sys::Reflect::set(&e, &"block".into(), &(b as f64).into());
    }
    if let Some(r) = &d.restriction {
        let _ = js_sys::Reflect::set(&e, &"restriction".into(), &r.as_str().into());
    }
    e
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
    /// Mint: the tools granted. Attenuate: the only tools allowed (`[]`: none).
    tools: Option<Vec<String>>,
    /// Mint: the URI patterns granted. Attenuate: the only ones allowed (`[]`: none).
    uris: Option<Vec<String>>,
    /// Mint: the prompts granted. Attenuate: the only ones allowed (`[]`: none).
    prompts: Option<Vec<String>>,
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

fn parse_spec(spec: &Spec) -> Result<captix::Restrictions, JsValue> {
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
    Ok(captix::Restrictions {
        rows,
        budgets,
        expires: spec.expires_at,
        not_before: spec.not_before,
        resource: spec.resource.clone(),
        checks: spec.datalog.clone(),
    })
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
    for t in spec.tools.iter().flatten() {
        b = b.tool(t.clone());
    }
    for u in spec.uris.iter().flatten() {
        b = b.uri(u.clone());
    }
    for p in spec.prompts.iter().flatten() {
        b = b.prompt(p.clone());
    }
    let t = b.restrict(parsed).sign().map_err(from_captix)?;
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
    if let Some(tools) = spec.tools.clone() {
        b = b.only_tools(tools);
    }
    if let Some(uris) = spec.uris.clone() {
        b = b.only_uris(uris);
    }
    if let Some(prompts) = spec.prompts.clone() {
        b = b.only_prompts(prompts);
    }
    let t = b.restrict(parsed).sign_unverified().map_err(from_captix)?;
    Ok(t.as_str().to_string())
}

/// The call of a `resources/read` (a URI) or a `prompts/get` (a name).
fn target_call(method: &str, name: &str) -> Result<captix::Untimed, captix::Denial> {
    match method {
        captix::RESOURCES_READ => Call::read(name),
        captix::PROMPTS_GET => Call::prompt(name),
        other => Err(captix::Denial::new(
            captix::Code::MethodNotAllowed,
            format!(
                "{other:?} is not a method a ticket decides by name (resources/read, prompts/get)"
            ),
        )),
    }
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
    cache_bytes: Option<usize>,
    /// The named opt-outs of the safe defaults (docs §10.1).
    #[serde(default)]
    allow_tickets_without_expiry: bool,
    #[serde(default)]
    allow_tickets_without_audience: bool,
    /// Refuse tickets valid longer than this many seconds from the check.
    max_lifetime: Option<u64>,
    /// The server policy, the value of its file (docs §16; JavaScript reads the TOML).
    policy: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

/// A call to refill before it is checked (`Call::refill_tool`).
fn no_call() -> Call {
    Call {
        target: captix::Target::Tool(String::new()),
        args: Args::empty(),
        time: 0,
        resource: None,
    }
}

/// A verifier with in-memory budgets, revocation and (optionally) an audit log.
#[wasm_bindgen]
pub struct WasmVerifier {
    inner: Verifier,
    revocations: Arc<MemoryRevocations>,
    audit: Option<Arc<MemoryAudit>>,
    /// Where JavaScript writes the ticket, tool name and arguments (`scratch`, then
    /// `checkScratch`).
    scratch: Vec<u8>,
    /// The last decision `checkScratch` made, for `lastJson`.
    last: std::cell::RefCell<Option<captix::Decision>>,
    /// The call of the last tool check, whose buffers the next one reuses (`Call::refill_tool`).
    call: std::cell::RefCell<Call>,
}

#[wasm_bindgen]
impl WasmVerifier {
    /// `{publicKeys, resource?, budgets = true, audit = false, redact?, cacheBytes?,
    /// allowTicketsWithoutExpiry = false, allowTicketsWithoutAudience = false}`.
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
        if !o.budgets {
            b = b.without_budgets();
        }
        if let Some(n) = o.cache_bytes {
            b = b.cache_bytes(n);
        }
        if let Some(value) = &o.policy {
            let p = captix::Policy::from_json(&value.to_string())
                .map_err(|e| error("invalid_policy", e))?;
            b = b.policy(p);
        }
        if o.allow_tickets_without_expiry {
            b = b.allow_tickets_without_expiry();
        }
        if o.allow_tickets_without_audience {
            b = b.allow_tickets_without_audience();
        }
        if let Some(n) = o.max_lifetime {
            b = b.max_lifetime(n);
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
            scratch: Vec::new(),
            last: Default::default(),
            call: std::cell::RefCell::new(no_call()),
        })
    }

    /// The decision JSON for a call: the ticket and the arguments object's JSON text as UTF-8
    /// bytes (the JS wrapper encodes them natively).
    pub fn check(&self, ticket: &[u8], tool: &str, args_json: &[u8], time: f64) -> String {
        let decision = self.call(ticket, tool, args_json, time);
        match &decision {
            Ok(a) => a.to_json().to_string(),
            Err(_) => captix::decision_json(&decision),
        }
    }

    /// Checks a call; a call refused before the check (its tool name or arguments malformed)
    /// is audited too, as the Rust layer does.
    fn call(&self, ticket: &[u8], tool: &str, args_json: &[u8], time: f64) -> captix::Decision {
        let time = time.max(0.0) as u64;
        // The call's buffers are reused; nothing re-enters a check, so the cell is free (a
        // new call if it ever were not).
        let mut spare;
        let mut held = self.call.try_borrow_mut();
        let call: &mut Call = match &mut held {
            Ok(c) => c,
            Err(_) => {
                spare = no_call();
                &mut spare
            }
        };
        match call.refill_tool(tool, args_json, time) {
            Ok(()) => self.inner.check_bytes(ticket, call),
            Err(d) => {
                let info = std::str::from_utf8(ticket)
                    .ok()
                    .and_then(|t| self.inner.ticket_info(t, time).ok());
                let target = (!tool.is_empty()).then_some(tool);
                match self
                    .inner
                    .record_request(time, "tools/call", target, info.as_ref(), Some(&d))
                {
                    Ok(_) => Err(d),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The decision JSON for a `resources/read` (`method`, the URI as `name`) or a
    /// `prompts/get` (the prompt's name). A URI or name refused before the check is audited.
    #[wasm_bindgen(js_name = checkTarget)]
    pub fn check_target(&self, ticket: &str, method: &str, name: &str, time: f64) -> String {
        let time = time.max(0.0) as u64;
        let decision = match target_call(method, name) {
            Ok(c) => self.inner.check(ticket, &c.at(time)),
            Err(d) => {
                let info = self.inner.ticket_info(ticket, time).ok();
                let target = (!name.is_empty()).then_some(name);
                match self
                    .inner
                    .record_request(time, method, target, info.as_ref(), Some(&d))
                {
                    Ok(_) => Err(d),
                    Err(e) => Err(e),
                }
            }
        };
        captix::decision_json(&decision)
    }

    /// Whether the ticket allows a `resources/read` or `prompts/get` at `time`, without an
    /// audit record: for filtering `resources/list` and `prompts/list`.
    pub fn allows(&self, ticket: &str, method: &str, name: &str, time: f64) -> bool {
        target_call(method, name).is_ok_and(|c| {
            self.inner
                .allows(ticket, &c.at(time.max(0.0) as u64))
                .is_ok()
        })
    }

    /// The scopes the server policy requires for calls of `tool` (JSON array), for the
    /// `scope=` of a challenge.
    #[wasm_bindgen(js_name = policyScopes)]
    pub fn policy_scopes(&self, tool: &str) -> Result<String, JsValue> {
        to_json(&self.inner.policy().scopes(tool))
    }

    /// Decisions made so far by code (JSON object, `allow` first; docs §16.3).
    pub fn decisions(&self) -> Result<String, JsValue> {
        let map: serde_json::Map<String, serde_json::Value> = self
            .inner
            .decisions()
            .into_iter()
            .map(|(code, n)| (code.to_string(), n.into()))
            .collect();
        to_json(&map)
    }

    /// Every scope the server policy names (JSON array), for `scopes_supported`.
    #[wasm_bindgen(js_name = policyAllScopes)]
    pub fn policy_all_scopes(&self) -> Result<String, JsValue> {
        to_json(&self.inner.policy().all_scopes())
    }

    /// The address in WebAssembly memory of a buffer of at least `len` bytes, into which the
    /// caller writes a ticket, the tool's name and the arguments' JSON text, one after the
    /// other, before `checkScratch`.
    pub fn scratch(&mut self, len: usize) -> usize {
        if self.scratch.len() < len {
            self.scratch = vec![0; len.next_power_of_two()];
        }
        self.scratch.as_ptr() as usize
    }

    /// `check` on the ticket (`ticket_len` bytes), tool name (`tool_len`) and arguments
    /// (`args_len`) written to the scratch buffer. Returns the decision's id (see
    /// `Allowed::decision_id`, a positive integer below 2^53) for an allow, 0 for a denial;
    /// `lastJson` gives the decision's JSON. -1 when the lengths go beyond the buffer or the
    /// tool name is not UTF-8 (the caller's error: nothing was checked). Nothing crosses the
    /// boundary but three lengths, a time and one number: the warm path allocates nothing in
    /// JavaScript (a `Result` would return an array).
    #[wasm_bindgen(js_name = checkScratch)]
    pub fn check_scratch(
        &self,
        ticket_len: usize,
        tool_len: usize,
        args_len: usize,
        time: f64,
    ) -> f64 {
        let end = ticket_len
            .checked_add(tool_len)
            .and_then(|n| n.checked_add(args_len))
            .filter(|e| *e <= self.scratch.len());
        let Some(end) = end else {
            return -1.0;
        };
        let (ticket, rest) = self.scratch[..end].split_at(ticket_len);
        let (tool, args) = rest.split_at(tool_len);
        // JavaScript's encoder writes well-formed UTF-8 (lone surrogates become U+FFFD).
        let Ok(tool) = std::str::from_utf8(tool) else {
            return -1.0;
        };
        let decision = self.call(ticket, tool, args, time);
        // An id is a counter: below 2^53 it is exact as a JavaScript number.
        let id = decision.as_ref().map_or(0.0, |a| a.decision_id() as f64);
        *self.last.borrow_mut() = Some(decision);
        id
    }

    /// The JSON of the last decision `checkScratch` made.
    #[wasm_bindgen(js_name = lastJson)]
    pub fn last_json(&self) -> String {
        match &*self.last.borrow() {
            Some(Ok(a)) => a.to_json().to_string(),
            Some(d) => captix::decision_json(d),
            None => "null".into(),
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

    /// `{identity, tools, expires, chain}` of a ticket valid at `time`; throws if it is not.
    #[wasm_bindgen(js_name = ticketInfo)]
    pub fn ticket_info(&self, ticket: &str, time: f64) -> Result<String, JsValue> {
        let info = self
            .inner
            .ticket_info(ticket, time.max(0.0) as u64)
            .map_err(from_denial)?;
        to_json(&info)
    }

    /// Audits a decision on a request other than a tool call (an MCP method the server admits
    /// by its own configuration): `code` and `reason` empty for an allow. The identity comes
    /// from the ticket when it is valid.
    #[wasm_bindgen(js_name = recordRequest)]
    pub fn record_request(
        &self,
        ticket: &str,
        method: &str,
        target: Option<String>,
        code: &str,
        reason: &str,
        time: f64,
    ) -> Result<(), JsValue> {
        let time = time.max(0.0) as u64;
        let info = self.inner.ticket_info(ticket, time).ok();
        let denial = match code {
            "" => None,
            c => Some(captix::Denial::new(
                c.parse()
                    .map_err(|()| error("invalid_argument", format!("unknown code {c:?}")))?,
                reason,
            )),
        };
        self.inner
            .record_request(
                time,
                method,
                target.as_deref(),
                info.as_ref(),
                denial.as_ref(),
            )
            .map(|_| ())
            .map_err(from_denial)
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

    /// This server's resource URI (normalized), if the verifier has one.
    pub fn resource(&self) -> Option<String> {
        self.inner.resource().map(str::to_string)
    }

    /// Number of cached tickets.
    pub fn cached(&self) -> usize {
        self.inner.cached()
    }
}

/// The module's memory, for writing into the scratch buffer.
#[wasm_bindgen(js_name = wasmMemory)]
pub fn wasm_memory() -> JsValue {
    wasm_bindgen::memory()
}

/// The input limits the JS layer applies before copying into this module's memory (which
/// never shrinks): `[ticket bytes, argument bytes, tool name bytes]` (spec §7.1).
#[wasm_bindgen]
pub fn limits() -> Vec<u32> {
    use captix::limits::{MAX_ARGS_BYTES, MAX_TICKET_BYTES, MAX_TOOL_NAME_BYTES};
    [MAX_TICKET_BYTES, MAX_ARGS_BYTES, MAX_TOOL_NAME_BYTES]
        .iter()
        .map(|n| u32::try_from(*n).unwrap_or(u32::MAX))
        .collect()
}

/// Whether this module evaluates Datalog outside the captix vocabulary (the full module) or
/// refuses tickets that need it (the lean one).
#[wasm_bindgen]
pub fn datalog() -> bool {
    cfg!(feature = "datalog")
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

/// The HTTP status of each code (JSON object, code → status; spec §8): the core's table.
#[wasm_bindgen(js_name = httpStatuses)]
pub fn http_statuses() -> Result<String, JsValue> {
    let map: serde_json::Map<String, serde_json::Value> = captix::Code::ALL
        .iter()
        .map(|c| (c.as_str().to_string(), c.http_status().into()))
        .collect();
    to_json(&map)
}
