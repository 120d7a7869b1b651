//! The benchmarks' tickets: an authority block for the invoices server and a chain of
//! attenuations, each block narrowing the last; and the call they are checked against.

use captix::{Call, SigningKey, Ticket};

/// The time of every call (Unix seconds).
pub const NOW: u64 = 1_800_000_000;
/// The invoices server's resource URI.
pub const RES: &str = "https://mcp.example/invoices";

/// The root key every ticket is signed by.
pub fn root() -> SigningKey {
    SigningKey::from_seed(&[11u8; 32])
}

/// The authority block: two tools, org acme, a budget no benchmark exhausts, one hour.
pub fn authority(k: &SigningKey) -> captix::TicketBuilder<'_> {
    Ticket::mint(k, "billing-agent", "alice")
        .issuer("https://auth.example")
        .tool("list_invoices")
        .tool("get_invoice")
        .row("*:org=acme".parse().expect("row"))
        .budget("1000000000000000".parse().expect("budget"))
        .expires_at(NOW + 3600)
        .resource(RES)
}

/// Block `i`: one second less of life; block 1 also narrows `list_invoices` to open or paid.
pub fn attenuation(t: &Ticket, i: usize) -> captix::Attenuation<'_> {
    let a = t.attenuate().expires_at(NOW + 3600 - i as u64);
    if i == 1 {
        a.row("list_invoices:status=open|paid".parse().expect("row"))
    } else {
        a
    }
}

/// A ticket of `depth` blocks: the authority block has one row filter, block 1 adds a second.
pub fn chain(depth: usize) -> Ticket {
    let k = root();
    let mut t = authority(&k).sign().expect("mint");
    for i in 1..depth {
        t = attenuation(&t, i).sign().expect("attenuate");
    }
    t
}

/// `list_invoices` for org acme, open invoices, page 2, at `NOW`.
pub fn call() -> Call {
    Call::new(
        "list_invoices",
        r#"{"org":"acme","status":"open","page":2}"#,
    )
    .expect("args")
    .at(NOW)
    .resource(RES)
}
