// An MCP server on the official TypeScript SDK 1.x (Express, streamable HTTP, loopback)
// guarded by captix's Express middleware (invoices-server-v2.mjs: the same on SDK 2.x).
//
//   node examples/invoices-server.mjs --pubkey root.pub --authorization-server URL [--port 8788]
//
// The tools, resources and prompts are in invoices.mjs. The captix middleware checks every
// tools/call, resources/read and prompts/get against the caller's ticket and filters the
// lists; the handlers apply the ticket's row filters to their query.
import { readFileSync } from 'node:fs';
import express from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Verifier } from '../index.js';
import { captixMiddleware, decisionOf } from '../mcp.js';
import { mcpServer } from './invoices.mjs';

/**
 * Starts the server; resolves to `{ url, verifier, close() }`. The verifier is made once the
 * port is known (its resource is this server's URL, which tickets must name), from
 * `verifierOptions` (e.g. `{ publicKeys, audit }`); `middleware` adds captixMiddleware options.
 */
export async function startServer({ verifierOptions, port = 0, host = '127.0.0.1', authorizationServers = ['https://auth.example'], middleware = {} } = {}) {
  const app = express();
  // No body parser: the captix middleware reads each POST's body itself (bounded, whatever its
  // Content-Type), so nothing it did not check reaches the transport.
  const listener = await new Promise((resolve) => {
    const l = app.listen(port, host, () => resolve(l));
  });
  const url = `http://${host}:${listener.address().port}/mcp`;
  const verifier = new Verifier({ ...verifierOptions, resource: url });
  const guard = captixMiddleware(verifier, { authorizationServers, ...middleware });
  app.get(guard.metadataPath, guard.metadataHandler);
  app.post('/mcp', guard, async (req, res) => {
    // Never an unfiltered query: decisionOf throws for a call without a captix decision.
    const server = mcpServer(McpServer, decisionOf);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close();
      server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  return { url, verifier, close: () => new Promise((r) => listener.close(r)) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--pubkey');
  const p = process.argv.indexOf('--port');
  const a = process.argv.indexOf('--authorization-server');
  if (i < 0 || a < 0) {
    console.error('usage: node examples/invoices-server.mjs --pubkey root.pub --authorization-server URL [--port 8788]');
    process.exit(2);
  }
  const publicKey = readFileSync(process.argv[i + 1], 'utf8').split('\n').find((l) => l && !l.startsWith('#'));
  const port = p > 0 ? Number(process.argv[p + 1]) : 8788;
  const { url } = await startServer({ verifierOptions: { publicKeys: [publicKey.trim()] }, port, authorizationServers: [process.argv[a + 1]] });
  console.log(`invoices MCP server on ${url}`);
}
