//! The issuer's errors: a configuration that does not read, and the OAuth errors of its
//! endpoints (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8707 §2, RFC 9396 §5).

/// A configuration file that does not read: where, and why. `line` is 1-based, or 0 when the
/// problem is not at one place (a file that cannot be opened).
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", if *line > 0 { format!("line {line}, column {column}: ") } else { String::new() })]
pub struct ConfigError {
    /// 1-based line, 0 when not known.
    pub line: usize,
    /// 1-based column, 0 when not known.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error at no particular place.
    pub fn whole(message: impl Into<String>) -> Self {
        ConfigError {
            line: 0,
            column: 0,
            message: message.into(),
        }
    }
}

/// The issuer's errors outside the protocol: configuration, keys, storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration does not read.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: String,
        /// Where and why.
        source: ConfigError,
    },
    /// A key file could not be read.
    #[error("signing key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The store (SQLite or Redis) failed.
    #[error("store: {0}")]
    Store(String),
    /// The revocation target (file or Redis) or the audit log could not be opened.
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// A stable code per variant.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::Key { .. } => "key",
            Error::Store(_) => "store_unavailable",
            Error::Io(_) => "io",
        }
    }
}

/// An OAuth error response: the `error` code, a description (the server's words; request data
/// is quoted only in bounded form) and the HTTP status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    /// RFC 6749 §5.2 / RFC 8707 / RFC 9396 error code.
    pub code: &'static str,
    /// `error_description`: printable ASCII (RFC 6749 §5.2 allows %x20-21 / %x23-5B / %x5D-7E).
    pub description: String,
    /// The HTTP status: 400, 401 for `invalid_client`, 429 past a client's ticket limit,
    /// 503 when the store fails.
    pub status: u16,
    /// `Retry-After` seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl OAuthError {
    fn new(code: &'static str, status: u16, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: ascii_description(&description.into()),
            status,
            retry_after: None,
        }
    }
    /// `invalid_request`: a missing, repeated or malformed parameter.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", 400, d)
    }
    /// `invalid_client`: the client could not be authenticated (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", 401, d)
    }
    /// `unauthorized_client`: this client may not use this grant type.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", 400, d)
    }
    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", 400, d)
    }
    /// `invalid_scope`: unknown scopes, or none the client may have.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", 400, d)
    }
    /// `invalid_target` (RFC 8707 §2): the resource is unknown or not acceptable.
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new("invalid_target", 400, d)
    }
    /// `invalid_authorization_details` (RFC 9396 §5).
    pub fn invalid_details(d: impl Into<String>) -> Self {
        Self::new("invalid_authorization_details", 400, d)
    }
    /// `unsupported_token_type` (RFC 7009 §2.2.1).
    pub fn unsupported_token_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_token_type", 400, d)
    }
    /// `temporarily_unavailable` (503): the store or the revocation target failed; nothing
    /// was issued or revoked.
    pub fn unavailable(d: impl Into<String>) -> Self {
        let mut e = Self::new("temporarily_unavailable", 503, d);
        e.retry_after = Some(1);
        e
    }
    /// 429 `temporarily_unavailable`: the client had its share of tickets for now.
    pub fn too_many(d: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new("temporarily_unavailable", 429, d);
        e.retry_after = Some(retry_after);
        e
    }
    /// The response body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code, "error_description": self.description })
    }
}

/// RFC 6749 §5.2: `error_description` is `%x20-21 / %x23-5B / %x5D-7E`; anything else becomes
/// `?`, and the text is bounded (it may quote request data).
fn ascii_description(s: &str) -> String {
    s.chars()
        .take(300)
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            '"' => '\'',
            _ => '?',
        })
        .collect()
}

/// At most `max` characters of request data, for a description or the audit log.
pub(crate) fn quote(s: &str, max: usize) -> String {
    let mut q: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        q.push('…');
    }
    format!("{q:?}")
}
