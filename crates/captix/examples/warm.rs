//! The native warm check on tickets made elsewhere, for comparisons measured in one run (the
//! npm package's `examples/bench.mjs` runs it beside the WebAssembly check).
//!
//! Run: `cargo run --release -p captix --example warm -- FILE`, where FILE is JSON
//! `{"publicKey": "...", "resource": "...", "tool": "...", "arguments": "{...}", "tickets": [...]}`.
//! Prints one line per ticket: its bytes and the warm check in nanoseconds (the best of 30
//! samples of 20,000 checks: on a shared machine the least disturbed sample, as bench.mjs).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use captix::{Call, KeySet, PublicKey, Verifier};

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    public_key: String,
    resource: String,
    tool: String,
    arguments: String,
    tickets: Vec<String>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: warm FILE")?;
    let input: Input = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let keys = KeySet::from(PublicKey::from_text(&input.public_key)?);
    for ticket in &input.tickets {
        let verifier = Verifier::builder(keys.clone())
            .resource(input.resource.clone())
            .build();
        let call = Call::new(&input.tool, &input.arguments)?.at(now);
        verifier.check(ticket, &call).map_err(|d| d.to_string())?;
        // The same loop as bench.mjs: 30 samples of 20,000 checks, the best sample.
        let mut samples: Vec<f64> = (0..30)
            .map(|_| {
                let n = 20_000;
                let start = Instant::now();
                for _ in 0..n {
                    let _ = std::hint::black_box(verifier.check(ticket, &call));
                }
                start.elapsed().as_nanos() as f64 / f64::from(n)
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        println!("{} {:.0}", ticket.len(), samples[0]);
    }
    Ok(())
}
