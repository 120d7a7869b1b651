//! The per-request guard (docs §14.1–§14.5).

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use captix::{Allowed, Call, Code, Denial, TicketInfo, Verifier};

use crate::envelope::{self, Envelope};
use crate::metadata::{metadata_location, Config};
use crate::session::{Endpoint, Owner, Room, Sessions, Start};

/// The verified decision for a `tools/call`, `resources/read` or `prompts/get`, in the
/// request extensions for handlers.
#[derive(Clone, Debug)]
pub struct McpDecision {
    /// The allowed decision: identity, what was asked for, row filters to apply, budgets spent.
    pub allowed: Allowed,
}

pub(crate) struct Guard {
    verifier: Arc<Verifier>,
    config: Config,
    /// The resource's own origin, then the configured ones.
    origins: Vec<String>,
    metadata_url: String,
    sessions: Sessions,
    /// Slots for checks that wait on a budget store (`Config::max_blocking_checks`).
    blocking: Arc<tokio::sync::Semaphore>,
}

impl Guard {
    pub(crate) fn new(verifier: Arc<Verifier>, config: Config, resource: &str) -> Self {
        let (origin, path) = metadata_location(resource);
        let mut origins = vec![origin.clone()];
        origins.extend(
            config
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_string()),
        );
        Guard {
            metadata_url: format!("{origin}{path}"),
            sessions: Sessions::new(
                config.max_sessions,
                config.max_sessions_per_ticket,
                config.session_idle_secs,
            ),
            origins,
            verifier,
            blocking: Arc::new(tokio::sync::Semaphore::new(
                config.max_blocking_checks.max(1),
            )),
            config,
        }
    }

    /// The check of a call, audited: on the runtime when the budget store answers without
    /// I/O, else on tokio's blocking pool (at most `max_blocking_checks` at once), so a stalled
    /// store never holds a runtime worker (docs §14.1).
    async fn check(
        &self,
        token: &str,
        authenticated: &captix::Authenticated,
        call: &Call,
    ) -> captix::Checked {
        match self.verifier.try_check_authenticated(authenticated, call) {
            Some(c) => c,
            // Boxed: the wait's state would otherwise size every request's future. (The copy
            // of the call is nothing beside the store's round trip it waits for.)
            None => Box::pin(self.check_blocking(token, call.clone())).await,
        }
    }

    /// [`Guard::check`] on the blocking pool.
    async fn check_blocking(&self, token: &str, call: Call) -> captix::Checked {
        let Ok(slot) = self.blocking.clone().acquire_owned().await else {
            return captix::Checked {
                decision: Err(captix::budget::store_unavailable("no slot for the check")),
                audit_seq: None,
            };
        };
        let verifier = self.verifier.clone();
        let token = token.to_string();
        // The slot moves into the task: a request dropped while its check runs (the client
        // went away) keeps the slot until the check ends.
        tokio::task::spawn_blocking(move || {
            let checked = verifier.check_audited(&token, &call);
            drop(slot);
            checked
        })
        .await
        .unwrap_or_else(|_| captix::Checked {
            decision: Err(captix::budget::store_unavailable(
                "the check did not finish",
            )),
            audit_seq: None,
        })
    }
}

/// The HTTP status of a denial (spec §8, §14.1): the core's table ([`Denial::http_status`]).
pub fn denial_status(d: &Denial) -> StatusCode {
    StatusCode::from_u16(d.http_status()).unwrap_or(StatusCode::FORBIDDEN)
}

/// The HTTP status for a denial code (spec §8): the core's table ([`Code::http_status`]).
pub fn http_status(code: Code) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::FORBIDDEN)
}

use captix::time::now;

// The answers to refused requests are `#[cold]`: out of line, they leave the guard's path for
// an admitted call dense in the instruction cache, which the server's own work evicts between
// requests (issue 18, item 4).

/// A quoted-string value for a header: quotes and backslashes escaped, non-ASCII replaced.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => format!("\\{c}"),
            c if c.is_ascii() && !c.is_ascii_control() => c.to_string(),
            _ => "?".to_string(),
        })
        .collect()
}

/// The `WWW-Authenticate` challenge (docs §14.1, RFC 6750 §3). It carries only values this
/// server chose, never request data: `resource_metadata` first (clients take the first match),
/// then the error, the scopes the operation needs (from the configuration, validated as RFC
/// 6749 scope-tokens) and a fixed description in RFC 6750's character set. The reason, the
/// tool and the captix code go in the JSON body.
#[cold]
fn challenge(g: &Guard, error: Option<&'static str>, scope: &[&str]) -> HeaderValue {
    let mut v = format!("Bearer resource_metadata=\"{}\"", quoted(&g.metadata_url));
    if let Some(e) = error {
        let description = match e {
            "invalid_token" => "the ticket is not valid for this server",
            "insufficient_scope" => "the ticket does not allow this request",
            _ => "the request is malformed",
        };
        v.push_str(&format!(", error=\"{e}\""));
        if !scope.is_empty() {
            v.push_str(&format!(", scope=\"{}\"", quoted(&scope.join(" "))));
        }
        v.push_str(&format!(", error_description=\"{description}\""));
    }
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

#[cold]
fn rpc_error(
    id: Option<&str>,
    code: i64,
    message: &str,
    data: Option<serde_json::Value>,
) -> serde_json::Value {
    let id: serde_json::Value = id
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(serde_json::Value::Null);
    let mut e = serde_json::json!({ "code": code, "message": message });
    if let Some(d) = data {
        e["data"] = d;
    }
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": e })
}

#[cold]
fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The answer to a denial: status, challenge header, JSON-RPC error carrying the decision.
#[cold]
fn denied(g: &Guard, id: Option<&str>, d: &Denial) -> Response {
    denied_needing(g, id, d, &[])
}

/// [`denied`], naming in the challenge the scopes the operation needs (MCP step-up).
#[cold]
fn denied_needing(g: &Guard, id: Option<&str>, d: &Denial, scope: &[&str]) -> Response {
    let status = denial_status(d);
    let description = format!("captix {}: {}", d.code, d.reason);
    let data: serde_json::Value =
        serde_json::to_value(captix::DecisionJson(&Err(d.clone()))).unwrap_or_default();
    let mut r = json_response(status, rpc_error(id, -32001, &description, Some(data)));
    let h = r.headers_mut();
    match status {
        StatusCode::UNAUTHORIZED => {
            h.insert(
                header::WWW_AUTHENTICATE,
                challenge(g, Some("invalid_token"), &[]),
            );
        }
        // No scope can admit a method the server does not serve: no step-up challenge.
        StatusCode::FORBIDDEN if d.code != Code::MethodNotAllowed => {
            h.insert(
                header::WWW_AUTHENTICATE,
                challenge(g, Some("insufficient_scope"), scope),
            );
        }
        StatusCode::TOO_MANY_REQUESTS => {
            if let Some(s) = d.retry_after {
                h.insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
        }
        _ => {}
    }
    r
}

/// A request naming a session this ticket's chain did not create (docs §14.4): audited, and
/// answered 404 as if the session did not exist, so the client starts a session of its own.
#[cold]
fn no_session(
    g: &Guard,
    id: Option<&str>,
    method: &str,
    target: Option<&str>,
    info: &TicketInfo,
    time: u64,
) -> Response {
    let d = Denial::new(
        Code::SessionNotFound,
        "this ticket's chain did not create the session it names, or the session ended",
    );
    if let Err(e) = g
        .verifier
        .record_request(time, method, target, Some(info), Some(&d))
    {
        return denied(g, id, &e);
    }
    json_response(
        StatusCode::NOT_FOUND,
        rpc_error(
            id,
            -32600,
            "session not found",
            serde_json::to_value(captix::DecisionJson(&Err(d))).ok(),
        ),
    )
}

/// Audits a call refused before the verifier saw it (malformed params or arguments).
#[allow(clippy::too_many_arguments)]
#[cold]
fn refused_call(
    g: &Guard,
    token: &str,
    id: Option<&str>,
    method: &str,
    name: Option<&str>,
    d: &Denial,
    time: u64,
) -> Option<Response> {
    let info = g.verifier.ticket_info(token, time).ok();
    g.verifier
        .record_request(time, method, name, info.as_ref(), Some(d))
        .err()
        .map(|e| denied(g, id, &e))
}

fn bearer(v: &HeaderValue) -> Option<&str> {
    // The value as text: what `HeaderValue::to_str` accepts (visible ASCII and tab: a header
    // value holds no other byte below 128), and UTF-8 beyond ASCII too, which no ticket is: such
    // a credential is refused by the verifier as not a ticket (401 `invalid_token`, audited),
    // as the npm adapters refuse it, instead of counting as no credential. One pass over a
    // ticket of a kilobyte or more, not two (`to_str` checked it a byte at a time).
    // Only ASCII whitespace is trimmed (what `trim` did on the ASCII `to_str` gave): a ticket
    // wrapped in a no-break or other Unicode space is not that ticket (found by review).
    let v = std::str::from_utf8(v.as_bytes()).ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim_ascii())
        .filter(|t| !t.is_empty())
}

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// The request headers the guard reads, found in one walk over the headers: a lookup by name
/// hashes the name, and seven lookups cost more than one walk over a request's few headers.
/// Each is the first value of its name, as `HeaderMap::get` gives it (names in a `HeaderMap`
/// are lowercase).
#[derive(Default)]
struct Heads<'a> {
    origin: Option<&'a HeaderValue>,
    authorization: Option<&'a HeaderValue>,
    /// How many `Authorization` values the request has.
    authorizations: usize,
    last_event_id: bool,
    session: Option<&'a HeaderValue>,
    content_length: Option<&'a HeaderValue>,
    mcp_method: Option<&'a HeaderValue>,
    mcp_name: Option<&'a HeaderValue>,
}

impl<'a> Heads<'a> {
    fn of(headers: &'a axum::http::HeaderMap) -> Self {
        let mut h = Heads::default();
        for (name, value) in headers {
            let first = match name.as_str() {
                "authorization" => {
                    h.authorizations += 1;
                    &mut h.authorization
                }
                "origin" => &mut h.origin,
                "last-event-id" => {
                    h.last_event_id = true;
                    continue;
                }
                "mcp-session-id" => &mut h.session,
                "content-length" => &mut h.content_length,
                "mcp-method" => &mut h.mcp_method,
                "mcp-name" => &mut h.mcp_name,
                _ => continue,
            };
            first.get_or_insert(value);
        }
        h
    }
}

/// The methods the ticket itself decides (docs §14.5), with the member of `params` that
/// names what they ask for (the one `Mcp-Name` mirrors).
fn checked_member(method: &str) -> Option<&'static str> {
    match method {
        captix::TOOLS_CALL | captix::PROMPTS_GET => Some("name"),
        captix::RESOURCES_READ => Some("uri"),
        _ => None,
    }
}

/// Who a session belongs to: the chain's last block's revocation id (commits to every block)
/// and its authority block's (the issuance).
fn owner(info: &TicketInfo) -> Owner<'_> {
    Owner {
        chain: info.chain.last().map(String::as_str).unwrap_or_default(),
        root: info.chain.first().map(String::as_str).unwrap_or_default(),
    }
}

/// The scopes of `needs` the ticket's authority block does not list.
fn missing<'a>(info: &TicketInfo, needs: &[&'a str]) -> Vec<&'a str> {
    needs
        .iter()
        .copied()
        .filter(|n| !info.identity.scopes.iter().any(|s| s == n))
        .collect()
}

#[cold]
fn scope_denial(what: &str, missing: &[&str]) -> Denial {
    Denial::new(
        Code::ScopeMissing,
        format!(
            "{what} needs the scope {}, which the ticket does not have",
            missing.join(" ")
        ),
    )
}

/// The protected router behind the guard: every request the router would see (its routes
/// and its fallback) is guarded first. The guard wraps the router as one service, not each
/// of its routes: a route layer calls its inner route by `&mut`, which clones the route (and
/// rmcp's service, whose cancellation token takes a lock on clone and drop) once more per
/// request than the router itself does.
#[derive(Clone)]
pub(crate) struct Guarded {
    pub(crate) guard: Arc<Guard>,
    pub(crate) router: axum::Router,
}

/// A request on its way through the guard (or to the metadata route): the boxed future of
/// the answer, infallible. Boxing `guard`'s own future, not an `async` block around it that
/// would hold the request a second time, keeps the one allocation per request smaller.
pub struct Guarding(
    pub(crate) std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send + 'static>>,
);

impl std::future::Future for Guarding {
    type Output = Result<Response, std::convert::Infallible>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.0.as_mut().poll(cx).map(Ok)
    }
}

impl tower::Service<Request> for Guarded {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Guarding;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        // A router is always ready.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let g = self.guard.clone();
        let next = Next(self.router.clone());
        Guarding(Box::pin(guard(g, req, next)))
    }
}

/// Ends the request's session in the layer when the server's answer, from the endpoint that
/// created the session, says the server ended it (docs §14.4): a DELETE's success, or
/// [`session_gone`].
fn settle_session(
    g: &Guard,
    session: Option<&[u8]>,
    at: Option<Endpoint>,
    deleting: bool,
    response: &Response,
) {
    if let (Some(s), Some(at)) = (session, at) {
        if (deleting && response.status().is_success()) || session_gone(response) {
            g.sessions.forget(s, at);
        }
    }
}

/// Whether an answer says the server no longer knows the request's session (docs §14.4): a
/// 404 that is not a JSON-RPC message. A server answers an unknown session so (rmcp: a plain
/// `Not Found: Session not found`); a 404 carrying JSON or an event stream is the answer to
/// the message itself (rmcp answers an unknown method 404 on the stateless path of protocol
/// 2026-07-28, session header or not), and freeing the slot on it let a holder open sessions
/// past its share (found by review). A server that answers an unknown session with JSON
/// keeps its binding until it lapses (idle or expiry): fail closed.
fn session_gone(response: &Response) -> bool {
    let json_rpc = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start().to_ascii_lowercase())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    response.status() == StatusCode::NOT_FOUND && !json_rpc
}

/// Why a request body could not be read whole.
#[derive(Debug, PartialEq)]
enum Unread {
    /// Longer than the bound (a body without a declared length, or longer than declared).
    TooLarge,
    /// The body itself failed: a malformed chunk, a connection reset. Not about size.
    Broken,
}

/// Reads a whole body of at most `limit` bytes (what `axum::body::to_bytes` reads, with the
/// bound checked the same way, frame by frame). A body that comes in one frame (a small
/// request: hyper hands over what arrived with the headers) is that frame itself, with no
/// buffer and no list of frames of its own: `to_bytes` built both for every request.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Unread> {
    use http_body_util::BodyExt;
    let mut body = body;
    let (mut first, mut more): (Option<Bytes>, Option<Vec<u8>>) = (None, None);
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        // Trailers are not part of the body (to_bytes drops them too).
        let Ok(data) = frame.map_err(|_| Unread::Broken)?.into_data() else {
            continue;
        };
        len = len.saturating_add(data.len());
        if len > limit {
            return Err(Unread::TooLarge);
        }
        match (&first, &mut more) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut buf = Vec::with_capacity(len);
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                more = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    Ok(match more {
        Some(buf) => Bytes::from(buf),
        None => first.unwrap_or_default(),
    })
}

thread_local! {
    /// The last tool call checked on this thread, whose buffers the next one reuses.
    static REUSED_CALL: std::cell::Cell<Option<Call>> = const { std::cell::Cell::new(None) };
}

/// What the guard forwards an admitted request to: the protected router.
struct Next(axum::Router);

impl Next {
    async fn run(mut self, req: Request) -> Response {
        match tower::Service::call(&mut self.0, req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

async fn guard(g: Arc<Guard>, req: Request, next: Next) -> Response {
    let time = now();
    // Split first: the credential is borrowed from the headers (copied only for `governed`).
    let (mut parts, body) = req.into_parts();
    // The decision, in a block: what it read and built (the headers, the envelope, the call)
    // is gone before the request is forwarded, so the request's future, boxed once per
    // request, holds none of it while the server runs.
    let (bytes, session, endpoint, flight, audit_seq) = {
        let heads = Heads::of(&parts.headers);
        // Streamable HTTP: a browser request from another origin (DNS rebinding) is refused
        // before anything else.
        if let Some(origin) = heads.origin {
            let known = origin.to_str().ok().is_some_and(|o| {
                g.origins
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(o.trim_end_matches('/')))
            });
            if !known {
                return json_response(
                    StatusCode::FORBIDDEN,
                    rpc_error(None, -32600, "this Origin is not allowed", None),
                );
            }
        }
        // RFC 6750 §3.1: one credential per request; two Authorization headers are ambiguous.
        let credential = heads.authorization;
        if heads.authorizations > 1 {
            let mut r = json_response(
                StatusCode::BAD_REQUEST,
                rpc_error(
                    None,
                    -32600,
                    "invalid_request: more than one Authorization header",
                    None,
                ),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                challenge(&g, Some("invalid_request"), &[]),
            );
            return r;
        }
        let Some(token) = credential.and_then(bearer) else {
            // RFC 6750 §3.1: no error code when the request carries no credential.
            let mut r = json_response(
                StatusCode::UNAUTHORIZED,
                rpc_error(
                    None,
                    -32001,
                    "a captix ticket is required: Authorization: Bearer captix1_...",
                    None,
                ),
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge(&g, None, &[]));
            return r;
        };
        // Resuming a stream replays messages the server sent earlier, past the list filters of
        // the requests they answered: not served (docs §14.2).
        if heads.last_event_id {
            if let Err(d) = g.verifier.authenticate(token, time).map(|_| ()) {
                return denied(&g, None, &d);
            }
            return json_response(
                StatusCode::BAD_REQUEST,
                rpc_error(
                    None,
                    -32600,
                    "stream resumption (Last-Event-ID) is not served behind captix: replayed \
                     messages could not be filtered again",
                    None,
                ),
            );
        }
        let session: Option<Vec<u8>> = heads.session.map(|v| v.as_bytes().to_vec());
        // Where the named session lives: only an answer from there can end it (docs §14.4).
        let endpoint = session.as_ref().map(|_| Endpoint::of(parts.uri.path()));
        if parts.method != Method::POST {
            // GET (the server's event stream) and DELETE (end of a session): a valid ticket, and
            // the session, when named, must be this chain's.
            let info = match g.verifier.ticket_info(token, time) {
                Ok(i) => i,
                Err(d) => return denied(&g, None, &d),
            };
            let verb = parts.method.as_str().to_string();
            if let Some(s) = &session {
                if !g.sessions.belongs(s, &owner(&info), time) {
                    return no_session(&g, None, &verb, None, &info, time);
                }
            }
            let delete = parts.method == Method::DELETE;
            let response = Box::pin(next.run(Request::from_parts(parts, body))).await;
            settle_session(&g, session.as_deref(), endpoint, delete, &response);
            return response;
        }
        // Authentication before the body is read: nothing is buffered for a caller without a
        // valid ticket, and such a request is audited by its HTTP method alone.
        let authenticated = match g.verifier.authenticate(token, time) {
            Ok(a) => a,
            Err(d) => {
                return match g.verifier.record_request(
                    time,
                    parts.method.as_str(),
                    None,
                    None,
                    Some(&d),
                ) {
                    Ok(_) => denied(&g, None, &d),
                    Err(e) => denied(&g, None, &e),
                };
            }
        };
        let too_large = || {
            json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                rpc_error(None, -32600, "the request body is too large", None),
            )
        };
        let declared = heads
            .content_length
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > g.config.max_body_bytes as u64) {
            return too_large();
        }
        // A body that is already here (a small request in the headers' packet) is read without
        // arming the deadline's timer; one still arriving gets the deadline.
        let mut read = std::pin::pin!(read_body(body, g.config.max_body_bytes));
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(read.as_mut(), cx))
        })
        .await;
        let read = match first {
            std::task::Poll::Ready(r) => Ok(r),
            std::task::Poll::Pending => {
                Box::pin(tokio::time::timeout(g.config.body_deadline, read)).await
            }
        };
        let bytes = match read {
            Ok(Ok(b)) => b,
            Ok(Err(Unread::TooLarge)) => return too_large(),
            Ok(Err(Unread::Broken)) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    rpc_error(None, -32600, "the request body could not be read", None),
                )
            }
            Err(_) => {
                return json_response(
                    StatusCode::REQUEST_TIMEOUT,
                    rpc_error(
                        None,
                        -32600,
                        "the request body did not arrive in time",
                        None,
                    ),
                )
            }
        };
        // Authentication first: a body that is not a single JSON-RPC request (a JSON object) is
        // answered 401 when the ticket is not valid, 400 otherwise. (serde would also read a
        // struct from an array by position: a batch must never be read as one request.)
        let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let parsed = match object {
            true => envelope::read(&bytes).map_err(|e| e.to_string()),
            false => Err("not a JSON object".to_string()),
        };
        let envelope = match parsed {
            Ok(e) => e,
            Err(e) => {
                if let Err(d) = g.verifier.authenticate(token, time).map(|_| ()) {
                    return denied(&g, None, &d);
                }
                let batch = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
                let message = if batch {
                    "batch requests are not accepted by this server".to_string()
                } else {
                    format!("the body is not a JSON-RPC request: {e}")
                };
                return json_response(
                    StatusCode::BAD_REQUEST,
                    rpc_error(None, if batch { -32600 } else { -32700 }, &message, None),
                );
            }
        };
        // A JSON-RPC 2.0 request, or nothing reaches the server, which would refuse it only after
        // the check had spent and logged it (the npm adapters refuse it here too).
        if !envelope.version {
            if let Err(d) = g.verifier.authenticate(token, time).map(|_| ()) {
                return denied(&g, None, &d);
            }
            return json_response(
                StatusCode::BAD_REQUEST,
                rpc_error(None, -32600, "the body is not a JSON-RPC 2.0 request", None),
            );
        }
        // Streamable HTTP: the routing headers must say what the body says, checked before any
        // budget is spent or any decision is logged.
        if let Some(h) = heads.mcp_method {
            if Some(h.as_bytes()) != envelope.method.as_deref().map(str::as_bytes) {
                if let Err(d) = g.verifier.authenticate(token, time).map(|_| ()) {
                    return denied(&g, envelope.id, &d);
                }
                return mismatch(envelope.id, "Mcp-Method", "method");
            }
        }
        let Some(method) = envelope.method.as_deref() else {
            // A response to a request of the server's (sampling, elicitation, roots): a valid
            // ticket, in its own session.
            let info = match g.verifier.ticket_info(token, time) {
                Ok(i) => i,
                Err(d) => return denied(&g, envelope.id, &d),
            };
            if let Some(s) = &session {
                if !g.sessions.belongs(s, &owner(&info), time) {
                    return no_session(&g, envelope.id, "(response)", None, &info, time);
                }
            }
            return Box::pin(next.run(Request::from_parts(parts, Body::from(bytes.clone())))).await;
        };
        let Some(member) = checked_member(method) else {
            // The credential is borrowed from the headers that move on with the request.
            let token = token.to_owned();
            // Boxed: its state would otherwise size every request's future.
            return Box::pin(governed(
                &g,
                &token,
                method,
                &envelope,
                session,
                parts,
                bytes.clone(),
                next,
                time,
            ))
            .await;
        };
        // tools/call, resources/read, prompts/get: one check does it all — ticket validity (401),
        // the call (403/429/400), the budget spend and the audit record.
        // `params` must be an object, its members of the right types (module `envelope`).
        let params = envelope.params.call();
        let name = params.as_ref().and_then(|p| match member {
            "uri" => p.uri,
            _ => p.name,
        });
        let Some(name) = name else {
            if let Err(d) = g.verifier.authenticate(token, time).map(|_| ()) {
                return denied(&g, envelope.id, &d);
            }
            let message = format!("{method} needs params.{member}");
            let d = Denial::new(Code::ArgsMalformed, message.clone());
            if let Some(r) = refused_call(&g, token, envelope.id, method, None, &d, time) {
                return r;
            }
            return json_response(
                StatusCode::BAD_REQUEST,
                rpc_error(envelope.id, -32602, &message, None),
            );
        };
        if let Some(h) = heads.mcp_name {
            if header_value(h.as_bytes()).as_deref() != Some(name.as_bytes()) {
                if let Err(d) = g.verifier.authenticate(token, time).map(|_| ()) {
                    return denied(&g, envelope.id, &d);
                }
                return mismatch(envelope.id, "Mcp-Name", &format!("params.{member}"));
            }
        }
        // The session and the server's scopes, before any spend. (Without a session, a ticket
        // that is not valid falls through to the check, which refuses and audits it.)
        let mut needs = g.config.method_needs(method).unwrap_or_default();
        if method == captix::TOOLS_CALL {
            needs.extend(g.config.tool_needs(name));
        }
        if session.is_some() || !needs.is_empty() {
            let info = g.verifier.ticket_info(token, time);
            if let (Err(d), Some(_)) = (&info, &session) {
                // Authentication first: nothing of the session is consulted for such a ticket.
                return match g
                    .verifier
                    .record_request(time, method, Some(name), None, Some(d))
                {
                    Ok(_) => denied(&g, envelope.id, d),
                    Err(e) => denied(&g, envelope.id, &e),
                };
            }
            if let Ok(info) = info {
                if let Some(s) = &session {
                    if !g.sessions.belongs(s, &owner(&info), time) {
                        return no_session(&g, envelope.id, method, Some(name), &info, time);
                    }
                }
                let missing = missing(&info, &needs);
                if !missing.is_empty() {
                    let what = match method {
                        captix::TOOLS_CALL => format!("the tool {name}"),
                        _ => method.to_string(),
                    };
                    let d = scope_denial(&what, &missing);
                    let recorded =
                        g.verifier
                            .record_request(time, method, Some(name), Some(&info), Some(&d));
                    return match recorded {
                        Ok(_) => denied_needing(&g, envelope.id, &d, &needs),
                        Err(e) => denied(&g, envelope.id, &e),
                    };
                }
            }
        }
        let call = match method {
            captix::RESOURCES_READ => Call::read(name).map(|c| c.at(time)),
            captix::PROMPTS_GET => Call::prompt(name).map(|c| c.at(time)),
            // A tool call reads into this thread's last call's buffers (`Call::refill_tool`): a
            // typical call's arguments allocate nothing. Absent or null arguments are none.
            _ => {
                let mut c = REUSED_CALL.take().unwrap_or_else(|| Call {
                    target: captix::Target::Tool(String::new()),
                    args: captix::Args::empty(),
                    time,
                    resource: None,
                });
                let arguments = params.as_ref().and_then(|p| p.arguments);
                let args = arguments.map_or(b"{}".as_slice(), str::as_bytes);
                c.refill_tool(name, args, time).map(|()| c)
            }
        };
        // One request per id in flight in a session, before anything is spent (docs §14.4).
        let flight = match start(&g, session.as_deref(), envelope.id) {
            Ok(f) => f,
            Err(r) => {
                let info = g.verifier.ticket_info(token, time).ok();
                let d = in_flight_denial();
                return match g.verifier.record_request(
                    time,
                    method,
                    Some(name),
                    info.as_ref(),
                    Some(&d),
                ) {
                    Ok(_) => *r,
                    Err(e) => denied(&g, envelope.id, &e),
                };
            }
        };
        let checked = match call {
            Ok(c) => {
                // Docs §16.3: the check's latency, for OpenTelemetry's tracing bridge (the clock
                // is read only when a subscriber listens).
                let began = tracing::enabled!(target: "captix::metrics", tracing::Level::DEBUG)
                    .then(Instant::now);
                let checked = g.check(token, &authenticated, &c).await;
                // Kept for the thread's next call: a new one is made if this one is lost (a request
                // dropped mid-check).
                if matches!(c.target, captix::Target::Tool(_)) {
                    REUSED_CALL.set(Some(c));
                }
                if let Some(began) = began {
                    let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                    tracing::event!(
                        target: "captix::metrics",
                        tracing::Level::DEBUG,
                        histogram.captix.check_duration_us = micros,
                        method,
                        code = checked.decision.as_ref().err().map_or("allow", |d| d.code.as_str()),
                    );
                }
                checked
            }
            Err(d) => {
                // Authentication first: with a ticket that is not valid the answer is 401, and
                // nothing of the refused request but its bounded target reaches the audit log.
                let d = match g.verifier.authenticate(token, time) {
                    Ok(_) => d,
                    Err(invalid) => invalid,
                };
                if let Some(r) = refused_call(&g, token, envelope.id, method, Some(name), &d, time)
                {
                    return r;
                }
                return denied(&g, envelope.id, &d);
            }
        };
        let allowed = match checked.decision {
            Ok(a) => a,
            // The server policy's scopes (docs §16): the challenge names what the call needs.
            Err(d) if d.code == Code::ScopeMissing => {
                let mut needs = needs;
                needs.extend(g.verifier.policy().scopes(name));
                needs.sort_unstable();
                needs.dedup();
                return denied_needing(&g, envelope.id, &d, &needs);
            }
            Err(d) => return denied(&g, envelope.id, &d),
        };
        parts.extensions.insert(McpDecision { allowed });
        (bytes, session, endpoint, flight, checked.audit_seq)
    };
    let started = Instant::now();
    let mut flight = flight;
    if let Some(f) = flight.as_mut() {
        // From here the server has the request, even if this future is dropped.
        f.forwarded = true;
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    settle_session(&g, session.as_deref(), endpoint, false, &response);
    let response = hold(response, flight);
    match audit_seq {
        Some(seq) => {
            let verifier = g.verifier.clone();
            watch_outcome(response, move |outcome| {
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                // An outcome that cannot be recorded does not undo the call; the decision was.
                let _ = verifier.record_outcome(seq, now(), outcome, ms);
            })
        }
        None => response,
    }
}

/// A request other than a tool call (docs §14.5): the ticket must be valid, the session its
/// own, the method admitted by the configuration with the scopes it needs; every one is
/// audited, admitted or not.
#[allow(clippy::too_many_arguments)]
async fn governed(
    g: &Arc<Guard>,
    token: &str,
    method: &str,
    envelope: &Envelope<'_>,
    session: Option<Vec<u8>>,
    parts: axum::http::request::Parts,
    bytes: Bytes,
    next: Next,
    time: u64,
) -> Response {
    let target = envelope.params.target();
    let info = match g.verifier.ticket_info(token, time) {
        Ok(i) => i,
        Err(d) => {
            return match g
                .verifier
                .record_request(time, method, target, None, Some(&d))
            {
                Ok(_) => denied(g, envelope.id, &d),
                Err(e) => denied(g, envelope.id, &e),
            };
        }
    };
    if let Some(s) = &session {
        if !g.sessions.belongs(s, &owner(&info), time) {
            return no_session(g, envelope.id, method, target, &info, time);
        }
    }
    let needs = g.config.method_needs(method);
    let denial = match &needs {
        None => Some(Denial::new(
            Code::MethodNotAllowed,
            "this server does not serve this method to tickets (see its configuration)",
        )),
        Some(needs) => {
            let missing = missing(&info, needs);
            (!missing.is_empty()).then(|| scope_denial("this method", &missing))
        }
    };
    // An `initialize` outside any session may create one: room is reserved, under the lock
    // that counts bindings, before the server sees the request.
    let creates = session.is_none() && method == "initialize";
    let denial = match (denial, creates) {
        (None, true) => match g.sessions.reserve(&owner(&info), time) {
            Ok(()) => None,
            Err(Room::Full) => Some(Denial::new(
                Code::StoreUnavailable,
                "too many open sessions on this server; try again later",
            )),
            Err(Room::RootFull) => Some(Denial::new(
                Code::StoreUnavailable,
                "this ticket (with those attenuated from the same one) has too many open \
                 sessions; end one (DELETE) or let one lapse",
            )),
        },
        (d, _) => d,
    };
    let reserved = creates && denial.is_none();
    // One request per id in flight in the session (docs §14.4), audited when refused.
    let (flight, refusal) = match denial {
        Some(_) => (None, None),
        None => match start(g, session.as_deref(), envelope.id) {
            Ok(f) => (f, None),
            Err(r) => (None, Some(r)),
        },
    };
    let denial = denial.or_else(|| refusal.as_ref().map(|_| in_flight_denial()));
    if let Err(e) = g
        .verifier
        .record_request(time, method, target, Some(&info), denial.as_ref())
    {
        if reserved {
            g.sessions.release(&owner(&info));
        }
        return denied(g, envelope.id, &e);
    }
    if let Some(r) = refusal {
        return *r;
    }
    if let Some(d) = denial {
        let mut r = denied_needing(g, envelope.id, &d, needs.as_deref().unwrap_or_default());
        if d.code == Code::StoreUnavailable {
            // Bindings lapse after `session_idle_secs` without use.
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(60u32));
        }
        return r;
    }
    let mut flight = flight;
    if let Some(f) = flight.as_mut() {
        // From here the server has the request, even if this future is dropped.
        f.forwarded = true;
    }
    let endpoint = Endpoint::of(parts.uri.path());
    let response = hold(
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await,
        flight,
    );
    // A session the server created for this request belongs to this ticket's chain.
    let created = response
        .headers()
        .get(MCP_SESSION_ID)
        .map(|v| v.as_bytes().to_vec());
    match (reserved, created) {
        (true, Some(id)) => {
            let expires = info.expires.unwrap_or(u64::MAX);
            g.sessions.bind(&id, &owner(&info), endpoint, expires, time);
        }
        (true, None) => g.sessions.release(&owner(&info)),
        (false, _) => {}
    }
    settle_session(g, session.as_deref(), Some(endpoint), false, &response);
    // Lists answered with only what the ticket allows (docs §14.2).
    match method {
        "tools/list" => {
            filter_list(response, "/result/tools", "name", &|n| {
                info.tools.iter().any(|t| t == n)
            })
            .await
        }
        "resources/list" => {
            filter_list(response, "/result/resources", "uri", &|u| {
                Call::read(u).is_ok_and(|c| g.verifier.allows(token, &c.at(time)).is_ok())
            })
            .await
        }
        "prompts/list" => {
            filter_list(response, "/result/prompts", "name", &|p| {
                Call::prompt(p).is_ok_and(|c| g.verifier.allows(token, &c.at(time)).is_ok())
            })
            .await
        }
        _ => response,
    }
}

/// A request in flight in its session. Its id is free again only once its answer has gone
/// out whole (a JSON body that ended, or an event stream that carried a response with its
/// id and ended): a server whose client went away, or that was told to cancel, may still
/// answer later on the stream of the next request with the same id (found by review), so an
/// id that was not answered stays taken while the session lives.
struct InFlight {
    guard: Arc<Guard>,
    session: Vec<u8>,
    id: String,
    /// Whether the server saw the request (one the layer refused frees its id at once).
    forwarded: bool,
    answered: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.forwarded || self.answered {
            self.guard.sessions.finish(&self.session, &self.id);
        }
    }
}

/// Starts request `id` in `session` (docs §14.4): 400 when a request with the same id is in
/// flight there (the server would answer both on one stream, past the layer's list filters),
/// 429 when too many are.
fn start(
    g: &Arc<Guard>,
    session: Option<&[u8]>,
    id: Option<&str>,
) -> Result<Option<InFlight>, Box<Response>> {
    let (Some(session), Some(id)) = (session, id) else {
        return Ok(None);
    };
    let id = canonical_id(id);
    match g.sessions.start(session, &id) {
        Ok(()) => Ok(Some(InFlight {
            guard: g.clone(),
            session: session.to_vec(),
            id,
            forwarded: false,
            answered: false,
        })),
        Err(Start::Duplicate) => Err(Box::new(json_response(
            StatusCode::BAD_REQUEST,
            rpc_error(
                None,
                -32600,
                "a request with this id is in flight in this session, or went unanswered in \
                 it: use a new id",
                None,
            ),
        ))),
        Err(Start::Busy) => {
            let mut r = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                rpc_error(
                    None,
                    -32600,
                    "too many requests in flight in this session",
                    None,
                ),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
            Err(Box::new(r))
        }
    }
}

/// The audit log's denial for a request refused by [`start`].
#[cold]
fn in_flight_denial() -> Denial {
    Denial::new(
        Code::ArgsMalformed,
        "a request with this id is in flight in this session, or went unanswered in it",
    )
}

/// A JSON-RPC id as the server compares it (`1`, `1.0` and `1e0` are one id, `"1"` another),
/// hashed: an id is request data of any length.
fn canonical_id(id: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(id) {
        Ok(v) => canonical_value(&v),
        Err(_) => hashed(&format!("r:{}", id.trim())),
    }
}

fn canonical_value(id: &serde_json::Value) -> String {
    let text = match id {
        serde_json::Value::String(s) => format!("s:{s}"),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => format!("n:{i}"),
            (_, Some(u), _) => format!("n:{u}"),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => format!("n:{}", f as i64),
            _ => format!("n:{n}"),
        },
        other => format!("r:{other}"),
    };
    hashed(&text)
}

fn hashed(text: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The response, holding the request in flight until its answer has gone out (or for good).
fn hold(response: Response, value: Option<InFlight>) -> Response {
    let Some(value) = value else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let sse = is_sse(&parts);
    let ok = parts.status.is_success();
    Response::from_parts(
        parts,
        Body::new(Holding {
            inner: body,
            flight: value,
            sse,
            ok,
            line: Vec::new(),
            seen: false,
        }),
    )
}

struct Holding {
    inner: Body,
    flight: InFlight,
    sse: bool,
    ok: bool,
    /// The event-stream line being read (bounded by [`MAX_RESPONSE`]).
    line: Vec<u8>,
    /// Whether the stream carried the response to the request.
    seen: bool,
}

impl Holding {
    /// Reads the event-stream bytes line by line, for a response with the request's id.
    fn scan(&mut self, data: &[u8]) {
        for &b in data {
            if b != b'\n' {
                if self.line.len() < MAX_RESPONSE {
                    self.line.push(b);
                }
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let Some(json) = line.strip_prefix(b"data:") else {
                continue;
            };
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(json.trim_ascii()) {
                let answer = v.get("result").is_some() || v.get("error").is_some();
                if answer
                    && v.get("id")
                        .is_some_and(|i| canonical_value(i) == self.flight.id)
                {
                    self.seen = true;
                }
            }
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        // A body of known length may be dropped once its last byte went out, unpolled.
        if http_body::Body::is_end_stream(&self.inner) {
            self.flight.answered = self.ok && (!self.sse || self.seen);
        }
    }
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) if this.sse => {
                if let Some(data) = frame.data_ref() {
                    let data = data.clone();
                    this.scan(&data);
                }
            }
            // The whole body went out: a JSON answer, or a stream that carried it.
            std::task::Poll::Ready(None) => {
                this.flight.answered = this.ok && (!this.sse || this.seen);
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// 400 with JSON-RPC error -32020: a routing header that differs from the body.
#[cold]
fn mismatch(id: Option<&str>, header: &str, member: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        rpc_error(
            id,
            -32020,
            &format!("the {header} header does not match the body's {member}"),
            None,
        ),
    )
}

/// A Streamable HTTP header value as the body says it: `=?base64?…?=` (standard alphabet,
/// UTF-8) decoded, anything else as sent. `None` for a sentinel that does not decode.
fn header_value(raw: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    match raw
        .strip_prefix(b"=?base64?")
        .and_then(|r| r.strip_suffix(b"?="))
    {
        Some(b64) => base64::decode_config(b64, base64::STANDARD)
            .ok()
            .map(std::borrow::Cow::Owned),
        None => Some(std::borrow::Cow::Borrowed(raw)),
    }
}

const MAX_RESPONSE: usize = 16 << 20;

async fn buffered(response: Response) -> (axum::http::response::Parts, Option<Bytes>) {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_RESPONSE).await.ok();
    (parts, bytes)
}

fn is_sse(parts: &axum::http::response::Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Applies `f` to the JSON-RPC message(s) of a response: a JSON body, or the `data:` lines of an
/// event stream.
fn rewrite(
    parts: &axum::http::response::Parts,
    body: &[u8],
    f: &dyn Fn(&mut serde_json::Value),
) -> Vec<u8> {
    if is_sse(parts) {
        let text = String::from_utf8_lossy(body);
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            match line.strip_prefix("data:").map(str::trim) {
                Some(data) if data.starts_with('{') => {
                    match serde_json::from_str::<serde_json::Value>(data) {
                        Ok(mut v) => {
                            f(&mut v);
                            out.push_str(&format!("data: {v}\n"));
                        }
                        Err(_) => out.push_str(line),
                    }
                }
                _ => out.push_str(line),
            }
        }
        out.into_bytes()
    } else {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(mut v) => {
                f(&mut v);
                v.to_string().into_bytes()
            }
            Err(_) => body.to_vec(),
        }
    }
}

/// A list (`tools/list`, `resources/list`, `prompts/list`) answered with only the items
/// whose `key` the ticket allows (docs §14.2); an item without it is dropped.
async fn filter_list(
    response: Response,
    list: &str,
    key: &str,
    allowed: &(dyn Fn(&str) -> bool + Sync),
) -> Response {
    let (mut parts, body) = buffered(response).await;
    let Some(body) = body else {
        return (StatusCode::BAD_GATEWAY, "the list response was too large").into_response();
    };
    let filtered = rewrite(&parts, &body, &|v| {
        if let Some(items) = v.pointer_mut(list).and_then(|t| t.as_array_mut()) {
            items.retain(|t| t.get(key).and_then(|n| n.as_str()).is_some_and(allowed));
        }
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(filtered))
}

/// The outcome of an allowed call, read from the response as it streams to the client (no
/// delay): `success`, `tool_error` (a result with `isError`), or `error` (a JSON-RPC error or
/// an HTTP failure). `record` runs once, when the body ends or is dropped.
fn watch_outcome(
    response: Response,
    record: impl FnOnce(&'static str) + Send + 'static,
) -> Response {
    let (parts, body) = response.into_parts();
    let watched = Watched {
        inner: body,
        seen: Vec::new(),
        sse: is_sse(&parts),
        ok: parts.status.is_success(),
        record: Some(Box::new(record)),
    };
    Response::from_parts(parts, Body::new(watched))
}

const WATCH_LIMIT: usize = 1 << 20;

struct Watched {
    inner: Body,
    seen: Vec<u8>,
    sse: bool,
    ok: bool,
    record: Option<Box<dyn FnOnce(&'static str) + Send>>,
}

impl Watched {
    fn finish(&mut self) {
        let Some(record) = self.record.take() else {
            return;
        };
        let outcome = std::cell::Cell::new(if self.ok { "success" } else { "error" });
        let look = |v: &serde_json::Value| {
            if v.get("error").is_some() {
                outcome.set("error");
            } else if v.pointer("/result/isError").and_then(|e| e.as_bool()) == Some(true) {
                outcome.set("tool_error");
            }
        };
        if self.sse {
            for line in String::from_utf8_lossy(&self.seen).lines() {
                if let Some(Ok(v)) = line
                    .strip_prefix("data:")
                    .map(|d| serde_json::from_str(d.trim()))
                {
                    look(&v);
                }
            }
        } else if let Ok(v) = serde_json::from_slice(&self.seen) {
            look(&v);
        }
        record(outcome.get());
    }
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let room = WATCH_LIMIT.saturating_sub(this.seen.len());
                    this.seen.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            std::task::Poll::Ready(None) => this.finish(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credential as `HeaderValue::to_str` read it before `bearer` checked bytes itself.
    fn bearer_by_to_str(v: &HeaderValue) -> Option<&str> {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
            .filter(|t| !t.is_empty())
    }

    /// A body whose first frame is an error.
    struct Broken;

    impl http_body::Body for Broken {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(Some(Err(std::io::Error::other("connection reset"))))
        }
    }

    /// A body of these frames, then an end (or the error `Broken` gives, when `then_break`).
    struct Frames(std::collections::VecDeque<http_body::Frame<Bytes>>, bool);

    impl http_body::Body for Frames {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(match self.0.pop_front() {
                Some(f) => Some(Ok(f)),
                None if self.1 => Some(Err(std::io::Error::other("connection reset"))),
                None => None,
            })
        }
    }

    fn frames(parts: &[&[u8]], trailers: bool, then_break: bool) -> Body {
        let mut f: std::collections::VecDeque<_> = parts
            .iter()
            .map(|p| http_body::Frame::data(Bytes::copy_from_slice(p)))
            .collect();
        if trailers {
            f.push_back(http_body::Frame::trailers(axum::http::HeaderMap::new()));
        }
        Body::new(Frames(f, then_break))
    }

    /// What reading `body` with a bound of `limit` bytes gives (every body here is ready at
    /// once).
    fn read_now(body: Body, limit: usize) -> Result<Bytes, Unread> {
        let mut read = std::pin::pin!(read_body(body, limit));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::future::Future::poll(read.as_mut(), &mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => panic!("a ready body read was pending"),
        }
    }

    #[test]
    fn only_a_body_past_the_bound_is_too_large() {
        assert_eq!(
            read_now(Body::from(vec![b'x'; 11]), 10),
            Err(Unread::TooLarge)
        );
        assert_eq!(
            read_now(frames(&[b"12345", b"678901"], false, false), 10),
            Err(Unread::TooLarge)
        );
        assert_eq!(read_now(Body::new(Broken), 10), Err(Unread::Broken));
        // An error after data that fits is still an error, and a bound met exactly is not.
        assert_eq!(
            read_now(frames(&[b"12345"], false, true), 10),
            Err(Unread::Broken)
        );
        assert_eq!(
            read_now(Body::from(vec![b'x'; 10]), 10).map(|b| b.len()),
            Ok(10)
        );
    }

    #[test]
    fn a_body_is_read_whole_as_to_bytes_reads_it() {
        for (parts, trailers) in [
            (&[][..], false),
            (&[&b""[..]][..], false),
            (&[&b"{\"a\":1}"[..]][..], true),
            (&[&b"{\"jsonrpc\""[..], b"", b":\"2.0\"", b"}"][..], true),
            (&[&b""[..], b"x"][..], false),
        ] {
            let ours = read_now(frames(parts, trailers, false), 64).expect("fits");
            let mut theirs =
                std::pin::pin!(axum::body::to_bytes(frames(parts, trailers, false), 64));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let std::task::Poll::Ready(Ok(theirs)) =
                std::future::Future::poll(theirs.as_mut(), &mut cx)
            else {
                panic!("to_bytes failed on {parts:?}");
            };
            assert_eq!(ours, theirs, "{parts:?}");
            assert_eq!(ours, parts.concat());
        }
    }

    proptest::proptest! {
        /// One walk finds what a lookup by name finds: the first value of each name (the
        /// request's headers in any order, repeated or not, in any case as sent).
        #[test]
        fn one_walk_reads_what_lookups_read(
            sent in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "Authorization", "authorization", "Origin", "Last-Event-ID",
                        "mcp-session-id", "Content-Length", "Mcp-Method", "MCP-NAME", "host",
                        "accept", "mcp-protocol-version", "x-mcp-name", "mcp-names",
                    ]),
                    "[a-z0-9 ]{0,6}",
                ),
                0..12,
            ),
        ) {
            let mut headers = axum::http::HeaderMap::new();
            for (name, value) in &sent {
                headers.append(
                    HeaderName::from_bytes(name.as_bytes()).expect("name"),
                    HeaderValue::from_str(value).expect("value"),
                );
            }
            let h = Heads::of(&headers);
            let get = |n: &str| headers.get(n);
            proptest::prop_assert_eq!(h.origin, get("origin"));
            proptest::prop_assert_eq!(h.authorization, get("authorization"));
            proptest::prop_assert_eq!(h.authorizations, headers.get_all("authorization").iter().count());
            proptest::prop_assert_eq!(h.last_event_id, headers.contains_key("last-event-id"));
            proptest::prop_assert_eq!(h.session, get("mcp-session-id"));
            proptest::prop_assert_eq!(h.content_length, get("content-length"));
            proptest::prop_assert_eq!(h.mcp_method, get("mcp-method"));
            proptest::prop_assert_eq!(h.mcp_name, get("mcp-name"));
        }
    }

    #[test]
    fn bearer_reads_what_to_str_reads() {
        let mut compared = 0;
        for b in 0..=255u8 {
            for raw in [
                [b"Bearer captix1_ab".as_slice(), &[b], b"cd"].concat(),
                [b"Bearer ".as_slice(), &[b]].concat(),
                [&[b], b"Bearer x".as_slice()].concat(),
                // A two-byte UTF-8 sequence, which `to_str` refuses.
                [b"Bearer x".as_slice(), &[0xC3, b]].concat(),
            ] {
                // Only bytes a header value can hold reach the guard.
                let Ok(v) = HeaderValue::from_bytes(&raw) else {
                    continue;
                };
                match std::str::from_utf8(&raw) {
                    // ASCII: what `to_str` read.
                    Ok(t) if t.is_ascii() => {
                        assert_eq!(bearer(&v), bearer_by_to_str(&v), "{raw:?}")
                    }
                    // UTF-8 beyond ASCII: read as text (the verifier then refuses it: not a
                    // ticket), where `to_str` saw no credential.
                    Ok(t) => {
                        assert_eq!(bearer_by_to_str(&v), None);
                        let token = t
                            .split_once(' ')
                            .map(|(_, t)| t.trim())
                            .filter(|t| !t.is_empty());
                        let bearer_scheme = t
                            .split_once(' ')
                            .is_some_and(|(s, _)| s.eq_ignore_ascii_case("bearer"));
                        assert_eq!(bearer(&v), token.filter(|_| bearer_scheme), "{raw:?}");
                    }
                    // Not UTF-8: no credential, as before.
                    Err(_) => assert_eq!(bearer(&v), None, "{raw:?}"),
                }
                compared += 1;
            }
        }
        assert!(compared > 800, "{compared}");
        let v = HeaderValue::from_static("bearer  captix1_x ");
        assert_eq!(bearer(&v), Some("captix1_x"));
        let v = HeaderValue::from_bytes("Bearer captix1_é".as_bytes()).expect("value");
        assert_eq!(bearer(&v), Some("captix1_é"));
        // Unicode spaces around a ticket stay part of the credential (the verifier refuses it).
        let v =
            HeaderValue::from_bytes("Bearer \u{a0}captix1_x\u{3000}".as_bytes()).expect("value");
        assert_eq!(bearer(&v), Some("\u{a0}captix1_x\u{3000}"));
    }
}
