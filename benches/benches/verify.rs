//! captix against its peers, measured in one run on one machine.
//!
//! Groups (ids are read by `scripts/bench-report`):
//! - `mint/captix`, `mint/biscuit`: a 1-block ticket; `attenuate/{captix,biscuit}/N`: the Nth
//!   block appended to an (N-1)-block ticket.
//! - `cold/captix/N`: parse, verify signatures, compile, evaluate a call (no cache);
//!   `cold/biscuit/N`: biscuit-auth's parse + verify + authorize of the same ticket and call.
//! - `warm/captix/N`: `Verifier::check` on a cached ticket with 2 row filters and an
//!   in-memory budget spend.
//! - `peers/*`: jsonwebtoken HS256 and EdDSA verify; tenuo decode + verify + authorize (with its
//!   proof of possession), and tenuo chain verify at 4 links.
//! - `warm_policy/captix/4`: the warm check at 4 blocks with a server policy of 3 limits.
//! - `threads/captix/{1,2}`: warm checks per second on 1 and 2 threads, each thread with its own
//!   ticket (time per check across all threads).
//! - `mcp_roundtrip/{without_layer,with_layer}`: a `tools/call` over loopback HTTP to the
//!   example server, without and with the captix layer; `layer_only/*`: the layer in process.
//! - `warm_redis/captix/4`: the warm check with budgets and revocation in Redis on loopback.
//! - `warm_redis/leased/4`: the same with a windowed budget spent from Redis leases.
#![allow(missing_docs)] // criterion's macros generate undocumented items
#![allow(deprecated)] // tenuo 0.3 marks DataPlane deprecated; it is still its chain verifier

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use biscuit_auth::{AuthorizerBuilder, Biscuit, BlockBuilder, KeyPair};
use captix::budget::MemoryBudgets;
use captix::{Compiled, KeySet, Ticket, Verifier};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

mod support {
    pub mod chain;
    pub mod roundtrip;
}

use support::chain::{attenuation, authority, call, chain, root, NOW, RES};

const DEPTHS: [usize; 4] = [1, 2, 4, 8];

/// biscuit-auth's own authorization of the same call: the same ambient facts and policy.
fn biscuit_authorize(token: &Biscuit) -> bool {
    let mut a = AuthorizerBuilder::new()
        .set_limits(captix::run_limits())
        .code(format!(
            r#"time({NOW_DATE}); resource("{RES}"); method("tools/call"); tool("list_invoices");
               arg("/org", "acme"); arg("/status", "open"); arg("/page", 2);
               allow if tool($tool), allow_tool($tool);"#,
            NOW_DATE = captix::time::rfc3339(NOW)
        ))
        .expect("code")
        .build(token)
        .expect("authorizer");
    a.authorize().is_ok()
}

fn mint_and_attenuate(c: &mut Criterion) {
    let k = root();
    let mut g = c.benchmark_group("mint");
    g.bench_function("captix", |b| {
        b.iter(|| black_box(authority(&k).sign().expect("mint")))
    });
    // biscuit: build and serialise the same authority block (Datalog and context prepared).
    let t = authority(&k).sign().expect("mint");
    let kp = KeyPair::from(
        &biscuit_auth::PrivateKey::from_bytes(
            &[11u8; 32],
            biscuit_auth::builder::Algorithm::Ed25519,
        )
        .expect("key"),
    );
    let block0 = same_block(&t, 0);
    g.bench_function("biscuit", |b| {
        b.iter(|| {
            let token = Biscuit::builder()
                .merge(block0.clone())
                .root_key_id(k.key_id().0)
                .build(&kp)
                .expect("build");
            black_box(token.to_base64().expect("b64"))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("attenuate");
    for depth in DEPTHS.into_iter().filter(|d| *d > 1) {
        let parent = chain(depth - 1);
        let child = attenuation(&parent, depth - 1).sign().expect("att");
        let block = same_block(&child, depth - 1);
        g.bench_with_input(BenchmarkId::new("captix", depth), &depth, |b, _| {
            b.iter(|| black_box(attenuation(&parent, depth - 1).sign().expect("att")))
        });
        g.bench_with_input(BenchmarkId::new("biscuit", depth), &depth, |b, _| {
            b.iter(|| {
                let token = parent.biscuit().append(block.clone()).expect("append");
                black_box(token.to_base64().expect("b64"))
            })
        });
    }
    g.finish();
}

/// The block at `index` of a ticket, as a biscuit `BlockBuilder` (its Datalog and context).
fn same_block(t: &Ticket, index: usize) -> BlockBuilder {
    let view = &t.blocks()[index];
    let context = serde_json::to_string(view.description().expect("captix block")).expect("json");
    BlockBuilder::new()
        .code(view.datalog())
        .expect("datalog")
        .context(context)
}

fn cold_and_warm(c: &mut Criterion) {
    let k = root();
    let keys = KeySet::from(k.public());
    let biscuit_root = biscuit_auth::PublicKey::from_bytes(
        &k.public().to_bytes(),
        biscuit_auth::builder::Algorithm::Ed25519,
    )
    .expect("key");
    let call = call();
    let mut cold = c.benchmark_group("cold");
    for depth in DEPTHS {
        let t = chain(depth);
        let text = t.as_str().to_string();
        let body = text
            .strip_prefix(captix::PREFIX)
            .expect("prefix")
            .to_string();
        cold.bench_with_input(BenchmarkId::new("captix", depth), &depth, |b, _| {
            b.iter(|| {
                let t = Ticket::parse(black_box(&text), &keys).expect("verify");
                let compiled = Compiled::compile(&t).expect("compiles");
                black_box(compiled.check(&call).expect("allowed"))
            })
        });
        cold.bench_with_input(BenchmarkId::new("biscuit", depth), &depth, |b, _| {
            b.iter(|| {
                let bytes = base64_decode(black_box(&body));
                let token = Biscuit::from(&bytes, biscuit_root).expect("verify");
                assert!(biscuit_authorize(&token));
            })
        });
    }
    cold.finish();

    let mut warm = c.benchmark_group("warm");
    for depth in DEPTHS {
        let t = chain(depth);
        let v = Verifier::builder(keys.clone())
            .resource(RES)
            .budgets(Arc::new(MemoryBudgets::new()))
            .build();
        v.check(t.as_str(), &call).expect("first sight");
        warm.bench_with_input(BenchmarkId::new("captix", depth), &depth, |b, _| {
            b.iter(|| {
                black_box(
                    v.check(black_box(t.as_str()), black_box(&call))
                        .expect("allowed"),
                )
            })
        });
    }
    warm.finish();

    // Docs §16: the same warm check with a server policy of three limits (per agent, per user,
    // in all), spent with the ticket's budget in one step of the memory store.
    let policy = captix::Policy::from_toml(
        "[tool.\"*\"]\nlimits = [\"1000000000/min per agent\", \"1000000000/min per user\", \
         \"1000000000/min\"]\n",
    )
    .expect("policy");
    let mut g = c.benchmark_group("warm_policy");
    let t = chain(4);
    let v = Verifier::builder(keys.clone())
        .resource(RES)
        .budgets(Arc::new(MemoryBudgets::new()))
        .policy(policy)
        .build();
    v.check(t.as_str(), &call).expect("first sight");
    g.bench_with_input(BenchmarkId::new("captix", 4), &4, |b, _| {
        b.iter(|| {
            black_box(
                v.check(black_box(t.as_str()), black_box(&call))
                    .expect("allowed"),
            )
        })
    });
    g.finish();
}

fn base64_decode(s: &str) -> Vec<u8> {
    // The same decoding captix does (base64url, no padding), without captix.
    let table = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'-' => 62,
            _ => 63,
        }
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= table(*c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

fn peers(c: &mut Criterion) {
    use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Claims {
        sub: String,
        aud: String,
        exp: u64,
        org: String,
        tools: Vec<String>,
    }
    let claims = Claims {
        sub: "alice".into(),
        aud: RES.into(),
        exp: 4_000_000_000,
        org: "acme".into(),
        tools: vec!["list_invoices".into(), "get_invoice".into()],
    };
    let mut g = c.benchmark_group("peers");
    let secret = EncodingKey::from_secret(b"a shared secret of thirty-two bytes!");
    let hs = encode(&Header::new(Algorithm::HS256), &claims, &secret).expect("hs256");
    let hs_key = DecodingKey::from_secret(b"a shared secret of thirty-two bytes!");
    let mut hs_val = Validation::new(Algorithm::HS256);
    hs_val.set_audience(&[RES]);
    g.bench_function("jwt_hs256_verify", |b| {
        b.iter(|| black_box(decode::<Claims>(black_box(&hs), &hs_key, &hs_val).expect("valid")))
    });
    // EdDSA: an Ed25519 key in PKCS#8 DER, built by hand from a fixed seed.
    let seed = [13u8; 32];
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    let ed_key = EncodingKey::from_ed_der(&der);
    let ed = encode(&Header::new(Algorithm::EdDSA), &claims, &ed_key).expect("eddsa");
    let public =
        biscuit_auth::PrivateKey::from_bytes(&seed, biscuit_auth::builder::Algorithm::Ed25519)
            .expect("key")
            .public()
            .to_bytes();
    let ed_dec = DecodingKey::from_ed_der(&public);
    let mut ed_val = Validation::new(Algorithm::EdDSA);
    ed_val.set_audience(&[RES]);
    g.bench_function("jwt_eddsa_verify", |b| {
        b.iter(|| black_box(decode::<Claims>(black_box(&ed), &ed_dec, &ed_val).expect("valid")))
    });

    // tenuo: a warrant for list_invoices with org = "acme", held by the agent's key.
    use tenuo::constraints::{ConstraintSet, ConstraintValue, Exact};
    let issuer = tenuo::SigningKey::generate();
    let holder = tenuo::SigningKey::generate();
    let warrant = tenuo::warrant::Warrant::builder()
        .capability(
            "list_invoices",
            ConstraintSet::from_iter(vec![("org".to_string(), Exact::new("acme").into())]),
        )
        .ttl(Duration::from_secs(3600))
        .holder(holder.public_key())
        .build(&issuer)
        .expect("warrant");
    let wire = tenuo::wire::encode_base64(&warrant).expect("encode");
    let mut args = HashMap::new();
    args.insert("org".to_string(), ConstraintValue::String("acme".into()));
    let pop = warrant.sign(&holder, "list_invoices", &args).expect("pop");
    let issuer_pk = issuer.public_key();
    g.bench_function("tenuo_verify_authorize", |b| {
        b.iter(|| {
            let w = tenuo::wire::decode_base64(black_box(&wire)).expect("decode");
            w.verify(&issuer_pk).expect("verify");
            w.authorize("list_invoices", black_box(&args), Some(&pop))
                .expect("authorize");
        })
    });
    let keys: Vec<tenuo::SigningKey> = (0..5).map(|_| tenuo::SigningKey::generate()).collect();
    let mut links = vec![tenuo::warrant::Warrant::builder()
        .capability(
            "list_invoices",
            ConstraintSet::from_iter(vec![("org".to_string(), Exact::new("acme").into())]),
        )
        .ttl(Duration::from_secs(3600))
        .holder(keys[1].public_key())
        .build(&keys[0])
        .expect("root warrant")];
    for i in 1..4 {
        let next = links[i - 1]
            .attenuate()
            .inherit_all()
            .holder(keys[i + 1].public_key())
            .build(&keys[i])
            .expect("link");
        links.push(next);
    }
    let mut plane = tenuo::DataPlane::new();
    plane.trust_issuer("root", keys[0].public_key());
    g.bench_function("tenuo_chain_verify_4", |b| {
        b.iter(|| black_box(plane.verify_chain(black_box(&links)).expect("chain")))
    });
    g.finish();
}

fn threads(c: &mut Criterion) {
    let k = root();
    let keys = KeySet::from(k.public());
    let v = Arc::new(
        Verifier::builder(keys)
            .resource(RES)
            .budgets(Arc::new(MemoryBudgets::new()))
            .build(),
    );
    let tickets: Vec<String> = (0..2).map(|_| chain(4).as_str().to_string()).collect();
    let call = call();
    for t in &tickets {
        v.check(t, &call).expect("first sight");
    }
    let mut g = c.benchmark_group("threads");
    for n in [1usize, 2] {
        g.bench_with_input(BenchmarkId::new("captix", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                // `iters` checks in all, split across n threads: time per check overall.
                let per = iters.div_ceil(n as u64);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in tickets.iter().take(n) {
                        let (v, call) = (&v, &call);
                        s.spawn(move || {
                            for _ in 0..per {
                                black_box(v.check(t, call).expect("allowed"));
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

/// A `tools/call` round trip over loopback HTTP to the example server (rmcp, SQLite), with and
/// without the captix layer in front (same handler, same query).
fn mcp_roundtrip(c: &mut Criterion) {
    let k = root();
    let support::roundtrip::Servers {
        runtime: _server_rt,
        guarded,
        plain,
        ticket,
    } = support::roundtrip::start(&k);
    let body = support::roundtrip::BODY;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let http = reqwest::Client::new();
    let call = |url: &str, auth: Option<&str>| {
        let mut r = http.post(url).body(body);
        for (name, value) in support::roundtrip::HEADERS {
            r = r.header(name, value);
        }
        if let Some(t) = auth {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        client_rt.block_on(async {
            let res = r.send().await.expect("send");
            assert!(res.status().is_success(), "{}", res.status());
            res.bytes().await.expect("body")
        })
    };
    let mut g = c.benchmark_group("mcp_roundtrip");
    g.bench_function("without_layer", |b| {
        b.iter(|| black_box(call(&plain, None)))
    });
    // The same request bytes (the ticket in its header, ignored): what the layer itself costs,
    // apart from carrying a ~0.5 KB bearer token.
    g.bench_function("without_layer_same_bytes", |b| {
        b.iter(|| black_box(call(&plain, Some(ticket.as_str()))))
    });
    g.bench_function("with_layer", |b| {
        b.iter(|| black_box(call(&guarded, Some(ticket.as_str()))))
    });
    g.finish();
}

/// The layer alone, in process (no sockets): a `tools/call` through `captix_mcp::protect`
/// around a handler that answers at once, against the bare handler.
fn layer_only(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let k = root();
    let resource = "http://127.0.0.1:1/mcp";
    let verifier = Verifier::builder(KeySet::from(k.public()))
        .resource(resource)
        .budgets(Arc::new(MemoryBudgets::new()))
        .build();
    let handler = axum::routing::post(|| async {
        (
            [("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","id":2,"result":{"content":[],"isError":false}}"#,
        )
    });
    let bare: axum::Router = axum::Router::new().route("/mcp", handler.clone());
    let guarded = captix_mcp::protect(
        axum::Router::new().route("/mcp", handler),
        Arc::new(verifier),
        captix_mcp::Config::new("https://auth.example"),
    )
    .expect("protect");
    let ticket = support::roundtrip::ticket(&k, resource);
    let auth = format!("Bearer {}", ticket.as_str());
    let body = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"acme"}}}"#;
    let request = || {
        axum::http::Request::post("/mcp")
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .expect("request")
    };
    let mut g = c.benchmark_group("layer_only");
    // Each app as itself: a common boxed type would add the same cost to both.
    fn bench<S>(
        g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        name: &str,
        app: S,
        rt: &tokio::runtime::Runtime,
        request: &dyn Fn() -> axum::http::Request<axum::body::Body>,
    ) where
        S: tower::Service<
                axum::http::Request<axum::body::Body>,
                Response = axum::response::Response,
                Error = std::convert::Infallible,
            > + Clone,
    {
        use tower::ServiceExt;
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let res = app.clone().oneshot(request()).await.expect("infallible");
                    assert!(res.status().is_success(), "{}", res.status());
                    black_box(
                        axum::body::to_bytes(res.into_body(), 1 << 20)
                            .await
                            .expect("body"),
                    )
                })
            })
        });
    }
    bench(&mut g, "bare", bare, &rt, &request);
    bench(&mut g, "protected", guarded, &rt, &request);
    g.finish();
}

/// The warm check with budgets in Redis on loopback (one script round trip per call), next to
/// the in-memory store, same ticket. Starts its own redis-server on a free port.
fn warm_redis(c: &mut Criterion) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let mut server = match std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warm_redis skipped: redis-server not available ({e})");
            return;
        }
    };
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{port}/");
    let k = root();
    let t = chain(4);
    let call = call();
    let options = captix_redis::Options::default();
    let v = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .budgets(Arc::new(
            captix_redis::RedisBudgets::new(&url, options.clone()).expect("budgets"),
        ))
        .revocations(Arc::new(
            captix_redis::RedisRevocations::new(&url, options.clone(), Duration::from_secs(1))
                .expect("revocations"),
        ))
        .build();
    v.check(t.as_str(), &call).expect("first sight");
    // The same chain with a windowed budget instead of the lifetime one, spent from leases
    // (docs §15.4): one round trip per slice of 32 calls.
    let leased = {
        let mut t = Ticket::mint(&k, "billing-agent", "alice")
            .issuer("https://auth.example")
            .tool("list_invoices")
            .row("*:org=acme".parse().expect("row"))
            .budget("100000000/min".parse().expect("budget"))
            .expires_at(NOW + 3600)
            .resource(RES)
            .sign()
            .expect("mint");
        for i in 1..4 {
            t = attenuation(&t, i).sign().expect("attenuate");
        }
        t
    };
    let lv = Verifier::builder(KeySet::from(k.public()))
        .resource(RES)
        .budgets(captix_redis::leased(&url, options.clone(), Default::default()).expect("leases"))
        .build();
    lv.check(leased.as_str(), &call).expect("first sight");
    let mut g = c.benchmark_group("warm_redis");
    g.bench_function("captix/4", |b| {
        b.iter(|| {
            black_box(
                v.check(black_box(t.as_str()), black_box(&call))
                    .expect("allowed"),
            )
        })
    });
    g.bench_function("leased/4", |b| {
        b.iter(|| {
            black_box(
                lv.check(black_box(leased.as_str()), black_box(&call))
                    .expect("allowed"),
            )
        })
    });
    g.finish();
    let _ = server.kill();
    let _ = server.wait();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = cold_and_warm, mint_and_attenuate, peers, threads, mcp_roundtrip, layer_only, warm_redis
}
criterion_main!(benches);
