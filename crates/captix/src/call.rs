//! The call: what a server asks about (spec §3.1), the input of every decision.

use crate::args::Args;
use crate::error::{Code, Denial};
use crate::limits::MAX_TOOL_NAME_BYTES;

/// The MCP method of a tool call.
pub const TOOLS_CALL: &str = "tools/call";
/// The MCP method of a resource read.
pub const RESOURCES_READ: &str = "resources/read";
/// The MCP method of a prompt request.
pub const PROMPTS_GET: &str = "prompts/get";

/// What a call asks for (spec §3.1): a tool to call, a resource to read or a prompt to get.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `tools/call` of this tool.
    Tool(String),
    /// `resources/read` of this URI.
    Uri(String),
    /// `prompts/get` of this prompt.
    Prompt(String),
}

impl Target {
    /// The MCP method that asks for it.
    pub fn method(&self) -> &'static str {
        match self {
            Target::Tool(_) => TOOLS_CALL,
            Target::Uri(_) => RESOURCES_READ,
            Target::Prompt(_) => PROMPTS_GET,
        }
    }

    /// The tool name, URI or prompt name.
    pub fn name(&self) -> &str {
        match self {
            Target::Tool(s) | Target::Uri(s) | Target::Prompt(s) => s,
        }
    }

    /// The tool's name, for a tool call.
    pub fn tool(&self) -> Option<&str> {
        match self {
            Target::Tool(t) => Some(t),
            Target::Uri(_) | Target::Prompt(_) => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tool(t) => write!(f, "tool {t:?}"),
            Target::Uri(u) => write!(f, "resource {u:?}"),
            Target::Prompt(p) => write!(f, "prompt {p:?}"),
        }
    }
}

/// One call as the verifier sees it (spec §3.1): what it asks for (a tool with its arguments,
/// a resource, a prompt), the time and the server's resource URI. The caller supplies the
/// time; the core reads no clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// What the call asks for.
    pub target: Target,
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
    target: Target,
    args: Args,
    resource: Option<String>,
}

impl Untimed {
    /// The call at `unix_secs` (Unix seconds, from the server's clock).
    pub fn at(self, unix_secs: u64) -> Call {
        Call {
            target: self.target,
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
        check_tool_name(&tool)?;
        let args = if args_json.trim().is_empty() {
            Args::empty()
        } else {
            Args::from_json(args_json)?
        };
        Ok(Untimed {
            target: Target::Tool(tool),
            args,
            resource: None,
        })
    }

    /// A `resources/read` of `uri` (spec §3.1); give it its time with [`Untimed::at`]. A URI
    /// that a prefix grant could be escaped through (dot segments, encoded dots, slashes or
    /// backslashes) is refused, as is one over [`crate::limits::MAX_URI_BYTES`] or with control characters
    /// or spaces.
    pub fn read(uri: impl Into<String>) -> Result<Untimed, Denial> {
        let uri = uri.into();
        crate::uri::validate_uri(&uri, false).map_err(malformed)?;
        Ok(Untimed {
            target: Target::Uri(uri),
            args: Args::empty(),
            resource: None,
        })
    }

    /// A `prompts/get` of the prompt `name` (spec §3.1); give it its time with
    /// [`Untimed::at`]. Its arguments are not part of the decision.
    pub fn prompt(name: impl Into<String>) -> Result<Untimed, Denial> {
        let name = name.into();
        crate::forms::validate_prompt_name(&name).map_err(malformed)?;
        Ok(Untimed {
            target: Target::Prompt(name),
            args: Args::empty(),
            resource: None,
        })
    }

    /// Makes this call what `Call::new(tool, args_json)?.at(unix_secs)` makes (its resource
    /// kept), in this call's buffers: a server that checks call after call with one `Call`
    /// allocates nothing for a typical call ([`Args::read`]). The arguments are JSON bytes
    /// (empty is malformed here: `{}` means none). On a refusal the call is a call of the empty
    /// tool name with no arguments, which no tool grant names (a granted name is 1 to 128
    /// bytes, spec §7): checked by mistake, it is denied.
    pub fn refill_tool(
        &mut self,
        tool: &str,
        args_json: &[u8],
        unix_secs: u64,
    ) -> Result<(), Denial> {
        if let Err(d) = check_tool_name(tool).and_then(|()| self.args.read(args_json)) {
            self.target = Target::Tool(String::new());
            self.args = Args::empty();
            return Err(d);
        }
        match &mut self.target {
            Target::Tool(name) => {
                name.clear();
                name.push_str(tool);
            }
            other => *other = Target::Tool(tool.to_owned()),
        }
        self.time = unix_secs;
        Ok(())
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

/// A tool name is 1 to [`MAX_TOOL_NAME_BYTES`] bytes.
fn check_tool_name(tool: &str) -> Result<(), Denial> {
    if tool.is_empty() || tool.len() > MAX_TOOL_NAME_BYTES {
        return Err(Denial::new(
            Code::ArgsMalformed,
            format!("a tool name is 1 to {MAX_TOOL_NAME_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A target refused by its validation, as a denial: `args_malformed` with the reason alone.
fn malformed(e: crate::error::Error) -> Denial {
    let reason = match e {
        crate::error::Error::InvalidRestriction(m) => m,
        other => other.to_string(),
    };
    Denial::new(Code::ArgsMalformed, reason)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A refilled call is the call `Call::new` makes, whatever the call held before (a tool
    /// call with other arguments, a resource read); refusals are `Call::new`'s.
    #[test]
    fn a_refilled_call_is_a_new_call() {
        let long = "t".repeat(MAX_TOOL_NAME_BYTES + 1);
        let cases: [(&str, &str); 9] = [
            (
                "list_invoices",
                r#"{"org":"acme","status":"open","page":2}"#,
            ),
            ("list_invoices", r#"{"org":"globex"}"#),
            ("get_invoice", r#"{"id":7,"deep":{"a":[1,"x"]}}"#),
            ("get_invoice", "{}"),
            ("get_invoice", r#"{"a":1,"a":2}"#),
            ("get_invoice", "[1]"),
            ("", r#"{"org":"acme"}"#),
            (&long, "{}"),
            (
                "list_invoices",
                r#"{"org":"initech","status":"paid","page":30,"q":"x"}"#,
            ),
        ];
        let mut earlier = [
            Call::read("https://mcp.example/r").expect("uri").at(1),
            Call::new("get_invoice", r#"{"id":"a-long-identifier","x":true}"#)
                .expect("call")
                .at(2)
                .resource("https://mcp.example"),
        ];
        for call in &mut earlier {
            for (tool, args) in cases {
                let fresh = Call::new(tool, args).map(|u| Call {
                    resource: call.resource.clone(),
                    ..u.at(99)
                });
                let refilled = call.refill_tool(tool, args.as_bytes(), 99);
                match fresh {
                    Ok(f) => {
                        assert_eq!(refilled, Ok(()), "{tool} {args}");
                        assert_eq!(*call, f, "{tool} {args}");
                    }
                    Err(d) => {
                        assert_eq!(refilled, Err(d), "{tool} {args}");
                        assert_eq!(call.args, Args::empty(), "a refusal holds no arguments");
                        assert_eq!(call.target, Target::Tool(String::new()), "nor a tool");
                    }
                }
            }
        }
    }
}
