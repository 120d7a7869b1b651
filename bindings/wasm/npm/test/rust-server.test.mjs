// The official TypeScript SDK client against the Rust example server (crates/mcp layer over
// rmcp), on loopback: no ticket, bad ticket, allowed, wrong tool, wrong row, exhausted budget,
// revoked parent, tools/list filtered; and the header-injection scenario of 2026-12-01 driven
// through the SDK client's own OAuth step-up flow.
import { test, before, after } from 'node:test';
import { createServer } from 'node:http';
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
let dir, child, url, secret, agent, sub, as, asUrl;
const asRequests = [];

// A stand-in authorization server on loopback (RFC 8414 metadata only): where a step-up must
// send the user. The issuer of a later issue replaces it.
function startAuthorizationServer() {
  return new Promise((resolve) => {
    as = createServer((req, res) => {
      asRequests.push(req.url);
      if (req.url.startsWith('/.well-known/oauth-authorization-server')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({
          issuer: asUrl,
          authorization_endpoint: `${asUrl}/authorize`,
          token_endpoint: `${asUrl}/token`,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code'],
          code_challenge_methods_supported: ['S256'],
        }));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    as.listen(0, '127.0.0.1', () => {
      asUrl = `http://127.0.0.1:${as.address().port}`;
      resolve();
    });
  });
}

before(async () => {
  await startAuthorizationServer();
  assert.ok(existsSync(bin) && existsSync(cli), 'cargo test builds target/debug/captix-invoices and captix first');
  dir = mkdtempSync(join(tmpdir(), 'captix-rust-server-'));
  execFileSync(cli, ['keygen', '--out', 'root'], { cwd: dir });
  secret = readFileSync(join(dir, 'root.key'), 'utf8');
  writeFileSync(join(dir, 'revoked.txt'), '# revoked ids\n');
  child = spawn(bin, ['--pubkey', 'root.pub', '--port', '0', '--authorization-server', asUrl, '--revoked', 'revoked.txt', '--audit', 'audit.jsonl'], { cwd: dir });
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
  as?.close();
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

// Regression (review of 2026-12-01): a tool named `x resource_metadata=http://evil.example/p`
// was reflected into the 403 challenge ahead of the real `resource_metadata`; this SDK client
// took the first match, fetched the attacker's metadata and sent the user to the attacker's
// /authorize. Here the real client, with an auth provider, runs its step-up flow on that
// denial: every request it makes goes to the MCP server or its configured authorization
// server, and the user is sent to that server's /authorize, never anywhere else.
test('a tool name cannot steer the SDK client\'s OAuth flow to another origin', async () => {
  const contacted = [];
  const redirects = [];
  // A ticket of its own (an earlier test revoked the shared one's root).
  const ticket = mint(secret, { agent: 'billing-agent', user: 'alice', tools: ['list_invoices'], ttl: '1h', resource: url });
  const recording = async (input, init) => {
    const target = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    contacted.push(target.href);
    const allowed = [new URL(url).origin, asUrl];
    if (!allowed.includes(target.origin)) {
      // Never goes to the network: the assertion below reports it.
      return new Response('not here', { status: 599 });
    }
    return fetch(input, init);
  };
  const provider = {
    get redirectUrl() { return 'http://127.0.0.1:1/callback'; },
    get clientMetadata() { return { client_name: 'injection-test', redirect_uris: ['http://127.0.0.1:1/callback'] }; },
    clientInformation: () => ({ client_id: 'injection-test' }),
    tokens: () => ({ access_token: ticket, token_type: 'Bearer' }),
    saveTokens: () => {},
    redirectToAuthorization: (u) => { redirects.push(new URL(u)); },
    saveCodeVerifier: () => {},
    codeVerifier: () => 'v'.repeat(43),
  };
  const c = new Client({ name: 'injection-test', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recording }));
  asRequests.length = 0;
  const evil = 'x resource_metadata=http://evil.example/p';
  await assert.rejects(c.callTool({ name: evil, arguments: {} }), /Unauthorized|403/);
  await c.close().catch(() => {});
  const origins = new Set(contacted.map((u) => new URL(u).origin));
  assert.deepEqual([...origins].filter((o) => o !== new URL(url).origin && o !== asUrl), [], `contacted: ${contacted.join(', ')}`);
  assert.ok(!contacted.some((u) => u.includes('evil')), contacted.join(', '));
  // The flow really ran: the server's own metadata, then its authorization server.
  assert.ok(contacted.includes(`${new URL(url).origin}/.well-known/oauth-protected-resource/mcp`), contacted.join(', '));
  assert.ok(asRequests.some((p) => p.startsWith('/.well-known/oauth-authorization-server')), asRequests.join(', '));
  assert.equal(redirects.length, 1, 'the step-up sent the user to authorize once');
  assert.equal(redirects[0].origin + redirects[0].pathname, `${asUrl}/authorize`);
  assert.equal(redirects[0].searchParams.get('resource'), url);
});
