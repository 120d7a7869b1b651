//! Minting (spec §4.1–4.2) and attenuation (spec §4.9).

#[cfg(feature = "test-util")]
use biscuit_auth::builder::Algorithm;
#[cfg(feature = "test-util")]
use rand_core::{CryptoRng, RngCore};

use crate::block::{Description, Identity};
use crate::error::{Error, Result};
use crate::forms::{Budget, RowFilter};
use crate::keys::SigningKey;
use crate::ticket::{Ticket, UnverifiedTicket};

/// Restrictions as one value, for callers that collect them first (the CLI, the bindings):
/// `builder.restrict(r)` applies them all.
#[derive(Clone, Debug, Default)]
pub struct Restrictions {
    /// Row filters.
    pub rows: Vec<RowFilter>,
    /// Budgets.
    pub budgets: Vec<Budget>,
    /// Not valid from this time on (Unix seconds).
    pub expires: Option<u64>,
    /// Not valid before this time (Unix seconds).
    pub not_before: Option<u64>,
    /// Valid only for this resource.
    pub resource: Option<String>,
    /// Hand-written Datalog checks.
    pub checks: Vec<String>,
}

/// Restriction methods shared by [`TicketBuilder`] and [`Attenuation`]: each only narrows.
macro_rules! restriction_methods {
    () => {
        /// Adds a row filter (e.g. `"*:org=acme".parse()?`).
        pub fn row(mut self, filter: RowFilter) -> Self {
            self.desc.rows.push(filter);
            self
        }

        /// Adds a budget (e.g. `"list_invoices:10/min".parse()?`).
        pub fn budget(mut self, budget: Budget) -> Self {
            self.desc.budgets.push(budget);
            self
        }

        /// Not valid from this time on (Unix seconds).
        pub fn expires_at(mut self, unix_secs: u64) -> Self {
            self.desc.expires = Some(unix_secs);
            self
        }

        /// Not valid before this time (Unix seconds).
        pub fn not_before(mut self, unix_secs: u64) -> Self {
            self.desc.not_before = Some(unix_secs);
            self
        }

        /// Valid only for this resource (the MCP server's canonical URI, RFC 8707).
        /// The URI is written in its normal form (spec §4.4).
        pub fn resource(mut self, uri: impl Into<String>) -> Self {
            self.desc.resource = Some(crate::normalize_resource(&uri.into()));
            self
        }

        /// Adds a hand-written Datalog check (the escape hatch). Tickets carrying one are
        /// verified on the reference path only.
        pub fn datalog(mut self, check: impl Into<String>) -> Self {
            self.desc.checks.push(check.into());
            self
        }

        /// Applies a set of restrictions at once (see [`Restrictions`]).
        pub fn restrict(mut self, r: Restrictions) -> Self {
            // Every member named: a new one does not compile until it is applied here.
            let Restrictions {
                rows,
                budgets,
                expires,
                not_before,
                resource,
                checks,
            } = r;
            self.desc.rows.extend(rows);
            self.desc.budgets.extend(budgets);
            if expires.is_some() {
                self.desc.expires = expires;
            }
            if not_before.is_some() {
                self.desc.not_before = not_before;
            }
            if let Some(uri) = resource {
                self.desc.resource = Some(crate::normalize_resource(&uri));
            }
            self.desc.checks.extend(checks);
            self
        }

        /// The description the block will carry.
        pub fn description(&self) -> &Description {
            &self.desc
        }
    };
}

/// Builds and signs a new ticket (the authority block). Start with [`TicketBuilder::new`].
#[must_use = "a builder does nothing until signed"]
pub struct TicketBuilder<'k> {
    key: &'k SigningKey,
    desc: Description,
}

impl<'k> TicketBuilder<'k> {
    /// A ticket for `agent` acting for `user`, signed by `key`. Grants nothing yet.
    pub fn new(key: &'k SigningKey, agent: impl Into<String>, user: impl Into<String>) -> Self {
        let mut desc = Description::new();
        desc.identity = Some(Identity {
            issuer: None,
            agent: agent.into(),
            user: user.into(),
            scopes: vec![],
        });
        TicketBuilder { key, desc }
    }

    /// Names the issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        if let Some(id) = &mut self.desc.identity {
            id.issuer = Some(issuer.into());
        }
        self
    }

    /// Adds a coarse OAuth scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        if let Some(id) = &mut self.desc.identity {
            id.scopes.push(scope.into());
        }
        self
    }

    /// Grants a tool. A ticket with no grant allows nothing.
    pub fn tool(mut self, name: impl Into<String>) -> Self {
        self.desc.grants.push(name.into());
        self
    }

    /// Grants reading the resources a URI pattern admits (spec §4.11): a URI, a prefix ending
    /// in `*` (`file:///docs/*`), or `*` for every resource.
    pub fn uri(mut self, pattern: impl Into<String>) -> Self {
        self.desc.uri_grants.push(pattern.into());
        self
    }

    /// Grants getting a prompt, by name.
    pub fn prompt(mut self, name: impl Into<String>) -> Self {
        self.desc.prompt_grants.push(name.into());
        self
    }

    restriction_methods!();

    /// Signs the ticket with fresh randomness from the operating system.
    pub fn sign(self) -> Result<Ticket> {
        let block = self.desc.to_block(0)?;
        let biscuit = biscuit_auth::Biscuit::builder()
            .merge(block)
            .root_key_id(self.key.key_id().0)
            .build(self.key.pair())
            .map_err(|e| Error::Build(e.to_string()))?;
        Ticket::from_built(biscuit, Vec::new(), self.desc)
    }

    /// Signs the ticket taking the next-block key from `rng` (deterministic test vectors;
    /// feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn sign_with_rng<R: RngCore + CryptoRng>(self, rng: &mut R) -> Result<Ticket> {
        let block = self.desc.to_block(0)?;
        let biscuit = biscuit_auth::Biscuit::builder()
            .merge(block)
            .root_key_id(self.key.key_id().0)
            .build_with_rng(
                self.key.pair(),
                biscuit_auth::datalog::SymbolTable::new(),
                rng,
            )
            .map_err(|e| Error::Build(e.to_string()))?;
        Ticket::from_built(biscuit, Vec::new(), self.desc)
    }
}

/// Builds an attenuation block: the same restrictions, appended to an existing ticket with no
/// issuer key. Every restriction only narrows what the ticket allows. `B` is the base: a
/// [`Ticket`] (signing gives a `Ticket`) or an [`UnverifiedTicket`] (signing gives an
/// `UnverifiedTicket`: a holder without the root public key can narrow its ticket, and the
/// type says the result was never verified).
#[must_use = "a builder does nothing until signed"]
pub struct Attenuation<'a, B = Ticket> {
    base: &'a B,
    desc: Description,
}

impl<B> Attenuation<'_, B> {
    /// Limits the tools the ticket may call to these (each call repeats: the set is the union
    /// of all names given to this block).
    pub fn tool(mut self, name: impl Into<String>) -> Self {
        self.desc
            .tools
            .get_or_insert_with(Vec::new)
            .push(name.into());
        self
    }

    /// Limits the resources the ticket may read to those these URI patterns admit (spec
    /// §4.11; each call adds one to the block's set). Tool calls and prompts are not affected.
    pub fn uri(mut self, pattern: impl Into<String>) -> Self {
        self.desc
            .uris
            .get_or_insert_with(Vec::new)
            .push(pattern.into());
        self
    }

    /// Limits the prompts the ticket may get to these (each call adds one to the block's set).
    pub fn prompt(mut self, name: impl Into<String>) -> Self {
        self.desc
            .prompts
            .get_or_insert_with(Vec::new)
            .push(name.into());
        self
    }

    /// Limits the tools to exactly these, replacing what `.tool(…)` gave (an empty list: no
    /// tool at all).
    pub fn only_tools<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.desc.tools = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Limits the resources to exactly those these URI patterns admit, replacing what
    /// `.uri(…)` gave (an empty list: no resource at all).
    pub fn only_uris<S: Into<String>>(mut self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.desc.uris = Some(patterns.into_iter().map(Into::into).collect());
        self
    }

    /// Limits the prompts to exactly these, replacing what `.prompt(…)` gave (an empty list:
    /// no prompt at all).
    pub fn only_prompts<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.desc.prompts = Some(names.into_iter().map(Into::into).collect());
        self
    }

    restriction_methods!();
}

fn build_error(e: biscuit_auth::error::Token) -> Error {
    Error::Build(e.to_string())
}

impl Attenuation<'_, Ticket> {
    fn append(self, next: Option<biscuit_auth::KeyPair>) -> Result<Ticket> {
        let t = self.base;
        let block = self.desc.to_block(t.blocks().len())?;
        let b = match next {
            Some(kp) => t.inner.append_with_keypair(&kp, block),
            None => t.inner.append(block),
        }
        .map_err(build_error)?;
        Ticket::from_built(b, t.blocks().to_vec(), self.desc)
    }

    /// Signs the block with a fresh key and appends it: a verified ticket, narrower.
    pub fn sign(self) -> Result<Ticket> {
        self.append(None)
    }

    /// Signs and appends, taking the next-block key from `rng` (deterministic test vectors;
    /// feature `test-util`).
    #[cfg(feature = "test-util")]
    pub fn sign_with_rng<R: RngCore + CryptoRng>(self, rng: &mut R) -> Result<Ticket> {
        self.append(Some(biscuit_auth::KeyPair::new_with_rng(
            Algorithm::Ed25519,
            rng,
        )))
    }

    /// Signs and appends, giving the result as an unverified ticket (what a holder hands on).
    pub fn sign_unverified(self) -> Result<UnverifiedTicket> {
        let t = self.sign()?;
        Ok(UnverifiedTicket::parse(t.as_str())?)
    }
}

impl Attenuation<'_, UnverifiedTicket> {
    /// Signs the block with a fresh key and appends it: an unverified ticket, narrower. (No
    /// method gives a verified [`Ticket`] from an unverified base: verify the result with the
    /// root key, [`UnverifiedTicket::verify`].)
    pub fn sign(self) -> Result<UnverifiedTicket> {
        let t = self.base;
        let block = self.desc.to_block(t.blocks().len())?;
        let b = t.inner.append(block).map_err(build_error)?;
        UnverifiedTicket::from_built(b, t.blocks().to_vec(), self.desc)
    }

    /// The same as [`Attenuation::sign`] on an unverified base.
    pub fn sign_unverified(self) -> Result<UnverifiedTicket> {
        self.sign()
    }
}

impl Ticket {
    /// Starts an attenuation block for this ticket.
    pub fn attenuate(&self) -> Attenuation<'_> {
        Attenuation {
            base: self,
            desc: Description::new(),
        }
    }

    /// Starts a builder for a new ticket: shorthand for [`TicketBuilder::new`].
    pub fn mint<'k>(
        key: &'k SigningKey,
        agent: impl Into<String>,
        user: impl Into<String>,
    ) -> TicketBuilder<'k> {
        TicketBuilder::new(key, agent, user)
    }
}

impl UnverifiedTicket {
    /// Starts an attenuation block for this ticket (no key needed, no signature checked).
    /// Signing it gives an [`UnverifiedTicket`]:
    ///
    /// ```
    /// # fn f(t: &captix::UnverifiedTicket) -> captix::Result<captix::UnverifiedTicket> {
    /// t.attenuate().tool("list_invoices").sign()
    /// # }
    /// ```
    ///
    /// and never a verified [`Ticket`], which only verification with the root key gives:
    ///
    /// ```compile_fail
    /// # fn f(t: &captix::UnverifiedTicket) -> captix::Result<captix::Ticket> {
    /// t.attenuate().tool("list_invoices").sign()
    /// # }
    /// ```
    pub fn attenuate(&self) -> Attenuation<'_, UnverifiedTicket> {
        Attenuation {
            base: self,
            desc: Description::new(),
        }
    }
}
