// The official TypeScript SDK client against the Rust example server (crates/mcp layer over
// rmcp), on loopback: no ticket, bad ticket, allowed, wrong tool, wrong row, exhausted budget,
// revoked parent, tools/list filtered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { mint, attenuate, inspect } from '../index.js';

const repo = new URL('../../../..', import.meta.url).pathname;
const bin = join(repo, 'target/debug/captix-invoices');
const cli = join(repo, 'target/debug/captix');
let dir, child, url, secret, agent, sub;

before(async () => {
  assert.ok(existsSync(bin) && existsSync(cli), 'cargo test builds target/debug/captix-invoices and captix first');
  dir = mkdtempSync(join(tmpdir(), 'captix-rust-server-'));
  execFileSync(cli, ['keygen', '--out', 'root'], { cwd: dir });
  secret = readFileSync(join(dir, 'root.key'), 'utf8');
  writeFileSync(join(dir, 'revoked.txt'), '# revoked ids\n');
  child = spawn(bin, ['--pubkey', 'root.pub', '--port', '0', '--revoked', 'revoked.txt', '--audit', 'audit.jsonl'], { cwd: dir });
  url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  agent = mint(secret, { agent: 'billing-agent', user: 'alice', tools: ['list_invoices', 'get_invoice', 'create_refund'], rows: ['*:org=acme'], ttl: '1h', resource: url });
  sub = attenuate(agent, { tools: ['list_invoices', 'get_invoice'], budgets: ['3'] });
});

after(() => {
  child?.kill();
  rmSync(dir, { recursive: true, force: true });
});

async function client(ticket) {
  const c = new Client({ name: 'ts-sdk-e2e', version: '1.0.0' });
  const headers = ticket ? { Authorization: `Bearer ${ticket}` } : {};
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return c;
}

test('no ticket and a bad ticket are refused with 401', async () => {
  await assert.rejects(client(undefined), /a captix ticket is required/);
  await assert.rejects(client('captix1_bad'), /captix malformed/);
});

test('the SDK client through the Rust layer: allowed, tool, row, budget, tools/list', async () => {
  const c = await client(sub);
  const { tools } = await c.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['get_invoice', 'list_invoices']);
  const r = await c.callTool({ name: 'list_invoices', arguments: { org: 'acme' } });
  assert.deepEqual(JSON.parse(r.content[0].text).map((x) => x.id), [1, 2, 3]);
  await assert.rejects(c.callTool({ name: 'create_refund', arguments: { org: 'acme', id: 1, amount: 1 } }), /403|tool_not_granted/);
  await assert.rejects(c.callTool({ name: 'list_invoices', arguments: { org: 'globex' } }), /403|arg_denied/);
  await c.callTool({ name: 'get_invoice', arguments: { org: 'acme', id: 2 } });
  await c.callTool({ name: 'list_invoices', arguments: { org: 'acme', status: 'paid' } });
  await assert.rejects(c.callTool({ name: 'list_invoices', arguments: { org: 'acme' } }), /429|budget_exhausted/);
  await c.close();
});

test('revoking the parent in the server\'s revocation file denies the child', async () => {
  const child2 = attenuate(agent, { tools: ['list_invoices'] });
  const c = await client(child2);
  await c.callTool({ name: 'list_invoices', arguments: { org: 'acme' } });
  const [root] = inspect(agent).blocks.map((b) => b.revocation_id);
  writeFileSync(join(dir, 'revoked.txt'), `# revoked ids\n${root}\n`);
  await new Promise((r) => setTimeout(r, 1200)); // the file is polled once a second
  await assert.rejects(c.callTool({ name: 'list_invoices', arguments: { org: 'acme' } }), /401|revoked|invalid_token/);
  await c.close().catch(() => {});
  const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8');
  assert.match(audit, /"code":"revoked"/);
  const check = execFileSync(cli, ['audit', 'verify', 'audit.jsonl'], { cwd: dir, encoding: 'utf8' });
  assert.match(check, /hash chain intact/);
});
