// One list of HTTP-level scenarios (test-vectors/http/scenarios.json), three servers: the Rust
// example server (crates/mcp over rmcp), the TypeScript example server on SDK 1.x (this
// package's Express middleware) and on SDK 2.x (captixFetch around createMcpHandler). Each scenario is sent as raw HTTP on loopback and must get the
// same answer from both: status, headers, JSON-RPC shape, the decision under error.data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mint, attenuate, generateKey } from '../index.js';
import { startServer } from '../examples/invoices-server.mjs';
import { startServer as startServerV2 } from '../examples/invoices-server-v2.mjs';

const repo = new URL('../../../..', import.meta.url).pathname;
const { tickets: templates, scenarios } = JSON.parse(readFileSync(join(repo, 'test-vectors/http/scenarios.json'), 'utf8'));
const bin = join(repo, 'target/debug/captix-invoices');
const cli = join(repo, 'target/debug/captix');
const PROTOCOL = '2025-06-18';

let dir;
let rust;
let ts;
let ts2;
let secret;
const servers = {};

before(async () => {
  assert.ok(existsSync(bin) && existsSync(cli), 'cargo test builds target/debug/captix-invoices and captix first');
  dir = mkdtempSync(join(tmpdir(), 'captix-parity-'));
  execFileSync(cli, ['keygen', '--out', 'root'], { cwd: dir });
  secret = readFileSync(join(dir, 'root.key'), 'utf8');
  const publicKey = readFileSync(join(dir, 'root.pub'), 'utf8').split('\n').find((l) => l && !l.startsWith('#')).trim();
  rust = spawn(bin, ['--pubkey', 'root.pub', '--port', '0', '--authorization-server', 'https://auth.example'], { cwd: dir });
  servers.rust = await new Promise((resolve, reject) => {
    let out = '';
    rust.stdout.on('data', (d) => {
      out += d;
      const m = /on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(out);
      if (m) resolve(m[1]);
    });
    rust.on('exit', (code) => reject(new Error(`the Rust server exited with ${code}`)));
  });
  ts = await startServer({ verifierOptions: { publicKeys: [publicKey] }, authorizationServers: ['https://auth.example'] });
  servers.ts = ts.url;
  ts2 = await startServerV2({ verifierOptions: { publicKeys: [publicKey] }, authorizationServers: ['https://auth.example'] });
  servers['ts-sdk2'] = ts2.url;
});

after(async () => {
  rust?.kill();
  await ts?.close();
  await ts2?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const other = generateKey();

/** The scenario's ticket for the server at `url`, minted now. */
function ticketFor(name, url) {
  if (name === undefined) return undefined;
  const t = templates[name];
  const fill = (spec) => Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, v === '$resource' ? url : v === '$past' ? Math.floor(Date.now() / 1000) - 60 : v]));
  if (t.raw !== undefined) return t.raw;
  if (t.mint) return mint(secret, fill(t.mint));
  if (t.mintWithOtherKey) return mint(other.secretKey, fill(t.mintWithOtherKey));
  if (t.attenuate) return attenuate(ticketFor(t.attenuate, url), fill(t.with));
  throw new Error(`ticket ${name}: no recipe`);
}

/** One raw HTTP POST; resolves to `{ status, headers, body }`. */
function post(url, headers, body) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const flat = [['Host', u.host], ...headers].flat();
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: flat }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const BASE = [['Content-Type', 'application/json'], ['Accept', 'application/json, text/event-stream']];

/** The base headers, with those a request names replacing theirs (Content-Type, say). */
function headersOf(extra) {
  const named = new Set(extra.map(([k]) => k.toLowerCase()).filter((k) => k !== 'authorization'));
  return [...BASE.filter(([k]) => !named.has(k.toLowerCase())), ...extra];
}

/** Initializes a session with `ticket`; the session id when the server gives one. */
async function open(url, ticket) {
  const auth = [['Authorization', `Bearer ${ticket}`]];
  const init = await post(url, [...BASE, ...auth], JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'parity', version: '1' } } }));
  assert.equal(init.status, 200, `initialize: ${init.body}`);
  const session = init.headers['mcp-session-id'];
  const extra = session ? [['Mcp-Session-Id', session]] : [];
  const done = await post(url, [...BASE, ...auth, ...extra, ['MCP-Protocol-Version', PROTOCOL]], JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  assert.ok(done.status === 202 || done.status === 200, `notifications/initialized: ${done.status} ${done.body}`);
  return extra;
}

function at(value, path) {
  return path.split('.').reduce((v, k) => (v === undefined || v === null ? undefined : v[k]), value);
}

/** The JSON of a response body: plain JSON, or the first JSON `data:` line of an event stream. */
function json(res) {
  const text = String(res.headers['content-type'] ?? '').startsWith('text/event-stream')
    ? res.body.split('\n').find((l) => l.startsWith('data:') && l.slice(5).trim().startsWith('{'))?.slice(5) ?? ''
    : res.body;
  try {
    return JSON.parse(text);
  } catch {
    assert.fail(`the body is not JSON: ${res.body.slice(0, 200)}`);
  }
}

function expectAnswer(res, expect, where) {
  assert.equal(res.status, expect.status, `${where}: status ${res.status}, body ${res.body.slice(0, 300)}`);
  for (const [name, pattern] of Object.entries(expect.headers ?? {})) {
    const value = res.headers[name];
    if (pattern === null) assert.equal(value, undefined, `${where}: header ${name} must be absent, is ${value}`);
    else assert.match(String(value ?? ''), new RegExp(pattern), `${where}: header ${name}`);
  }
  const needsBody = expect.json || expect.absent || expect.not || expect.names;
  if (!needsBody) return;
  const body = json(res);
  for (const [path, value] of Object.entries(expect.json ?? {})) {
    assert.deepEqual(at(body, path), value, `${where}: ${path} in ${JSON.stringify(body).slice(0, 400)}`);
  }
  for (const path of expect.absent ?? []) {
    const parent = path.includes('.') ? at(body, path.slice(0, path.lastIndexOf('.'))) : body;
    const member = path.slice(path.lastIndexOf('.') + 1);
    const present = parent !== null && typeof parent === 'object' && Object.hasOwn(parent, member);
    assert.ok(!present, `${where}: the body must not have ${path}: ${JSON.stringify(body).slice(0, 300)}`);
  }
  for (const [path, value] of Object.entries(expect.not ?? {})) {
    assert.notDeepEqual(at(body, path), value, `${where}: ${path} must not be ${JSON.stringify(value)}`);
  }
  if (expect.names) {
    const [path, names] = expect.names;
    assert.deepEqual(at(body, path).map((x) => x.name).sort(), names, `${where}: ${path}`);
  }
}

test('the scenario list is there', () => {
  assert.ok(scenarios.length >= 25, `${scenarios.length} scenarios`);
});

for (const server of ['rust', 'ts', 'ts-sdk2']) {
  for (const s of scenarios) {
    test(`${server}: ${s.name}`, async () => {
      const url = servers[server];
      const ticket = ticketFor(s.ticket, url);
      const auth = ticket === undefined ? [] : [['Authorization', `Bearer ${ticket}`]];
      const session = s.session ? await open(url, ticket) : [];
      const version = s.session ? [['MCP-Protocol-Version', PROTOCOL]] : [];
      for (const [i, r] of s.requests.entries()) {
        const extra = (r.headers ?? []).map(([k, v]) => [k, v.replace('$origin', new URL(url).origin).replace('$ticket', ticket ?? '')]);
        const body = r.raw_repeat ? r.raw_repeat.prefix + r.raw_repeat.fill.repeat(r.raw_repeat.count) + r.raw_repeat.suffix : r.raw ?? JSON.stringify(r.body);
        const res = await post(url, headersOf([...auth, ...session, ...version, ...extra]), body);
        expectAnswer(res, r.expect, `${server} request ${i + 1}`);
      }
    });
  }
}
