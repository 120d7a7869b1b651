//! The issuer end to end (docs §17): a machine agent discovers the authorization server from
//! the server's RFC 9728 metadata, gets a ticket with client_credentials, lists and calls
//! tools within and outside its grant, and is revoked.

use std::sync::Arc;
use std::time::Duration;

use captix::revocation::FileRevocations;
use captix::{KeySet, SigningKey};

use super::{call, http};

/// The issuer and the invoices server on loopback, sharing a revocation file.
struct Pair {
    server: std::net::SocketAddr,
    issuer_url: String,
    secret: String,
    dir: std::path::PathBuf,
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn pair() -> Pair {
    let dir = std::env::temp_dir().join(format!("captix-e2e-issuer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let key = SigningKey::from_seed(&[61; 32]);
    key.save(&dir.join("issuer.key")).expect("key");
    let revoked = dir.join("revoked.txt");
    std::fs::write(&revoked, "").expect("revocation file");

    let as_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let rs_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let issuer_url = format!("http://{}", as_listener.local_addr().expect("addr"));
    let server = rs_listener.local_addr().expect("addr");
    let resource = format!("http://{server}/mcp");

    // The issuer: the example's own configuration, pointed at these ports.
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/issuer.toml"))
        .expect("examples/invoices/issuer.toml");
    let text = example
        .replace("http://127.0.0.1:8789", &issuer_url)
        .replace("http://127.0.0.1:8788/mcp", &resource);
    std::fs::write(dir.join("issuer.toml"), text).expect("config");
    let issuer = captix_issuer::Issuer::open(&dir.join("issuer.toml")).expect("issuer");
    let secret = issuer
        .new_client_secret("billing-bot")
        .expect("secret")
        .to_string();
    let router = captix_issuer::router(Arc::new(issuer));
    tokio::spawn(async move { axum::serve(as_listener, router).await });

    // The MCP server: trusts the issuer's public key, names it as its authorization server,
    // reads revocations from the file the issuer writes.
    let verifier = captix::Verifier::builder(KeySet::from(key.public()))
        .resource(resource)
        .budgets(Arc::new(captix::budget::MemoryBudgets::new()))
        .revocations(Arc::new(
            FileRevocations::open(&revoked, Duration::from_millis(200)).expect("revocations"),
        ))
        .build();
    let app = captix_example_invoices::app(
        Arc::new(verifier),
        captix_mcp::Config::new(issuer_url.clone()),
    )
    .expect("app");
    tokio::spawn(async move { axum::serve(rs_listener, app).await });
    Pair {
        server,
        issuer_url,
        secret,
        dir,
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON body: {body}"))
}

/// An HTTP request to the issuer (its address is in its URL).
async fn to_issuer(
    p: &Pair,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let addr = p
        .issuer_url
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let method = if body.is_empty() { "GET" } else { "POST" };
    http(addr, method, path, headers, body).await
}

#[tokio::test]
async fn a_machine_agent_from_discovery_to_revocation() {
    let p = pair().await;

    // 1. Discovery: the server's RFC 9728 metadata names the issuer; the issuer's RFC 8414
    //    metadata names its token endpoint.
    let (status, _, body) = http(
        p.server,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let prm = json(&body);
    assert_eq!(
        prm["authorization_servers"],
        serde_json::json!([p.issuer_url])
    );
    let (status, _, body) = to_issuer(&p, "/.well-known/oauth-authorization-server", &[], "").await;
    assert_eq!(status, 200);
    let asm = json(&body);
    assert_eq!(asm["issuer"], p.issuer_url.as_str());
    let token_path = asm["token_endpoint"]
        .as_str()
        .and_then(|t| t.strip_prefix(&p.issuer_url))
        .expect("token endpoint on the issuer")
        .to_string();

    // 2. client_credentials, with the server as the RFC 8707 resource.
    let form = format!(
        "grant_type=client_credentials&client_id=billing-bot&client_secret={}&resource={}",
        p.secret,
        form_urlencoded::byte_serialize(prm["resource"].as_str().expect("resource").as_bytes())
            .collect::<String>()
    );
    let form_type = [("content-type", "application/x-www-form-urlencoded")];
    let (status, _, body) = to_issuer(&p, &token_path, &form_type, &form).await;
    assert_eq!(status, 200, "{body}");
    let token = json(&body);
    assert_eq!(token["scope"], "invoices:read");
    let ticket = token["access_token"].as_str().expect("ticket").to_string();

    // 3. The agent lists what it may call and calls within and outside its grant.
    let url = format!("http://{}/mcp", p.server);
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url)
            .auth_header(ticket.clone());
    let c = rmcp::ServiceExt::serve(
        (),
        rmcp::transport::StreamableHttpClientTransport::from_config(config),
    )
    .await
    .expect("client connects");
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
        ["get_invoice", "list_invoices"],
        "create_refund is not in its scopes"
    );
    c.call_tool(call("list_invoices", serde_json::json!({ "org": "acme" })))
        .await
        .expect("within the grant");
    let other_org = c
        .call_tool(call(
            "list_invoices",
            serde_json::json!({ "org": "globex" }),
        ))
        .await
        .expect_err("the row template gave it org acme only");
    assert!(
        format!("{other_org:?}").contains("InsufficientScope"),
        "{other_org:?}"
    );
    let refund = c
        .call_tool(call(
            "create_refund",
            serde_json::json!({ "org": "acme", "id": 1, "amount": 5 }),
        ))
        .await
        .expect_err("not granted");
    assert!(
        format!("{refund:?}").contains("InsufficientScope"),
        "{refund:?}"
    );

    // 4. Revocation (RFC 7009): the next call is refused, 401, within a second or so.
    let revoke_path = asm["revocation_endpoint"]
        .as_str()
        .and_then(|t| t.strip_prefix(&p.issuer_url))
        .expect("revocation endpoint")
        .to_string();
    let form = format!(
        "token={ticket}&client_id=billing-bot&client_secret={}",
        p.secret
    );
    let (status, _, body) = to_issuer(&p, &revoke_path, &form_type, &form).await;
    assert_eq!(status, 200, "{body}");
    let list = r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#;
    let bearer = format!("Bearer {ticket}");
    let mut last = 0;
    for _ in 0..100 {
        let (status, _, _) = http(
            p.server,
            "POST",
            "/mcp",
            &[("authorization", &bearer)],
            list,
        )
        .await;
        last = status;
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, 401, "the revoked ticket is refused");
    drop(c);
}
