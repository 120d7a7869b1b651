// The invoices MCP server as a `fetch`-style handler, for any runtime with the Fetch API
// (Workers-style `export default`, Deno.serve, Bun.serve; invoices-server-v2.mjs serves it
// from node:http): the MCP TypeScript SDK 2.x's `createMcpHandler` behind `captixFetch`.
//
//   export default createHandler({ publicKeys: [PUBLIC_KEY], resource: 'https://edge.example/mcp',
//                                  authorizationServers: ['https://auth.example'] });
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { Verifier } from '../index.js';
import { captixFetch, decisionOf } from '../http.js';
import { mcpServer } from './invoices.mjs';

/** The guarded handler: `{ fetch(request), metadataPath, metadata }`, and its `verifier`. */
export function createHandler({ publicKeys, resource, authorizationServers = ['https://auth.example'], verifierOptions = {}, middleware = {} }) {
  const verifier = new Verifier({ ...verifierOptions, publicKeys, resource });
  // One fresh server per request (the SDK's per-request model); never an unfiltered query:
  // decisionOf throws for a call without a captix decision.
  const handler = captixFetch(verifier, { authorizationServers, ...middleware })(createMcpHandler(() => mcpServer(McpServer, decisionOf)));
  return { ...handler, verifier };
}
