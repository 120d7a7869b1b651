//! Ticket decoding and verification. Input: `TARGET \n ARGS-JSON \n TICKET` (bytes), TARGET a
//! tool name, `uri:URI` (a resource read) or `prompt:NAME`. The ticket is parsed, inspected and
//! checked on both verification paths, which must agree; a resource read allowed on them is
//! one a grant admits and whose URI holds no dot segment.
#![no_main]

use captix::{Call, UnverifiedTicket};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let (Some(tool), Some(args), Some(ticket)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    // Every ticket string: parsing and inspection never panic.
    if let Ok(text) = std::str::from_utf8(ticket) {
        if let Ok(t) = UnverifiedTicket::parse(text) {
            let report = t.inspect();
            assert_eq!(report.blocks.len(), t.blocks().len());
        }
    }
    let (Ok(tool), Ok(args)) = (std::str::from_utf8(tool), std::str::from_utf8(args)) else {
        return;
    };
    let call = match (tool.strip_prefix("uri:"), tool.strip_prefix("prompt:")) {
        (Some(uri), _) => Call::read(uri),
        (_, Some(name)) => Call::prompt(name),
        _ => Call::new(tool, args),
    };
    let Ok(call) = call else {
        return;
    };
    if let captix::Target::Uri(u) = &call.clone().at(0).target {
        assert!(
            !u.split('/').any(|s| s == ".." || s == "."),
            "{u:?} accepted"
        );
    }
    let call = call
        .at(common::NOW)
        .resource("https://mcp.example/invoices");
    let s = common::setup();
    common::check_paths(&s.verifier, ticket, &call, &s.keys);
});
