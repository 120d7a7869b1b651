//! Errors and denials. Every failure carries a stable code (spec §8).

use std::fmt;

/// Stable denial codes shared by the spec, the vectors, the CLI's JSON, the WASM API and the
/// audit log (spec §8). The string form (`as_str`) never changes once published.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The input is not a well-formed captix ticket.
    Malformed,
    /// The ticket is longer than [`crate::limits::MAX_TICKET_BYTES`].
    TicketTooLarge,
    /// The ticket has more than [`crate::limits::MAX_BLOCKS`] blocks.
    TooManyBlocks,
    /// A block signature does not verify under the root key.
    BadSignature,
    /// The ticket names a root key id that the verifier does not know.
    UnknownKey,
    /// A block of the ticket's chain has been revoked.
    Revoked,
    /// The ticket (or one of its blocks) has expired.
    Expired,
    /// The ticket (or one of its blocks) is not valid yet.
    NotYetValid,
    /// The ticket is for another resource (audience).
    WrongResource,
    /// The called tool is not granted, or a block restricts the tools.
    ToolNotGranted,
    /// The resource read is not granted, or a block restricts the resources.
    UriNotGranted,
    /// The prompt asked for is not granted, or a block restricts the prompts.
    PromptNotGranted,
    /// An argument is missing or does not satisfy a row filter.
    ArgDenied,
    /// A hand-written Datalog check failed.
    CheckFailed,
    /// A budget on the ticket's chain has no unit left in its window.
    BudgetExhausted,
    /// A rate limit of the server's policy (per agent, user, both, or the tool in all) has no
    /// unit left in its window (docs §16).
    RateLimited,
    /// The call's arguments are not a JSON object.
    ArgsMalformed,
    /// The call's arguments contain an object with a duplicate key.
    ArgsDuplicateKey,
    /// The call's arguments exceed the byte or leaf limit.
    ArgsTooLarge,
    /// The call's arguments nest deeper than the depth limit.
    ArgsTooDeep,
    /// Evaluating the ticket's Datalog exceeded the run limits (fail closed).
    LimitsExceeded,
    /// A budget or revocation store could not be reached (fail closed).
    StoreUnavailable,
    /// The call's time is outside the range every path represents (after
    /// [`crate::time::MAX_TIME`]): refused before any other work.
    InvalidTime,
    /// The server does not allow this request's method (an MCP method outside tools, not
    /// configured) for this ticket.
    MethodNotAllowed,
    /// The ticket lacks an OAuth scope the server requires for this request.
    ScopeMissing,
    /// The request names a session this ticket's chain did not create (or one that ended).
    SessionNotFound,
}

impl Code {
    /// Every code, in spec order.
    pub const ALL: &'static [Code] = &[
        Code::Malformed,
        Code::TicketTooLarge,
        Code::TooManyBlocks,
        Code::BadSignature,
        Code::UnknownKey,
        Code::Revoked,
        Code::Expired,
        Code::NotYetValid,
        Code::WrongResource,
        Code::ToolNotGranted,
        Code::UriNotGranted,
        Code::PromptNotGranted,
        Code::ArgDenied,
        Code::CheckFailed,
        Code::BudgetExhausted,
        Code::RateLimited,
        Code::ArgsMalformed,
        Code::ArgsDuplicateKey,
        Code::ArgsTooLarge,
        Code::ArgsTooDeep,
        Code::LimitsExceeded,
        Code::StoreUnavailable,
        Code::InvalidTime,
        Code::MethodNotAllowed,
        Code::ScopeMissing,
        Code::SessionNotFound,
    ];

    /// The stable string form of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Malformed => "malformed",
            Code::TicketTooLarge => "ticket_too_large",
            Code::TooManyBlocks => "too_many_blocks",
            Code::BadSignature => "bad_signature",
            Code::UnknownKey => "unknown_key",
            Code::Revoked => "revoked",
            Code::Expired => "expired",
            Code::NotYetValid => "not_yet_valid",
            Code::WrongResource => "wrong_resource",
            Code::ToolNotGranted => "tool_not_granted",
            Code::UriNotGranted => "uri_not_granted",
            Code::PromptNotGranted => "prompt_not_granted",
            Code::ArgDenied => "arg_denied",
            Code::CheckFailed => "check_failed",
            Code::BudgetExhausted => "budget_exhausted",
            Code::RateLimited => "rate_limited",
            Code::ArgsMalformed => "args_malformed",
            Code::ArgsDuplicateKey => "args_duplicate_key",
            Code::ArgsTooLarge => "args_too_large",
            Code::ArgsTooDeep => "args_too_deep",
            Code::LimitsExceeded => "limits_exceeded",
            Code::StoreUnavailable => "store_unavailable",
            Code::InvalidTime => "invalid_time",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::ScopeMissing => "scope_missing",
            Code::SessionNotFound => "session_not_found",
        }
    }

    /// True for codes that mean "the ticket itself is not acceptable" (as opposed to "this call
    /// is not allowed"): an MCP server answers these with 401, the others with 403 or 429.
    pub fn is_invalid_ticket(self) -> bool {
        // Exhaustive: a new code does not compile until it says which it is.
        match self {
            Code::Malformed
            | Code::TicketTooLarge
            | Code::TooManyBlocks
            | Code::BadSignature
            | Code::UnknownKey
            | Code::Revoked
            | Code::Expired
            | Code::NotYetValid
            | Code::WrongResource => true,
            Code::ToolNotGranted
            | Code::UriNotGranted
            | Code::PromptNotGranted
            | Code::ArgDenied
            | Code::CheckFailed
            | Code::BudgetExhausted
            | Code::RateLimited
            | Code::ArgsMalformed
            | Code::ArgsDuplicateKey
            | Code::ArgsTooLarge
            | Code::ArgsTooDeep
            | Code::LimitsExceeded
            | Code::StoreUnavailable
            | Code::InvalidTime
            | Code::MethodNotAllowed
            | Code::ScopeMissing
            | Code::SessionNotFound => false,
        }
    }

    /// The HTTP status an MCP server answers a denial with this code (spec §8): 401 for a
    /// ticket that is not acceptable, 429 for budgets and limits, 400 for malformed arguments,
    /// 404 for a session not found, 503 when a store is down, 500 for the server's own clock,
    /// 403 otherwise. One table for every layer (the Rust MCP layer, the npm package). A
    /// budget that never refills is answered 403 instead of 429: see `Denial::http_status`.
    pub fn http_status(self) -> u16 {
        match self {
            Code::BudgetExhausted | Code::RateLimited => 429,
            Code::ArgsMalformed
            | Code::ArgsDuplicateKey
            | Code::ArgsTooLarge
            | Code::ArgsTooDeep => 400,
            Code::StoreUnavailable => 503,
            Code::SessionNotFound => 404,
            // the server's own clock is out of range: its fault, not the caller's
            Code::InvalidTime => 500,
            c if c.is_invalid_ticket() => 401,
            _ => 403,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or(())
    }
}

/// A denial: the stable code, the block and restriction that denied (when one did), and a
/// readable reason. Returned by verification and by ticket parsing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Denial {
    /// The stable code.
    pub code: Code,
    /// The index of the block that denied (0 = authority), when a block did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub block: Option<usize>,
    /// The restriction that denied, in the spec's words (e.g. `row list_invoices:/org = "acme"`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub restriction: Option<String>,
    /// A readable reason, lower case, naming the block and restriction.
    pub reason: String,
    /// For `budget_exhausted`: seconds until the exhausted budget has a unit again
    /// (`None` for a lifetime budget, which never refills).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_after: Option<u64>,
}

impl Denial {
    /// The HTTP status of this denial (spec §8): its code's, except that a budget that never
    /// refills (no `retry_after`) is 403, since retrying cannot help.
    pub fn http_status(&self) -> u16 {
        match (self.code, self.retry_after) {
            (Code::BudgetExhausted, None) => 403,
            (code, _) => code.http_status(),
        }
    }

    /// A denial with a code and reason, not tied to a block.
    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Denial {
            code,
            block: None,
            restriction: None,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// The same denial, tied to a block and restriction.
    pub fn at(mut self, block: usize, restriction: impl Into<String>) -> Self {
        self.block = Some(block);
        self.restriction = Some(restriction.into());
        self
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

impl std::error::Error for Denial {}

/// The crate's error type, for everything that is not a verification decision.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A ticket or call was refused; the denial has the code.
    #[error("{0}")]
    Denied(#[from] Denial),
    /// A restriction (row filter, budget, duration, Datalog check) is not valid.
    #[error("invalid restriction: {0}")]
    InvalidRestriction(String),
    /// A key is not valid (bad encoding, wrong algorithm).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Signing or serialising a token failed inside Biscuit.
    #[error("token construction failed: {0}")]
    Build(String),
}

impl Error {
    /// The stable code of this error (spec §8).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Denied(d) => d.code.as_str(),
            Error::InvalidRestriction(_) => "invalid_restriction",
            Error::InvalidKey(_) => "invalid_key",
            Error::Io { .. } => "io",
            Error::Build(_) => "build",
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {c}");
            assert_eq!(c.as_str().parse::<Code>(), Ok(*c));
            let json = serde_json::to_string(c).expect("serialise");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }

    /// The spec's §8 table and `Code::http_status` say the same, code for code.
    #[test]
    fn http_statuses_are_the_specs() {
        let spec = include_str!("../../../spec/ticket-v1.md");
        let section = spec
            .split("## §8 Error codes")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("§8 in the spec");
        let rows: Vec<(String, u16)> = section
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let status = cells.get(cells.len().checked_sub(2)?)?.parse().ok()?;
                Some((code.to_string(), status))
            })
            .collect();
        let ours: Vec<(String, u16)> = Code::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.http_status()))
            .collect();
        assert_eq!(rows, ours);
        let lifetime = Denial::new(Code::BudgetExhausted, "spent");
        assert_eq!(lifetime.http_status(), 403);
        let windowed = Denial {
            retry_after: Some(5),
            ..lifetime
        };
        assert_eq!(windowed.http_status(), 429);
    }
}
