//! The MCP layer's share of a `tools/call` round trip on loopback (issue 18: under 5%),
//! measured in pairs: the same request bytes (ticket header included) to the unguarded and to
//! the guarded example server, alternately, in one loop, so that the machine's drift between
//! benchmark groups cancels out. Prints the median of each side and the median of the paired
//! differences; then the same pairs in process (the two apps called as tower services, no
//! sockets), which is the layer's own work beside the example's rmcp handler.
//! `./scripts/bench` runs it after the criterion groups.
//!
//!     cargo bench -p captix-benches --bench layer_share [-- ROUNDS]
//!
//! For a profiler, one side alone: `LAYER_SHARE_ONLY=bare|guarded` (on loopback) or
//! `LAYER_SHARE_IN_PROCESS=bare|guarded` (in process) in the environment, ROUNDS requests.

use std::hint::black_box;
use std::time::Instant;

use captix::SigningKey;
use tower::ServiceExt;

use support::roundtrip::{BODY, HEADERS};

mod support {
    pub mod roundtrip;
}

/// Calls `a` and `b` alternately `rounds` times (which goes first alternates too); returns
/// the medians of each (µs) and the median paired difference.
fn pairs(rounds: usize, mut a: impl FnMut() -> f64, mut b: impl FnMut() -> f64) -> [f64; 3] {
    let (mut xs, mut ys, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..rounds {
        let (x, y) = if i % 2 == 0 {
            let x = a();
            (x, b())
        } else {
            let y = b();
            (a(), y)
        };
        xs.push(x);
        ys.push(y);
        diff.push(y - x);
    }
    [xs, ys, diff].map(|mut v| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    })
}

/// An app called in process as a tower service, each as itself (a clone per request, as
/// `axum::serve` does), not through a common boxed type that would add the same cost to both.
trait App {
    /// One `tools/call`, timed: µs.
    fn serve(&self, rt: &tokio::runtime::Runtime, auth: &str) -> f64;
}

impl<S> App for S
where
    S: tower::Service<
            axum::http::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone,
{
    fn serve(&self, rt: &tokio::runtime::Runtime, auth: &str) -> f64 {
        let mut r = axum::http::Request::post("/mcp")
            .header("host", "127.0.0.1:1")
            .header("authorization", auth);
        for (name, value) in HEADERS {
            r = r.header(name, value);
        }
        let r = r.body(axum::body::Body::from(BODY)).expect("request");
        let began = Instant::now();
        rt.block_on(async {
            let res = self.clone().oneshot(r).await.expect("infallible");
            assert!(res.status().is_success(), "{}", res.status());
            black_box(
                axum::body::to_bytes(res.into_body(), 1 << 20)
                    .await
                    .expect("body"),
            );
        });
        began.elapsed().as_nanos() as f64 / 1000.0
    }
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
        let mut r = http.post(url).header("authorization", &auth).body(BODY);
        for (name, value) in HEADERS {
            r = r.header(name, value);
        }
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
    let in_process_only = std::env::var_os("LAYER_SHARE_IN_PROCESS").is_some();
    if !in_process_only {
        let [b, g, d] = pairs(rounds, || call(&plain), || call(&guarded));
        println!(
            "layer_share: {rounds} pairs, same request bytes; median round trip {b:.1} µs without \
             the layer, {g:.1} µs with it; median paired difference {d:.1} µs, {:.1}% (goal: \
             under 5%)",
            100.0 * d / b
        );
    }

    // In process: the same apps as tower services on this thread, the same request.
    let resource = "http://127.0.0.1:1/mcp";
    let (app, bare) = client_rt.block_on(async { support::roundtrip::apps(&k, resource) });
    let auth = format!(
        "Bearer {}",
        support::roundtrip::ticket(&k, resource).as_str()
    );
    let serve = |app: &dyn App| app.serve(&client_rt, &auth);
    for _ in 0..500 {
        serve(&bare);
        serve(&app);
    }
    // One app alone, in process (for perf): LAYER_SHARE_IN_PROCESS=bare|guarded.
    if let Ok(side) = std::env::var("LAYER_SHARE_IN_PROCESS") {
        let app: &dyn App = if side == "bare" { &bare } else { &app };
        for _ in 0..rounds {
            serve(app);
        }
        return;
    }
    let [b, g, d] = pairs(rounds, || serve(&bare), || serve(&app));
    println!(
        "layer_share in process: {rounds} pairs, the same apps as tower services; median {b:.1} \
         µs without the layer, {g:.1} µs with it; median paired difference {d:.1} µs"
    );
}
