//! The endpoints (docs §17.3): RFC 8414 metadata, the token endpoint (`client_credentials`,
//! RFC 6749 §4.4, with RFC 8707 and RFC 9396) and RFC 7009 revocation.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use zeroize::Zeroizing;

use crate::client_auth::{Presented, JWT_BEARER};
use crate::error::{quote, OAuthError};
use crate::grant::{self, DETAILS_TYPE};
use crate::store::{Recorded, Revoked};
use crate::Issuer;

/// At most this many bytes of form: a revocation carries a ticket (at most 16 KiB), which
/// percent-encoding can triple.
const MAX_FORM: usize = 64 * 1024;
/// At most this many form parameters.
const MAX_PARAMS: usize = 16;
/// At most this many revoked tickets attenuated from one issued ticket (each is a line in
/// every server's revocation set; past it, the client revokes the issued ticket).
const MAX_REVOKED_UNDER: u64 = 64;
/// The `realm` of the `WWW-Authenticate` of a 401: a fixed value, never request data.
const CHALLENGE: &str = "Basic realm=\"captix-issuer\", charset=\"UTF-8\"";

/// The routes, under the issuer URL's path (RFC 8414 §3.1 path insertion for the metadata).
pub fn router(issuer: Arc<Issuer>) -> Router {
    let path = issuer.path();
    Router::new()
        .route(
            &format!("/.well-known/oauth-authorization-server{path}"),
            get(metadata),
        )
        .route(&format!("{path}/token"), post(token))
        .route(&format!("{path}/revoke"), post(revoke))
        .with_state(issuer)
}

async fn metadata(State(issuer): State<Arc<Issuer>>) -> Response {
    let state = issuer.state();
    let c = &state.config;
    let methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    let body = serde_json::json!({
        "issuer": c.issuer,
        "token_endpoint": format!("{}/token", c.issuer),
        "revocation_endpoint": format!("{}/revoke", c.issuer),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
        "revocation_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
        "scopes_supported": c.policy.scopes.keys().collect::<Vec<_>>(),
        "authorization_details_types_supported": [DETAILS_TYPE],
    });
    ([(header::CACHE_CONTROL, "max-age=300")], axum::Json(body)).into_response()
}

/// A decoded form: each name once.
type Form = BTreeMap<String, Zeroizing<String>>;

/// RFC 6749 §3.2: form-encoded, POST, no parameter twice.
async fn read_form(headers: &HeaderMap, body: Body) -> Result<Form, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    if !form_type {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| OAuthError::invalid_request("the body is larger than 64 KiB"))?;
    let mut form = Form::new();
    for (i, (k, v)) in form_urlencoded::parse(&bytes).enumerate() {
        if i >= MAX_PARAMS {
            return Err(OAuthError::invalid_request("too many parameters"));
        }
        let name = k.into_owned();
        if form.contains_key(&name) {
            // RFC 6749 §3.2 (and RFC 8707 §2: one resource per ticket, which has one audience).
            let why = format!("parameter {} is repeated", quote(&name, 40));
            return Err(if name == "resource" {
                OAuthError::invalid_target("one resource per request: a ticket has one audience")
            } else {
                OAuthError::invalid_request(why)
            });
        }
        form.insert(name, Zeroizing::new(v.into_owned()));
    }
    Ok(form)
}

/// RFC 6749 §2.3: exactly one way of authenticating the client.
fn presented(headers: &HeaderMap, form: &Form) -> Result<Presented, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            let v = v.to_str().unwrap_or("");
            let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client(
                    "only the Basic scheme is accepted in Authorization",
                ));
            }
            let raw = Zeroizing::new(
                base64::decode(rest.trim())
                    .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?,
            );
            let text = std::str::from_utf8(&raw)
                .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))?;
            let (id, secret) = text
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            // RFC 6749 §2.3.1: both are form-urlencoded before Basic encoding. Decoded
            // without an intermediate copy that would outlive the zeroized one.
            let decode = |s: &str| -> Result<Zeroizing<String>, OAuthError> {
                let plus = Zeroizing::new(s.replace('+', " "));
                let bytes: Zeroizing<Vec<u8>> =
                    Zeroizing::new(percent_encoding::percent_decode_str(&plus).collect());
                std::str::from_utf8(&bytes)
                    .map(|t| Zeroizing::new(t.to_string()))
                    .map_err(|_| OAuthError::invalid_client("malformed Basic credentials"))
            };
            Ok(Presented::Secret {
                id: decode(id)?.to_string(),
                secret: decode(secret)?,
                basic: true,
            })
        })
        .transpose()?;
    let get = |k: &str| form.get(k).map(|v| v.as_str().to_string());
    let post = form.get("client_secret").map(|s| Presented::Secret {
        id: get("client_id").unwrap_or_default(),
        secret: s.clone(),
        basic: false,
    });
    let jwt = match (get("client_assertion_type"), form.get("client_assertion")) {
        (None, None) => None,
        (Some(t), Some(a)) if t == JWT_BEARER => Some(Presented::Assertion {
            id: get("client_id"),
            jwt: a.as_str().to_string(),
        }),
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )))
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type go together",
            ))
        }
    };
    match (basic, post, jwt) {
        (Some(p), None, None) | (None, Some(p), None) | (None, None, Some(p)) => {
            if let Presented::Secret { basic: true, .. } = &p {
                if form.contains_key("client_id") && get("client_id") != client_id_of(&p) {
                    return Err(OAuthError::invalid_request(
                        "client_id differs from the Basic credentials",
                    ));
                }
            }
            Ok(p)
        }
        (None, None, None) => Err(OAuthError::invalid_client(
            "no client authentication (Basic, client_secret or client_assertion)",
        )),
        _ => Err(OAuthError::invalid_request(
            "more than one client authentication method (RFC 6749 §2.3)",
        )),
    }
}

fn client_id_of(p: &Presented) -> Option<String> {
    match p {
        Presented::Secret { id, .. } => Some(id.clone()),
        Presented::Assertion { id, .. } => id.clone(),
    }
}

fn no_store(status: StatusCode, body: Option<serde_json::Value>) -> Response {
    let mut r = match body {
        Some(b) => (status, axum::Json(b)).into_response(),
        None => status.into_response(),
    };
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn refuse(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = no_store(status, Some(e.body()));
    if e.status == 401 {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        );
    }
    if let Some(secs) = e.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

async fn token(State(issuer): State<Arc<Issuer>>, headers: HeaderMap, body: Body) -> Response {
    answer(issuer, headers, body, Issuer::token, Some).await
}

async fn revoke(State(issuer): State<Arc<Issuer>>, headers: HeaderMap, body: Body) -> Response {
    answer(issuer, headers, body, Issuer::revoke, |()| None).await
}

/// An endpoint: read the form, then do `work` off the async workers (minting signs, the
/// store may touch the disk); 200 with `body(result)` or the OAuth error.
async fn answer<T: Send + 'static>(
    issuer: Arc<Issuer>,
    headers: HeaderMap,
    body: Body,
    work: fn(&Issuer, &HeaderMap, &Form, u64) -> Result<T, OAuthError>,
    ok_body: fn(T) -> Option<serde_json::Value>,
) -> Response {
    let form = match read_form(&headers, body).await {
        Ok(f) => f,
        Err(e) => {
            issuer.refused(&Caller::Unknown, None, &e);
            return refuse(&e);
        }
    };
    let done =
        tokio::task::spawn_blocking(move || work(&issuer, &headers, &form, crate::issuer::now()))
            .await;
    match done {
        Ok(Ok(t)) => no_store(StatusCode::OK, ok_body(t)),
        Ok(Err(e)) => refuse(&e),
        Err(_) => refuse(&OAuthError::unavailable(
            "the request could not be completed",
        )),
    }
}

impl Issuer {
    /// The token endpoint's work, after the form is read: authenticate, decide, mint, record,
    /// audit. Every refusal is audited.
    pub(crate) fn token(
        &self,
        headers: &HeaderMap,
        form: &Form,
        now: u64,
    ) -> Result<serde_json::Value, OAuthError> {
        let scope = form.get("scope").map(|s| s.as_str());
        self.token_inner(headers, form, now).map_err(|(e, caller)| {
            self.refused(&caller, scope, &e);
            e
        })
    }

    /// A refusal carries who asked, authenticated or not, for the audit log.
    fn token_inner(
        &self,
        headers: &HeaderMap,
        form: &Form,
        now: u64,
    ) -> Result<serde_json::Value, (OAuthError, Caller)> {
        let state = self.state();
        let client = self.client(&state, headers, form, now)?;
        let fail = |e: OAuthError| (e, Caller::Client(client.clone()));
        match form.get("grant_type").map(|g| g.as_str()) {
            None => return Err(fail(OAuthError::invalid_request("grant_type is required"))),
            Some("client_credentials") => {}
            Some(other) => {
                return Err(fail(OAuthError::unsupported_grant_type(format!(
                    "grant_type {} is not supported here (client_credentials is)",
                    quote(other, 60)
                ))))
            }
        }
        let req = grant::Request {
            client: &client,
            user: None,
            scope: form.get("scope").map(|s| s.as_str()),
            resource: form.get("resource").map(|s| s.as_str()),
            details: form.get("authorization_details").map(|s| s.as_str()),
        };
        let g = grant::decide(&state.config.policy, &req).map_err(fail)?;
        let limit = state
            .config
            .policy
            .clients
            .get(&client)
            .map_or(crate::config::DEFAULT_TICKETS, |c| c.tickets);
        let over = |retry_after| {
            // Budgets count per ticket chain: without this cap, a client would refill them by
            // asking for a new ticket (docs §17.2).
            fail(OAuthError::too_many(
                format!(
                    "client {} was issued {} tickets in the last {}",
                    quote(&client, 64),
                    limit.max,
                    captix::format_duration(limit.window)
                ),
                retry_after,
            ))
        };
        // Answered before anything is signed; `record` below decides atomically.
        let room = self
            .store
            .room(&client, now, limit)
            .map_err(|e| fail(OAuthError::unavailable(e.to_string())))?;
        if let Recorded::Full { retry_after } = room {
            return Err(over(retry_after));
        }
        let ticket = g.mint(&state.key, &state.config.issuer, now).map_err(|e| {
            fail(if req.details.is_some() {
                OAuthError::invalid_details(format!("the ticket asked for cannot be made: {e}"))
            } else {
                OAuthError::unavailable(format!("could not mint: {e}"))
            })
        })?;
        let id = ticket
            .revocation_ids()
            .next()
            .map(|r| r.to_hex())
            .unwrap_or_default();
        let scopes = g.scopes.join(" ");
        let recorded = self
            .store
            .record(
                &crate::store::Issued {
                    revocation_id: id.clone(),
                    client: client.clone(),
                    user: g.user.clone(),
                    scopes: scopes.clone(),
                    resource: g.resource.clone(),
                    issued: now,
                    expires: now.saturating_add(g.lifetime),
                    revoked: None,
                },
                limit,
            )
            .map_err(|e| fail(OAuthError::unavailable(e.to_string())))?;
        if let Recorded::Full { retry_after } = recorded {
            return Err(over(retry_after));
        }
        let mut record = captix::audit::Record::issuer(
            "grant",
            now,
            Some(&client),
            Some(&g.user),
            req.scope,
            None,
        );
        record.chain = vec![id];
        record.resource = Some(g.resource.clone());
        record.scope_granted = Some(scopes.clone());
        // An unaudited grant is not given (as an unaudited call is not allowed).
        self.audit(record)
            .map_err(|e| fail(OAuthError::unavailable(e)))?;
        let mut body = serde_json::json!({
            "access_token": ticket.as_str(),
            "token_type": "Bearer",
            "expires_in": g.lifetime,
            "scope": scopes,
        });
        if let Some(d) = &g.details {
            body["authorization_details"] = serde_json::json!([d]);
        }
        Ok(body)
    }

    /// The authenticated client of a request, or the refusal and who claimed to ask.
    fn client(
        &self,
        state: &crate::State,
        headers: &HeaderMap,
        form: &Form,
        now: u64,
    ) -> Result<String, (OAuthError, Caller)> {
        let claimed_in_form = || {
            form.get("client_id")
                .map_or(Caller::Unknown, |c| Caller::Claimed(c.as_str().to_string()))
        };
        let p = presented(headers, form).map_err(|e| (e, claimed_in_form()))?;
        let claimed = client_id_of(&p).map_or(Caller::Unknown, Caller::Claimed);
        crate::client_auth::authenticate(
            &p,
            &state.config.policy,
            &state.config.issuer,
            self.store.as_ref(),
            now,
        )
        .map_err(|e| (e, claimed))
    }

    /// RFC 7009: the client revokes a ticket it was issued (or one attenuated from it). An
    /// unknown or invalid token is not an error (§2.2); a ticket issued to another client is.
    pub(crate) fn revoke(
        &self,
        headers: &HeaderMap,
        form: &Form,
        now: u64,
    ) -> Result<(), OAuthError> {
        let state = self.state();
        let client = self
            .client(&state, headers, form, now)
            .map_err(|(e, who)| {
                self.refused(&who, None, &e);
                e
            })?;
        let caller = Caller::Client(client.clone());
        let Some(text) = form.get("token") else {
            let e = OAuthError::invalid_request("token is required");
            self.refused(&caller, None, &e);
            return Err(e);
        };
        // Only tickets this issuer signed: garbage never reaches the servers' revocation list.
        let Ok(ticket) = captix::Ticket::parse(text, &state.keys) else {
            return Ok(());
        };
        let chain: Vec<String> = ticket.revocation_ids().map(|r| r.to_hex()).collect();
        let authority = chain.first().cloned().unwrap_or_default();
        let unavailable = |e: crate::Error| OAuthError::unavailable(e.to_string());
        let record = self
            .store
            .issued(&client, &authority)
            .map_err(unavailable)?
            .ok_or_else(|| {
                let e = OAuthError::unauthorized_client(
                    "this ticket was not issued to the authenticated client",
                );
                self.refused(&caller, None, &e);
                e
            })?;
        // Nothing to write for a ticket no server accepts any more: expired, or its root
        // already revoked (which covers every ticket attenuated from it).
        let expired = ticket
            .expires()
            .unwrap_or(record.expires)
            .min(record.expires)
            <= now;
        if expired || record.revoked.is_some() {
            return Ok(());
        }
        // The presented ticket's last block: it and every ticket attenuated from it. For a
        // ticket as issued, that is its authority block: the whole chain.
        let last = ticket
            .revocation_ids()
            .last()
            .cloned()
            .ok_or_else(|| OAuthError::invalid_request("the ticket has no blocks"))?;
        let outcome = self
            .store
            .revoke(
                &client,
                &authority,
                &last.to_hex(),
                now,
                MAX_REVOKED_UNDER,
                &mut || {
                    self.revocations
                        .revoke(&last)
                        .map_err(|e| crate::Error::Io(format!("could not revoke: {e}")))
                },
            )
            .map_err(unavailable)?;
        match outcome {
            Revoked::New => {}
            Revoked::Already => return Ok(()),
            Revoked::TooMany => {
                let e = OAuthError::invalid_request(format!(
                    "{MAX_REVOKED_UNDER} tickets attenuated from this one are revoked already: revoke the ticket itself"
                ));
                self.refused(&caller, None, &e);
                return Err(e);
            }
        }
        let mut r = captix::audit::Record::issuer(
            "revocation",
            now,
            Some(&client),
            Some(&record.user),
            None,
            None,
        );
        r.chain = chain;
        r.resource = Some(record.resource);
        self.audit(r).map_err(OAuthError::unavailable)?;
        Ok(())
    }

    /// Audits a refusal (best effort: the refusal stands whether or not it is written). A
    /// caller that did not authenticate is named only as `claimed`. Refusals are recorded at
    /// most [`UNAUTHENTICATED_PER_SECOND`] a second for all unauthenticated callers together
    /// and [`CLIENT_REFUSALS_PER_SECOND`] for each client; past that they are counted, and the
    /// next recorded one says how many were left out (a full disk would stop grants, which
    /// must be audited).
    pub(crate) fn refused(&self, caller: &Caller, scope: Option<&str>, e: &OAuthError) {
        let now = crate::issuer::now();
        let mut reason = e.description.clone();
        let (gate, per_second) = match caller {
            Caller::Client(c) => (Some(c.as_str()), CLIENT_REFUSALS_PER_SECOND),
            _ => (None, UNAUTHENTICATED_PER_SECOND),
        };
        match self.refusal_gate(gate, per_second, now) {
            None => return,
            Some(0) => {}
            Some(skipped) => {
                reason.push_str(&format!(" ({skipped} more such refusals not recorded)"))
            }
        }
        // Anyone can send these: little of what they send is kept.
        let scope_kept = match caller {
            Caller::Client(_) => scope,
            _ => scope.map(|s| &s[..floor_char_boundary(s, 128)]),
        };
        let client = match caller {
            Caller::Client(c) => Some(c.as_str()),
            _ => None,
        };
        let mut r = captix::audit::Record::issuer(
            "refusal",
            now,
            client,
            None,
            scope_kept,
            Some((e.code, &reason)),
        );
        if let Caller::Claimed(c) = caller {
            r.claimed = Some(c.chars().take(128).collect());
        }
        let _ = self.audit(r);
    }
}

impl Issuer {
    /// Whether a refusal at `now` through `gate` (a client, or `None` for every
    /// unauthenticated caller) is recorded: `Some(n)` with the number left out since the last
    /// recorded one, or `None` (counted, not recorded).
    fn refusal_gate(&self, gate: Option<&str>, per_second: u32, now: u64) -> Option<u64> {
        let mut gates = self.refusal_gates.lock().unwrap_or_else(|e| e.into_inner());
        // Keys are configured clients and `None`: the map is bounded by the configuration.
        let (second, count, skipped) = gates.entry(gate.map(str::to_string)).or_default();
        if *second != now {
            (*second, *count) = (now, 0);
        }
        if *count >= per_second {
            *skipped += 1;
            return None;
        }
        *count += 1;
        Some(std::mem::take(skipped))
    }
}

/// The largest index at most `max` that is a character boundary of `s`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Who made a request, as far as the issuer knows.
pub(crate) enum Caller {
    /// No client id at all.
    Unknown,
    /// A client id that did not authenticate: request data, never trusted as an identity.
    Claimed(String),
    /// An authenticated client.
    Client(String),
}

/// Refusals of unauthenticated requests recorded per second at most, all callers together.
pub(crate) const UNAUTHENTICATED_PER_SECOND: u32 = 5;
/// Refusals of one authenticated client recorded per second at most.
pub(crate) const CLIENT_REFUSALS_PER_SECOND: u32 = 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_refusals_are_recorded_at_most_so_often_and_counted() {
        let text = r#"
issuer = "https://as.example"
keys = ["k.key"]
revocations = "r"
[resources."https://mcp.example/mcp"]
scopes = ["s"]
[scopes.s]
tools = ["t"]
"#;
        let dir = std::env::temp_dir().join(format!("captix-issuer-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        captix::SigningKey::generate()
            .save(&dir.join("k.key"))
            .expect("key");
        let config = crate::Config::parse(text, &dir).expect("config");
        let store = crate::store::SqliteStore::memory().expect("db");
        let issuer = Issuer::with_store(config, Box::new(store)).expect("issuer");
        for _ in 0..UNAUTHENTICATED_PER_SECOND {
            assert_eq!(
                issuer.refusal_gate(None, UNAUTHENTICATED_PER_SECOND, 100),
                Some(0)
            );
        }
        for _ in 0..7 {
            let over = issuer.refusal_gate(None, UNAUTHENTICATED_PER_SECOND, 100);
            assert_eq!(over, None, "over the rate: counted only");
        }
        // A client has its own gate: strangers cannot use it up.
        assert_eq!(issuer.refusal_gate(Some("bot"), 1, 100), Some(0));
        assert_eq!(issuer.refusal_gate(Some("bot"), 1, 100), None);
        assert_eq!(
            issuer.refusal_gate(None, UNAUTHENTICATED_PER_SECOND, 101),
            Some(7),
            "the next one says how many"
        );
        assert_eq!(
            issuer.refusal_gate(None, UNAUTHENTICATED_PER_SECOND, 101),
            Some(0)
        );
        assert_eq!(issuer.refusal_gate(Some("bot"), 1, 101), Some(1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
