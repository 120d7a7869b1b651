// An MCP server on the official TypeScript SDK (streamable HTTP, loopback) guarded by captix.
//
//   node examples/invoices-server.mjs --pubkey root.pub --authorization-server URL [--port 8788]
//
// Tools: list_invoices, get_invoice, create_refund over an in-memory table of several orgs'
// invoices, a summary resource per org (invoices://<org>/summary) and two prompts. The captix
// middleware checks every tools/call, resources/read and prompts/get against the caller's
// ticket and filters the lists; the
// handlers then apply the ticket's row filters (the decision's `filters`) to their query, so an
// agent limited to org acme never sees another org's row.
import { readFileSync } from 'node:fs';
import express from 'express';
import * as z from 'zod/v4';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Verifier } from '../index.js';
import { captixMiddleware, decisionOf } from '../mcp.js';

const INVOICES = [
  { id: 1, org: 'acme', status: 'open', amount: 120 },
  { id: 2, org: 'acme', status: 'paid', amount: 80 },
  { id: 3, org: 'globex', status: 'open', amount: 9000 },
  { id: 4, org: 'initech', status: 'void', amount: 15 },
];

/** Rows of `table` allowed by the decision's filters on the given fields. */
function allowedRows(decision, table) {
  return table.filter((row) =>
    decision.filters.every((f) => {
      const field = f.arg.slice(1);
      if (!(field in row)) return true;
      return f.constraints.every((c) => admits(c, row[field]));
    }),
  );
}

function admits(c, v) {
  if ('eq' in c) return v === c.eq;
  if ('one_of' in c) return c.one_of.includes(v);
  if ('prefix' in c) return typeof v === 'string' && v.startsWith(c.prefix);
  if ('range' in c) return Number.isInteger(v) && (c.range.min ?? -Infinity) <= v && v <= (c.range.max ?? Infinity);
  return false;
}

function mcpServer(decisionOf) {
  const server = new McpServer({ name: 'invoices', version: '0.1.0' });
  const text = (v) => ({ content: [{ type: 'text', text: JSON.stringify(v) }] });
  server.registerTool(
    'list_invoices',
    { description: "List an org's invoices", inputSchema: { org: z.string(), status: z.string().optional() } },
    async ({ org, status }, extra) => {
      const rows = allowedRows(decisionOf(extra), INVOICES).filter((r) => r.org === org && (!status || r.status === status));
      return text(rows);
    },
  );
  server.registerTool(
    'get_invoice',
    { description: 'One invoice by id', inputSchema: { org: z.string(), id: z.number().int() } },
    async ({ org, id }, extra) => {
      const row = allowedRows(decisionOf(extra), INVOICES).find((r) => r.id === id && r.org === org);
      return row ? text(row) : { isError: true, content: [{ type: 'text', text: 'no such invoice' }] };
    },
  );
  server.registerTool(
    'create_refund',
    { description: 'Refund part of an invoice', inputSchema: { org: z.string(), id: z.number().int(), amount: z.number().int() } },
    async ({ org, id, amount }) => text({ refunded: amount, invoice: id, org }),
  );
  // One summary per org, readable when the ticket grants its URI (the middleware checks each
  // read and filters resources/list).
  for (const org of [...new Set(INVOICES.map((r) => r.org))]) {
    const uri = `invoices://${org}/summary`;
    server.registerResource(`${org} summary`, uri, { mimeType: 'application/json' }, async (u, extra) => {
      decisionOf(extra);
      const rows = INVOICES.filter((r) => r.org === org);
      const total = rows.reduce((t, r) => t + r.amount, 0);
      return { contents: [{ uri: u.href, text: JSON.stringify({ org, invoices: rows.length, total }) }] };
    });
  }
  for (const [name, about] of PROMPTS) {
    server.registerPrompt(name, { description: about }, async (extra) => {
      decisionOf(extra);
      return { messages: [{ role: 'user', content: { type: 'text', text: about } }] };
    });
  }
  return server;
}

const PROMPTS = [
  ['triage', 'Sort the open invoices by amount and name the three to chase first.'],
  ['refund_policy', 'Refunds above 500 need a second approver.'],
];

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
    const server = mcpServer(decisionOf);
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
