// The invoices MCP server's tools, resources and prompts, for both example servers (SDK 1.x
// with Express: invoices-server.mjs; SDK 2.x with createMcpHandler: invoices-server-v2.mjs):
// an in-memory table of several orgs' invoices, a summary resource per org
// (invoices://<org>/summary) and two prompts. The handlers apply the ticket's row filters (the
// decision's `filters`) to their query, so an agent limited to org acme never sees another
// org's row.
import * as z from 'zod/v4';

export const INVOICES = [
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

/**
 * The invoices MCP server on either SDK major version (`McpServer` of @modelcontextprotocol/sdk
 * 1.x or @modelcontextprotocol/server 2.x); `decisionOf` gives each handler the captix decision.
 */
export function mcpServer(McpServer, decisionOf) {
  const server = new McpServer({ name: 'invoices', version: '0.1.0' });
  const text = (v) => ({ content: [{ type: 'text', text: JSON.stringify(v) }] });
  server.registerTool(
    'list_invoices',
    { description: "List an org's invoices", inputSchema: z.object({ org: z.string(), status: z.string().optional() }) },
    async ({ org, status }, extra) => {
      const rows = allowedRows(decisionOf(extra), INVOICES).filter((r) => r.org === org && (!status || r.status === status));
      return text(rows);
    },
  );
  server.registerTool(
    'get_invoice',
    { description: 'One invoice by id', inputSchema: z.object({ org: z.string(), id: z.number().int() }) },
    async ({ org, id }, extra) => {
      const row = allowedRows(decisionOf(extra), INVOICES).find((r) => r.id === id && r.org === org);
      return row ? text(row) : { isError: true, content: [{ type: 'text', text: 'no such invoice' }] };
    },
  );
  server.registerTool(
    'create_refund',
    { description: 'Refund part of an invoice', inputSchema: z.object({ org: z.string(), id: z.number().int(), amount: z.number().int() }) },
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

