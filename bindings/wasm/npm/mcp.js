// captix for servers built on the MCP TypeScript SDK (@modelcontextprotocol/sdk 1.x).
//
// Three pieces, use the ones that fit:
// - captixTokenVerifier(verifier): an OAuthTokenVerifier for the SDK's requireBearerAuth.
// - captixMiddleware(verifier, options): Express middleware that does the whole HTTP job —
//   bearer ticket (401), per-call check of every tools/call against the ticket (403
//   insufficient_scope, 429 for budgets), request.auth for the SDK's handlers.
// - captixGuard(verifier): a per-call check inside tool handlers, for transports without HTTP
//   (stdio). Use it or the middleware for a call, not both: each check spends budgets.
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';

/** The HTTP answer to a denial code (spec §8). */
export function httpStatus(code) {
  switch (code) {
    case 'malformed':
    case 'ticket_too_large':
    case 'too_many_blocks':
    case 'bad_signature':
    case 'unknown_key':
    case 'revoked':
    case 'expired':
    case 'not_yet_valid':
    case 'wrong_resource':
      return 401;
    case 'budget_exhausted':
      return 429;
    case 'args_malformed':
    case 'args_duplicate_key':
    case 'args_too_large':
    case 'args_too_deep':
      return 400;
    case 'store_unavailable':
      return 503;
    case 'invalid_time':
      return 500;
    default:
      return 403;
  }
}

/** The AuthInfo of a valid ticket. Throws an Error with `code` when the ticket is not valid. */
export function authInfo(verifier, token, { resource } = {}) {
  const info = verifier.ticketInfo(token);
  return {
    token,
    clientId: info.identity.agent,
    scopes: info.identity.scopes ?? [],
    // The SDK refuses an AuthInfo without an expiry; a ticket without one is re-checked on every
    // call anyway, so it is given five minutes at a time.
    expiresAt: info.expires ?? Math.floor(Date.now() / 1000) + 300,
    resource: resource ? new URL(resource) : undefined,
    extra: { captix: info },
  };
}

/** An OAuthTokenVerifier for `requireBearerAuth({ verifier: captixTokenVerifier(v) })`. */
export function captixTokenVerifier(verifier, options = {}) {
  return {
    async verifyAccessToken(token) {
      try {
        return authInfo(verifier, token, options);
      } catch (e) {
        throw new InvalidTokenError(`${e.code ?? 'invalid_token'}: ${e.message}`);
      }
    },
  };
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

function challenge(res, status, { error, resourceMetadataUrl }) {
  const parts = [];
  if (resourceMetadataUrl) parts.push(`resource_metadata="${quote(resourceMetadataUrl)}"`);
  if (error) parts.push(`error="${error}"`, `error_description="${DESCRIPTIONS[error]}"`);
  res.set('WWW-Authenticate', parts.length ? `Bearer ${parts.join(', ')}` : 'Bearer');
  res.status(status);
}

/** An Mcp-Name / Mcp-Method value as the body says it: `=?base64?…?=` decoded. */
function headerValue(v) {
  if (typeof v !== 'string') return v;
  const m = /^=\?base64\?(.*)\?=$/.exec(v);
  return m ? Buffer.from(m[1], 'base64').toString('utf8') : v;
}

/** The HTTP status of a denial: a budget that never refills is 403 (retrying cannot help). */
export function denialStatus(decision) {
  if (decision.code === 'budget_exhausted' && decision.retry_after === undefined) return 403;
  return httpStatus(decision.code);
}

/**
 * Express middleware for MCP streamable-HTTP endpoints. Mount it after `express.json()` and
 * before the SDK's transport. Options: `{ resource, resourceMetadataUrl }`.
 */
export function captixMiddleware(verifier, { resource, resourceMetadataUrl, allowedOrigins } = {}) {
  // Streamable HTTP: browser requests from other origins are refused (DNS rebinding). Default:
  // the origin of the resource, or of the metadata URL.
  const base = resource ?? resourceMetadataUrl;
  const origins = allowedOrigins ?? (base ? [new URL(base).origin] : []);
  return (req, res, next) => {
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
    const header = req.headers.authorization ?? '';
    const [scheme, token] = header.split(' ');
    if (!token || scheme.toLowerCase() !== 'bearer') {
      challenge(res, 401, { resourceMetadataUrl });
      return res.json(rpcError(null, -32001, 'a captix ticket is required: Authorization: Bearer captix1_...'));
    }
    let auth;
    try {
      auth = authInfo(verifier, token, { resource });
    } catch (e) {
      challenge(res, 401, { error: 'invalid_token', resourceMetadataUrl });
      const data = { decision: 'deny', code: e.code, reason: e.message };
      return res.json(rpcError(req.body?.id ?? null, -32001, `captix ${e.code}: ${e.message}`, data));
    }
    req.auth = auth;
    const body = req.body;
    if (req.method !== 'POST' || body === undefined) return next();
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
    if (body.method !== 'tools/call') return next();
    const name = body.params?.name;
    const headerName = req.headers['mcp-name'];
    if (typeof name !== 'string') {
      return res.status(400).json(rpcError(body.id ?? null, -32602, 'tools/call needs params.name'));
    }
    if (headerName !== undefined && headerValue(headerName) !== name) {
      return res.status(400).json(rpcError(body.id ?? null, -32020, "the Mcp-Name header does not match the body's params.name"));
    }
    const decision = verifier.check(token, { tool: name, arguments: body.params?.arguments ?? {} });
    if (decision.decision === 'allow') {
      auth.extra.decision = decision;
      return next();
    }
    const status = denialStatus(decision);
    const description = `captix ${decision.code}: ${decision.reason}`;
    if (status === 401) challenge(res, 401, { error: 'invalid_token', resourceMetadataUrl });
    else if (status === 403) challenge(res, 403, { error: 'insufficient_scope', resourceMetadataUrl });
    else res.status(status);
    if (status === 429 && decision.retry_after !== undefined) res.set('Retry-After', String(decision.retry_after));
    return res.json({ ...rpcError(body.id ?? null, -32001, description, decision), captix: decision });
  };
}

function rpcError(id, code, message, data) {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

/**
 * A per-call guard for tool handlers: `guard.wrap('list_invoices', handler)` checks the call
 * against the ticket in `extra.authInfo.token` and returns an MCP tool error on denial.
 */
export function captixGuard(verifier) {
  return {
    check(token, tool, args) {
      return verifier.check(token, { tool, arguments: args ?? {} });
    },
    wrap(tool, handler) {
      return async (args, extra) => {
        const token = extra?.authInfo?.token;
        const decision = token
          ? verifier.check(token, { tool, arguments: args ?? {} })
          : { decision: 'deny', code: 'malformed', reason: 'no captix ticket on this request' };
        if (decision.decision !== 'allow') {
          return { isError: true, content: [{ type: 'text', text: `captix ${decision.code}: ${decision.reason}` }], _meta: { captix: decision } };
        }
        return handler(args, { ...extra, captix: decision });
      };
    },
  };
}

/** The RFC 9728 protected-resource metadata document for this server. */
export function protectedResourceMetadata({ resource, authorizationServers = [], scopes = [] }) {
  return {
    resource,
    authorization_servers: authorizationServers,
    scopes_supported: scopes,
    bearer_methods_supported: ['header'],
  };
}
