// The smallest captix check in a `fetch`-style handler (Workers, Deno.serve, Bun.serve, any
// runtime with Request and Response): a bearer ticket is checked for each JSON-RPC tools/call,
// and denials are answered as the Express middleware and the Rust layer answer them (status
// from the core's table, the decision under error.data, a challenge naming the metadata).
// It shows the shape only: the full MCP layer (sessions, list filtering, Origin and routing
// headers) is the Express middleware in mcp.js.
//
//   export default createHandler({ publicKeys: [PUBLIC_KEY], resource: 'https://edge.example/mcp' })
import { Verifier, denialStatus } from '../index.js';

const json = (status, body, headers = {}) => Response.json(body, { status, headers });
const rpcError = (id, code, message, data) => ({ jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } });

export function createHandler({ publicKeys, resource }) {
  const verifier = new Verifier({ publicKeys, resource });
  const u = new URL(resource);
  const metadata = `${u.origin}/.well-known/oauth-protected-resource${u.pathname === '/' ? '' : u.pathname}`;
  return {
    async fetch(request) {
      const [scheme, ticket] = (request.headers.get('authorization') ?? '').split(' ');
      if (!ticket || scheme.toLowerCase() !== 'bearer') {
        return json(401, rpcError(null, -32001, 'a captix ticket is required'), { 'www-authenticate': `Bearer resource_metadata="${metadata}"` });
      }
      let body;
      try {
        body = await request.json();
      } catch {
        return json(400, rpcError(null, -32700, 'the body is not a JSON-RPC request'));
      }
      if (body?.method !== 'tools/call' || typeof body.params?.name !== 'string') {
        return json(400, rpcError(body?.id ?? null, -32600, 'this example serves tools/call only'));
      }
      const decision = verifier.check(ticket, { tool: body.params.name, arguments: body.params.arguments ?? {} });
      if (decision.decision !== 'allow') {
        const status = denialStatus(decision);
        const error = status === 401 ? 'invalid_token' : 'insufficient_scope';
        const headers = status === 401 || status === 403 ? { 'www-authenticate': `Bearer resource_metadata="${metadata}", error="${error}"` } : {};
        if (status === 429 && decision.retry_after !== undefined) headers['retry-after'] = String(decision.retry_after);
        return json(status, rpcError(body.id ?? null, -32001, `captix ${decision.code}: ${decision.reason}`, decision), headers);
      }
      // Here the tool would run, its query narrowed by decision.filters.
      return json(200, { jsonrpc: '2.0', id: body.id ?? null, result: { content: [], structuredContent: { decision } } });
    },
  };
}
