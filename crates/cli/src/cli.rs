//! The command-line interface, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  ok; the call is allowed
  1  the call is denied, or the ticket is invalid
  2  usage error, or a file could not be read or written

Tickets are read from an argument (captix1_...), a file, or - for standard input.";

/// Least-privilege capability tickets for MCP servers.
#[derive(Debug, Parser)]
#[command(name = "captix", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a root key pair: NAME.key (mode 0600) and NAME.pub
    Keygen {
        /// Path prefix of the key files
        #[arg(long, value_name = "NAME")]
        out: PathBuf,
        /// Print the key id and paths as JSON
        #[arg(long)]
        json: bool,
    },
    /// Mint a ticket for an agent acting for a user
    #[command(after_help = SPECS)]
    Mint(MintArgs),
    /// Narrow a ticket for a sub-agent (no key needed)
    #[command(after_help = SPECS)]
    Attenuate(AttenuateArgs),
    /// Show every block of a ticket in plain words
    Inspect {
        /// The ticket: captix1_..., a file, or - for stdin (the default)
        ticket: Option<String>,
        /// Check the signatures with this public key (repeat for several)
        #[arg(long, value_name = "FILE")]
        pubkey: Vec<PathBuf>,
        /// Also print each block's Datalog
        #[arg(long)]
        datalog: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Check a call (a tool, a resource read, a prompt) against a ticket: allowed (exit 0) or
    /// denied (exit 1)
    #[command(after_help = "Budgets are shown, not spent: this command keeps no state.")]
    Verify(VerifyArgs),
    /// Revoke a block: every ticket containing it is denied (its own and all attenuations)
    Revoke {
        /// Revocation ids (hex, as `captix inspect` prints them), or tickets (captix1_...): a
        /// ticket's last block is revoked, that is the ticket and everything attenuated from it
        #[arg(required = true, value_name = "ID_OR_TICKET")]
        ids: Vec<String>,
        /// Append to this revocation file (read by servers within a second)
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "redis",
            conflicts_with = "redis"
        )]
        file: Option<PathBuf>,
        /// Add to the revocation set in this Redis, for every replica (feature `redis`, on by
        /// default)
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
        /// Print the revoked ids as JSON
        #[arg(long)]
        json: bool,
    },
    /// Read and check audit logs
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run the OAuth 2.1 authorization server that mints tickets from a policy (docs §17)
    #[cfg(feature = "issuer")]
    Issuer {
        #[command(subcommand)]
        command: IssuerCommand,
    },
    /// Tell the whole story on built-in defaults: mint, attenuate, calls, budgets, revocation, audit
    Demo,
}

#[cfg(feature = "issuer")]
#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Serve the token, revocation and metadata endpoints until Ctrl-C; SIGHUP re-reads the
    /// keys and the policy
    Serve {
        /// The issuer's configuration (TOML)
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check a configuration and print the ticket it would mint for a client, in inspect's
    /// words (exit 1 when the request would be refused)
    CheckPolicy {
        /// The issuer's configuration (TOML)
        file: PathBuf,
        /// The client (agent) asking
        #[arg(long, value_name = "ID")]
        client: String,
        /// The user it acts for (default: the client's own user)
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Requested scopes (repeatable, or space-separated; default: all the client may have)
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// The resource (RFC 8707); needed when the file has several
        #[arg(long, value_name = "URI")]
        resource: Option<String>,
        /// RFC 9396 authorization_details (a JSON array)
        #[arg(long, value_name = "JSON")]
        details: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Give a client a new secret (replacing its old one); the secret is printed once and only
    /// its hash is stored
    ClientSecret {
        /// The issuer's configuration (TOML), which names the client and the store
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The client id
        client: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of a log; names the first broken line (exit 1)
    Verify {
        /// The audit log (JSON lines)
        file: PathBuf,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Render a log for people
    Show {
        /// The audit log (JSON lines)
        file: PathBuf,
        /// Print the records as JSON, with whether the chain is intact
        #[arg(long)]
        json: bool,
    },
}

const SPECS: &str = "\
Row filters (--row):  TOOL:ARG=VALUE  TOOL:ARG=V1|V2  TOOL:ARG^=PREFIX  TOOL:ARG<=N  (also <, >=, >)
  TOOL is a tool name or * for every tool; ARG is a key, a path like filter/org, or /a/json/pointer.
  VALUE 42 is an integer, true/false booleans, anything else a string; \"42\" forces a string.
URI patterns (--uri):  file:///docs/readme.md (that URI), file:///docs/* (every URI starting
  file:///docs/), * (every URI); URIs with . or .. segments or encoded dots and slashes are refused.
Budgets (--budget):   N/WINDOW or TOOL:N/WINDOW (WINDOW: s, min, hour, day, or 5min...), N for a lifetime total
Durations (--ttl):    90s, 5min, 1h, 7d (mint's default: 1h)
Times (--expires):    RFC 3339, e.g. 2026-12-01T12:00:00Z; a time in the past is refused";

/// Restrictions shared by mint and attenuate.
#[derive(Debug, Args)]
pub struct Restrictions {
    /// A row filter (repeatable); see below
    #[arg(long = "row", value_name = "SPEC")]
    pub rows: Vec<String>,
    /// Valid for this long from now
    #[arg(long, value_name = "DURATION", conflicts_with = "expires")]
    pub ttl: Option<String>,
    /// Valid until this time
    #[arg(long, value_name = "RFC3339")]
    pub expires: Option<String>,
    /// Not valid before this time
    #[arg(long, value_name = "RFC3339")]
    pub not_before: Option<String>,
    /// Valid only for this MCP server (its canonical resource URI)
    #[arg(long, value_name = "URI")]
    pub resource: Option<String>,
    /// A budget (repeatable); see below
    #[arg(long = "budget", value_name = "SPEC")]
    pub budgets: Vec<String>,
    /// A hand-written Datalog check (repeatable)
    #[arg(long = "datalog", value_name = "CHECK")]
    pub checks: Vec<String>,
    /// Print the ticket and its revocation ids as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MintArgs {
    /// The issuer's secret key file
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The agent (OAuth client id) that will hold the ticket
    #[arg(long)]
    pub agent: String,
    /// The user the agent acts for
    #[arg(long)]
    pub user: String,
    /// Who issues the ticket
    #[arg(long)]
    pub issuer: Option<String>,
    /// A coarse OAuth scope (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// A tool to grant (repeatable; a ticket must grant a tool, a resource or a prompt)
    #[arg(long = "tool", value_name = "NAME", required_unless_present_any = ["uris", "prompts"])]
    pub tools: Vec<String>,
    /// Resources to grant for reading: a URI, a prefix ending in * (file:///docs/*), or *
    /// for every resource (repeatable)
    #[arg(long = "uri", value_name = "PATTERN")]
    pub uris: Vec<String>,
    /// A prompt to grant (repeatable)
    #[arg(long = "prompt", value_name = "NAME")]
    pub prompts: Vec<String>,
    /// Mint a ticket that never expires (servers refuse it unless they opt out); without it,
    /// and without --ttl or --expires, the ticket is valid for one hour
    #[arg(long, conflicts_with_all = ["ttl", "expires"])]
    pub no_expiry: bool,
    #[command(flatten)]
    pub restrict: Restrictions,
}

#[derive(Debug, Args)]
pub struct AttenuateArgs {
    /// The ticket: captix1_..., a file, or - for stdin (the default)
    pub ticket: Option<String>,
    /// Allow only these tools (repeatable); resources and prompts are not affected
    #[arg(long = "tool", value_name = "NAME")]
    pub tools: Vec<String>,
    /// Allow no tool at all
    #[arg(long, conflicts_with = "tools")]
    pub no_tools: bool,
    /// Allow reading only the resources these URI patterns admit (repeatable)
    #[arg(long = "uri", value_name = "PATTERN")]
    pub uris: Vec<String>,
    /// Allow reading no resource at all
    #[arg(long, conflicts_with = "uris")]
    pub no_uris: bool,
    /// Allow only these prompts (repeatable)
    #[arg(long = "prompt", value_name = "NAME")]
    pub prompts: Vec<String>,
    /// Allow no prompt at all
    #[arg(long, conflicts_with = "prompts")]
    pub no_prompts: bool,
    #[command(flatten)]
    pub restrict: Restrictions,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The ticket: captix1_..., a file, or - for stdin (the default)
    pub ticket: Option<String>,
    /// The issuer's public key (repeat for several, e.g. during rotation)
    #[arg(long, value_name = "FILE", required = true)]
    pub pubkey: Vec<PathBuf>,
    /// The tool called (or --uri, or --prompt)
    #[arg(long, required_unless_present_any = ["uri", "prompt"], conflicts_with_all = ["uri", "prompt"])]
    pub tool: Option<String>,
    /// A resources/read of this URI
    #[arg(long, value_name = "URI", conflicts_with_all = ["prompt", "args", "arg"])]
    pub uri: Option<String>,
    /// A prompts/get of this prompt
    #[arg(long, value_name = "NAME", conflicts_with_all = ["args", "arg"])]
    pub prompt: Option<String>,
    /// The call's arguments, a JSON object
    #[arg(long, value_name = "JSON", conflicts_with = "arg")]
    pub args: Option<String>,
    /// One argument, KEY=VALUE (repeatable; KEY may be a path like filter/org)
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub arg: Vec<String>,
    /// This server's resource URI
    #[arg(long, value_name = "URI")]
    pub resource: Option<String>,
    /// Check as of this time instead of now
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<String>,
    /// Revoked ids, one hex id per line (the file `captix revoke --file` writes): a ticket
    /// holding one is denied with `revoked`
    #[arg(long, value_name = "FILE")]
    pub revoked: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
