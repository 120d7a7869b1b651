//! Errors for people: what went wrong, how to fix it, and the exit code.

use std::fmt;

/// A failed command.
#[derive(Debug)]
pub struct CliError {
    /// What went wrong.
    pub message: String,
    /// How to fix it, when we know.
    pub hint: Option<String>,
    /// The exit code: 1 for an invalid ticket or a denial, 2 for usage and I/O.
    pub exit: i32,
    /// The stable code, for --json.
    pub code: &'static str,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            hint: None,
            exit: 2,
            code: "usage",
        }
    }

    pub fn io(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            hint: None,
            exit: 2,
            code: "io",
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl From<captix::Denial> for CliError {
    fn from(d: captix::Denial) -> Self {
        let hint = match d.code {
            captix::Code::Malformed => {
                Some("a ticket is one line starting with captix1_; was it copied whole?")
            }
            captix::Code::BadSignature => {
                Some("the ticket was changed after signing, or was signed by another key")
            }
            captix::Code::UnknownKey => {
                Some("pass the public key of the issuer that minted this ticket with --pubkey")
            }
            _ => None,
        };
        CliError {
            message: d.to_string(),
            hint: hint.map(str::to_string),
            exit: 1,
            code: d.code.as_str(),
        }
    }
}

impl From<captix::Error> for CliError {
    fn from(e: captix::Error) -> Self {
        match e {
            captix::Error::Denied(d) => d.into(),
            captix::Error::Io { context, source } => {
                let hint = match source.kind() {
                    std::io::ErrorKind::NotFound => Some(
                        "check the path; `captix keygen --out NAME` writes NAME.key and NAME.pub",
                    ),
                    std::io::ErrorKind::PermissionDenied => Some("check the file's owner and mode"),
                    std::io::ErrorKind::AlreadyExists => {
                        Some("choose another name, or remove the old files first")
                    }
                    _ => None,
                };
                let mut err = CliError::io(format!("{context}: {}", io_reason(&source)));
                err.hint = hint.map(str::to_string);
                err
            }
            other => {
                let code = other.code();
                CliError {
                    message: other.to_string(),
                    hint: None,
                    exit: 2,
                    code,
                }
            }
        }
    }
}

/// An io::Error's reason in lower case, without the OS error number.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::AlreadyExists => "the file already exists".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_lowercase()
        }
    }
}
