// captix for servers built on the MCP TypeScript SDK in Node: Express with SDK 1.x, and a guard
// for any transport of SDK 1.x or 2.x. (SDK 2.x over HTTP, in any runtime: captixFetch in
// http.js, which holds the rules these layers share.)
//
// Three pieces, use the ones that fit:
// - captixTokenVerifier(verifier): an OAuthTokenVerifier for the SDK's requireBearerAuth.
// - captixMiddleware(verifier, options): Express middleware that does the whole HTTP job —
//   bearer ticket (401), per-call check of every tools/call, resources/read and prompts/get
//   against the ticket (403 insufficient_scope, 429 for budgets), tools/list, resources/list
//   and prompts/list filtered by it, sessions bound to the ticket chain that created them,
//   methods beyond the lifecycle only when configured (with scopes), every request audited,
//   request.auth for the SDK's handlers; and the RFC 9728 metadata handler.
// - captixGuard(verifier, { ticket }).connect(server, transport): the same rules between a
//   server and a transport without HTTP (stdio). Use it or the middleware for a call, not
//   both: each check spends budgets.
import { createHash } from 'node:crypto';
import {
  authInfo, challengeValue, headerValue, LIFECYCLE, CHECKED, scopeMap, metadataLocation, rpcError,
  decisionOf, protectedResourceMetadata, httpStatus, denialStatus, bearerToken, parseJsonBody, BODY_DEADLINE_MS, filterListText, layerSettings, denialAnswer, recorder, judgeRequest, methodNeedsOf, editList,
} from './http.js';

// Shared with captixFetch (http.js), re-exported here where they were. The statuses are the
// core's table (one for Rust and JS).
export { authInfo, LIFECYCLE, metadataLocation, decisionOf, protectedResourceMetadata, httpStatus, denialStatus };

/** Sets the challenge and the status on an Express response. */
function challenge(res, status, options) {
  res.set('WWW-Authenticate', challengeValue(options));
  res.status(status);
}

/** An OAuthTokenVerifier for `requireBearerAuth({ verifier: captixTokenVerifier(v) })`. */
export function captixTokenVerifier(verifier) {
  return {
    async verifyAccessToken(token) {
      try {
        return authInfo(verifier, token);
      } catch (e) {
        // The SDK writes this message into WWW-Authenticate as it is: only a stable code, never
        // the reason (ticket text a holder chose could inject parameters or break the header).
        const code = typeof e?.code === 'string' && /^[a-z_]{1,40}$/.test(e.code) ? e.code : 'invalid_token';
        // SDK 1.x's own error class (its requireBearerAuth answers 401 for it), loaded here
        // only: the rest of this module serves servers without SDK 1.x (the guard on 2.x).
        const { InvalidTokenError } = await import('@modelcontextprotocol/sdk/server/auth/errors.js');
        throw new InvalidTokenError(`captix ${code}`);
      }
    },
  };
}

/** Most requests one session may have in flight. */
const MAX_IN_FLIGHT = 256;

/** Longest event-stream line the middleware reads when it looks for an answer. */
const MAX_LINE = 16 << 20;

/**
 * Holds the response `res` is about to send until it ends, then sends it with only the list
 * items `keep` admits (`filterListText`: a JSON body, or an event stream). A body that cannot
 * be filtered is never sent: a JSON-RPC error takes its place (fail closed).
 */
function filterListResponse(res, items, keep) {
  const chunks = [];
  const { write, end, writeHead } = res;
  const noLength = (h) => (h && typeof h === 'object' && !Array.isArray(h)
    ? Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== 'content-length'))
    : h);
  res.writeHead = function (status, ...rest) {
    if (!res.headersSent) res.removeHeader('content-length');
    return writeHead.call(this, status, ...rest.map(noLength));
  };
  const collect = (chunk, encoding) => {
    if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8'));
    }
  };
  res.write = function (chunk, encoding, cb) {
    collect(chunk, encoding);
    const done = typeof encoding === 'function' ? encoding : cb;
    if (done) done();
    return true;
  };
  res.end = function (chunk, encoding, cb) {
    collect(chunk, encoding);
    const done = [chunk, encoding, cb].find((x) => typeof x === 'function');
    const text = Buffer.concat(chunks).toString('utf8');
    const type = String(res.getHeader('content-type') ?? '');
    let out = text === '' || res.statusCode >= 400 ? text : filterListText(type, text, items, keep);
    if (out === undefined) {
      const error = JSON.stringify(rpcError(null, -32603, 'the server answered a list in a form captix cannot filter'));
      out = type.toLowerCase().startsWith('text/event-stream') ? `event: message\ndata: ${error}\n\n` : error;
    }
    if (!res.headersSent) res.removeHeader('content-length');
    res.write = write;
    res.end = end;
    return end.call(this, out, done);
  };
}

/** A request's endpoint: its path under the app (no query), as the router saw it. */
function endpointOf(req) {
  return `${req.baseUrl ?? ''}${req.path ?? String(req.url ?? '').split('?')[0]}`;
}

/**
 * Express middleware for MCP streamable-HTTP endpoints. Mount it without a body parser (it reads
 * each POST body itself, at most `maxBodyBytes`) and
 * before the SDK's transport; create it once. The resource is the verifier's (`new Verifier({
 * resource })`). Options: `authorizationServers` (at least one), `allowedOrigins`, `methods`
 * (method → scopes it needs, `[]` for none: admitted beyond the lifecycle), `toolScopes` (tool or
 * `*` → scopes), `maxSessions`. The returned function carries `metadataPath` and
 * `metadataHandler` (the RFC 9728 document, CORS open).
 */
export function captixMiddleware(verifier, options = {}) {
  const { maxSessions = 10000, maxSessionsPerTicket = 32, sessionIdleSecs = 600, maxBodyBytes = 1 << 20 } = options;
  const { methodScopes, toolNeeds, metadataPath, resourceMetadataUrl, origins, metadata } = layerSettings(verifier, options);
  // Sessions belong to the chain that created them (docs §14.4): sha256(id) → binding. At most
  // maxSessions in all, maxSessionsPerTicket per issuance (authority block); a binding lapses
  // at its ticket's expiry or after sessionIdleSecs without use.
  const sessions = new Map();
  const perRoot = new Map();
  const sessionKey = (id) => createHash('sha256').update(String(id)).digest('hex');
  const ownerOf = (info) => ({ chain: info.chain[info.chain.length - 1], root: info.chain[0] });
  const nowSecs = () => Date.now() / 1000;
  const live = (b, now) => now <= b.expires && now - b.lastUsed <= sessionIdleSecs;
  const forget = (k) => {
    const b = sessions.get(k);
    if (!b) return;
    sessions.delete(k);
    const n = (perRoot.get(b.root) ?? 1) - 1;
    if (n > 0) perRoot.set(b.root, n);
    else perRoot.delete(b.root);
  };
  const sweep = (now) => {
    for (const [k, b] of sessions) if (!live(b, now)) forget(k);
  };
  const belongs = (id, info) => {
    const k = sessionKey(id);
    const b = sessions.get(k);
    const now = nowSecs();
    if (b === undefined) return false;
    if (!live(b, now)) {
      forget(k);
      return false;
    }
    if (b.chain !== ownerOf(info).chain) return false;
    b.lastUsed = now;
    return true;
  };
  // Room for a session about to be created is reserved before the transport sees the
  // request: creations in flight count toward both bounds, so concurrent ones cannot
  // overshoot. Each reservation ends in bind() or release().
  let pending = 0;
  const reserve = (info) => {
    const { root } = ownerOf(info);
    const now = nowSecs();
    const held = () => sessions.size + pending;
    if (held() >= maxSessions || (perRoot.get(root) ?? 0) >= maxSessionsPerTicket) sweep(now);
    if (held() >= maxSessions) return 'too many open sessions on this server; try again later';
    if ((perRoot.get(root) ?? 0) >= maxSessionsPerTicket) return 'this ticket (with those attenuated from the same one) has too many open sessions; end one (DELETE) or let one lapse';
    pending += 1;
    perRoot.set(root, (perRoot.get(root) ?? 0) + 1);
    return undefined;
  };
  const release = (info) => {
    const { root } = ownerOf(info);
    pending = Math.max(0, pending - 1);
    const n = (perRoot.get(root) ?? 1) - 1;
    if (n > 0) perRoot.set(root, n);
    else perRoot.delete(root);
  };
  // Binds a created session under its owner's reservation (an id already bound keeps its
  // owner, and the reservation is given back).
  // The binding keeps the endpoint (path) that created the session: only an answer from it
  // can end the session (docs §14.4).
  const bind = (id, info, endpoint) => {
    const k = sessionKey(id);
    if (sessions.has(k)) {
      release(info);
      return;
    }
    const { chain, root } = ownerOf(info);
    pending = Math.max(0, pending - 1);
    sessions.set(k, { chain, root, endpoint, expires: info.expires ?? Infinity, lastUsed: nowSecs(), inFlight: new Set() });
  };
  // Forgets a session the server ended, told by an answer from the endpoint that created it
  // (docs §14.4): a DELETE's success, or a 404 that is not a JSON-RPC message. A 404 from
  // another path, or one carrying JSON or an event stream (the answer to the message itself),
  // says nothing of the session: freeing the slot on it let a holder open sessions past its
  // share (found by review).
  const ended = (session, endpoint, req, res) => {
    const k = sessionKey(session);
    if (sessions.get(k)?.endpoint !== endpoint) return;
    const type = String(res.getHeader('content-type') ?? '').trimStart().toLowerCase();
    const message = type.startsWith('application/json') || type.startsWith('text/event-stream');
    const deleted = req.method === 'DELETE' && res.statusCode >= 200 && res.statusCode < 300;
    if (deleted || (res.statusCode === 404 && !message)) forget(k);
  };
  // One request per JSON-RPC id in flight in a session (docs §14.4): a second request with the
  // id of one in flight would receive the first one's answer (a filtered list, say) on a
  // stream the middleware does not filter. An id is free again once its answer went out
  // whole; a request the server saw but did not answer on its stream (the client went away,
  // it was cancelled) keeps its id taken while the session lives: the server may still
  // answer it, on the stream of the next request with that id. Returns an error answer, or
  // undefined (and `res.captixFlight`, to mark when the server gets the request).
  const idKey = (id) => createHash('sha256').update(typeof id === 'number' ? `n:${id}` : typeof id === 'string' ? `s:${id}` : `r:${JSON.stringify(id)}`).digest('hex');
  const start = (res, session, id) => {
    const b = sessions.get(sessionKey(session));
    if (b === undefined || id === undefined) return undefined;
    const k = idKey(id);
    if (b.inFlight.has(k)) return res.status(400).json(rpcError(null, -32600, 'a request with this id is in flight in this session, or went unanswered in it: use a new id'));
    if (b.inFlight.size >= MAX_IN_FLIGHT) {
      res.set('Retry-After', '1');
      return res.status(429).json(rpcError(null, -32600, 'too many requests in flight in this session'));
    }
    b.inFlight.add(k);
    const flight = { forwarded: false, seen: false };
    res.captixFlight = flight;
    watchAnswer(res, k, flight);
    res.on('close', () => {
      const sse = String(res.getHeader('content-type') ?? '').startsWith('text/event-stream');
      const answered = res.writableFinished && res.statusCode < 300 && (!sse || flight.seen);
      if (!flight.forwarded || answered) b.inFlight.delete(k);
    });
    return undefined;
  };
  // Notes when an event stream carries the response to the request whose id hashes to `k`.
  const watchAnswer = (res, k, flight) => {
    const { write, end } = res;
    let line = '';
    const scan = (chunk, encoding) => {
      if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
      line += Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
      const lines = line.split('\n');
      line = lines.pop() ?? '';
      if (line.length > MAX_LINE) line = '';
      for (const l of lines) {
        if (!l.startsWith('data:')) continue;
        try {
          const v = JSON.parse(l.slice(5).trim());
          if (v && (v.result !== undefined || v.error !== undefined) && v.id !== undefined && idKey(v.id) === k) flight.seen = true;
        } catch {
          // not JSON: not the answer
        }
      }
    };
    res.write = function (chunk, encoding, cb) {
      scan(chunk, encoding);
      return write.call(this, chunk, encoding, cb);
    };
    res.end = function (chunk, encoding, cb) {
      scan(chunk, encoding);
      scan('\n');
      return end.call(this, chunk, encoding, cb);
    };
  };
  const methodNeeds = methodNeedsOf(methodScopes);
  const deny = (res, id, decision, scope = []) => {
    const { status, headers, body } = denialAnswer(id, decision, resourceMetadataUrl, scope);
    for (const [k, v] of Object.entries(headers)) res.set(k, v);
    return res.status(status).json(body);
  };
  const record = recorder(verifier);
  const rules = { verifier, methodNeeds, toolNeeds, record };
  const middleware = (req, res, next) => {
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.includes(origin.replace(/\/$/, ''))) {
      return res.status(403).json(rpcError(null, -32600, 'this Origin is not allowed'));
    }
    const raw = req.rawHeaders ?? [];
    let authorizations = 0;
    for (let i = 0; i < raw.length; i += 2) if (String(raw[i]).toLowerCase() === 'authorization') authorizations += 1;
    if (authorizations > 1) {
      challenge(res, 400, { error: 'invalid_request', resourceMetadataUrl });
      return res.json(rpcError(null, -32600, 'invalid_request: more than one Authorization header'));
    }
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) {
      challenge(res, 401, { resourceMetadataUrl });
      return res.json(rpcError(null, -32001, 'a captix ticket is required: Authorization: Bearer captix1_...'));
    }
    // The body is read here, whatever its Content-Type (no body parser needs to be mounted, and
    // none can let a body it skipped reach the transport unchecked), and only for a valid
    // ticket: nothing is buffered for a caller without one. What does not parse is answered
    // below, once the rest of the ticket's checks have run.
    if (req.method === 'POST' && req.body === undefined && !Object.hasOwn(req, BODY_ERROR)) {
      try {
        verifier.ticketInfo(token);
      } catch (e) {
        const decision = { decision: 'deny', code: e.code ?? 'malformed', reason: e.message };
        record(token, 'POST', undefined, decision);
        return deny(res, null, decision);
      }
      if (Number(req.headers['content-length']) > maxBodyBytes) {
        return res.status(413).json(rpcError(null, -32600, 'the request body is too large'));
      }
      return readJson(req, maxBodyBytes, BODY_DEADLINE_MS).then((r) => {
        if (r.tooLarge) return res.status(413).json(rpcError(null, -32600, 'the request body is too large'));
        if (r.timedOut) return res.status(408).json(rpcError(null, -32600, 'the request body did not arrive in time'));
        req[BODY_ERROR] = r.error;
        req.body = r.value;
        return middleware(req, res, next);
      }).catch(() => {
        if (!res.headersSent) res.status(400).json(rpcError(null, -32600, 'the request body could not be read'));
      });
    }
    const body = req.body;
    const method = req.method === 'POST' && body && typeof body === 'object' && !Array.isArray(body) ? body.method : undefined;
    const target = typeof method !== 'string' ? undefined : method === 'tools/call' ? body.params?.name : (body.params?.uri ?? body.params?.name);
    const member = typeof method === 'string' && Object.hasOwn(CHECKED, method) ? CHECKED[method] : undefined;
    let auth;
    try {
      auth = authInfo(verifier, token);
    } catch (e) {
      const decision = { decision: 'deny', code: e.code, reason: e.message };
      if (typeof method === 'string') record(token, method, target, decision);
      return deny(res, body?.id ?? null, decision);
    }
    req.auth = auth;
    const info = auth.extra.captix;
    // Sessions belong to the chain that created them: any other ticket gets 404, audited.
    const session = req.headers['mcp-session-id'];
    if (session !== undefined && !belongs(session, info)) {
      const denial = { decision: 'deny', code: 'session_not_found', reason: "this ticket's chain did not create the session it names, or the session ended" };
      const failed = record(token, typeof method === 'string' ? method : req.method, target, denial);
      if (failed) return deny(res, body?.id ?? null, failed);
      return res.status(404).json(rpcError(body?.id ?? null, -32600, 'session not found', denial));
    }
    if (session !== undefined) {
      // The server ended the session (deleted it, or no longer knows it): so does the middleware.
      const endpoint = endpointOf(req);
      res.on('finish', () => ended(session, endpoint, req, res));
    }
    // Resuming a stream replays messages sent earlier, past the list filters of the requests
    // they answered: not served (docs §14.2).
    if (req.headers['last-event-id'] !== undefined) {
      return res.status(400).json(rpcError(null, -32600, 'stream resumption (Last-Event-ID) is not served behind captix: replayed messages could not be filtered again'));
    }
    if (req.method !== 'POST') return next();
    if (req[BODY_ERROR] !== undefined || body === undefined || body === null || typeof body !== 'object') {
      return res.status(400).json(rpcError(null, -32700, `the body is not a JSON-RPC request: ${req[BODY_ERROR] ?? 'not a JSON object'}`));
    }
    if (Array.isArray(body)) {
      return res.status(400).json(rpcError(null, -32600, 'batch requests are not accepted by this server'));
    }
    if (typeof body !== 'object' || body === null || body.jsonrpc !== '2.0') {
      return res.status(400).json(rpcError(null, -32600, 'the body is not a JSON-RPC 2.0 request'));
    }
    const headerMethod = req.headers['mcp-method'];
    if (headerMethod !== undefined && headerValue(headerMethod) !== body.method) {
      return res.status(400).json(rpcError(body.id ?? null, -32020, "the Mcp-Method header does not match the body's method"));
    }
    if (body.method === undefined) return next(); // a response to a request of the server's
    if (typeof body.method !== 'string') {
      return res.status(400).json(rpcError(body.id ?? null, -32600, 'the method is not a string'));
    }
    if (session !== undefined) {
      const refused = start(res, session, body.id);
      if (refused) {
        record(token, body.method, target, { decision: 'deny', code: 'args_malformed', reason: 'a request with this id is in flight in this session, or went unanswered in it' });
        return refused;
      }
    }
    // The server gets the request: from here its id stays taken until it is answered.
    const forward = () => {
      if (res.captixFlight) res.captixFlight.forwarded = true;
      return next();
    };
    const name = member === undefined ? undefined : body.params?.[member];
    const headerName = req.headers['mcp-name'];
    if (typeof name === 'string' && headerName !== undefined && headerValue(headerName) !== name) {
      return res.status(400).json(rpcError(body.id ?? null, -32020, `the Mcp-Name header does not match the body's params.${member}`));
    }
    // An initialize outside a session may create one: room for it is reserved first.
    let reserved = false;
    let full = false;
    const admit = () => {
      if (body.method !== 'initialize' || session !== undefined) return undefined;
      const why = reserve(info);
      if (why) {
        full = true;
        return { decision: 'deny', code: 'store_unavailable', reason: why };
      }
      reserved = true;
      return undefined;
    };
    const judged = judgeRequest(rules, token, info, body, admit);
    if (judged.denial) {
      if (reserved) release(info);
      if (full) res.set('Retry-After', '60');
      return deny(res, body.id ?? null, judged.denial, judged.scope);
    }
    if (judged.decision) {
      auth.extra.decision = judged.decision;
      return forward();
    }
    if (reserved) {
      // The session the server creates for this request belongs to this ticket's chain.
      let settled = false;
      const writeHead = res.writeHead;
      res.writeHead = function (status, ...rest) {
        if (!settled) {
          settled = true;
          const headers = rest.find((h) => h && typeof h === 'object');
          const id = res.getHeader('mcp-session-id') ?? (headers && Object.entries(headers).find(([k]) => k.toLowerCase() === 'mcp-session-id')?.[1]);
          if (id !== undefined) bind(Array.isArray(id) ? id[0] : id, info, endpointOf(req));
          else release(info);
        }
        return writeHead.call(this, status, ...rest);
      };
      res.on('close', () => {
        if (!settled) {
          settled = true;
          release(info);
        }
      });
    }
    // Lists answered with only what the ticket allows (docs §14.2).
    if (judged.list) filterListResponse(res, ...judged.list);
    return forward();
  };
  middleware.metadataPath = metadataPath;
  middleware.metadata = metadata;
  middleware.metadataHandler = (_req, res) => {
    res.set('Access-Control-Allow-Origin', '*');
    res.set('Access-Control-Allow-Methods', 'GET, OPTIONS');
    res.json(metadata);
  };
  return middleware;
}

/** Where the middleware notes why a body it read is not JSON (undefined: it is). */
const BODY_ERROR = Symbol('captix body error');

/**
 * Reads a request's body, at most `max` bytes within `deadline` ms: `{ value }` (its JSON),
 * `{ error }` (why it is not JSON: not UTF-8, not JSON), `{ tooLarge: true }` or
 * `{ timedOut: true }` (reading stops there).
 */
function readJson(req, max, deadline) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    let over = false;
    const timer = setTimeout(() => {
      over = true;
      chunks.length = 0;
      resolve({ timedOut: true });
    }, deadline);
    timer.unref?.();
    req.on('close', () => clearTimeout(timer));
    req.on('data', (c) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        clearTimeout(timer);
        chunks.length = 0;
        resolve({ tooLarge: true });
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      clearTimeout(timer);
      if (over) return;
      resolve(parseJsonBody(Buffer.concat(chunks)));
    });
  });
}

/**
 * A per-call guard for transports without the HTTP middleware (stdio, or any transport of
 * either SDK major version): `await captixGuard(verifier, { ticket }).connect(server, transport)`.
 * It follows the middleware's rules (docs §14.2) on the messages the transport delivers:
 * every tools/call, resources/read and prompts/get is checked against the ticket (the
 * request's `authInfo.token`, or the `ticket` option for a transport without authentication,
 * e.g. stdio) by the name the request itself carries, before the server sees it; tools/list,
 * resources/list and prompts/list are answered with what the ticket allows; a method beyond
 * the lifecycle (`LIFECYCLE`) is refused unless `methods` names it (method → scopes it needs).
 * A denial is answered as the HTTP layer answers it, a JSON-RPC error -32001 with the decision
 * under `error.data`; an allowed request reaches the handler with the decision in its
 * `authInfo.extra.decision` (see `decisionOf`). Use it or the middleware for a call, not
 * both: each check spends budgets.
 */
export function captixGuard(verifier, { ticket, methods = {} } = {}) {
  if (ticket !== undefined && typeof ticket !== 'string') throw new TypeError('ticket must be a string');
  const rules = { verifier, methodNeeds: methodNeedsOf(scopeMap('methods', methods)), toolNeeds: new Map(), record: recorder(verifier) };
  // The answer to one request: a denial, or the decision (and list filter) to pass it on with.
  const decide = (token, message) => {
    let info;
    try {
      if (!token) throw Object.assign(new Error('no captix ticket on this request'), { code: 'malformed' });
      info = verifier.ticketInfo(token);
    } catch (e) {
      const denial = { decision: 'deny', code: e.code ?? 'malformed', reason: e.message };
      return { denial: rules.record(token ?? '', message.method, undefined, denial) ?? denial };
    }
    return judgeRequest(rules, token, info, message);
  };
  return {
    /** Checks one tool call with a ticket: the decision. */
    check(token, tool, args) {
      return verifier.check(token, { tool, arguments: args ?? {} });
    },
    /**
     * Connects the server to the transport, then puts the guard between them: the server's
     * message handler receives only what the guard lets through, and its list answers are
     * filtered on their way out.
     */
    async connect(server, t) {
      if (!t || typeof t.send !== 'function') throw new TypeError('transport: an MCP transport (with send) is needed');
      if (!server || typeof server.connect !== 'function') throw new TypeError('server: an MCP server (with connect) is needed');
      await server.connect(t);
      const inner = t.onmessage;
      if (typeof inner !== 'function') throw new TypeError('the server set no message handler on the transport');
      // Lists in flight: request id → [result member, filter].
      const lists = new Map();
      const send = t.send.bind(t);
      t.send = (message, options) => {
        const list = message && message.id !== undefined && message.result ? lists.get(idKey(message.id)) : undefined;
        if (list) {
          lists.delete(idKey(message.id));
          message = editList(message, ...list);
        } else if (message && message.id !== undefined && message.error) {
          lists.delete(idKey(message.id));
        }
        return send(message, options);
      };
      t.onmessage = (message, extra) => {
        const isRequest = message && typeof message === 'object' && typeof message.method === 'string';
        if (!isRequest || message.method.startsWith('notifications/') || message.method === 'ping' || message.method === 'initialize') {
          return inner(message, extra);
        }
        // A request sent as a notification (no id) has no answer to carry a denial: dropped,
        // never passed on unchecked.
        if (message.id === undefined || message.id === null) return undefined;
        const token = extra?.authInfo?.token ?? ticket;
        const judged = decide(token, message);
        if (judged.denial) {
          const { denial } = judged;
          const answer = rpcError(message.id, -32001, `captix ${denial.code}: ${denial.reason}`, denial);
          Promise.resolve(send(answer, { relatedRequestId: message.id })).catch((e) => t.onerror?.(e));
          return undefined;
        }
        if (judged.list) lists.set(idKey(message.id), judged.list);
        if (!judged.decision) return inner(message, extra);
        const auth = extra?.authInfo ?? authInfo(verifier, token);
        return inner(message, { ...extra, authInfo: { ...auth, extra: { ...auth.extra, decision: judged.decision } } });
      };
      return t;
    },
  };
}

/** A JSON-RPC id as a map key (a number and its string are different ids). */
function idKey(id) {
  return typeof id === 'number' ? `n:${id}` : `s:${String(id)}`;
}

