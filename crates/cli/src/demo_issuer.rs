//! `captix demo`, last part: the issuer over real HTTP on loopback (docs §17), with the
//! invoices example's policy.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::sync::Arc;

use captix::revocation::FileRevocations;
use captix::{KeySet, SigningKey, Verifier};

use crate::demo::{check, heading};
use crate::error::CliError;
use crate::render;

const POLICY: &str = include_str!("../../../examples/invoices/issuer.toml");
const RESOURCE: &str = "http://127.0.0.1:8788/mcp";

/// A temporary folder, removed on drop.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(o: &mut String) -> Result<(), CliError> {
    let io = |e: &dyn std::fmt::Display| CliError::io(format!("demo issuer: {e}"));
    let dir = Dir(std::env::temp_dir().join(format!("captix-demo-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).map_err(|e| io(&e))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| io(&e))?;
    let addr = listener.local_addr().map_err(|e| io(&e))?;
    let url = format!("http://{addr}");
    let key = SigningKey::generate();
    key.save(&dir.0.join("issuer.key"))?;
    let config = POLICY
        .replace("http://127.0.0.1:8789", &url)
        .replace("127.0.0.1:8789", &addr.to_string());
    std::fs::write(dir.0.join("issuer.toml"), config).map_err(|e| io(&e))?;
    let issuer = captix_issuer::Issuer::open(&dir.0.join("issuer.toml")).map_err(|e| io(&e))?;
    let secret = issuer
        .new_client_secret("billing-bot")
        .map_err(|e| io(&e))?;
    let running = captix_issuer::spawn(Arc::new(issuer), listener).map_err(|e| io(&e))?;

    heading(
        o,
        "7. Or an issuer mints the ticket: OAuth 2.1 client_credentials, scopes mapped to capabilities",
    );
    let _ = writeln!(o, "examples/invoices/issuer.toml: scope invoices:read = list_invoices, get_invoice, rows org={{user.org}}, 100/min;");
    let _ = writeln!(o, "client billing-bot may have invoices:read, acts for svc-billing (org acme), tickets live 5 minutes\n");
    let _ = writeln!(o, "$ captix issuer client-secret --config issuer.toml billing-bot\ncxs_… (shown once; only its hash is stored)");
    let _ = writeln!(o, "$ captix issuer serve --config issuer.toml   # on {url}");
    let (_, meta) = http(
        addr,
        "GET",
        "/.well-known/oauth-authorization-server",
        None,
        "",
    )?;
    let meta: serde_json::Value = serde_json::from_str(&meta).map_err(|e| io(&e))?;
    let _ = writeln!(
        o,
        "$ curl {url}/.well-known/oauth-authorization-server   # RFC 8414\n  token_endpoint {}, revocation_endpoint {}",
        meta["token_endpoint"], meta["revocation_endpoint"]
    );
    let basic = format!("billing-bot:{}", secret.as_str());
    let form = format!("grant_type=client_credentials&resource={}", enc(RESOURCE));
    let (status, body) = http(addr, "POST", "/token", Some(&basic), &form)?;
    if status != 200 {
        return Err(io(&format!("token endpoint answered {status}: {body}")));
    }
    let token: serde_json::Value = serde_json::from_str(&body).map_err(|e| io(&e))?;
    let ticket = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let _ = writeln!(
        o,
        "$ curl -u billing-bot:$SECRET -d grant_type=client_credentials -d resource={RESOURCE} {url}/token\n  token_type {}, scope {}, expires_in {}, access_token {}\n",
        token["token_type"], token["scope"], token["expires_in"], render::short(&ticket)
    );
    let keys = KeySet::from(key.public());
    let parsed = captix::Ticket::parse(&ticket, &keys)?;
    o.push_str(&render::inspect_text(&parsed.inspect(), false, None));

    let _ = writeln!(
        o,
        "\nThe server ({RESOURCE}) trusts the issuer's public key:"
    );
    let revoked = dir.0.join("revoked.txt");
    let server = Verifier::builder(keys)
        .resource(RESOURCE)
        .budgets(Arc::new(captix::budget::MemoryBudgets::new()))
        .revocations(Arc::new(FileRevocations::open(
            &revoked,
            std::time::Duration::ZERO,
        )?))
        .build();
    let now = crate::now();
    check(
        o,
        &server,
        &ticket,
        "bot",
        "list_invoices",
        r#"{"org":"acme"}"#,
        now,
    );
    check(
        o,
        &server,
        &ticket,
        "bot",
        "list_invoices",
        r#"{"org":"globex"}"#,
        now,
    );
    check(
        o,
        &server,
        &ticket,
        "bot",
        "create_refund",
        r#"{"org":"acme","id":1,"amount":5}"#,
        now,
    );
    let form = format!("token={}", enc(&ticket));
    let (status, _) = http(addr, "POST", "/revoke", Some(&basic), &form)?;
    let _ = writeln!(
        o,
        "$ curl -u billing-bot:$SECRET --data-urlencode token=$TICKET {url}/revoke   # RFC 7009: {status}"
    );
    check(
        o,
        &server,
        &ticket,
        "bot",
        "list_invoices",
        r#"{"org":"acme"}"#,
        now,
    );
    drop(running);

    let log = std::fs::read_to_string(dir.0.join("issuer-audit.log")).map_err(|e| io(&e))?;
    let records = captix::audit::verify_log(log.as_bytes()).map_err(|b| {
        io(&format!(
            "issuer audit chain broken at line {}: {}",
            b.line, b.reason
        ))
    })?;
    let _ = writeln!(o, "\n$ captix audit show issuer-audit.log");
    o.push_str(&render::audit_text(&records));
    Ok(())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One HTTP/1.1 request on loopback; (status, body).
fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    basic: Option<&str>,
    body: &str,
) -> Result<(u16, String), CliError> {
    let io = |e: std::io::Error| CliError::io(format!("demo issuer: {e}"));
    let mut s = std::net::TcpStream::connect(addr).map_err(io)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(io)?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(b) = basic {
        req.push_str(&format!("authorization: Basic {}\r\n", base64::encode(b)));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).map_err(io)?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(io)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}
