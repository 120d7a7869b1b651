// SDK 2.x end to end over HTTP: its own client (protocol revision 2026-07-28, pinned, and the
// 2025 handshake) against the example server on SDK 2.x (captixFetch around createMcpHandler).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { generateKey, mint, attenuate } from '../index.js';
import { startServer } from '../examples/invoices-server-v2.mjs';

const key = generateKey();
let server;

before(async () => {
  server = await startServer({ verifierOptions: { publicKeys: [key.publicKey] } });
});

after(async () => {
  await server?.close();
});

async function connect(ticket, era) {
  const options = era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {};
  const client = new Client({ name: 'sdk2-e2e', version: '1.0.0' }, options);
  const headers = ticket ? { Authorization: `Bearer ${ticket}` } : {};
  await client.connect(new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers } }));
  return client;
}

for (const era of ['modern', 'legacy']) {
  test(`SDK 2.x client (${era}): lists filtered, calls checked, denials are step-up challenges`, async () => {
    const agent = mint(key.secretKey, { agent: 'billing-agent', user: 'alice', tools: ['list_invoices', 'get_invoice', 'create_refund'], uris: ['invoices://acme/summary'], prompts: ['triage'], rows: ['*:org=acme'], ttl: '1h', resource: server.url });
    const sub = attenuate(agent, { tools: ['list_invoices', 'get_invoice'], budgets: ['3'] });
    const client = await connect(sub, era);
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['get_invoice', 'list_invoices']);
    assert.deepEqual((await client.listPrompts()).prompts.map((p) => p.name), ['triage']);
    assert.deepEqual((await client.listResources()).resources.map((r) => r.uri), ['invoices://acme/summary']);

    const rows = JSON.parse((await client.callTool({ name: 'list_invoices', arguments: { org: 'acme' } })).content[0].text);
    assert.deepEqual(rows.map((r) => r.org), ['acme', 'acme']);

    // A denial is a 403 with an insufficient_scope challenge naming this server's metadata,
    // which this client turns into its step-up error (the JSON-RPC body, with the decision
    // under error.data, is checked on the wire by the HTTP scenario list).
    const metadata = new URL('/.well-known/oauth-protected-resource/mcp', server.url).href;
    const stepUp = (err) => {
      assert.equal(err.name, 'InsufficientScopeError', err.message);
      assert.equal(String(err.resourceMetadataUrl), metadata);
    };
    for (const call of [{ name: 'create_refund', arguments: { org: 'acme', id: 1, amount: 5 } }, { name: 'list_invoices', arguments: { org: 'globex' } }]) {
      stepUp(await client.callTool(call).then((r) => assert.fail(`a result: ${JSON.stringify(r)}`), (err) => err));
    }
    stepUp(await client.readResource({ uri: 'invoices://globex/summary' }).then((r) => assert.fail(`a result: ${JSON.stringify(r)}`), (err) => err));
    // The budget: 3 calls in all, 1 spent; a budget that never refills is a 403 too.
    await client.callTool({ name: 'get_invoice', arguments: { org: 'acme', id: 1 } });
    await client.callTool({ name: 'get_invoice', arguments: { org: 'acme', id: 2 } });
    stepUp(await client.callTool({ name: 'get_invoice', arguments: { org: 'acme', id: 1 } }).then((r) => assert.fail(`a result: ${JSON.stringify(r)}`), (err) => err));
    const counts = server.verifier.decisions;
    assert.ok(counts.tool_not_granted >= 1 && counts.arg_denied >= 1 && counts.uri_not_granted >= 1 && counts.budget_exhausted >= 1, JSON.stringify(counts));
    await client.close();
  });
}

test('SDK 2.x client without a ticket is refused before anything is served', async () => {
  await assert.rejects(connect(undefined, 'modern'), /401|Unauthorized|ticket is required/i);
  const foreign = mint(generateKey().secretKey, { agent: 'a', user: 'u', tools: ['list_invoices'], ttl: '1h', resource: server.url });
  await assert.rejects(connect(foreign, 'modern'), /401|Unauthorized|unknown_key/i);
});

test('the metadata document is served by the same handler', async () => {
  const r = await fetch(new URL('/.well-known/oauth-protected-resource/mcp', server.url));
  assert.equal(r.status, 200);
  const m = await r.json();
  assert.equal(m.resource, server.url);
  assert.deepEqual(m.authorization_servers, ['https://auth.example']);
});
