//! The call: what a server asks about (spec §3.1), the input of every decision.

use crate::args::Args;
use crate::error::{Code, Denial};
use crate::limits::MAX_TOOL_NAME_BYTES;

/// The MCP method of a tool call.
pub const TOOLS_CALL: &str = "tools/call";

/// One tool call as the verifier sees it (spec §3.1): the tool, its arguments, the time and
/// the server's resource URI. The caller supplies the time; the core reads no clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The tool name.
    pub tool: String,
    /// The arguments, as JSON-Pointer leaves.
    pub args: Args,
    /// The time of the call, Unix seconds.
    pub time: u64,
    /// This server's canonical resource URI (RFC 8707 audience), if it has one.
    pub resource: Option<String>,
}

/// A call whose time is not set yet. It becomes a [`Call`] only through [`Untimed::at`]: no
/// API has a default time (spec §3.1), so a forgotten clock is a compile error, not a call at
/// 1970 that every expiry lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a call needs its time: .at(unix_secs)"]
pub struct Untimed {
    tool: String,
    args: Args,
    resource: Option<String>,
}

impl Untimed {
    /// The call at `unix_secs` (Unix seconds, from the server's clock).
    pub fn at(self, unix_secs: u64) -> Call {
        Call {
            tool: self.tool,
            args: self.args,
            time: unix_secs,
            resource: self.resource,
        }
    }

    /// Sets this server's resource URI (normalized, spec §4.4).
    pub fn resource(mut self, uri: impl Into<String>) -> Self {
        self.resource = Some(crate::normalize_resource(&uri.into()));
        self
    }
}

impl Call {
    /// A call of `tool` with JSON-text arguments (an object; `""` means none); give it its
    /// time with [`Untimed::at`]. Duplicate keys, excessive size or depth are refused with
    /// their own codes.
    #[allow(clippy::new_ret_no_self)] // a typestate: a `Call` exists only with its time
    pub fn new(tool: impl Into<String>, args_json: &str) -> Result<Untimed, Denial> {
        let tool = tool.into();
        if tool.is_empty() || tool.len() > MAX_TOOL_NAME_BYTES {
            return Err(Denial::new(
                Code::ArgsMalformed,
                format!("a tool name is 1 to {MAX_TOOL_NAME_BYTES} bytes"),
            ));
        }
        let args = if args_json.trim().is_empty() {
            Args::empty()
        } else {
            Args::from_json(args_json)?
        };
        Ok(Untimed {
            tool,
            args,
            resource: None,
        })
    }

    /// The same call at another time (Unix seconds).
    pub fn at(mut self, unix_secs: u64) -> Self {
        self.time = unix_secs;
        self
    }

    /// Refuses a time outside the range every path represents (spec §3.1): after
    /// [`crate::time::MAX_TIME`], Datalog dates overflow. Checked before any other work.
    pub(crate) fn check_time(&self) -> Result<(), Denial> {
        if self.time > crate::time::MAX_TIME {
            return Err(invalid_time(self.time));
        }
        Ok(())
    }

    /// Sets this server's resource URI (normalized, spec §4.4).
    pub fn resource(mut self, uri: impl Into<String>) -> Self {
        self.resource = Some(crate::normalize_resource(&uri.into()));
        self
    }
}

pub(crate) fn invalid_time(t: u64) -> Denial {
    Denial::new(
        Code::InvalidTime,
        format!(
            "the call's time {t} is after the last representable second ({}, year 9999)",
            crate::time::MAX_TIME
        ),
    )
}
