//! # captix — least-privilege capability tickets for MCP servers
//!
//! An issuer mints a signed **ticket** for one agent acting for one user: the tools it may
//! call, row filters on their arguments, an expiry, budgets. The agent **attenuates** it
//! offline (only ever narrower) for a sub-agent. The MCP server **verifies** it on every tool
//! call. Tickets are [Biscuit](https://www.biscuitsec.org) tokens (Datalog v3.3, Ed25519).
//!
//! The format is specified in the repository's `spec/ticket-v1.md` (§1–§9); how this crate's
//! `Verifier` and audit log use it is in `docs/verifier.md` (§10, §11). Section numbers (§) in
//! these docs refer to those files.
//!
//! ```
//! use captix::{Call, Code, KeySet, SigningKey, Ticket};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now = 1_800_000_000; // the caller supplies the time (Unix seconds)
//! let root = SigningKey::generate();
//!
//! // The issuer: invoices of org acme, 100 calls a minute, for one hour.
//! let ticket = Ticket::mint(&root, "billing-agent", "alice")
//!     .tool("list_invoices")
//!     .tool("get_invoice")
//!     .row("*:org=acme".parse()?)
//!     .budget("100/min".parse()?)
//!     .expires_at(now + 3600)
//!     .sign()?;
//!
//! // The agent, offline: list_invoices only, 10 calls, 5 minutes.
//! let child = ticket
//!     .attenuate()
//!     .tool("list_invoices")
//!     .budget("10".parse()?)
//!     .expires_at(now + 300)
//!     .sign()?;
//!
//! // The server, on each call.
//! let keys = KeySet::from(root.public());
//! let ok = Call::new("list_invoices", r#"{"org":"acme"}"#)?.at(now);
//! let allowed = captix::verify(child.as_str(), &ok, &keys)?;
//! assert_eq!(allowed.identity().agent, "billing-agent");
//!
//! let other_org = Call::new("list_invoices", r#"{"org":"globex"}"#)?.at(now);
//! let denial = captix::verify(child.as_str(), &other_org, &keys).unwrap_err();
//! assert_eq!(denial.code, Code::ArgDenied);
//! println!("{}", denial.reason); // block 0: argument /org is not allowed (row *:/org = "acme")
//!
//! let not_delegated = Call::new("get_invoice", r#"{"org":"acme","id":7}"#)?.at(now);
//! assert_eq!(captix::verify(child.as_str(), &not_delegated, &keys).unwrap_err().code,
//!            Code::ToolNotGranted);
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! - `datalog` (default): Biscuit's authorizer and Datalog parser, for tickets beyond the captix
//!   vocabulary (hand-written checks, blocks from other Biscuit tools: the reference path of
//!   spec §6.3). Without it such a ticket is never allowed (`limits_exceeded`, after the
//!   vocabulary's own denials; spec §6.5) and no hand-written check can be minted: the npm
//!   package's lean module, a third smaller.
//! - `test-util`, `bindings`: for captix's own tests and language bindings (see `Cargo.toml`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod args;
pub mod audit;
mod block;
pub mod budget;
mod cache;
mod call;
mod compiled;
mod decision;
mod decoded;
mod error;
mod forms;
mod inspect;
mod keys;
pub mod lease;
pub mod limits;
mod mint;
mod policy;
mod reference;
mod resource;
mod restriction;
pub mod revocation;
#[cfg(feature = "test-util")]
pub mod testing;
mod ticket;
pub mod time;
mod uri;
mod verifier;
#[cfg(feature = "datalog")]
mod work;

pub use args::{Args, Scalar};
pub use block::{Description, Identity, FORMAT_VERSION};
pub use call::{Call, Target, Untimed, PROMPTS_GET, RESOURCES_READ, TOOLS_CALL};
#[cfg(feature = "test-util")]
pub use compiled::Compiled;
pub use decision::{
    decision_json, Allowed, ArgFilter, BlockConstraint, BudgetRef, Decision, DecisionJson,
};
pub use error::{Code, Denial, Error, Result};
pub use forms::{
    format_duration, parse_duration, parse_value, validate_prompt_name, validate_tool_name, Budget,
    Constraint, RowFilter, ToolSel,
};
pub use inspect::{BlockReport, Report, Signatures};
pub use keys::{KeyId, KeySet, PublicKey, SigningKey};
pub use mint::{Attenuation, Restrictions, TicketBuilder};
pub use policy::{
    is_scope_token, Limit, Per, Policy, PolicyError, ToolPolicy, MAX_LIMITS_PER_TOOL, POLICY_ROOT,
};
#[cfg(all(feature = "test-util", feature = "datalog"))]
pub use reference::run_limits;
pub use reference::verify;
pub use resource::normalize_resource;
pub use restriction::{Class, Restriction};
pub use ticket::{BlockView, Content, RevocationId, Ticket, UnverifiedTicket, PREFIX};
pub use uri::{admits as uri_pattern_admits, validate_uri};
pub use verifier::{
    Authenticated, Checked, TicketInfo, Verifier, VerifierBuilder, DEFAULT_CACHE_BYTES,
};
