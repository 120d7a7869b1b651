// The JavaScript API: mint, attenuate, verify, budgets, revocation, audit, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateKey, publicKeyOf, mint, attenuate, inspect, Verifier, codes, duration, httpStatus, denialStatus } from '../index.js';
import { wasmMemory } from '#wasm';

const RES = 'https://mcp.example/invoices';

function setup() {
  const key = generateKey();
  const ticket = mint(key.secretKey, {
    agent: 'billing-agent',
    user: 'alice',
    tools: ['list_invoices', 'get_invoice'],
    rows: ['*:org=acme'],
    budgets: ['100/min'],
    ttl: '1h',
    resource: RES,
  });
  return { key, ticket };
}

test('mint, attenuate offline, verify', () => {
  const { key, ticket } = setup();
  assert.match(ticket, /^captix1_[A-Za-z0-9_-]+$/);
  const sub = attenuate(ticket, { tools: ['list_invoices'], budgets: ['3'], ttl: '5min' });
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RES });
  const ok = v.check(sub, { tool: 'list_invoices', arguments: { org: 'acme' } });
  assert.equal(ok.decision, 'allow');
  assert.equal(ok.identity.agent, 'billing-agent');
  assert.equal(ok.identity.user, 'alice');
  assert.deepEqual(ok.filters, [{ arg: '/org', constraints: [{ block: 0, eq: 'acme' }] }]);
  assert.equal(ok.chain.length, 2);
  const row = v.check(sub, { tool: 'list_invoices', arguments: { org: 'globex' } });
  assert.deepEqual([row.decision, row.code, row.block], ['deny', 'arg_denied', 0]);
  const tool = v.check(sub, { tool: 'get_invoice', arguments: { org: 'acme' } });
  assert.deepEqual([tool.code, tool.block], ['tool_not_granted', 1]);
  assert.deepEqual(v.callableTools(sub), ['list_invoices']);
  assert.equal(publicKeyOf(key.secretKey).publicKey, key.publicKey);
});

test('budgets are spent, shared with the parent, and report retry_after', () => {
  const { key, ticket } = setup();
  const sub = attenuate(ticket, { budgets: ['2/min'] });
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RES });
  const call = { tool: 'list_invoices', arguments: { org: 'acme' }, time: 1_000 };
  // time 1000 is before... the ticket's expiry is now+1h, so use real time
  delete call.time;
  assert.equal(v.check(sub, call).decision, 'allow');
  assert.equal(v.check(sub, call).decision, 'allow');
  const d = v.check(sub, call);
  assert.deepEqual([d.code, d.block, d.retry_after], ['budget_exhausted', 1, 30]);
  assert.equal(v.check(ticket, call).decision, 'allow', 'the parent has its own 100/min');
});

test('revocation cascades to a cached child', () => {
  const { key, ticket } = setup();
  const sub = attenuate(ticket, { tools: ['list_invoices'] });
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RES });
  const call = { tool: 'list_invoices', arguments: { org: 'acme' } };
  assert.equal(v.check(sub, call).decision, 'allow');
  const [root] = inspect(ticket).blocks.map((b) => b.revocation_id);
  v.revoke(root);
  const d = v.check(sub, call);
  assert.deepEqual([d.code, d.block], ['revoked', 0]);
});

test('every decision reaches the audit callback, hash-chained', () => {
  const { key, ticket } = setup();
  const records = [];
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RES, audit: (r) => records.push(r), redact: ['/org'] });
  v.check(ticket, { tool: 'list_invoices', arguments: { org: 'acme', secret: 's3cret' } });
  v.check(ticket, { tool: 'delete_all', arguments: {} });
  assert.equal(records.length, 2);
  assert.equal(records[0].seq, 1);
  assert.equal(records[0].decision, 'allow');
  assert.equal(records[0].args['/org'], 'acme');
  assert.equal(records[0].args['/secret'], '[redacted]');
  assert.equal(records[1].code, 'tool_not_granted');
  assert.equal(records[1].prev.length, 64);
  assert.notEqual(records[1].prev, records[0].prev);
});

test('arguments as JSON text: duplicate keys are refused', () => {
  const { key, ticket } = setup();
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RES });
  const d = v.check(ticket, { tool: 'list_invoices', arguments: '{"org":"globex","org":"acme"}' });
  assert.equal(d.code, 'args_duplicate_key');
});

test('bad input throws errors that carry a code', () => {
  const { key } = setup();
  assert.throws(() => mint(key.secretKey, { agent: 'a', user: 'u', tools: ['t'], rows: ['org=acme'] }), { code: 'invalid_restriction' });
  assert.throws(() => mint('not a key', { agent: 'a', user: 'u', tools: ['t'] }), { code: 'invalid_key' });
  assert.throws(() => attenuate('captix1_garbage', {}), { code: 'malformed' });
  assert.throws(() => inspect('hello'), { code: 'malformed' });
  assert.throws(() => new Verifier({ publicKeys: [] }), { code: 'invalid_argument' });
  assert.throws(() => mint(key.secretKey, { agent: 'a', user: 'u', tools: ['t'], ttl: '1 hour' }), { code: 'invalid_argument' });
  assert.throws(() => attenuate(setup().ticket, { agent: 'x' }), { code: 'invalid_argument' });
  const other = generateKey();
  assert.throws(() => inspect(setup().ticket, { publicKeys: [other.publicKey] }), { code: 'unknown_key' });
  assert.ok(codes.includes('budget_exhausted'));
  assert.equal(duration('5min'), 300);
});

test('a tampered ticket is denied, not thrown', () => {
  const { key, ticket } = setup();
  const i = Math.floor(ticket.length / 2);
  const tampered = ticket.slice(0, i) + (ticket[i] === 'A' ? 'B' : 'A') + ticket.slice(i + 1);
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RES });
  const d = v.check(tampered, { tool: 'list_invoices', arguments: { org: 'acme' } });
  assert.equal(d.decision, 'deny');
  assert.ok(['bad_signature', 'malformed'].includes(d.code), d.code);
});

test('oversized input is refused without growing WebAssembly memory', () => {
  const { key, ticket } = setup();
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RES });
  assert.equal(v.check(ticket, { tool: 'list_invoices', arguments: { org: 'acme' } }).decision, 'allow');
  const memory = wasmMemory();
  const before = memory.buffer.byteLength;
  const huge = 'captix1_' + 'A'.repeat(32 << 20);
  assert.equal(v.check(huge, { tool: 'list_invoices', arguments: {} }).code, 'ticket_too_large');
  const bigArgs = JSON.stringify({ org: 'acme', pad: 'é'.repeat(16 << 20) });
  assert.equal(v.check(ticket, { tool: 'list_invoices', arguments: bigArgs }).code, 'args_too_large');
  assert.throws(() => v.ticketInfo(huge), (e) => e.code === 'ticket_too_large');
  assert.throws(() => inspect(huge), (e) => e.code === 'ticket_too_large');
  assert.throws(() => attenuate(huge, { tools: ['list_invoices'] }), (e) => e.code === 'ticket_too_large');
  const grew = memory.buffer.byteLength - before;
  assert.ok(grew < 2 << 20, `WebAssembly memory grew by ${grew} bytes`);
});

test('a verifier refuses tickets that never expire or name no audience, unless it opts out', () => {
  const key = generateKey();
  const noExpiry = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['t'], resource: RES });
  const noAudience = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['t'], ttl: '1h' });
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RES });
  const a = v.check(noExpiry, { tool: 't', arguments: {} });
  assert.deepEqual([a.decision, a.code], ['deny', 'expired']);
  const b = v.check(noAudience, { tool: 't', arguments: {} });
  assert.deepEqual([b.decision, b.code], ['deny', 'wrong_resource']);
  const lax = new Verifier({
    publicKeys: [key.publicKey],
    resource: RES,
    allowTicketsWithoutExpiry: true,
    allowTicketsWithoutAudience: true,
  });
  assert.equal(lax.check(noExpiry, { tool: 't', arguments: {} }).decision, 'allow');
  assert.equal(lax.check(noAudience, { tool: 't', arguments: {} }).decision, 'allow');
  v.free();
  lax.free();
});

test('errors are CaptixError with the code, and the Code type lists the core\'s codes', async () => {
  const { CaptixError } = await import('../index.js');
  const key = generateKey();
  const v = new Verifier({ publicKeys: [key.publicKey], resource: 'https://mcp.example/x' });
  const expired = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['t'], resource: 'https://mcp.example/x', expiresAt: 1_000 });
  let caught;
  try {
    v.ticketInfo(expired, 2_000);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CaptixError && caught instanceof Error, String(caught));
  assert.equal(caught.name, 'CaptixError');
  assert.equal(caught.code, 'expired');
  assert.equal(caught.block, 0);
  assert.match(caught.reason, /has expired/);
  assert.match(caught.restriction, /^expires /);
  assert.throws(() => new Verifier({ publicKeys: [] }), (e) => e instanceof CaptixError && e.code === 'invalid_argument');
  assert.throws(() => inspect('captix1_x'), (e) => e instanceof CaptixError && e.code === 'malformed');
  assert.throws(() => v.check(expired, { tool: 't', arguments: { a: 1n } }), (e) => e instanceof CaptixError);
  const audited = new Verifier({ publicKeys: [key.publicKey], resource: 'https://mcp.example/x', audit: () => { throw new RangeError('mine'); } });
  assert.throws(() => audited.check(expired, { tool: 't', time: 2_000 }), (e) => e instanceof RangeError, 'the caller\'s audit errors stay its own');
  v.free();
  assert.throws(() => v.resource, (e) => e instanceof CaptixError);
  assert.throws(() => mint(key.secretKey, { agent: 'a', user: 'u', rows: ['nope'] }), (e) => e instanceof CaptixError && e.code === 'invalid_restriction');
  // The published `Code` union is exactly the core's table.
  const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8');
  const union = /export type Code =([^;]+);/.exec(dts)[1].match(/'([a-z_]+)'/g).map((s) => s.slice(1, -1));
  assert.deepEqual(union, [...codes]);
});

test('HTTP statuses come from the core for every code; a Verifier is disposable', () => {
  const want = { malformed: 401, revoked: 401, wrong_resource: 401, tool_not_granted: 403, arg_denied: 403, budget_exhausted: 429, rate_limited: 429, args_malformed: 400, session_not_found: 404, store_unavailable: 503, invalid_time: 500, method_not_allowed: 403 };
  for (const [code, status] of Object.entries(want)) assert.equal(httpStatus(code), status, code);
  for (const code of codes) assert.ok([400, 401, 403, 404, 429, 500, 503].includes(httpStatus(code)), code);
  assert.equal(httpStatus('not_a_code'), 403);
  assert.equal(denialStatus({ code: 'budget_exhausted' }), 403, 'a budget that never refills');
  assert.equal(denialStatus({ code: 'budget_exhausted', retry_after: 5 }), 429);
  const key = generateKey();
  const v = new Verifier({ publicKeys: [key.publicKey], resource: 'https://mcp.example' });
  v[Symbol.dispose]();
  assert.throws(() => v.cached, 'a disposed verifier is not used again');
});
