// captix at the HTTP boundary, for any runtime with the Fetch API (Node, Deno, Bun, browsers,
// Workers-style edge runtimes): the rules of docs §14 shared by the Express middleware
// (mcp.js) and `captixFetch`, a wrapper around a web-standard MCP handler such as the one the
// MCP TypeScript SDK 2.x's `createMcpHandler` returns. Nothing here imports from Node.
import { httpStatus, denialStatus } from './index.js';

export { httpStatus, denialStatus };

/**
 * The AuthInfo of a valid ticket, as the ticket says it: `resource` is the ticket's audience,
 * `expiresAt` its expiry (absent for a ticket that never expires, which the SDK's
 * requireBearerAuth then refuses: nothing is made up). Throws an Error with `code` when the
 * ticket is not valid.
 */
export function authInfo(verifier, token) {
  const info = verifier.ticketInfo(token);
  return {
    token,
    clientId: info.identity.agent,
    scopes: info.identity.scopes ?? [],
    expiresAt: info.expires,
    resource: url(info.audience),
    extra: { captix: info },
  };
}

/** The audience as a URL, or undefined when there is none or it is not a URL. */
function url(audience) {
  if (audience === undefined) return undefined;
  try {
    return new URL(audience);
  } catch {
    return undefined;
  }
}

function quote(s) {
  return String(s).replace(/["\\]/g, '\\$&');
}

// Fixed descriptions in RFC 6750's character set: a challenge carries only values the server
// chose, never request data (a tool name in it once sent clients to another origin).
const DESCRIPTIONS = {
  invalid_token: 'the ticket is not valid for this server',
  insufficient_scope: 'the ticket does not allow this request',
  invalid_request: 'the request is malformed',
};

/** A `WWW-Authenticate` value: server-chosen values only (RFC 6750 §3). */
export function challengeValue({ error, resourceMetadataUrl, scope = [] } = {}) {
  const parts = [];
  if (resourceMetadataUrl) parts.push(`resource_metadata="${quote(resourceMetadataUrl)}"`);
  if (error) {
    parts.push(`error="${error}"`);
    if (scope.length) parts.push(`scope="${scope.join(' ')}"`);
    parts.push(`error_description="${DESCRIPTIONS[error]}"`);
  }
  return parts.length ? `Bearer ${parts.join(', ')}` : 'Bearer';
}

/** An Mcp-Name / Mcp-Method value as the body says it: `=?base64?…?=` decoded. */
export function headerValue(v) {
  if (typeof v !== 'string') return v;
  const m = /^=\?base64\?(.*)\?=$/.exec(v);
  if (!m) return v;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0)));
  } catch {
    // Not base64, or not UTF-8: matches no name.
    return undefined;
  }
}

/**
 * Methods every valid ticket may send: the lifecycle, the client's notifications, the tools,
 * resources and prompts (each tools/call, resources/read and prompts/get checked against the
 * ticket, each list filtered by it).
 */
export const LIFECYCLE = Object.freeze([
  'initialize',
  'ping',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'prompts/list',
  'prompts/get',
]);

/** The methods the ticket itself decides, with the params member that names their target. */
export const CHECKED = Object.freeze({ 'tools/call': 'name', 'resources/read': 'uri', 'prompts/get': 'name' });

/** The lists answered with only what the ticket allows: result member and item key. */
export const LISTS = Object.freeze({ 'tools/list': ['tools', 'name'], 'resources/list': ['resources', 'uri'], 'prompts/list': ['prompts', 'name'] });

// RFC 6749 §3.3 scope-token: a scope can never break out of the challenge's quoted string.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,256}$/;

export function scopeMap(what, o = {}) {
  const m = new Map();
  for (const [k, v] of Object.entries(o)) {
    const scopes = Array.isArray(v) ? v : [v];
    for (const s of scopes) {
      if (typeof s !== 'string' || !SCOPE_TOKEN.test(s)) throw new TypeError(`${what} ${k}: ${JSON.stringify(s)} is not an RFC 6749 scope-token`);
    }
    m.set(k, scopes);
  }
  return m;
}

/** `(origin, path)` of a resource's RFC 9728 metadata document. */
export function metadataLocation(resource) {
  const u = new URL(resource);
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '');
  return { origin: u.origin, path: `/.well-known/oauth-protected-resource${path}` };
}

export function rpcError(id, code, message, data) {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

/**
 * The allowed decision a captix layer attached to a request, from a handler's `extra` (SDK 1.x)
 * or context (`ctx.http.authInfo`, SDK 2.x). Throws when there is none: a handler must refuse
 * rather than run an unfiltered query (a route mounted without the layer, say).
 */
export function decisionOf(extra) {
  // SDK 1.x hands handlers `extra.authInfo`; 2.x a context with `ctx.http.authInfo`.
  const d = (extra?.authInfo ?? extra?.http?.authInfo)?.extra?.decision;
  if (!d || d.decision !== 'allow') {
    throw new Error('no captix decision for this request: is the captix middleware or guard in front of this handler?');
  }
  return d;
}

/** The RFC 9728 protected-resource metadata document for this server. */
export function protectedResourceMetadata({ resource, authorizationServers, scopes = [] }) {
  if (!Array.isArray(authorizationServers) || authorizationServers.length === 0) {
    throw new TypeError('authorizationServers: RFC 9728 metadata must name at least one');
  }
  return {
    resource,
    authorization_servers: authorizationServers,
    scopes_supported: scopes,
    bearer_methods_supported: ['header'],
  };
}

/**
 * What an MCP layer derives from its verifier and options, checked (a layer refuses an unsafe
 * configuration): the resource (the verifier's), the authorization servers (at least one,
 * absolute http(s) URLs), the methods' and tools' scopes, where the RFC 9728 document lives
 * and what it says, and the origins admitted (the resource's own and `allowedOrigins`).
 */
export function layerSettings(verifier, { authorizationServers, allowedOrigins = [], methods = {}, toolScopes = {}, scopes = [] } = {}) {
  const resource = verifier.resource;
  if (!resource) throw new TypeError("the verifier has no resource: new Verifier({ resource }) with this server's canonical URI");
  if (!Array.isArray(authorizationServers) || authorizationServers.length === 0) {
    throw new TypeError('authorizationServers: RFC 9728 metadata must name at least one');
  }
  for (const a of authorizationServers) {
    if (typeof a !== 'string' || !/^https?:\/\/[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/.test(a)) throw new TypeError(`authorization server ${JSON.stringify(a)} is not an absolute http(s) URL`);
  }
  const methodScopes = scopeMap('methods', methods);
  const toolNeeds = scopeMap('toolScopes', toolScopes);
  const extraScopes = scopeMap('scopes', { scopes }).get('scopes');
  const supported = [...new Set([...extraScopes, ...[...methodScopes.values()].flat(), ...[...toolNeeds.values()].flat(), ...verifier.policyAllScopes])].sort();
  const { origin: own, path: metadataPath } = metadataLocation(resource);
  // Streamable HTTP: browser requests from other origins are refused (DNS rebinding).
  const origins = [own, ...allowedOrigins.map((o) => o.replace(/\/$/, ''))];
  const metadata = Object.freeze(protectedResourceMetadata({ resource, authorizationServers, scopes: supported }));
  return { resource, methodScopes, toolNeeds, metadataPath, resourceMetadataUrl: own + metadataPath, origins, metadata };
}

/**
 * A layer's answer to a denial (docs §14.1): the status from the core's table, the challenge
 * (`invalid_token` for 401; `insufficient_scope` naming `scope` for 403, except for a method
 * the server does not serve, which no scope admits), `Retry-After` for a 429 that can end, and
 * the JSON-RPC error -32001 with the decision under `error.data`. Headers in lower case.
 */
export function denialAnswer(id, decision, resourceMetadataUrl, scope = []) {
  const status = denialStatus(decision);
  const headers = {};
  if (status === 401) headers['www-authenticate'] = challengeValue({ error: 'invalid_token', resourceMetadataUrl });
  else if (status === 403 && decision.code !== 'method_not_allowed') headers['www-authenticate'] = challengeValue({ error: 'insufficient_scope', resourceMetadataUrl, scope });
  if (status === 429 && decision.retry_after !== undefined) headers['retry-after'] = String(decision.retry_after);
  return { status, headers, body: rpcError(id, -32001, `captix ${decision.code}: ${decision.reason}`, decision) };
}

/**
 * A layer's audit of a request it answers itself: `record(token, method, target, denial)` is
 * undefined once recorded, or the denial to answer instead when the record could not be written
 * (a request is never answered unaudited).
 */
export function recorder(verifier) {
  return (token, method, target, denial) => {
    try {
      verifier.recordRequest(token, method, { target, denial });
      return undefined;
    } catch (e) {
      return { decision: 'deny', code: e.code ?? 'store_unavailable', reason: e.message };
    }
  };
}

const refusal = (code, reason) => ({ decision: 'deny', code, reason });

/**
 * The rules of docs §14.2 and §14.5 for one JSON-RPC request of a valid ticket (`info`), one
 * place for the Express middleware, captixFetch and the guard. A method other than
 * tools/call, resources/read and prompts/get must be admitted (`methodNeeds` gives the scopes it
 * needs, undefined for a method not served) and is audited here, refused or not; `admit()` may
 * refuse one more (the middleware's session quota) before that record. A checked method needs
 * its target, arguments that are an object, the server's scopes for the method and the tool,
 * then the ticket's own check, which spends budgets and audits. Returns `{ denial, scope }` to
 * answer (with the scopes a challenge names), or `{ pass: true, decision, list }` to pass the
 * request on: `decision` for a checked method, `list` = [result member, filter] for a list.
 */
export function judgeRequest({ verifier, methodNeeds, toolNeeds, record }, token, info, body, admit) {
  const { method } = body;
  const lacking = (needs) => needs.filter((s) => !(info.identity.scopes ?? []).includes(s));
  const member = Object.hasOwn(CHECKED, method) ? CHECKED[method] : undefined;
  if (member === undefined) {
    const needs = methodNeeds(method);
    const target = body.params?.uri ?? body.params?.name;
    let denial;
    if (needs === undefined) denial = refusal('method_not_allowed', 'this server does not serve this method to tickets (see its configuration)');
    else if (lacking(needs).length) denial = refusal('scope_missing', `this method needs the scope ${lacking(needs).join(' ')}, which the ticket does not have`);
    denial ??= admit?.();
    const failed = record(token, method, typeof target === 'string' ? target : undefined, denial);
    if (failed) return { denial: failed, scope: [] };
    if (denial) return { denial, scope: needs ?? [] };
    const list = Object.hasOwn(LISTS, method) ? [LISTS[method][0], listFilter(verifier, token, info, method)] : undefined;
    return { pass: true, list };
  }
  const name = body.params?.[member];
  const refuse = (denial, scope = []) => ({ denial: record(token, method, typeof name === 'string' ? name : undefined, denial) ?? denial, scope });
  if (typeof name !== 'string') return refuse(refusal('args_malformed', `${method} needs params.${member}`));
  const args = body.params?.arguments ?? {};
  if (method === 'tools/call' && (typeof args !== 'object' || args === null || Array.isArray(args))) {
    return refuse(refusal('args_malformed', 'the arguments are not a JSON object'));
  }
  // The server's scopes, before the ticket's own check spends anything.
  const needs = [...(methodNeeds(method) ?? [])];
  if (method === 'tools/call') needs.push(...(toolNeeds.get(name) ?? []), ...(toolNeeds.get('*') ?? []));
  if (lacking(needs).length) {
    const what = method === 'tools/call' ? `the tool ${name}` : method;
    return refuse(refusal('scope_missing', `${what} needs the scope ${lacking(needs).join(' ')}, which the ticket does not have`), needs);
  }
  const call = method === 'tools/call' ? { tool: name, arguments: args } : method === 'resources/read' ? { uri: name } : { prompt: name };
  let decision;
  try {
    decision = verifier.check(token, call);
  } catch (e) {
    // A store that is down, say: a denial, never the framework's error page.
    decision = refusal(e.code && e.code !== 'internal' ? e.code : 'store_unavailable', 'the call could not be checked');
  }
  if (decision.decision === 'allow') return { pass: true, decision };
  // The server policy's scopes (docs §16): the challenge names what the call needs.
  const scope = decision.code === 'scope_missing' && method === 'tools/call' ? [...new Set([...needs, ...verifier.policyScopes(name)])].sort() : [];
  return { denial: decision, scope };
}

/** A layer's `methodNeeds`: the scopes a method needs, [] for the lifecycle, undefined when not served. */
export function methodNeedsOf(methodScopes, served = LIFECYCLE) {
  return (m) => (methodScopes.has(m) ? methodScopes.get(m) : served.includes(m) ? [] : undefined);
}

/**
 * Which items of a list the ticket allows: for `tools/list` the tools the ticket may call
 * (`info.tools`), for `resources/list` and `prompts/list` each item asked of the ticket.
 */
export function listFilter(verifier, token, info, method) {
  const [, key] = LISTS[method];
  if (method === 'tools/list') return (it) => typeof it?.[key] === 'string' && info.tools.includes(it[key]);
  return (it) => {
    try {
      return typeof it?.[key] === 'string' && verifier.allows(token, method === 'resources/list' ? { uri: it[key] } : { prompt: it[key] });
    } catch {
      return false;
    }
  };
}

/**
 * The token of an `Authorization: Bearer …` value, as the Rust layer reads it: everything after
 * the scheme, trimmed (so `Bearer a b` is the token `a b`, which no ticket is); undefined for
 * another scheme or none.
 */
export function bearerToken(header) {
  const m = /^([A-Za-z][A-Za-z0-9-]*) +(.*)$/s.exec(String(header ?? ''));
  if (!m || m[1].toLowerCase() !== 'bearer') return undefined;
  const token = m[2].trim();
  return token === '' ? undefined : token;
}

/**
 * Whether text that JSON.parse accepted repeats a key in any object (`"a"` and `"\u0061"` are
 * one key): the Rust layer refuses such a body (serde, and the arguments' own reader), and a
 * JSON reader that keeps the first of two keys would see another request than JSON.parse,
 * which keeps the last.
 */
export function repeatsKey(text) {
  const objects = []; // for each open container: a Set of keys (object) or null (array)
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (expectKey) {
        const keys = objects[objects.length - 1];
        const key = JSON.parse(text.slice(i, j + 1));
        if (keys.has(key)) return true;
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      objects.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      objects.push(null);
    } else if (c === '}' || c === ']') {
      objects.pop();
    } else if (c === ',') {
      expectKey = objects[objects.length - 1] instanceof Set;
    }
  }
  return false;
}

/** The methods a 2026-07-28 client sends beyond the 2025 lifecycle, admitted like it. */
const MODERN = Object.freeze(['server/discover']);

/** How long a layer waits for a request's whole body. */
export const BODY_DEADLINE_MS = 10_000;

/**
 * A request body's JSON: `{ value }`, or `{ error }` saying why it is not one (not UTF-8, not
 * JSON, a key repeated: see `repeatsKey`), never quoting the input (the parser's message does).
 */
export function parseJsonBody(bytes) {
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { error: 'not UTF-8' };
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: 'not JSON' };
  }
  return repeatsKey(text) ? { error: 'a key is repeated' } : { value };
}

/** Reads at most `max` bytes of a body within the deadline: `{ bytes }`, `{ tooLarge }`, `{ timedOut }`. */
async function readBody(request, max, deadline) {
  if (request.body === null) return { bytes: new Uint8Array(0) };
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve({ timedOut: true }), deadline); });
  const read = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > max) return { tooLarge: true };
      chunks.push(value);
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.length;
    }
    return { bytes };
  })();
  try {
    const r = await Promise.race([read, late]);
    if (r.tooLarge || r.timedOut) reader.cancel().catch(() => {});
    return r;
  } finally {
    clearTimeout(timer);
  }
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function jsonResponse(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/**
 * Wraps a web-standard MCP handler (`{ fetch(request, { authInfo, parsedBody }) }`, what the
 * MCP TypeScript SDK 2.x's `createMcpHandler` returns) with the rules of docs §14: the bearer
 * ticket (401 with an RFC 9728 challenge), Origin (DNS rebinding), one credential, the routing
 * headers against the body, every tools/call, resources/read and prompts/get checked against
 * the ticket before the handler sees it, tools/list, resources/list and prompts/list answered
 * with what the ticket allows, methods beyond the lifecycle only when `methods` names them,
 * every request audited, denials as JSON-RPC -32001 with the decision under `error.data`. The
 * handler gets the SDK's `authInfo` with the decision in `extra.decision` (`decisionOf(ctx)`)
 * and the body already parsed. It also answers the RFC 9728 metadata document at its path.
 *
 * For stateless serving (2026-07-28's per-request model, and the SDK's stateless fallback for
 * 2025 clients): a request naming a session (`Mcp-Session-Id`) is refused, since no session
 * here is bound to the ticket that made it; a sessionful server uses the Express middleware.
 *
 * Options as `captixMiddleware`'s: `authorizationServers` (at least one), `allowedOrigins`,
 * `methods`, `toolScopes`, `scopes`, `maxBodyBytes` (1 MiB).
 */
export function captixFetch(verifier, options = {}) {
  const { maxBodyBytes = 1 << 20 } = options;
  const { methodScopes, toolNeeds, metadataPath, resourceMetadataUrl, origins, metadata } = layerSettings(verifier, options);
  const record = recorder(verifier);
  const rules = { verifier, methodNeeds: methodNeedsOf(methodScopes, [...LIFECYCLE, ...MODERN]), toolNeeds, record };
  const deny = (id, decision, scope = []) => {
    const { status, headers, body } = denialAnswer(id, decision, resourceMetadataUrl, scope);
    return jsonResponse(status, body, headers);
  };
  const refused = (status, id, code, message) => jsonResponse(status, rpcError(id, code, message));

  return (handler) => {
    if (!handler || typeof handler.fetch !== 'function') throw new TypeError('handler: a web-standard MCP handler (with fetch) is needed');
    const serve = async (request, options = {}) => {
      const url = new URL(request.url);
      if (url.pathname === metadataPath && (request.method === 'GET' || request.method === 'OPTIONS')) {
        return jsonResponse(200, metadata, { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, OPTIONS' });
      }
      const origin = request.headers.get('origin');
      if (origin !== null && !origins.includes(origin.replace(/\/$/, ''))) {
        return refused(403, null, -32600, 'this Origin is not allowed');
      }
      const header = request.headers.get('authorization') ?? '';
      // The Fetch API joins repeated headers with ", ": a ticket never holds one.
      if (header.includes(',')) {
        return jsonResponse(400, rpcError(null, -32600, 'invalid_request: more than one Authorization header'), { 'www-authenticate': challengeValue({ error: 'invalid_request', resourceMetadataUrl }) });
      }
      const token = bearerToken(header);
      if (token === undefined) {
        return jsonResponse(401, rpcError(null, -32001, 'a captix ticket is required: Authorization: Bearer captix1_...'), { 'www-authenticate': challengeValue({ resourceMetadataUrl }) });
      }
      let auth;
      try {
        auth = authInfo(verifier, token);
      } catch (e) {
        const decision = { decision: 'deny', code: e.code ?? 'malformed', reason: e.message };
        record(token, request.method, undefined, decision);
        return deny(null, decision);
      }
      const info = auth.extra.captix;
      if (request.headers.has('mcp-session-id')) {
        const denial = { decision: 'deny', code: 'session_not_found', reason: 'this server is stateless behind captix: no session is served' };
        record(token, request.method, undefined, denial);
        return jsonResponse(404, rpcError(null, -32600, 'session not found', denial));
      }
      if (request.headers.has('last-event-id')) {
        return refused(400, null, -32600, 'stream resumption (Last-Event-ID) is not served behind captix: replayed messages could not be filtered again');
      }
      if (request.method !== 'POST') return handler.fetch(request, { ...options, authInfo: auth });
      if (Number(request.headers.get('content-length')) > maxBodyBytes) return refused(413, null, -32600, 'the request body is too large');
      const read = await readBody(request, maxBodyBytes, BODY_DEADLINE_MS).catch(() => ({ failed: true }));
      if (read.tooLarge) return refused(413, null, -32600, 'the request body is too large');
      if (read.timedOut) return refused(408, null, -32600, 'the request body did not arrive in time');
      if (read.failed) return refused(400, null, -32600, 'the request body could not be read');
      const parsed = parseJsonBody(read.bytes);
      if (parsed.error) return refused(400, null, -32700, `the body is not a JSON-RPC request: ${parsed.error}`);
      const body = parsed.value;
      if (Array.isArray(body)) return refused(400, null, -32600, 'batch requests are not accepted by this server');
      if (body === null || typeof body !== 'object') return refused(400, null, -32700, 'the body is not a JSON-RPC request: not a JSON object');
      if (body.jsonrpc !== '2.0') return refused(400, null, -32600, 'the body is not a JSON-RPC 2.0 request');
      const id = body.id ?? null;
      const headerMethod = request.headers.get('mcp-method');
      if (headerMethod !== null && headerValue(headerMethod) !== body.method) {
        return refused(400, id, -32020, "the Mcp-Method header does not match the body's method");
      }
      // The body, parsed, goes on with the request (whose own stream was read here).
      const forward = (authInfoFor) => handler.fetch(new Request(request.url, { method: 'POST', headers: request.headers, body: read.bytes }), { ...options, authInfo: authInfoFor, parsedBody: body });
      if (body.method === undefined) return forward(auth); // a response to a request of the server's
      if (typeof body.method !== 'string') return refused(400, id, -32600, 'the method is not a string');
      const member = Object.hasOwn(CHECKED, body.method) ? CHECKED[body.method] : undefined;
      const name = member === undefined ? undefined : body.params?.[member];
      const headerName = request.headers.get('mcp-name');
      if (typeof name === 'string' && headerName !== null && headerValue(headerName) !== name) {
        return refused(400, id, -32020, `the Mcp-Name header does not match the body's params.${member}`);
      }
      const judged = judgeRequest(rules, token, info, body);
      if (judged.denial) return deny(id, judged.denial, judged.scope);
      if (judged.decision) return forward({ ...auth, extra: { ...auth.extra, decision: judged.decision } });
      const response = await forward(auth);
      return judged.list ? filterList(response, ...judged.list) : response;
    };
    return { fetch: serve, metadataPath, metadata };
  };
}

/** The list's items in a JSON-RPC message filtered by `keep`; the message itself otherwise. */
export function editList(v, items, keep) {
  if (v.result && typeof v.result === 'object' && Array.isArray(v.result[items])) {
    return { ...v, result: { ...v.result, [items]: v.result[items].filter(keep) } };
  }
  return v;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * An event stream's filter, fed text as it arrives (`push`) and told when it ends (`end`); each
 * returns the text to pass on. Lines end with CR, LF or CRLF; an event's `data:` lines are
 * joined; each event's message has its list filtered; an event whose data is not one JSON
 * object is dropped (fail closed). Other fields pass as they were.
 */
function sseListFilter(items, keep) {
  let pending = '';
  let lines = [];
  const event = () => {
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
    const other = lines.filter((l) => !l.startsWith('data:'));
    lines = [];
    if (data.length === 0) return other.length ? `${other.join('\n')}\n\n` : '';
    let v;
    try {
      v = JSON.parse(data.join('\n'));
    } catch {
      return '';
    }
    if (!isObject(v)) return '';
    return `${[...other, `data: ${JSON.stringify(editList(v, items, keep))}`].join('\n')}\n\n`;
  };
  const take = (text, end) => {
    pending += text;
    // A CR at the end may be half of a CRLF: the line it ends is kept until more arrives.
    const held = !end && pending.endsWith('\r');
    const parts = (held ? pending.slice(0, -1) : pending).split(/\r\n|\r|\n/);
    const tail = parts.pop() ?? '';
    pending = end ? '' : tail + (held ? '\r' : '');
    if (end && tail !== '') parts.push(tail);
    let out = '';
    for (const l of parts) {
      if (l === '') out += event();
      else lines.push(l);
    }
    if (end && lines.length) out += event();
    return out;
  };
  return { push: (text) => take(text, false), end: () => take('', true) };
}

/** The media type of a Content-Type value, lower case, without parameters. */
function mediaType(value) {
  return String(value ?? '').toLowerCase().split(';')[0].trim();
}

/**
 * A whole list response's text with only the items `keep` admits (a JSON object, or an event
 * stream); undefined when it cannot be filtered (not one JSON object, another media type):
 * the caller must not send it.
 */
export function filterListText(contentType, text, items, keep) {
  const type = mediaType(contentType);
  if (type === 'application/json') {
    let v;
    try {
      v = JSON.parse(text);
    } catch {
      return undefined;
    }
    return isObject(v) ? JSON.stringify(editList(v, items, keep)) : undefined;
  }
  if (type === 'text/event-stream') {
    const f = sseListFilter(items, keep);
    return f.push(text) + f.end();
  }
  return undefined;
}

/**
 * The handler's answer to a list request with only the items `keep` admits, failing closed: a
 * JSON body rewritten whole (502 when it is not one JSON object, or of another media type); an
 * event stream filtered event by event as it flows. An error status passes as it is.
 */
function filterList(response, items, keep) {
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  if (response.body === null || response.status === 202 || response.status === 204) return response;
  const type = mediaType(response.headers.get('content-type'));
  if (type === 'text/event-stream') {
    const f = sseListFilter(items, keep);
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    const send = (controller, out) => {
      if (out) controller.enqueue(encoder.encode(out));
    };
    const stream = response.body.pipeThrough(new TransformStream({
      transform(chunk, controller) {
        send(controller, f.push(decoder.decode(chunk, { stream: true })));
      },
      flush(controller) {
        send(controller, f.push(decoder.decode()) + f.end());
      },
    }));
    return new Response(stream, { status: response.status, headers });
  }
  if (response.status >= 400 && type !== 'application/json') return response;
  return response.text().then((text) => {
    const out = filterListText(type, text, items, keep);
    if (out === undefined) return jsonResponse(502, rpcError(null, -32603, 'the server answered a list in a form captix cannot filter'));
    return new Response(out, { status: response.status, headers });
  });
}
