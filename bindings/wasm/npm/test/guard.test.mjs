// The per-call guard on a transport without HTTP, with each SDK major version's own server and
// client (1.x: @modelcontextprotocol/sdk; 2.x: @modelcontextprotocol/server and /client), over
// their in-memory transports: a denial is a JSON-RPC error carrying the decision (not a
// successful result with isError), checked by the name the request carries, and the handler
// gets the typed decision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as z from 'zod/v4';
import { McpServer as McpServer1 } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Client as Client1 } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport as Memory1 } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer as McpServer2, InMemoryTransport as Memory2 } from '@modelcontextprotocol/server';
import { Client as Client2 } from '@modelcontextprotocol/client';
import { generateKey, mint, attenuate, Verifier } from '../index.js';
import { captixGuard, decisionOf } from '../mcp.js';

const key = generateKey();
const RESOURCE = 'https://mcp.example/invoices';

const SDKS = {
  '1.x': { McpServer: McpServer1, Client: Client1, pair: () => Memory1.createLinkedPair() },
  '2.x': { McpServer: McpServer2, Client: Client2, pair: () => Memory2.createLinkedPair() },
};

async function connect(sdk, ticket, seen) {
  const { McpServer, Client, pair } = SDKS[sdk];
  const verifier = new Verifier({ publicKeys: [key.publicKey], resource: RESOURCE });
  const server = new McpServer({ name: 'guarded', version: '1.0.0' });
  const handler = (tool) => async (args, extra) => {
    const d = decisionOf(extra);
    seen.push({ tool, decision: d.tool, filters: d.filters.length });
    return { content: [{ type: 'text', text: JSON.stringify({ tool, args }) }] };
  };
  server.registerTool('list_invoices', { inputSchema: z.object({ org: z.string() }) }, handler('list_invoices'));
  server.registerTool('create_refund', { inputSchema: z.object({ org: z.string(), amount: z.number() }) }, handler('create_refund'));
  server.registerPrompt('triage', { description: 'granted' }, async () => ({ messages: [] }));
  server.registerPrompt('hr_secrets', { description: 'not granted' }, async () => ({ messages: [] }));
  const [clientSide, serverSide] = pair();
  await captixGuard(verifier, { ticket }).connect(server, serverSide);
  const client = new Client({ name: 'guard-test', version: '1.0.0' });
  await client.connect(clientSide);
  return { client, verifier };
}

for (const sdk of Object.keys(SDKS)) {
  test(`SDK ${sdk}: the guard answers denials as JSON-RPC errors and hands the decision to the handler`, async () => {
    const agent = mint(key.secretKey, { agent: 'billing-agent', user: 'alice', tools: ['list_invoices', 'create_refund'], prompts: ['triage'], rows: ['*:org=acme'], ttl: '1h', resource: RESOURCE });
    const sub = attenuate(agent, { tools: ['list_invoices'], budgets: ['2'] });
    const seen = [];
    const { client } = await connect(sdk, sub, seen);

    // Lists hold only what the ticket allows; a prompt outside it is refused.
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['list_invoices']);
    assert.deepEqual((await client.listPrompts()).prompts.map((p) => p.name), ['triage']);
    const hidden = await client.getPrompt({ name: 'hr_secrets' }).catch((err) => err);
    assert.equal(hidden.data?.code, 'prompt_not_granted');
    // A method beyond the lifecycle (completions, logging...) is refused unless configured.
    const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'hr_secrets' }, argument: { name: 'x', value: '' } }).catch((err) => err);
    assert.equal(completion.code, -32001, String(completion.message));
    assert.equal(completion.data?.code, 'method_not_allowed');

    const ok = await client.callTool({ name: 'list_invoices', arguments: { org: 'acme' } });
    assert.equal(ok.isError, undefined);
    assert.deepEqual(seen, [{ tool: 'list_invoices', decision: 'list_invoices', filters: 1 }]);

    // A tool outside the grant, a row outside it: errors, not results, and no handler ran.
    for (const [name, args, code] of [['create_refund', { org: 'acme', amount: 5 }, 'tool_not_granted'], ['list_invoices', { org: 'globex' }, 'arg_denied']]) {
      const e = await client.callTool({ name, arguments: args }).then(
        (r) => assert.fail(`a result instead of an error: ${JSON.stringify(r)}`),
        (err) => err,
      );
      assert.equal(e.code, -32001, `${name}: ${e.message}`);
      assert.equal(e.data?.decision, 'deny');
      assert.equal(e.data?.code, code);
    }
    assert.equal(seen.length, 1, 'no handler ran for a denied call');

    // The budget: 2 calls in all, one spent above.
    await client.callTool({ name: 'list_invoices', arguments: { org: 'acme' } });
    const spent = await client.callTool({ name: 'list_invoices', arguments: { org: 'acme' } }).catch((err) => err);
    assert.equal(spent.data?.code, 'budget_exhausted');
    await client.close();
  });

  test(`SDK ${sdk}: without a ticket every request beyond the handshake is refused`, async () => {
    const seen = [];
    const { client } = await connect(sdk, undefined, seen);
    for (const request of [client.listTools(), client.callTool({ name: 'list_invoices', arguments: { org: 'acme' } })]) {
      const e = await request.catch((err) => err);
      assert.equal(e.code, -32001);
      assert.equal(e.data?.code, 'malformed');
    }
    assert.deepEqual(seen, []);
    await client.close();
  });
}

test('a request sent without an id never reaches the server; the guard needs a server and a transport', async () => {
  const key2 = generateKey();
  const verifier = new Verifier({ publicKeys: [key2.publicKey], resource: RESOURCE });
  const received = [];
  const sent = [];
  const t = { send: async (m) => { sent.push(m); } };
  const server = { connect: async (tr) => { tr.onmessage = (m) => { received.push(m); }; } };
  await captixGuard(verifier).connect(server, t);
  t.onmessage({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'list_invoices', arguments: {} } });
  t.onmessage({ jsonrpc: '2.0', id: null, method: 'prompts/get', params: { name: 'p' } });
  t.onmessage({ jsonrpc: '2.0', method: 'notifications/initialized' });
  assert.deepEqual(received.map((m) => m.method), ['notifications/initialized']);
  assert.deepEqual(sent, []);
  await assert.rejects(captixGuard(verifier).connect(server, {}), /MCP transport/);
  await assert.rejects(captixGuard(verifier).connect({}, t), /MCP server/);
});

test('the guard audits what it refuses and admits, as the HTTP layers do', async () => {
  const key2 = generateKey();
  const records = [];
  const verifier = new Verifier({ publicKeys: [key2.publicKey], resource: RESOURCE, audit: (r) => records.push(r) });
  const ticket = mint(key2.secretKey, { agent: 'a', user: 'u', tools: ['list_invoices'], ttl: '1h', resource: RESOURCE });
  const sent = [];
  const received = [];
  const t = { send: async (m) => { sent.push(m); } };
  const server = { connect: async (tr) => { tr.onmessage = (m) => { received.push(m.method); }; } };
  await captixGuard(verifier, { ticket }).connect(server, t);
  t.onmessage({ jsonrpc: '2.0', id: 1, method: 'completion/complete', params: { ref: { type: 'ref/prompt', name: 'secret' } } });
  t.onmessage({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
  assert.deepEqual(received, ['tools/list']);
  assert.equal(sent[0].error.data.code, 'method_not_allowed');
  const codes = records.map((r) => [r.method, r.decision === 'allow' ? 'allow' : r.code]);
  assert.deepEqual(codes, [['completion/complete', 'method_not_allowed'], ['tools/list', 'allow']], JSON.stringify(records));
});

test('decisionOf refuses a request without a decision', () => {
  assert.throws(() => decisionOf({}), /no captix decision/);
  assert.throws(() => decisionOf({ authInfo: { extra: { decision: { decision: 'deny', code: 'revoked' } } } }), /no captix decision/);
  assert.throws(() => captixGuard({}, { ticket: 7 }), /ticket must be a string/);
});
