//! The MCP layer's share of a `tools/call` round trip on loopback (issue 18: under 5%),
//! measured in pairs: the same request bytes (ticket header included) to the unguarded and to
//! the guarded example server, alternately, in one loop, so that the machine's drift between
//! benchmark groups cancels out. Prints the median of each side and the median of the paired
//! differences. `./scripts/bench` runs it after the criterion groups.
//!
//!     cargo bench -p captix-benches --bench layer_share [-- ROUNDS]

use std::hint::black_box;
use std::time::Instant;

use captix::SigningKey;

use support::roundtrip::BODY;

mod support {
    pub mod roundtrip;
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let k = SigningKey::from_seed(&[7u8; 32]);
    let support::roundtrip::Servers {
        runtime: _server_rt,
        guarded,
        plain,
        ticket,
    } = support::roundtrip::start(&k);
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", ticket.as_str());
    let call = |url: &str| {
        let r = http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "list_invoices")
            .header("mcp-protocol-version", "2026-07-28")
            .header("authorization", &auth)
            .body(BODY);
        let began = Instant::now();
        client_rt.block_on(async {
            let res = r.send().await.expect("send");
            assert!(res.status().is_success(), "{}", res.status());
            black_box(res.bytes().await.expect("body"));
        });
        began.elapsed().as_nanos() as f64 / 1000.0
    };
    for _ in 0..500 {
        call(&plain);
        call(&guarded);
    }
    // One side alone (for strace or perf): LAYER_SHARE_ONLY=bare|guarded.
    if let Ok(side) = std::env::var("LAYER_SHARE_ONLY") {
        let url = if side == "bare" { &plain } else { &guarded };
        for _ in 0..rounds {
            call(url);
        }
        return;
    }
    let (mut bare, mut with, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        // Alternate which goes first, so neither side always follows the other.
        let (b, g) = if i % 2 == 0 {
            let b = call(&plain);
            (b, call(&guarded))
        } else {
            let g = call(&guarded);
            (call(&plain), g)
        };
        bare.push(b);
        with.push(g);
        diff.push(g - b);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (b, g, d) = (median(&mut bare), median(&mut with), median(&mut diff));
    println!(
        "layer_share: {rounds} pairs, same request bytes; median round trip {b:.1} µs without the \
         layer, {g:.1} µs with it; median paired difference {d:.1} µs, {:.1}% (goal: under 5%)",
        100.0 * d / b
    );
}
