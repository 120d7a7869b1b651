//! Block descriptions and their Datalog (spec §4, §6.2).
//!
//! > Every block written by captix carries, in Biscuit's signed `context` field, a JSON
//! > description of its contents. Its Datalog is generated from that description. A reader
//! > regenerates the Datalog from the description and compares it, term by term, with the
//! > block's decoded Datalog (never with printed text): equal means the block is exactly the
//! > vocabulary it claims; a captix description that does not match is `malformed`.

use biscuit_auth::builder::{self, fact, int, string, BlockBuilder};

use crate::call::Target;
use crate::decoded::Decoded;
use crate::error::Error;
use crate::forms::{validate_prompt_name, validate_tool_name, Budget, RowFilter};
use crate::restriction::Restriction;
use crate::uri::validate_uri;

/// The value of the `captix` member of a description: the format version.
pub const FORMAT_VERSION: u32 = 2;

/// Who a ticket is for (spec §4.1). Only the authority block carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Who minted the ticket.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub issuer: Option<String>,
    /// The OAuth client id of the holder.
    pub agent: String,
    /// On whose behalf the agent acts.
    pub user: String,
    /// Coarse OAuth scopes.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub scopes: Vec<String>,
}

impl Identity {
    /// Heap bytes held (an estimate, for cache accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.issuer.as_ref().map_or(0, |s| s.len() + 32)
            + self.agent.len()
            + self.user.len()
            + 64
            + self.scopes.iter().map(|s| s.len() + 32).sum::<usize>()
    }
}

/// The JSON description of one block (spec §6.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    /// Format version, always [`FORMAT_VERSION`].
    pub captix: u32,
    /// Identity (authority block only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub identity: Option<Identity>,
    /// Granted tools (authority block only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub grants: Vec<String>,
    /// Granted resources, as URI patterns (authority block only; spec §4.11).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub uri_grants: Vec<String>,
    /// Granted prompts (authority block only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub prompt_grants: Vec<String>,
    /// Not valid before this time (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub not_before: Option<u64>,
    /// Not valid from this time on (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires: Option<u64>,
    /// The only resource (audience) it is valid for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource: Option<String>,
    /// The only tools it may call (attenuation).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tools: Option<Vec<String>>,
    /// Row filters.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub rows: Vec<RowFilter>,
    /// The only resources it may read, as URI patterns (attenuation).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub uris: Option<Vec<String>>,
    /// The only prompts it may get (attenuation).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub prompts: Option<Vec<String>>,
    /// Budgets.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub budgets: Vec<Budget>,
    /// Hand-written Datalog checks (the escape hatch).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub checks: Vec<String>,
}

/// What a build without a Datalog parser shows in place of a hand-written check's text.
#[cfg(not(feature = "datalog"))]
pub(crate) const UNREAD_CHECK: &str =
    "(a hand-written check: not read by this build of captix, which \
    has no Datalog parser)";

impl Description {
    /// An empty description (no restriction).
    pub fn new() -> Self {
        Description {
            captix: FORMAT_VERSION,
            ..Default::default()
        }
    }

    /// Heap bytes held (an estimate, for cache accounting): every string and list, with the
    /// overhead of each allocation.
    pub(crate) fn heap_bytes(&self) -> usize {
        // Every member named: a new one does not compile until this says what it means.
        let Description {
            captix: _,
            identity: _,
            grants: _,
            uri_grants: _,
            prompt_grants: _,
            not_before: _,
            expires: _,
            resource: _,
            tools: _,
            rows: _,
            uris: _,
            prompts: _,
            budgets: _,
            checks: _,
        } = self;
        let strings = |v: &[String]| v.iter().map(|s| s.len() + 32).sum::<usize>();
        self.identity.as_ref().map_or(0, Identity::heap_bytes)
            + strings(&self.grants)
            + strings(&self.uri_grants)
            + strings(&self.prompt_grants)
            + self.uris.as_ref().map_or(0, |t| strings(t) + 32)
            + self.prompts.as_ref().map_or(0, |t| strings(t) + 32)
            + self.resource.as_ref().map_or(0, |s| s.len() + 32)
            + self.tools.as_ref().map_or(0, |t| strings(t) + 32)
            + self
                .rows
                .iter()
                .map(|r| r.heap_bytes() + std::mem::size_of::<RowFilter>())
                .sum::<usize>()
            + self
                .budgets
                .iter()
                .map(|b| b.tool.as_str().len() + std::mem::size_of::<Budget>() + 16)
                .sum::<usize>()
            + strings(&self.checks)
    }

    /// The restrictions, in the order of the generated checks.
    pub fn restrictions(&self) -> Vec<Restriction> {
        // Every member named: a new one does not compile until it says whether it restricts.
        let Description {
            captix: _,
            identity: _,
            grants: _,
            uri_grants: _,
            prompt_grants: _,
            not_before,
            expires,
            resource,
            tools,
            rows,
            uris,
            prompts,
            budgets: _, // spent by the verifier (§4.5), not a check
            checks,
        } = self;
        let mut out = Vec::new();
        out.extend(not_before.map(Restriction::NotBefore));
        out.extend(expires.map(Restriction::Expires));
        out.extend(resource.clone().map(Restriction::Resource));
        out.extend(tools.clone().map(Restriction::Tools));
        out.extend(rows.iter().cloned().map(Restriction::Row));
        out.extend(uris.clone().map(Restriction::Uris));
        out.extend(prompts.clone().map(Restriction::Prompts));
        out.extend(checks.iter().cloned().map(Restriction::Datalog));
        out
    }

    /// Checks the description is well formed for a block at `index` (0 = authority).
    pub(crate) fn validate(&self, index: usize) -> Result<(), Error> {
        // Every member named: a new one does not compile until this says what it means.
        let Description {
            captix: _,
            identity: _,
            grants: _,
            uri_grants: _,
            prompt_grants: _,
            not_before: _,
            expires: _,
            resource: _,
            tools: _,
            rows: _,
            uris: _,
            prompts: _,
            budgets: _,
            checks: _,
        } = self;
        let bad = |m: String| Err(Error::InvalidRestriction(m));
        if self.captix == 1 {
            // Spec §6.2: format 1's tool and row checks deny every method but `tools/call`,
            // which format 2 scopes to tool calls; a format-1 block would need a second
            // meaning for the same restriction. Its tickets are minted again.
            return bad(
                "captix format version 1 is no longer read (its tickets must be minted again, \
                 spec §6.2)"
                    .into(),
            );
        }
        if self.captix != FORMAT_VERSION {
            return bad(format!("unsupported captix format version {}", self.captix));
        }
        let grants = !self.grants.is_empty()
            || !self.uri_grants.is_empty()
            || !self.prompt_grants.is_empty();
        if index > 0 && (self.identity.is_some() || grants) {
            return bad("only the authority block can carry identity and grants".into());
        }
        if index == 0 && self.identity.is_none() {
            return bad("the authority block must name an agent and a user".into());
        }
        for g in &self.grants {
            validate_tool_name(g)?;
        }
        if let Some(tools) = &self.tools {
            for t in tools {
                validate_tool_name(t)?;
            }
        }
        for u in self.uri_grants.iter().chain(self.uris.iter().flatten()) {
            validate_uri(u, true)?;
        }
        for p in self
            .prompt_grants
            .iter()
            .chain(self.prompts.iter().flatten())
        {
            validate_prompt_name(p)?;
        }
        if let (Some(a), Some(b)) = (self.not_before, self.expires) {
            if a >= b {
                return bad("not-before must come before the expiry".into());
            }
        }
        for t in [self.not_before, self.expires].into_iter().flatten() {
            if t > crate::time::MAX_TIME {
                return bad("times must be before year 10000".into());
            }
        }
        if let Some(r) = &self.resource {
            if crate::normalize_resource(r) != *r {
                return bad(format!(
                    "the resource {r:?} is not in its normal form {:?} (spec §4.4)",
                    crate::normalize_resource(r)
                ));
            }
        }
        for r in &self.rows {
            r.validate()?;
        }
        if self.budgets.len() > crate::limits::MAX_BUDGETS_PER_BLOCK {
            return bad(format!(
                "a block carries at most {} budgets",
                crate::limits::MAX_BUDGETS_PER_BLOCK
            ));
        }
        for b in &self.budgets {
            b.validate()?;
        }
        Ok(())
    }

    /// The Biscuit block for this description: the Datalog, and the description as context.
    pub(crate) fn to_block(&self, index: usize) -> Result<BlockBuilder, Error> {
        self.validate(index)?;
        let mut b = self.datalog()?;
        let json = serde_json::to_string(self).map_err(|e| Error::Build(e.to_string()))?;
        b = b.context(json);
        Ok(b)
    }

    /// The Datalog generated from the description (spec §4.7), without the context.
    pub(crate) fn datalog(&self) -> Result<BlockBuilder, Error> {
        // Every member named: a new one does not compile until this says what it means.
        let Description {
            captix: _,
            identity: _,
            grants: _,
            uri_grants: _,
            prompt_grants: _,
            not_before: _,
            expires: _,
            resource: _,
            tools: _,
            rows: _,
            uris: _,
            prompts: _,
            budgets: _,
            checks: _,
        } = self;
        let mut b = BlockBuilder::new();
        let add_fact =
            |b: BlockBuilder, f: builder::Fact| b.fact(f).map_err(|e| Error::Build(e.to_string()));
        if let Some(id) = &self.identity {
            if let Some(iss) = &id.issuer {
                b = add_fact(b, fact("issuer", &[string(iss)]))?;
            }
            b = add_fact(b, fact("agent", &[string(&id.agent)]))?;
            b = add_fact(b, fact("user", &[string(&id.user)]))?;
            for s in &id.scopes {
                b = add_fact(b, fact("scope", &[string(s)]))?;
            }
        }
        for g in &self.grants {
            b = add_fact(b, fact("allow_tool", &[string(g)]))?;
        }
        // allow_uri(<uri>) for a URI, allow_uri_prefix(<prefix>) for a pattern ending in `*`
        for u in &self.uri_grants {
            b = match u.strip_suffix('*') {
                Some(prefix) => add_fact(b, fact("allow_uri_prefix", &[string(prefix)]))?,
                None => add_fact(b, fact("allow_uri", &[string(u)]))?,
            };
        }
        for p in &self.prompt_grants {
            b = add_fact(b, fact("allow_prompt", &[string(p)]))?;
        }
        for bu in &self.budgets {
            b = add_fact(
                b,
                fact(
                    "budget",
                    &[
                        string(bu.tool.as_str()),
                        int(bu.max_calls as i64),
                        int(bu.window as i64),
                    ],
                ),
            )?;
        }
        for r in self.restrictions() {
            b = b
                .check(r.check()?)
                .map_err(|e| Error::Build(e.to_string()))?;
        }
        Ok(b)
    }

    /// Whether this description's grants (an authority block's) admit the target (spec §4.2).
    pub(crate) fn grants(&self, target: &Target) -> bool {
        match target {
            Target::Tool(t) => self.grants.contains(t),
            Target::Uri(u) => self.uri_grants.iter().any(|p| crate::uri::admits(p, u)),
            Target::Prompt(p) => self.prompt_grants.contains(p),
        }
    }

    /// Parses a block's context and confirms it describes the block's Datalog exactly.
    ///
    /// Returns `Ok(None)` for a block that carries no captix description (a block from
    /// another Biscuit tool), `Err` for a captix description that does not match.
    pub(crate) fn read(
        context: Option<&str>,
        decoded: &Decoded,
        index: usize,
    ) -> Result<Option<Description>, String> {
        let Some(ctx) = context.filter(|c| c.starts_with("{\"captix\"")) else {
            return Ok(None);
        };
        let d: Description =
            serde_json::from_str(ctx).map_err(|e| format!("its description is invalid: {e}"))?;
        d.validate(index)
            .map_err(|e| format!("its description is invalid: {e}"))?;
        // Without a Datalog parser (the `datalog` feature off) the hand-written checks, always
        // the block's last, are not read: the rest of the description is confirmed against
        // the rest of the block, and each check's text, which nothing here confirms, is
        // replaced by a mark, so that no unconfirmed text is ever shown as the block's. Such
        // a block never compiles, so its ticket is never allowed (module `reference`).
        #[cfg(feature = "datalog")]
        let unread = 0;
        #[cfg(not(feature = "datalog"))]
        let (mut d, unread) = {
            let mut d = d;
            let unread = std::mem::take(&mut d.checks).len();
            (d, unread)
        };
        let expected = Decoded::of_builder(
            d.datalog()
                .map_err(|e| format!("its description is invalid: {e}"))?,
        );
        if !expected.same_datalog(decoded, unread) {
            return Err("its Datalog does not match its description".into());
        }
        #[cfg(not(feature = "datalog"))]
        {
            d.checks = vec![UNREAD_CHECK.to_string(); unread];
        }
        Ok(Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_datalog_reads() {
        let mut d = Description::new();
        d.identity = Some(Identity {
            issuer: Some("iss".into()),
            agent: "bot".into(),
            user: "alice".into(),
            scopes: vec!["invoices:read".into()],
        });
        d.grants = vec!["list_invoices".into()];
        d.expires = Some(1_800_000_000);
        d.rows.push("*:org=acme".parse().expect("row"));
        d.rows
            .push("list_invoices:amount<=100".parse().expect("row"));
        d.rows.push("list_invoices:s=a|b".parse().expect("row"));
        d.rows.push("list_invoices:n^=INV".parse().expect("row"));
        d.budgets.push("10/min".parse().expect("budget"));
        let text = d.datalog().expect("datalog").to_string();
        assert!(text.contains("allow_tool(\"list_invoices\");"), "{text}");
        assert!(
            text.contains(
                "check if method($method), $method !== \"tools/call\" or arg(\"/org\", \"acme\")"
            ),
            "{text}"
        );
        assert!(text.contains("budget(\"*\", 10, 60);"), "{text}");
    }
}
