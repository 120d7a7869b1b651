//! The issuer's endpoints against their RFCs, through the router (no sockets).
#![allow(missing_docs)]

mod limits;
mod metadata;
mod revoke;
mod store;
mod token;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use captix::audit::MemoryAudit;
use captix::SigningKey;
use captix_issuer::{Config, Issuer};
use tower::ServiceExt as _;

pub const RESOURCE: &str = "https://mcp.example/mcp";

/// A configuration with two resources, three scopes, a secret client, a key client.
pub fn config_text(issuer: &str, agent_key: &ed25519_dalek::SigningKey) -> String {
    let public = captix::PublicKey::from_bytes(agent_key.verifying_key().as_bytes())
        .expect("key")
        .to_text();
    format!(
        r#"
issuer = "{issuer}"
keys = ["issuer.key"]
revocations = "revoked.txt"
lifetime = "10min"

[resources."{RESOURCE}"]
scopes = ["invoices:read", "invoices:write"]

[resources."https://other.example/mcp"]
scopes = ["invoices:read"]

[scopes."invoices:read"]
tools = ["list_invoices", "get_invoice"]
uris = ["invoices://acme/*"]
rows = ["org={{user.org}}"]

[scopes."invoices:write"]
tools = ["create_refund"]
budgets = ["create_refund:5/hour"]

[scopes.admin]
tools = ["delete_everything"]

[clients.billing-bot]
scopes = ["invoices:read", "invoices:write"]
user = "svc-billing"
budgets = ["*:100/min"]

[clients.key-bot]
scopes = ["invoices:read"]
public_key = "{public}"

[clients.other-bot]
scopes = ["invoices:read"]

[users.svc-billing]
org = "acme"

[users.key-bot]
org = "acme"

[users.other-bot]
org = "globex"
"#
    )
}

pub struct Env {
    pub issuer: Arc<Issuer>,
    pub key: SigningKey,
    pub agent_key: ed25519_dalek::SigningKey,
    pub audit: Arc<MemoryAudit>,
    pub dir: PathBuf,
    pub secret: String,
    pub other_secret: String,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn env() -> Env {
    env_at("https://as.example")
}

pub fn env_at(issuer_url: &str) -> Env {
    env_with(
        issuer_url,
        |t| t,
        || Box::new(captix_issuer::store::SqliteStore::memory().expect("db")),
    )
}

/// An issuer whose configuration text `edit` changes, over the store `store` makes.
pub fn env_with(
    issuer_url: &str,
    edit: impl Fn(String) -> String,
    store: impl Fn() -> Box<dyn captix_issuer::Store>,
) -> Env {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "captix-issuer-it-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let key = SigningKey::from_seed(&[42; 32]);
    key.save(&dir.join("issuer.key")).expect("key file");
    let agent_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let text = edit(config_text(issuer_url, &agent_key));
    let config = Config::parse(&text, &dir).expect("config");
    let audit = Arc::new(MemoryAudit::new());
    let issuer = Issuer::with_store(config, store())
        .expect("issuer")
        .audit_to(audit.clone());
    let secret = issuer.new_client_secret("billing-bot").expect("secret");
    let other_secret = issuer.new_client_secret("other-bot").expect("secret");
    Env {
        issuer: Arc::new(issuer),
        key,
        agent_key,
        audit,
        dir,
        secret: secret.to_string(),
        other_secret: other_secret.to_string(),
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: serde_json::Value,
}

impl Env {
    /// A request through the router.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::from(body.to_string())).expect("request");
        let res = captix_issuer::router(self.issuer.clone())
            .oneshot(req)
            .await
            .expect("answer");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
            })
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A form POST to `path` with these parameters (each form-urlencoded).
    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        params: &[(&str, &str)],
    ) -> Answer {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.call("POST", path, &all, &form(params)).await
    }

    /// The token endpoint with `billing-bot`'s secret in a Basic header.
    pub async fn token(&self, params: &[(&str, &str)]) -> Answer {
        self.token_at("/token", params).await
    }

    /// The same at another path.
    pub async fn token_at(&self, path: &str, params: &[(&str, &str)]) -> Answer {
        let basic = basic("billing-bot", &self.secret);
        self.post(path, &[("authorization", &basic)], params).await
    }

    /// A ticket for `billing-bot`.
    pub async fn ticket(&self, params: &[(&str, &str)]) -> String {
        let a = self.token(params).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        a.body["access_token"].as_str().expect("token").to_string()
    }

    /// The audit records written since the last call, parsed.
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.audit
            .drain()
            .iter()
            .map(|l| serde_json::from_str(l).expect("record"))
            .collect()
    }

    /// A signed client assertion for `key-bot` (RFC 7523).
    pub fn assertion(&self, jti: &str, aud: &str) -> String {
        use ed25519_dalek::Signer as _;
        let b64 = |b: &[u8]| base64::encode_config(b, base64::URL_SAFE_NO_PAD);
        let exp = now() + 120;
        let claims = format!(
            r#"{{"iss":"key-bot","sub":"key-bot","aud":"{aud}","exp":{exp},"jti":"{jti}"}}"#
        );
        let signed = format!(
            "{}.{}",
            b64(br#"{"alg":"EdDSA","typ":"JWT"}"#),
            b64(claims.as_bytes())
        );
        let sig = self.agent_key.sign(signed.as_bytes());
        format!("{signed}.{}", b64(&sig.to_bytes()))
    }
}

/// What a server reading `source` answers for a call of `ticket` (the issuer's key trusted).
pub fn server_says(
    e: &Env,
    source: impl captix::revocation::RevocationSource + 'static,
    ticket: &str,
) -> Result<(), captix::Code> {
    let verifier = captix::Verifier::builder(captix::KeySet::from(e.key.public()))
        .resource(RESOURCE)
        .revocations(Arc::new(source))
        .without_budgets()
        .build();
    let call = captix::Call::new("list_invoices", r#"{"org":"acme"}"#)
        .expect("call")
        .at(now());
    verifier
        .check(ticket, &call)
        .map(|_| ())
        .map_err(|d| d.code)
}

pub fn form(params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
pub fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
