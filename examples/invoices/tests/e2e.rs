//! End to end on loopback: rmcp's own MCP client against the example server behind captix.

use std::sync::Arc;

use captix::audit::{verify_log, MemoryAudit, Redaction};
use captix::budget::MemoryBudgets;
use captix::revocation::MemoryRevocations;
use captix::{KeySet, SigningKey, Ticket};
use rmcp::model::CallToolRequestParams;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "e2e/issuer.rs"]
mod issuer;

struct Server {
    addr: std::net::SocketAddr,
    url: String,
    key: SigningKey,
    revoked: Arc<MemoryRevocations>,
    audit: Arc<MemoryAudit>,
}

/// The configuration most tests use: an authorization server, nothing else admitted.
fn config() -> captix_mcp::Config {
    captix_mcp::Config::new("https://auth.example")
}

async fn server() -> Server {
    server_with(config()).await
}

async fn server_with(config: captix_mcp::Config) -> Server {
    server_built(config, |b| b).await
}

/// A server whose verifier `customize` finishes (a policy, say).
async fn server_built(
    config: captix_mcp::Config,
    customize: impl FnOnce(captix::VerifierBuilder) -> captix::VerifierBuilder,
) -> Server {
    let key = SigningKey::from_seed(&[21u8; 32]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let url = format!("http://{addr}/mcp");
    let revoked = Arc::new(MemoryRevocations::new());
    let audit = Arc::new(MemoryAudit::new());
    let verifier = captix::Verifier::builder(KeySet::from(key.public()))
        .resource(url.clone())
        .budgets(Arc::new(MemoryBudgets::new()))
        .revocations(revoked.clone())
        .audit(audit.clone(), Redaction::Keep);
    let verifier = customize(verifier).build();
    let app = captix_example_invoices::app(Arc::new(verifier), config).expect("app");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        addr,
        url,
        key,
        revoked,
        audit,
    }
}

impl Server {
    /// The audit records written since the last call, parsed.
    fn records(&self) -> Vec<serde_json::Value> {
        self.audit
            .drain()
            .iter()
            .map(|l| serde_json::from_str(l).expect("record"))
            .collect()
    }

    fn agent(&self) -> Ticket {
        Ticket::mint(&self.key, "billing-agent", "alice")
            .tool("list_invoices")
            .tool("get_invoice")
            .tool("create_refund")
            .row("*:org=acme".parse().expect("row"))
            .budget("100/min".parse().expect("budget"))
            .expires_at(now() + 3600)
            .resource(self.url.clone())
            .sign()
            .expect("mint")
    }

    async fn client(&self, ticket: &str) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.clone())
            .auth_header(ticket.to_string());
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("client connects")
    }

    /// An `initialize` outside a session with this `Authorization` value.
    async fn initialize(&self, auth: &str) -> (u16, String, String) {
        self.http("POST", "/mcp", &[("authorization", auth)], INITIALIZE)
            .await
    }

    /// A raw HTTP request; returns (status, headers, body).
    async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        http(self.addr, method, path, headers, body).await
    }
}

/// A raw HTTP/1.1 request to `addr`; returns (status, lower-cased headers, body).
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\naccept: application/json, text/event-stream\r\ncontent-length: {}\r\n", body.len());
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req.push_str("content-type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.expect("write");
    answer(&mut s).await
}

/// Reads an HTTP/1.1 answer to the end: (status, lower-cased headers, body).
async fn answer(s: &mut tokio::net::TcpStream) -> (u16, String, String) {
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_string())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

fn call(name: &'static str, args: serde_json::Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name).with_arguments(args.as_object().cloned().expect("object"))
}

fn rows(r: &rmcp::model::CallToolResult) -> serde_json::Value {
    let text = r
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .expect("text content");
    serde_json::from_str(&text).expect("json")
}

#[tokio::test]
async fn an_attenuated_ticket_through_rmcp_client() {
    let s = server().await;
    let agent = s.agent();
    let sub = agent
        .attenuate()
        .tool("list_invoices")
        .tool("get_invoice")
        .budget("4".parse().expect("budget"))
        .sign()
        .expect("attenuate");
    let c = s.client(sub.as_str()).await;

    // tools/list shows only what the sub-agent may call.
    let mut names: Vec<String> = c
        .list_all_tools()
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["get_invoice", "list_invoices"]);

    // Allowed, and the SQL applied the org filter.
    let r = c
        .call_tool(call("list_invoices", serde_json::json!({ "org": "acme" })))
        .await
        .expect("allowed");
    let ids: Vec<i64> = rows(&r)
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    // The next call on this thread reads into the last call's buffers: none of its arguments
    // may linger. A call that names no org is refused, right after one that named acme.
    let e = c
        .call_tool(call("list_invoices", serde_json::json!({})))
        .await
        .expect_err("no org, after a call with org acme");
    assert!(format!("{e:?}").contains("InsufficientScope"), "{e:?}");
    // A globex invoice by id, asked as acme: the row filter in SQL hides it.
    let r = c
        .call_tool(call(
            "get_invoice",
            serde_json::json!({ "org": "acme", "id": 4 }),
        ))
        .await
        .expect("allowed call");
    assert_eq!(r.is_error, Some(true), "no such invoice for acme");
    // Wrong row, wrong tool: refused before the handler.
    let e = c
        .call_tool(call(
            "get_invoice",
            serde_json::json!({ "org": "globex", "id": 4 }),
        ))
        .await
        .expect_err("row");
    // rmcp reports the 403 challenge; the captix code is in the body and the audit log (the
    // challenge carries no request data).
    assert!(format!("{e:?}").contains("InsufficientScope"), "{e:?}");
    assert!(s
        .audit
        .lines()
        .last()
        .is_some_and(|l| l.contains("\"code\":\"arg_denied\"")));
    let e = c
        .call_tool(call(
            "create_refund",
            serde_json::json!({ "org": "acme", "id": 1, "amount": 5 }),
        ))
        .await
        .expect_err("tool");
    assert!(format!("{e:?}").contains("InsufficientScope"), "{e:?}");
    assert!(s
        .audit
        .lines()
        .last()
        .is_some_and(|l| l.contains("\"code\":\"tool_not_granted\"")));
    // Budget of 4: two calls spent above (denied calls spend nothing); two more, then 403: a
    // lifetime budget never refills, so retrying later cannot help (429 would say it can).
    c.call_tool(call(
        "list_invoices",
        serde_json::json!({ "org": "acme", "status": "open" }),
    ))
    .await
    .expect("3rd");
    c.call_tool(call("list_invoices", serde_json::json!({ "org": "acme" })))
        .await
        .expect("4th");
    let e = c
        .call_tool(call("list_invoices", serde_json::json!({ "org": "acme" })))
        .await
        .expect_err("budget");
    assert!(
        format!("{e:?}").contains("InsufficientScope"),
        "a 403: {e:?}"
    );
    assert!(s
        .audit
        .lines()
        .last()
        .is_some_and(|l| l.contains("\"code\":\"budget_exhausted\"")));
    let _ = c.cancel().await;

    // Every decision and every outcome is in the audit log, chained.
    let lines = s.audit.lines();
    let records = verify_log(lines.join("\n").as_bytes()).expect("intact");
    assert!(records
        .iter()
        .any(|r| r.outcome.as_deref() == Some("success")));
    assert!(
        records
            .iter()
            .any(|r| r.outcome.as_deref() == Some("tool_error")),
        "get_invoice 4 as acme"
    );
    assert!(records
        .iter()
        .any(|r| r.code.as_deref() == Some("budget_exhausted")));
}

#[tokio::test]
async fn revoking_the_parent_denies_the_child() {
    let s = server().await;
    let agent = s.agent();
    let sub = agent
        .attenuate()
        .tool("list_invoices")
        .sign()
        .expect("attenuate");
    let c = s.client(sub.as_str()).await;
    c.call_tool(call("list_invoices", serde_json::json!({ "org": "acme" })))
        .await
        .expect("before");
    s.revoked.revoke(agent.revocation_ids().next().expect("id"));
    let e = c
        .call_tool(call("list_invoices", serde_json::json!({ "org": "acme" })))
        .await
        .expect_err("revoked");
    assert!(
        !format!("{e:?}").contains("InsufficientScope"),
        "a 401: {e:?}"
    );
    assert!(s
        .audit
        .lines()
        .last()
        .is_some_and(|l| l.contains("\"code\":\"revoked\"")));
    let _ = c.cancel().await;
}

#[tokio::test]
async fn http_answers_follow_the_mcp_authorization_spec() {
    let s = server().await;
    let agent = s.agent();
    let bearer = format!("Bearer {}", agent.as_str());
    let rpc = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"globex"}}}"#;
    let (status, head, _) = s.http("POST", "/mcp", &[], rpc).await;
    assert_eq!(status, 401);
    assert!(head.contains(&format!("www-authenticate: bearer resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\"", s.addr)), "{head}");
    let (status, head, _) = s
        .http(
            "POST",
            "/mcp",
            &[("authorization", "Bearer captix1_garbage")],
            rpc,
        )
        .await;
    assert_eq!(status, 401);
    assert!(head.contains("error=\"invalid_token\""), "{head}");
    let (status, head, body) = s
        .http("POST", "/mcp", &[("authorization", &bearer)], rpc)
        .await;
    assert_eq!(status, 403);
    // The challenge carries only what the server chose: the metadata URL first, the error and
    // a fixed description. The reason and the code are in the JSON-RPC error.
    let challenge = format!(
        "www-authenticate: bearer resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\", error=\"insufficient_scope\", error_description=\"the ticket does not allow this request\"\r\n",
        s.addr
    );
    assert!(head.contains(&challenge), "{head}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json-rpc error");
    assert_eq!(v["id"], 7);
    assert_eq!(v["error"]["data"]["code"], "arg_denied");
    // A credential that is UTF-8 beyond ASCII: the cached ticket with one more character is
    // not that ticket, and is not a ticket at all (401 invalid_token, never echoed).
    // Nor is the ticket wrapped in a Unicode space (no-break, ideographic): only ASCII
    // whitespace is trimmed (found by review).
    for credential in [
        format!("{bearer}é"),
        format!("{bearer}\u{a0}"),
        format!("Bearer \u{3000}{}", agent.as_str()),
    ] {
        let (status, head, body) = s
            .http("POST", "/mcp", &[("authorization", &credential)], rpc)
            .await;
        assert_eq!(status, 401, "{credential:?}");
        assert!(head.contains("error=\"invalid_token\""), "{head}");
        assert!(!head.contains(agent.as_str()) && !body.contains(agent.as_str()));
    }
    // Header injection through a tool name (found by the review of 2026-12-01): the name is
    // denied and never reflected into the challenge.
    let evil = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"x resource_metadata=http://evil.example/p","arguments":{}}}"#;
    let (status, head, body) = s
        .http("POST", "/mcp", &[("authorization", &bearer)], evil)
        .await;
    assert_eq!(status, 403);
    assert!(head.contains(&challenge), "{head}");
    assert!(!head.contains("evil"), "{head}");
    assert!(body.contains("tool_not_granted"), "{body}");
    // Two Authorization headers: 400 invalid_request, nothing checked or spent.
    let (status, head, _) = s
        .http(
            "POST",
            "/mcp",
            &[("authorization", &bearer), ("authorization", &bearer)],
            rpc,
        )
        .await;
    assert_eq!(status, 400);
    assert!(head.contains("error=\"invalid_request\""), "{head}");
    // Routing headers must match the body: -32020; a base64 Mcp-Name is decoded first.
    for (name, value) in [("mcp-method", "tools/list"), ("mcp-name", "get_invoice")] {
        let (status, _, body) = s
            .http(
                "POST",
                "/mcp",
                &[("authorization", &bearer), (name, value)],
                rpc,
            )
            .await;
        assert_eq!(status, 400, "{name}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json-rpc error");
        assert_eq!(v["error"]["code"], -32020, "{name}");
    }
    let encoded = format!("=?base64?{}?=", base64::encode("list_invoices"));
    let (status, _, _) = s
        .http(
            "POST",
            "/mcp",
            &[
                ("authorization", &bearer),
                ("mcp-method", "tools/call"),
                ("mcp-name", &encoded),
            ],
            rpc,
        )
        .await;
    assert_eq!(status, 403, "decoded, matched, then checked (org globex)");
    let (status, _, _) = s
        .http(
            "POST",
            "/mcp",
            &[("authorization", &bearer), ("mcp-name", "get_invoice")],
            rpc,
        )
        .await;
    assert_eq!(status, 400, "Mcp-Name must match params.name");
    let (status, _, _) = s
        .http(
            "POST",
            "/mcp",
            &[("authorization", &bearer)],
            &format!("[{rpc},{rpc}]"),
        )
        .await;
    assert_eq!(status, 400, "batches are refused");
    let dup = r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"globex","org":"acme"}}}"#;
    let (status, _, body) = s
        .http("POST", "/mcp", &[("authorization", &bearer)], dup)
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("args_duplicate_key"), "{body}");
    let exhausted = Ticket::mint(&s.key, "a", "u")
        .tool("list_invoices")
        .budget("0/min".parse().expect("b"))
        .resource(s.url.clone())
        .expires_at(now() + 600)
        .sign()
        .expect("mint");
    let zero = format!("Bearer {}", exhausted.as_str());
    let ok = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"acme"}}}"#;
    let (status, _, _) = s
        .http("POST", "/mcp", &[("authorization", &zero)], ok)
        .await;
    assert_eq!(
        status, 403,
        "a budget of 0 never admits: retrying cannot help"
    );
    // Safe defaults (docs §10.1): a ticket that names no audience, or never expires, is
    // refused with 401 before anything is spent.
    let no_audience = Ticket::mint(&s.key, "a", "u")
        .tool("list_invoices")
        .expires_at(now() + 600)
        .sign()
        .expect("mint");
    let no_expiry = Ticket::mint(&s.key, "a", "u")
        .tool("list_invoices")
        .resource(s.url.clone())
        .sign()
        .expect("mint");
    for (t, code) in [(no_audience, "wrong_resource"), (no_expiry, "expired")] {
        let auth = format!("Bearer {}", t.as_str());
        let (status, _, body) = s
            .http("POST", "/mcp", &[("authorization", &auth)], ok)
            .await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains(code), "{body}");
    }
    let limited = Ticket::mint(&s.key, "a", "u")
        .tool("list_invoices")
        .budget("1/min".parse().expect("b"))
        .resource(s.url.clone())
        .expires_at(now() + 600)
        .sign()
        .expect("mint");
    let one = format!("Bearer {}", limited.as_str());
    s.http("POST", "/mcp", &[("authorization", &one)], ok).await;
    let (status, head, _) = s.http("POST", "/mcp", &[("authorization", &one)], ok).await;
    assert_eq!(status, 429);
    assert!(head.contains("retry-after: 60"), "{head}");
    // A browser request from another origin (DNS rebinding) is refused before anything else;
    // the server's own origin passes.
    let (status, _, body) = s
        .http(
            "POST",
            "/mcp",
            &[
                ("authorization", &bearer),
                ("origin", "http://evil.example"),
            ],
            rpc,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Origin"), "{body}");
    let own = format!("http://{}", s.addr);
    let (status, _, body) = s
        .http(
            "POST",
            "/mcp",
            &[("authorization", &bearer), ("origin", &own)],
            rpc,
        )
        .await;
    assert!(body.contains("arg_denied"), "{status} {body}");
    // The metadata is public and readable by browser clients.
    let (status, head, body) = s
        .http("GET", "/.well-known/oauth-protected-resource/mcp", &[], "")
        .await;
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    let meta: serde_json::Value = serde_json::from_str(&body).expect("metadata");
    assert_eq!(meta["resource"], s.url);
    assert_eq!(meta["bearer_methods_supported"][0], "header");
}

/// The guard and rmcp read the same bytes; a body the two could read differently (duplicate
/// or escaped-duplicate keys in the envelope or params) is refused before rmcp sees it, and
/// an oversized ticket is refused before any work on it.
#[tokio::test]
async fn the_guard_refuses_bodies_that_could_be_read_two_ways() {
    let s = server().await;
    let bearer = format!("Bearer {}", s.agent().as_str());
    for body in [
        // A second "method": the guard must not see tools/list where rmcp sees tools/call.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"globex"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","\u006dethod":"tools/list","params":{"name":"list_invoices","arguments":{"org":"globex"}}}"#,
        // A second tool name: checked as one tool, run as another.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_invoices","name":"get_invoice","arguments":{"org":"acme","id":1}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_invoices","\u006eame":"get_invoice","arguments":{"org":"acme","id":1}}}"#,
        // Two argument objects.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"acme"},"arguments":{"org":"globex"}}}"#,
        // Two params (the guard reads the body in one pass: the first must not be taken), a
        // null name before the real one, the members in another order.
        r#"{"jsonrpc":"2.0","id":1,"params":{"name":"list_invoices","arguments":{"org":"acme"}},"method":"tools/call","params":{"name":"create_refund","arguments":{"org":"acme","id":1,"amount":5}}}"#,
        r#"{"params":{"name":null,"name":"create_refund","arguments":{"org":"acme","id":1,"amount":5}},"id":1,"jsonrpc":"2.0","method":"tools/call"}"#,
        // Arrays (serde reads a struct from an array by position): a batch of one must not be
        // read as "a response" and forwarded, nor an array as a request.
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_refund","arguments":{"org":"acme","id":1,"amount":5}}}]"#,
        r#"[1,"tools/call",{"name":"create_refund","arguments":{"org":"acme","id":1,"amount":5}}]"#,
        r#"  ["x"]"#,
    ] {
        let (status, _, reply) = s
            .http("POST", "/mcp", &[("authorization", &bearer)], body)
            .await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(
            !reply.contains("\"result\""),
            "{body} reached the tool: {reply}"
        );
    }
    let huge = format!(
        "Bearer captix1_{}",
        "A".repeat(captix::limits::MAX_TICKET_BYTES)
    );
    let ok = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"acme"}}}"#;
    let (status, _, body) = s
        .http("POST", "/mcp", &[("authorization", &huge)], ok)
        .await;
    assert_eq!(status, 401);
    assert!(body.contains("ticket_too_large"), "{body}");
}

/// A body that is not a JSON-RPC 2.0 request (`jsonrpc` missing, another version or type,
/// repeated) is refused before the check, as the npm adapters refuse it: rmcp refuses it too,
/// but only after the check had spent the budget and logged an allowed call (found by review).
#[tokio::test]
async fn a_body_that_is_not_json_rpc_2_0_is_refused_before_the_check() {
    let s = server().await;
    let once = s
        .agent()
        .attenuate()
        .tool("list_invoices")
        .budget("1".parse().expect("budget"))
        .sign()
        .expect("attenuate");
    let auth = format!("Bearer {}", once.as_str());
    let headers = [
        ("authorization", auth.as_str()),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "list_invoices"),
    ];
    let call = |version: &str| {
        format!(
            r#"{{{version}"id":3,"method":"tools/call","params":{{"name":"list_invoices","arguments":{{"org":"acme"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
        )
    };
    for version in [
        "",
        r#""jsonrpc":"1.0","#,
        r#""jsonrpc":2.0,"#,
        r#""jsonrpc":null,"#,
        r#""jsonrpc":"2.0","jsonrpc":"2.0","#,
    ] {
        let (status, _, body) = s.http("POST", "/mcp", &headers, &call(version)).await;
        assert_eq!(status, 400, "{version}: {body}");
        assert!(
            body.contains("-32600") && body.contains("not a JSON-RPC 2.0 request"),
            "{version}: {body}"
        );
    }
    assert!(s.records().is_empty(), "nothing was checked or logged");
    // The budget of one call is whole: the same call as JSON-RPC 2.0 is served.
    let (status, _, body) = s
        .http("POST", "/mcp", &headers, &call(r#""jsonrpc":"2\u002e0","#))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"result\""), "{body}");
}

/// The guard stands in front of the whole protected router, its fallback included; only the
/// metadata route answers without a ticket.
#[tokio::test]
async fn every_path_but_the_metadata_needs_a_ticket() {
    let s = server().await;
    for (method, path) in [
        ("POST", "/mcp"),
        ("POST", "/mcp/"),
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("POST", "/nope"),
        ("GET", "/"),
        ("OPTIONS", "/mcp"),
    ] {
        let (status, head, _) = s.http(method, path, &[], INITIALIZE).await;
        assert_eq!(status, 401, "{method} {path}: {head}");
        assert!(
            head.contains("www-authenticate: bearer resource_metadata="),
            "{head}"
        );
    }
    let (status, _, body) = s
        .http("GET", "/.well-known/oauth-protected-resource/mcp", &[], "")
        .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("metadata");
    assert_eq!(v["resource"], format!("http://{}/mcp", s.addr));
}

/// The headers of a request in a session.
fn h<'a>(auth: &'a str, sid: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("authorization", auth),
        ("mcp-session-id", sid),
        ("mcp-protocol-version", "2025-06-18"),
    ]
}

/// The session id a response handed out, from its (lower-cased) head.
fn session_of(head: &str) -> Option<String> {
    head.lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .map(|v| v.trim().to_string())
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// Sessions belong to the chain that created them (docs §14.4): a hostile holder of another
/// ticket from the same root, even a child of the creator's, can neither use nor delete them.
#[tokio::test]
async fn a_session_belongs_to_the_ticket_chain_that_created_it() {
    let s = server().await;
    let agent = s.agent();
    let a = format!("Bearer {}", agent.as_str());
    // Another chain: a child of the same ticket, narrowed to one tool.
    let child = agent
        .attenuate()
        .tool("list_invoices")
        .sign()
        .expect("attenuate");
    let b = format!("Bearer {}", child.as_str());
    let (status, head, body) = s
        .http("POST", "/mcp", &[("authorization", &a)], INITIALIZE)
        .await;
    assert_eq!(status, 200, "{body}");
    let sid = session_of(&head).expect("the server is stateful: a session id");
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let with = |auth: &str| {
        vec![
            ("authorization", auth.to_string()),
            ("mcp-session-id", sid.clone()),
            ("mcp-protocol-version", "2025-06-18".to_string()),
        ]
    };
    let pairs = |v: &[(&'static str, String)]| -> Vec<(&'static str, String)> { v.to_vec() };
    async fn send(
        s: &Server,
        method: &str,
        h: &[(&'static str, String)],
        body: &str,
    ) -> (u16, String, String) {
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.http(method, "/mcp", &h, body).await
    }
    // The other chain: 404 on every use, the delete included, and nothing happens.
    for (method, body) in [("POST", list), ("GET", ""), ("DELETE", "")] {
        let (status, _, reply) = send(&s, method, &pairs(&with(&b)), body).await;
        assert_eq!(status, 404, "{method} by another chain: {reply}");
    }
    // A made-up session id is not found either.
    let mut forged = with(&a);
    forged[1].1 = "00000000-0000-4000-8000-000000000000".into();
    let (status, _, _) = send(&s, "POST", &forged, list).await;
    assert_eq!(status, 404);
    // Each attempt is audited, with the other chain's identity and the code.
    let hijacks: Vec<serde_json::Value> = s
        .audit
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("record"))
        .filter(|r: &serde_json::Value| r["code"] == "session_not_found")
        .collect();
    assert_eq!(
        hijacks.len(),
        4,
        "three by the other chain, one forged id: {hijacks:#?}"
    );
    let by_child = |r: &&serde_json::Value| r["chain"].as_array().map(Vec::len) == Some(2);
    assert_eq!(hijacks.iter().filter(by_child).count(), 3);
    assert_eq!(hijacks[2]["method"], "DELETE");
    // The creator's session is intact.
    let (status, _, reply) = send(&s, "POST", &with(&a), list).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("create_refund"), "{reply}");
    // The creator ends it; afterwards it is gone for everyone.
    let (status, _, _) = send(&s, "DELETE", &with(&a), "").await;
    assert!((200..300).contains(&status), "{status}");
    let (status, _, _) = send(&s, "POST", &with(&a), list).await;
    assert_eq!(status, 404);
}

/// One holder cannot fill the session table: the tickets of one issuance (the authority block
/// and every ticket attenuated from it offline) hold a bounded number of sessions, and a full
/// table refuses `initialize` before the server creates a session (docs §14.4).
#[tokio::test]
async fn one_issuance_cannot_fill_the_session_table() {
    let mut c = config();
    c.max_sessions_per_ticket = 2;
    let s = server_with(c).await;
    let agent = s.agent();
    let init = |t: &Ticket| format!("Bearer {}", t.as_str());
    for i in 0..2 {
        let child = agent
            .attenuate()
            .tool("list_invoices")
            .sign()
            .expect("child");
        let (status, head, body) = s
            .http(
                "POST",
                "/mcp",
                &[("authorization", &init(&child))],
                INITIALIZE,
            )
            .await;
        assert_eq!(status, 200, "session {i}: {body}");
        assert!(session_of(&head).is_some());
    }
    let (status, head, body) = s
        .http(
            "POST",
            "/mcp",
            &[("authorization", &init(&agent))],
            INITIALIZE,
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("retry-after: 60"), "{head}");
    assert!(session_of(&head).is_none(), "no session created: {head}");
    assert!(body.contains("too many open sessions"), "{body}");
    // Another issuance is unaffected.
    let other = Ticket::mint(&s.key, "other-agent", "bob")
        .tool("list_invoices")
        .expires_at(now() + 600)
        .resource(s.url.clone())
        .sign()
        .expect("mint");
    let (status, _, body) = s
        .http(
            "POST",
            "/mcp",
            &[("authorization", &init(&other))],
            INITIALIZE,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// A 404 from a path no route serves is not the server forgetting a session (found by
/// review): a holder answered 404 (or a DELETE's 200) on another path, session header set,
/// freed its slot while the server kept the session, and opened sessions past its share.
/// Only an answer from the endpoint that created the session ends it in the layer.
#[tokio::test]
async fn an_answer_from_another_path_frees_no_session_slot() {
    let (s, auth, sessions) = two_sessions_of_one_ticket().await;
    let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_invoices","arguments":{"org":"acme"}}}"#;
    for session in &sessions {
        for (method, body) in [("GET", ""), ("DELETE", ""), ("POST", call)] {
            let (status, _, answer) = s
                .http(
                    method,
                    "/nope",
                    &[("authorization", &auth), ("mcp-session-id", session)],
                    body,
                )
                .await;
            assert_eq!(status, 404, "{method} /nope: {answer}");
        }
    }
    let (status, _, body) = s.initialize(&auth).await;
    assert_eq!(status, 503, "a third session is refused: {body}");
}

/// A server whose tickets may hold 2 sessions per issuance, a ticket's `Authorization`
/// value, and the two sessions it opened.
async fn two_sessions_of_one_ticket() -> (Server, String, Vec<String>) {
    let mut c = config();
    c.max_sessions_per_ticket = 2;
    let s = server_with(c).await;
    let auth = format!("Bearer {}", s.agent().as_str());
    let mut sessions = Vec::new();
    for i in 0..2 {
        let (status, head, body) = s.initialize(&auth).await;
        assert_eq!(status, 200, "session {i}: {body}");
        sessions.push(session_of(&head).expect("a session"));
    }
    (s, auth, sessions)
}

/// A 404 that answers the message is not the server forgetting the session (found by review):
/// rmcp serves a request of protocol 2026-07-28 statelessly even with a session header, and
/// answers an unknown method there 404 with a JSON-RPC error; freeing the slot on it let one
/// ticket open 72 sessions against a quota of 32. A session the server did end (deleted at
/// another path of the same endpoint) is forgotten on the server's own plain 404.
#[tokio::test]
async fn only_the_servers_unknown_session_answer_frees_a_slot() {
    let (s, auth, sessions) = two_sessions_of_one_ticket().await;
    let init = || s.initialize(&auth);
    let ping = r#"{"jsonrpc":"2.0","id":9,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let (status, head, body) = s
        .http(
            "POST",
            "/mcp",
            &[
                ("authorization", &auth),
                ("mcp-session-id", &sessions[0]),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "ping"),
            ],
            ping,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let (status, _, body) = init().await;
    assert_eq!(status, 503, "the slot is still held: {body}");
    // The server ends the session (a DELETE at another path of its endpoint): the layer
    // still holds the binding, until the server's own 404 for the session at its path.
    let (status, _, body) = s
        .http(
            "DELETE",
            "/mcp/",
            &[("authorization", &auth), ("mcp-session-id", &sessions[0])],
            "",
        )
        .await;
    assert!((200..300).contains(&status), "{status} {body}");
    let (status, _, body) = init().await;
    assert_eq!(status, 503, "not yet forgotten: {body}");
    let (status, head, body) = s
        .http(
            "POST",
            "/mcp",
            &[
                ("authorization", &auth),
                ("mcp-session-id", &sessions[0]),
                ("mcp-protocol-version", "2025-06-18"),
            ],
            r#"{"jsonrpc":"2.0","id":10,"method":"ping"}"#,
        )
        .await;
    assert_eq!(status, 404, "{head} {body}");
    let (status, _, body) = init().await;
    assert_eq!(status, 200, "forgotten after the server's 404: {body}");
}

/// Concurrent `initialize` requests cannot overshoot an issuance's share of the table: room
/// is reserved, under the lock that counts bindings, before the server sees each request.
#[tokio::test]
async fn concurrent_sessions_cannot_overshoot_the_quota() {
    let mut c = config();
    c.max_sessions_per_ticket = 3;
    let s = server_with(c).await;
    let agent = s.agent();
    let auth = format!("Bearer {}", agent.as_str());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let (addr, auth) = (s.addr, auth.clone());
        tasks.spawn(async move {
            http(
                addr,
                "POST",
                "/mcp",
                &[("authorization", &auth)],
                INITIALIZE,
            )
            .await
            .0
        });
    }
    let statuses = tasks.join_all().await;
    let created = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!((created, refused), (3, 21), "{statuses:?}");
}

/// Methods beyond the lifecycle and tools are admitted only by configuration, with the scopes
/// it names; every request is audited; a tool scope is checked before any spend (docs §14.5).
#[tokio::test]
async fn methods_and_scopes_come_from_the_configuration() {
    let s = server_with(
        config()
            .allow_method("resources/list")
            .method_scope("prompts/list", "invoices:prompts")
            .tool_scope("create_refund", "invoices:refund"),
    )
    .await;
    let plain = s.agent();
    let scoped = Ticket::mint(&s.key, "billing-agent", "alice")
        .tool("create_refund")
        .scope("invoices:refund")
        .scope("invoices:prompts")
        .row("*:org=acme".parse().expect("row"))
        .budget("1/hour".parse().expect("budget"))
        .expires_at(now() + 3600)
        .resource(s.url.clone())
        .sign()
        .expect("mint");
    let p = format!("Bearer {}", plain.as_str());
    let q = format!("Bearer {}", scoped.as_str());
    let rpc = |method: &str, params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":5,"method":"{method}","params":{params}}}"#)
    };
    // Each ticket in a session of its own (the example server is stateful).
    let mut sessions = Vec::new();
    for auth in [&p, &q] {
        let (_, head, _) = s
            .http("POST", "/mcp", &[("authorization", auth)], INITIALIZE)
            .await;
        sessions.push(session_of(&head).expect("session"));
    }
    let (sp, sq) = (sessions[0].as_str(), sessions[1].as_str());
    let (p, q) = (p.as_str(), q.as_str());
    s.audit.drain();
    // Admitted for any valid ticket, and filtered by it: this one grants no resource.
    let (status, _, body) = s
        .http("POST", "/mcp", &h(p, sp), &rpc("resources/list", "{}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"resources\":[]"),
        "nothing granted, nothing listed: {body}"
    );
    // Not configured: refused, no step-up challenge (no scope could help).
    for (method, params) in [
        ("resources/templates/list", "{}"),
        ("resources/subscribe", r#"{"uri":"file:///etc/passwd"}"#),
        (
            "completion/complete",
            r#"{"ref":{"type":"ref/prompt","name":"x"},"argument":{"name":"a","value":"b"}}"#,
        ),
        ("logging/setLevel", r#"{"level":"debug"}"#),
    ] {
        let (status, head, body) = s
            .http("POST", "/mcp", &h(q, sq), &rpc(method, params))
            .await;
        assert_eq!(status, 403, "{method}: {body}");
        assert!(body.contains("method_not_allowed"), "{method}: {body}");
        assert!(!head.contains("www-authenticate"), "{method}: {head}");
    }
    // A scope the ticket lacks: 403 insufficient_scope naming it (MCP step-up).
    let (status, head, body) = s
        .http("POST", "/mcp", &h(p, sp), &rpc("prompts/list", "{}"))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("scope_missing"), "{body}");
    assert!(
        head.contains("error=\"insufficient_scope\", scope=\"invoices:prompts\""),
        "{head}"
    );
    let (status, _, body) = s
        .http("POST", "/mcp", &h(q, sq), &rpc("prompts/list", "{}"))
        .await;
    assert_eq!(status, 200, "the scoped ticket passes: {body}");
    // A tool scope: refused before the ticket's budget is touched.
    let refund = rpc(
        "tools/call",
        r#"{"name":"create_refund","arguments":{"org":"acme","id":1,"amount":5}}"#,
    );
    let (status, head, body) = s.http("POST", "/mcp", &h(p, sp), &refund).await;
    assert_eq!(status, 403, "{body}");
    assert!(head.contains("scope=\"invoices:refund\""), "{head}");
    let (status, _, body) = s.http("POST", "/mcp", &h(q, sq), &refund).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("refunded"), "{body}");
    // Every request audited, with its method, target, identity and verdict.
    let records = s.records();
    let find = |method: &str, decision: &str| {
        records
            .iter()
            .find(|r| r["method"] == method && r["decision"] == decision)
            .unwrap_or_else(|| panic!("no {decision} record for {method}: {records:#?}"))
    };
    assert_eq!(find("resources/list", "allow")["agent"], "billing-agent");
    let subscribe = find("resources/subscribe", "deny");
    assert_eq!(subscribe["target"], "file:///etc/passwd");
    assert_eq!(subscribe["code"], "method_not_allowed");
    find("resources/templates/list", "deny");
    find("completion/complete", "deny");
    assert_eq!(find("prompts/list", "deny")["code"], "scope_missing");
    find("prompts/list", "allow");
    let refused = find("tools/call", "deny");
    assert_eq!(refused["target"], "create_refund");
    assert_eq!(refused["code"], "scope_missing");
    assert_eq!(
        records
            .iter()
            .filter(|r| r["tool"] == "create_refund" && r["decision"] == "allow")
            .count(),
        1,
        "the one budget unit went to the scoped call"
    );
    // The metadata advertises what the configuration requires.
    let (_, _, body) = s
        .http("GET", "/.well-known/oauth-protected-resource/mcp", &[], "")
        .await;
    let meta: serde_json::Value = serde_json::from_str(&body).expect("metadata");
    assert_eq!(
        meta["scopes_supported"],
        serde_json::json!(["invoices:prompts", "invoices:refund"])
    );
    assert_eq!(
        meta["authorization_servers"],
        serde_json::json!(["https://auth.example"])
    );
}

/// The layer refuses to start unsafe: no resource on the verifier (tickets could not be
/// checked for their audience), no authorization server, a scope that would break the header.
#[test]
fn protect_refuses_an_unsafe_configuration() {
    let key = SigningKey::from_seed(&[22u8; 32]);
    let router = || axum::Router::new();
    let no_resource = Arc::new(captix::Verifier::builder(KeySet::from(key.public())).build());
    let e = captix_mcp::protect(router(), no_resource, config()).expect_err("no resource");
    assert!(e.to_string().contains("no resource"), "{e}");
    let verifier = Arc::new(
        captix::Verifier::builder(KeySet::from(key.public()))
            .resource("https://mcp.example/x")
            .build(),
    );
    let mut none = config();
    none.authorization_servers.clear();
    assert!(captix_mcp::protect(router(), verifier.clone(), none).is_err());
    let quote = config().tool_scope("t", "a\" resource_metadata=\"http://evil.example");
    assert!(captix_mcp::protect(router(), verifier.clone(), quote).is_err());
    assert!(captix_mcp::protect(router(), verifier, config()).is_ok());
}

/// Resources and prompts are granted by the ticket and checked on every read and get (spec
/// §4.11, docs §14.5): the lists show only what it allows, a read outside its grants or its
/// attenuation is 403, a URI that could leave a prefix is 400, the routing header must name
/// the same URI, and every request is audited with its target.
#[tokio::test]
async fn resources_and_prompts_are_granted_by_the_ticket() {
    let s = server().await;
    let t = Ticket::mint(&s.key, "docs-agent", "alice")
        .uri("invoices://acme/*")
        .uri("invoices://globex/summary")
        .prompt("triage")
        .prompt("refund_policy")
        .expires_at(now() + 3600)
        .resource(s.url.clone())
        .sign()
        .expect("mint");
    let sub = t
        .attenuate()
        .uri("invoices://acme/*")
        .prompt("triage")
        .sign()
        .expect("attenuate");
    let read = |uri: &str| rmcp::model::ReadResourceRequestParams::new(uri);
    let prompt = |name: &str| rmcp::model::GetPromptRequestParams::new(name);
    let uris = |list: Vec<rmcp::model::Resource>| -> Vec<String> {
        list.into_iter().map(|r| r.uri).collect()
    };

    let c = s.client(t.as_str()).await;
    let listed = uris(c.list_all_resources().await.expect("list"));
    assert_eq!(
        listed,
        vec!["invoices://acme/summary", "invoices://globex/summary"]
    );
    let r = c
        .read_resource(read("invoices://globex/summary"))
        .await
        .expect("granted");
    assert!(format!("{:?}", r.contents).contains("globex"), "{r:?}");
    let e = c
        .read_resource(read("invoices://initech/summary"))
        .await
        .expect_err("not granted");
    assert!(e.to_string().contains("Insufficient scope"), "403: {e}");
    let mut prompts: Vec<String> = c
        .list_all_prompts()
        .await
        .expect("prompts")
        .into_iter()
        .map(|p| p.name)
        .collect();
    prompts.sort();
    assert_eq!(prompts, vec!["refund_policy", "triage"]);
    // No tool is granted: the tool list is empty and a call is denied.
    assert!(c.list_all_tools().await.expect("tools").is_empty());

    // The sub-agent: only acme's resources, only the triage prompt.
    let c = s.client(sub.as_str()).await;
    assert_eq!(
        uris(c.list_all_resources().await.expect("list")),
        vec!["invoices://acme/summary"]
    );
    let e = c
        .read_resource(read("invoices://globex/summary"))
        .await
        .expect_err("outside the attenuation");
    assert!(e.to_string().contains("Insufficient scope"), "403: {e}");
    let listed: Vec<String> = c
        .list_all_prompts()
        .await
        .expect("prompts")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(listed, vec!["triage"]);
    c.get_prompt(prompt("triage"))
        .await
        .expect("granted prompt");
    let e = c
        .get_prompt(prompt("refund_policy"))
        .await
        .expect_err("outside the attenuation");
    assert!(e.to_string().contains("Insufficient scope"), "403: {e}");

    // Raw HTTP: the status codes, the path escape, the routing header.
    let auth = format!("Bearer {}", sub.as_str());
    let (_, head, _) = s
        .http("POST", "/mcp", &[("authorization", &auth)], INITIALIZE)
        .await;
    let sid = session_of(&head).expect("session");
    let rpc = |method: &str, params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":7,"method":"{method}","params":{params}}}"#)
    };
    let (status, head, body) = s
        .http(
            "POST",
            "/mcp",
            &h(&auth, &sid),
            &rpc("resources/read", r#"{"uri":"invoices://globex/summary"}"#),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        head.contains("insufficient_scope"),
        "a wider ticket could help: {head}"
    );
    assert!(body.contains("uri_not_granted"), "{body}");
    let (status, _, body) = s
        .http(
            "POST",
            "/mcp",
            &h(&auth, &sid),
            &rpc(
                "resources/read",
                r#"{"uri":"invoices://acme/../globex/summary"}"#,
            ),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("args_malformed"), "{body}");
    let mut headers = h(&auth, &sid).to_vec();
    headers.push(("mcp-method", "resources/read"));
    headers.push(("mcp-name", "invoices://acme/summary"));
    let (status, _, body) = s
        .http(
            "POST",
            "/mcp",
            &headers,
            &rpc("resources/read", r#"{"uri":"invoices://globex/summary"}"#),
        )
        .await;
    assert_eq!(status, 400, "the header names another URI: {body}");
    let (status, _, body) = s
        .http(
            "POST",
            "/mcp",
            &h(&auth, &sid),
            &rpc("resources/read", r#"{"name":"x"}"#),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("resources/read needs params.uri"), "{body}");
    let (status, _, body) = s
        .http(
            "POST",
            "/mcp",
            &headers,
            &rpc("resources/read", r#"{"uri":"invoices://acme/summary"}"#),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("acme"), "{body}");

    // Audited: who read what, allowed or denied.
    let records = s.records();
    let reads: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r["method"] == "resources/read" && r["agent"] == "docs-agent")
        .map(|r| {
            (
                r["target"].as_str().unwrap_or_default(),
                r["decision"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        reads.contains(&("invoices://globex/summary", "allow")),
        "{reads:?}"
    );
    assert!(
        reads.contains(&("invoices://initech/summary", "deny")),
        "{reads:?}"
    );
    assert!(
        reads.contains(&("invoices://acme/../globex/summary", "deny")),
        "{reads:?}"
    );
    assert!(
        records.iter().any(|r| r["method"] == "prompts/get"
            && r["target"] == "refund_policy"
            && r["code"] == "prompt_not_granted"),
        "{records:#?}"
    );
}

/// A request reuses the id of one in flight in its session: the server would answer the first
/// on the second's stream, past the layer's list filters (found by review: a `resources/list`
/// and a `ping` with one id leaked the unfiltered list). The second is refused, and the id is
/// free again once the first has answered. Resuming a stream (`Last-Event-ID`) would replay
/// what was sent unfiltered: refused too (docs §14.2, §14.4).
#[tokio::test]
async fn a_request_cannot_take_the_stream_of_another_in_flight() {
    use axum::response::IntoResponse;
    let key = SigningKey::from_seed(&[22u8; 32]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let url = format!("http://{addr}/mcp");
    let verifier = captix::Verifier::builder(KeySet::from(key.public()))
        .resource(url.clone())
        .build();
    // A slow inner server: it creates a session on initialize and answers anything else after
    // 300 ms, with the request's id.
    let inner = axum::Router::new().route(
        "/mcp",
        axum::routing::post(|body: String| async move {
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            if v["method"] == "initialize" {
                return (
                    [("mcp-session-id", "s-1")],
                    r#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_string(),
                )
                    .into_response();
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            serde_json::json!({ "jsonrpc": "2.0", "id": v["id"], "result": {} })
                .to_string()
                .into_response()
        }),
    );
    let app = captix_mcp::protect(inner, Arc::new(verifier), config()).expect("protect");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let t = Ticket::mint(&key, "a", "u")
        .tool("list_invoices")
        .expires_at(now() + 600)
        .resource(url.clone())
        .sign()
        .expect("mint");
    let auth = format!("Bearer {}", t.as_str());
    let (status, head, _) = http(
        addr,
        "POST",
        "/mcp",
        &[("authorization", &auth)],
        INITIALIZE,
    )
    .await;
    assert_eq!(status, 200);
    let sid = session_of(&head).expect("session");
    let ping = |id: &str| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
    let headers = h(&auth, &sid);
    let first = {
        let (auth, sid, body) = (auth.clone(), sid.clone(), ping("7"));
        tokio::spawn(async move { http(addr, "POST", "/mcp", &h(&auth, &sid), &body).await.0 })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for same in ["7", "7.0", "7e0"] {
        let (status, _, body) = http(addr, "POST", "/mcp", &headers, &ping(same)).await;
        assert_eq!(status, 400, "{same}: {body}");
        assert!(body.contains("in flight"), "{body}");
    }
    let (status, _, _) = http(addr, "POST", "/mcp", &headers, &ping("\"7\"")).await;
    assert_eq!(status, 200, "the string \"7\" is another id");
    assert_eq!(first.await.expect("first"), 200);
    let (status, _, _) = http(addr, "POST", "/mcp", &headers, &ping("7")).await;
    assert_eq!(status, 200, "free again once answered");
    let mut resume = headers.to_vec();
    resume.push(("last-event-id", "0"));
    let (status, _, body) = http(addr, "GET", "/mcp", &resume, "").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Last-Event-ID"), "{body}");
    // A request whose client went away was never answered on its stream: the server may
    // still answer it, on the stream of the next request with its id (found by the second
    // review). The id stays taken while the session lives.
    {
        let mut raw = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let body = ping("8");
        let head = format!(
            "POST /mcp HTTP/1.1\r\nhost: {addr}\r\nauthorization: {auth}\r\nmcp-session-id: {sid}\r\n\
             content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        );
        raw.write_all(head.as_bytes()).await.expect("write");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    } // dropped: the connection is reset before the answer
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (status, _, body) = http(addr, "POST", "/mcp", &headers, &ping("8")).await;
    assert_eq!(status, 400, "an unanswered id is not reused: {body}");
    // Authentication first: a ticket that is not valid learns nothing of the session.
    let bad = [
        ("authorization", "Bearer captix1_garbage"),
        ("mcp-session-id", sid.as_str()),
    ];
    let (status, _, _) = http(addr, "POST", "/mcp", &bad, &ping("8")).await;
    assert_eq!(status, 401);
    let mut named = bad.to_vec();
    named.push(("mcp-method", "tools/list"));
    let (status, _, _) = http(addr, "POST", "/mcp", &named, &ping("9")).await;
    assert_eq!(status, 401, "before the routing headers are compared");
    let call =
        r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"list_invoices"}}"#;
    let (status, _, _) = http(addr, "POST", "/mcp", &bad, call).await;
    assert_eq!(status, 401, "before the id is looked up");
}

/// A refused URI is not a way to write to the audit log without a ticket (found by review: a
/// 900 KB URI with a garbage ticket was answered 400 and its text logged whole): the ticket is
/// checked first (401), and what is recorded is bounded.
#[tokio::test]
async fn a_long_refused_uri_neither_skips_authentication_nor_fills_the_log() {
    let s = server().await;
    let uri = format!("invoices://acme/{}", "A".repeat(900_000));
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{{"uri":"{uri}"}}}}"#
    );
    s.records();
    let (status, _, answer) = s
        .http(
            "POST",
            "/mcp",
            &[("authorization", "Bearer captix1_garbage")],
            &body,
        )
        .await;
    assert_eq!(status, 401, "authentication first");
    assert!(answer.len() < 4096, "{}", answer.len());
    let ticket = Ticket::mint(&s.key, "a", "u")
        .uri("invoices://acme/*")
        .expires_at(now() + 600)
        .resource(s.url.clone())
        .sign()
        .expect("mint");
    let auth = format!("Bearer {}", ticket.as_str());
    let (status, _, answer) = s
        .http("POST", "/mcp", &[("authorization", &auth)], &body)
        .await;
    assert_eq!(status, 400, "too long a URI");
    assert!(answer.len() < 4096, "{}", answer.len());
    for r in s.records() {
        assert!(
            r.to_string().len() < 4096,
            "a bounded record: {}",
            r.to_string().len()
        );
    }
}

/// The body is read only for a valid ticket, within the configured deadline and the declared
/// length's bound: a caller without a ticket, or a slow one, holds no buffer open (review of
/// 2026-12-01: the npm layer buffered 1 MiB per unauthenticated request; so did this one).
#[tokio::test]
async fn a_body_is_read_only_for_a_valid_ticket_and_in_time() {
    let mut config = config();
    config.body_deadline = std::time::Duration::from_millis(300);
    let s = server_with(config).await;
    // Sends the head declaring `declared` bytes and only `sent` of them, then waits.
    async fn partial(
        addr: std::net::SocketAddr,
        auth: &str,
        declared: usize,
        sent: &str,
    ) -> (u16, String) {
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\naccept: application/json, text/event-stream\r\ncontent-type: application/json\r\nauthorization: {auth}\r\ncontent-length: {declared}\r\n\r\n{sent}"
        );
        c.write_all(head.as_bytes()).await.expect("write");
        let (status, _, body) = answer(&mut c).await;
        (status, body)
    }
    let start = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"#;
    // No valid ticket: 401 without waiting for the rest of the body (a read would end in 408).
    let (status, body) = partial(s.addr, "Bearer captix1_garbage", 1000, start).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"id\":null"), "{body}");
    let ticket = Ticket::mint(&s.key, "a", "u")
        .tool("list_invoices")
        .expires_at(now() + 600)
        .resource(s.url.clone())
        .sign()
        .expect("mint");
    let auth = format!("Bearer {}", ticket.as_str());
    // A valid ticket, a body that never completes: 408 once the deadline passes.
    let (status, body) = partial(s.addr, &auth, 1000, start).await;
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("-32600"), "{body}");
    // A declared length over the bound: 413 before anything is read.
    let (status, body) = partial(s.addr, &auth, 2 << 20, "").await;
    assert_eq!(status, 413, "{body}");
    // A chunked body that breaks off in a malformed chunk is not "too large": 400, as the npm
    // adapters answer a body that could not be read.
    let mut c = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\naccept: application/json, text/event-stream\r\ncontent-type: application/json\r\nauthorization: {auth}\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\nzz\r\n"
    );
    c.write_all(head.as_bytes()).await.expect("write");
    let (status, _, body) = answer(&mut c).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("could not be read"), "{body}");
}

/// The server's policy over HTTP (docs §16): a tool whose scope the ticket lacks is not listed
/// and its call gets 403 `insufficient_scope` naming the scope; a rate limit gets 429 with
/// `Retry-After`; the metadata advertises the policy's scopes; the audit log says which
/// layer refused.
#[tokio::test]
async fn the_server_policy_answers_403_and_429() {
    let policy = captix::Policy::from_toml(
        "[tool.create_refund]\nscopes = [\"invoices:write\"]\n\
         [tool.list_invoices]\nlimits = [\"2/hour per agent\"]\n",
    )
    .expect("policy");
    let s = server_built(config(), move |b| b.policy(policy)).await;
    let plain = s.agent();
    let c = s.client(plain.as_str()).await;
    let mut names: Vec<String> = c
        .list_all_tools()
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["get_invoice", "list_invoices"],
        "no create_refund without its scope"
    );
    drop(c);
    let auth = format!("Bearer {}", plain.as_str());
    let rpc = |tool: &str, args: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
        )
    };
    let (status, head, body) = s
        .http(
            "POST",
            "/mcp",
            &[("authorization", &auth)],
            &rpc("create_refund", r#"{"org":"acme","id":1,"amount":5}"#),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        head.contains("error=\"insufficient_scope\", scope=\"invoices:write\""),
        "{head}"
    );
    assert!(body.contains("scope_missing"), "{body}");
    let (_, head, _) = s
        .http("POST", "/mcp", &[("authorization", &auth)], INITIALIZE)
        .await;
    let sid = session_of(&head).expect("session");
    let list = rpc("list_invoices", r#"{"org":"acme"}"#);
    for _ in 0..2 {
        let (status, _, body) = s.http("POST", "/mcp", &h(&auth, &sid), &list).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, head, body) = s.http("POST", "/mcp", &h(&auth, &sid), &list).await;
    assert_eq!(status, 429, "{body}");
    // Half an hour (2 an hour), less the whole seconds the calls took: a second boundary
    // between the first call and this one makes it 1799.
    let retry: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("retry-after");
    assert!((1795..=1800).contains(&retry), "{head}");
    assert!(
        body.contains("rate_limited") && body.contains("per agent"),
        "{body}"
    );
    let (_, _, meta) = s
        .http("GET", "/.well-known/oauth-protected-resource/mcp", &[], "")
        .await;
    assert!(meta.contains("invoices:write"), "{meta}");
    let records = s.records();
    let limited = records
        .iter()
        .find(|r| r["code"] == "rate_limited")
        .expect("audited");
    assert!(
        limited["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("server policy"),
        "{limited}"
    );
}
