//! # captix-issuer — an OAuth 2.1 authorization server whose access tokens are captix tickets
//!
//! A client (an agent) authenticates at the token endpoint and gets a ticket minted from the
//! policy of the configuration file: its scopes become tools, resource grants and prompts, row
//! filters templated from the user's attributes, budgets, an audience (RFC 8707) and an
//! expiry. RFC 9396 `authorization_details` lets it ask for less. RFC 7009 revocation puts the
//! ticket's revocation id where the MCP servers read revocations. Every grant, refusal and
//! revocation goes to the hash-chained audit log. Specified in docs §17.
//!
//! The issuer holds the root signing key; nothing else in the system needs it.
//!
//! ```no_run
//! # fn main() -> Result<(), captix_issuer::Error> {
//! captix_issuer::run(std::path::Path::new("issuer.toml"))?; // serves until Ctrl-C
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client_auth;
pub mod config;
mod error;
pub mod grant;
#[cfg(feature = "server")]
mod issuer;
#[cfg(feature = "server")]
mod serve;
#[cfg(feature = "server")]
mod server;
pub mod store;
#[cfg(feature = "server")]
mod stores;

pub use config::Config;
pub use error::{ConfigError, Error, OAuthError};
#[cfg(feature = "server")]
pub use issuer::{Issuer, State};
#[cfg(feature = "server")]
pub use serve::{run, serve_within, spawn, spawn_within, Limits, Running};
#[cfg(feature = "server")]
pub use server::router;
pub use store::Store;
