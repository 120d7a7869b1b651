// The package outside Node's own loader: every conformance vector verified in headless
// Chromium (Debian's `chromium`, driven from Node over loopback; the page resolves the package
// through an import map, as a browser without a bundler does), by a `fetch`-style handler (the
// Workers shape) loaded through the package's web loader, and by the same handler in Deno and
// in Bun. Each must give the outcomes Node gives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import * as captix from '../index.js';
import { runVectors } from '../testing/run-vectors.mjs';

const pkg = new URL('..', import.meta.url).pathname;
const vectorDir = new URL('../../../../test-vectors/', import.meta.url).pathname;
const vectors = readdirSync(vectorDir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => JSON.parse(readFileSync(join(vectorDir, f), 'utf8')));
const inNode = runVectors(captix, vectors);

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script type="importmap">{"imports": {"#load": "/load/web.js", "#wasm": "/wasm/captix_wasm.js", "#wasm-url": "/wasm/url.js", "smol-toml": "/node_modules/smol-toml/dist/index.js"}}</script>
<script type="module">
let body;
try {
  const captix = await import('/index.js');
  const { runVectors } = await import('/testing/run-vectors.mjs');
  const vectors = await (await fetch('/vectors.json')).json();
  body = { results: runVectors(captix, vectors), agent: navigator.userAgent };
} catch (e) {
  body = { error: String(e && e.stack || e) };
}
await fetch('/result', { method: 'POST', body: JSON.stringify(body) });
</script>`;

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
let server;
let base;
let reported;

before(async () => {
  let report;
  reported = new Promise((resolve) => { report = resolve; });
  server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method === 'POST' && path === '/result') {
      let text = '';
      req.on('data', (d) => { text += d; });
      req.on('end', () => { res.end('ok'); report(JSON.parse(text)); });
      return;
    }
    if (path === '/' || path === '/page.html') {
      res.setHeader('content-type', 'text/html');
      return res.end(PAGE);
    }
    if (path === '/vectors.json') {
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify(vectors));
    }
    // Only the package's own files, never a path out of it.
    const file = normalize(join(pkg, path));
    if (!file.startsWith(pkg) || !existsSync(file)) {
      res.statusCode = 404;
      return res.end();
    }
    res.setHeader('content-type', TYPES[path.slice(path.lastIndexOf('.'))] ?? 'application/octet-stream');
    return res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => server?.close());

function chromium() {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      // next
    }
  }
  return undefined;
}

test('every vector in headless Chromium gives the outcome it gives in Node', async () => {
  const bin = chromium();
  assert.ok(bin, 'chromium is not installed: scripts/test installs it (apt-get install chromium)');
  const profile = mkdtempSync(join(tmpdir(), 'captix-chromium-'));
  const child = spawn(bin, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', `--user-data-dir=${profile}`, `${base}/page.html`], { stdio: 'ignore', detached: true });
  try {
    const exited = new Promise((_, reject) => child.on('exit', (code) => reject(new Error(`chromium exited (${code}) before reporting`))));
    exited.catch(() => {}); // once the report is in, chromium's exit is expected
    const r = await Promise.race([reported, exited]);
    assert.equal(r.error, undefined, r.error);
    assert.match(r.agent, /Chrome/);
    assert.equal(r.results.length, vectors.length);
    assert.deepEqual(r.results.filter((x) => !x.ok), [], 'vectors failing in Chromium');
    assert.deepEqual(r.results.map((x) => x.got.split(':')[0]), inNode.map((x) => x.got.split(':')[0]));
  } finally {
    // Chromium and every process it started (its own group).
    const gone = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await gone;
    await new Promise((r) => setTimeout(r, 200)); // its helpers' last writes
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch {
      // a temporary profile left behind is not the test's subject
    }
  }
});

test('every vector in a fetch-style handler (web loader) gives the outcome it gives in Node', () => {
  // A separate process under the `browser` condition: the package loads through load/web.js,
  // and the handler sees only Request and Response, as in a Workers-style runtime.
  const script = `
    const { default: handler } = await import(${JSON.stringify(new URL('../examples/fetch-vectors.mjs', import.meta.url).href)});
    const vectors = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
    const res = await handler.fetch(new Request('http://handler.test/vectors', { method: 'POST', body: JSON.stringify(vectors) }));
    process.stdout.write(JSON.stringify({ status: res.status, results: await res.json() }));`;
  const out = execFileSync(process.execPath, ['--conditions=browser', '--input-type=commonjs', '-e', `(async () => {${script}})().catch((e) => { console.error(e); process.exit(1); })`], { input: JSON.stringify(vectors), encoding: 'utf8', maxBuffer: 64 << 20 });
  const { status, results } = JSON.parse(out);
  assert.equal(status, 200);
  assert.equal(results.length, vectors.length);
  assert.deepEqual(results.filter((x) => !x.ok), [], 'vectors failing in the handler');
  assert.deepEqual(results.map((x) => x.got.split(':')[0]), inNode.map((x) => x.got.split(':')[0]));
});

// Deno and Bun, from their npm packages (devDependencies): each runs the fetch-style handler
// on every vector, with the package resolved by its own rules (package.json `imports`).
for (const runtime of ['deno', 'bun']) {
  test(`every vector in ${runtime} (a fetch-style handler) gives the outcome it gives in Node`, () => {
    const bin = new URL(`../node_modules/.bin/${runtime}`, import.meta.url).pathname;
    assert.ok(existsSync(bin), `${runtime} is a devDependency: npm ci installs it`);
    const dir = mkdtempSync(join(tmpdir(), `captix-${runtime}-`));
    try {
      const input = join(dir, 'vectors.json');
      writeFileSync(input, JSON.stringify(vectors));
      const script = new URL('../testing/runtime-vectors.mjs', import.meta.url).pathname;
      const args = runtime === 'deno' ? ['run', '--quiet', '--allow-read', '--allow-env', script, input] : [script, input];
      // Run from the package's folder: Deno reads its package.json (and so its `imports`) there.
      const out = execFileSync(bin, args, { cwd: pkg, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } });
      const { status, results } = JSON.parse(out.trim().split('\n').pop());
      assert.equal(status, 200);
      assert.equal(results.length, vectors.length);
      assert.deepEqual(results.filter((x) => !x.ok), [], `vectors failing in ${runtime}`);
      assert.deepEqual(results.map((x) => x.got.split(':')[0]), inNode.map((x) => x.got.split(':')[0]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('the fetch-style example handler checks bearer tickets: allowed, denied with the decision, 401', async () => {
  const { createHandler } = await import('../examples/fetch-handler.mjs');
  const keys = captix.generateKey();
  const resource = 'https://edge.example/mcp';
  const handler = createHandler({ publicKeys: [keys.publicKey], resource });
  const ticket = captix.mint(keys.secretKey, { agent: 'a', user: 'u', tools: ['list_invoices'], rows: ['*:org=acme'], ttl: '5min', resource });
  const call = (auth, body) => handler.fetch(new Request(resource, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
    body: JSON.stringify(body),
  }));
  const rpc = (name, args) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } });
  const text = async (r) => {
    const t = await r.text();
    return JSON.parse(r.headers.get('content-type')?.startsWith('text/event-stream') ? t.split('\n').find((l) => l.startsWith('data: {')).slice(6) : t);
  };
  let r = await call(ticket, rpc('list_invoices', { org: 'acme' }));
  assert.equal(r.status, 200);
  const rows = JSON.parse((await text(r)).result.content[0].text);
  assert.deepEqual(rows.map((x) => x.org), ['acme', 'acme']);
  r = await call(ticket, rpc('list_invoices', { org: 'globex' }));
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.data.code, 'arg_denied');
  r = await call(undefined, rpc('list_invoices', { org: 'acme' }));
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /^Bearer resource_metadata="https:\/\/edge\.example\/\.well-known\/oauth-protected-resource\/mcp"$/);
  r = await handler.fetch(new Request('https://edge.example/.well-known/oauth-protected-resource/mcp'));
  assert.equal((await r.json()).resource, resource);
});
