// End to end: the SDK's own MCP client calls a server on the SDK, guarded by captix.
import http from 'node:http';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { generateKey, mint, attenuate, inspect, Verifier } from '../index.js';
import express from 'express';
import { captixTokenVerifier, captixMiddleware, httpStatus } from '../mcp.js';
import { startServer } from '../examples/invoices-server.mjs';

let server, key, agent, sub;
const audit = [];

before(async () => {
  key = generateKey();
  server = await startServer({
    verifierOptions: { publicKeys: [key.publicKey], audit: (r) => audit.push(r) },
    middleware: { methods: { 'resources/list': [], 'prompts/list': ['invoices:prompts'] }, toolScopes: { create_refund: 'invoices:refund' } },
  });
  agent = mint(key.secretKey, {
    resource: server.url,
    agent: 'billing-agent',
    user: 'alice',
    tools: ['list_invoices', 'get_invoice', 'create_refund'],
    rows: ['*:org=acme'],
    budgets: ['100/min'],
    ttl: '1h',
  });
  sub = attenuate(agent, { tools: ['list_invoices', 'get_invoice'], budgets: ['3'], ttl: '5min' });
});

after(async () => server.close());

async function client(ticket) {
  const c = new Client({ name: 'e2e', version: '1.0.0' });
  const headers = ticket ? { Authorization: `Bearer ${ticket}` } : {};
  await c.connect(new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers } }));
  return c;
}

test('an attenuated ticket: allowed call, then denied tool, row and budget', async () => {
  const c = await client(sub);
  const tools = await c.listTools();
  assert.ok(tools.tools.some((t) => t.name === 'list_invoices'));
  const ok = await c.callTool({ name: 'list_invoices', arguments: { org: 'acme' } });
  const rows = JSON.parse(ok.content[0].text);
  assert.deepEqual(rows.map((r) => r.id), [1, 2]);
  const byId = await c.callTool({ name: 'get_invoice', arguments: { org: 'acme', id: 1 } });
  assert.equal(JSON.parse(byId.content[0].text).id, 1);
  await assert.rejects(c.callTool({ name: 'create_refund', arguments: { org: 'acme', id: 1, amount: 5 } }), /403|scope_missing|tool_not_granted/);
  await assert.rejects(c.callTool({ name: 'list_invoices', arguments: { org: 'globex' } }), /403|arg_denied/);
  // Two calls spent from the budget of 3; the third is allowed, the fourth is not.
  await c.callTool({ name: 'list_invoices', arguments: { org: 'acme', status: 'open' } });
  await assert.rejects(c.callTool({ name: 'list_invoices', arguments: { org: 'acme' } }), /429|budget_exhausted/);
  await c.close();
});

test('the HTTP answers follow the MCP authorization spec', async () => {
  const rpc = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_invoices', arguments: { org: 'globex' } } };
  const post = (headers, body = rpc) =>
    fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify(body),
    });
  let r = await post({});
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /^Bearer resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/);
  r = await post({ authorization: 'Bearer captix1_garbage' });
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/);
  r = await post({ authorization: `Bearer ${agent}` });
  assert.equal(r.status, 403);
  assert.match(
    r.headers.get('www-authenticate'),
    /^Bearer resource_metadata="[^"]+", error="insufficient_scope", error_description="the ticket does not allow this request"$/,
  );
  const denied = await r.json();
  assert.equal(denied.error.data.code, 'arg_denied', 'the decision travels in error.data');
  assert.ok(!Object.hasOwn(denied, 'captix'), 'and nowhere else: a JSON-RPC response has no other top-level member');
  // Nothing the caller sends is reflected into the challenge (a tool name once was, and sent
  // clients to another origin's metadata).
  const evil = 'x resource_metadata=http://evil.example/p';
  r = await post({ authorization: `Bearer ${agent}` }, { ...rpc, params: { name: evil, arguments: {} } });
  assert.equal(r.status, 403);
  assert.doesNotMatch(r.headers.get('www-authenticate'), /evil/);
  assert.match(r.headers.get('www-authenticate'), /^Bearer resource_metadata="http:\/\/127\.0\.0\.1:/);
  r = await post({ authorization: `Bearer ${agent}`, origin: 'http://evil.example' });
  assert.equal(r.status, 403, 'a foreign Origin is refused');
  r = await post({ authorization: `Bearer ${agent}`, 'mcp-name': 'get_invoice' });
  assert.equal(r.status, 400, 'Mcp-Name must match params.name');
  assert.equal((await r.json()).error.code, -32020);
  r = await post({ authorization: `Bearer ${agent}`, 'mcp-method': 'tools/list' });
  assert.equal(r.status, 400, 'Mcp-Method must match the method');
  assert.equal((await r.json()).error.code, -32020);
  const b64 = `=?base64?${Buffer.from('list_invoices').toString('base64')}?=`;
  r = await post({ authorization: `Bearer ${agent}`, 'mcp-name': b64 });
  assert.equal(r.status, 403, 'a base64 Mcp-Name is decoded before it is compared');
  // Two Authorization headers: 400 invalid_request.
  const two = await new Promise((resolve, reject) => {
    const u = new URL(server.url);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: [
        'content-type', 'application/json', 'accept', 'application/json, text/event-stream',
        'authorization', `Bearer ${agent}`, 'authorization', `Bearer ${sub}`] },
      (res) => { res.resume(); resolve(res); },
    );
    req.on('error', reject);
    req.end(JSON.stringify(rpc));
  });
  // Node's HTTP parser refuses the request itself; the middleware would answer the same 400
  // (`invalid_request`) to a server whose parser let it through.
  assert.equal(two.statusCode, 400);
  r = await post({ authorization: `Bearer ${agent}` }, [rpc, rpc]);
  assert.equal(r.status, 400, 'batches are refused');
  const meta = await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp', server.url))).json();
  assert.equal(meta.resource, server.url);
  assert.deepEqual(meta.bearer_methods_supported, ['header']);
});

test('captixTokenVerifier gives the SDK an AuthInfo that tells the truth', async () => {
  const v = captixTokenVerifier(server.verifier);
  const info = await v.verifyAccessToken(sub);
  assert.equal(info.clientId, 'billing-agent');
  assert.equal(info.extra.captix.identity.user, 'alice');
  assert.deepEqual(info.extra.captix.tools, ['get_invoice', 'list_invoices']);
  // The ticket's own expiry (the child's 5 minutes, not the parent's hour) and audience.
  const expiries = inspect(sub).blocks.map((b) => b.description?.expires).filter((e) => e !== undefined);
  assert.equal(info.expiresAt, Math.min(...expiries));
  assert.ok(info.expiresAt <= Date.now() / 1000 + 300);
  assert.equal(info.resource.href, server.url);
  // A verifier that opts out of the defaults: nothing is made up for what the ticket lacks.
  const lax = new Verifier({ publicKeys: [key.publicKey], resource: server.url, allowTicketsWithoutExpiry: true, allowTicketsWithoutAudience: true });
  const bare = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['list_invoices'] });
  const laxInfo = await captixTokenVerifier(lax).verifyAccessToken(bare);
  assert.equal(laxInfo.expiresAt, undefined, 'never expires: no invented expiry');
  assert.equal(laxInfo.resource, undefined, 'names no audience: not the server\'s own URI');
  assert.equal(httpStatus('session_not_found'), 404);
  await assert.rejects(v.verifyAccessToken('captix1_nope'), (e) => e.errorCode === 'invalid_token' && e.message === 'captix malformed');
  // The SDK writes the message into WWW-Authenticate unescaped: a holder's text (an attenuated
  // resource with quotes and a line break) must never reach it (found by review).
  const evil = attenuate(sub, { resource: 'https://evil.example/", resource_metadata="https://evil.example\r\nX: y' });
  await assert.rejects(v.verifyAccessToken(evil), (e) => e.message === 'captix wrong_resource');
  assert.equal(httpStatus('budget_exhausted'), 429);
  assert.equal(httpStatus('expired'), 401);
  assert.equal(httpStatus('arg_denied'), 403);
});

const post = (url, headers, body) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
  });

test('methods and scopes come from the configuration; every request is audited', async () => {
  const scoped = mint(key.secretKey, {
    agent: 'billing-agent', user: 'alice', tools: ['create_refund'], scopes: ['invoices:refund', 'invoices:prompts'],
    rows: ['*:org=acme'], ttl: '1h', resource: server.url,
  });
  const rpc = (method, params = {}) => ({ jsonrpc: '2.0', id: 4, method, params });
  audit.length = 0;
  let r = await post(server.url, { authorization: `Bearer ${agent}` }, rpc('resources/list'));
  assert.equal(r.status, 200, 'admitted for every valid ticket');
  assert.deepEqual((await r.json()).result.resources, [], 'and filtered by it: this one grants no resource');
  for (const [method, params] of [['resources/templates/list', {}], ['resources/subscribe', { uri: 'file:///etc/passwd' }], ['completion/complete', {}], ['logging/setLevel', { level: 'debug' }], ['__proto__', {}], ['constructor', {}]]) {
    r = await post(server.url, { authorization: `Bearer ${scoped}` }, rpc(method, params));
    assert.equal(r.status, 403, method);
    assert.equal(r.headers.get('www-authenticate'), null, `${method}: no step-up for a method no scope admits`);
    assert.equal((await r.json()).error.data.code, 'method_not_allowed', method);
  }
  r = await post(server.url, { authorization: `Bearer ${agent}` }, rpc('prompts/list'));
  assert.equal(r.status, 403);
  assert.match(r.headers.get('www-authenticate'), /error="insufficient_scope", scope="invoices:prompts"/);
  assert.equal((await r.json()).error.data.code, 'scope_missing');
  r = await post(server.url, { authorization: `Bearer ${scoped}` }, rpc('prompts/list'));
  assert.notEqual(r.status, 403, 'the scoped ticket passes');
  const refund = rpc('tools/call', { name: 'create_refund', arguments: { org: 'acme', id: 1, amount: 5 } });
  r = await post(server.url, { authorization: `Bearer ${agent}` }, refund);
  assert.equal(r.status, 403);
  assert.match(r.headers.get('www-authenticate'), /scope="invoices:refund"/);
  r = await post(server.url, { authorization: `Bearer ${scoped}` }, refund);
  assert.equal(r.status, 200);
  const find = (method, decision) => audit.find((a) => a.method === method && a.decision === decision);
  assert.equal(find('resources/list', 'allow')?.agent, 'billing-agent');
  assert.equal(find('resources/subscribe', 'deny')?.target, 'file:///etc/passwd');
  assert.equal(find('resources/subscribe', 'deny')?.code, 'method_not_allowed');
  assert.equal(find('prompts/list', 'deny')?.code, 'scope_missing');
  assert.ok(find('prompts/list', 'allow'));
  assert.equal(find('tools/call', 'deny')?.target, 'create_refund');
  assert.equal(audit.filter((a) => a.tool === 'create_refund' && a.decision === 'allow').length, 1);
  const meta = await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp', server.url))).json();
  assert.deepEqual(meta.scopes_supported, ['invoices:prompts', 'invoices:refund']);
  assert.deepEqual(meta.authorization_servers, ['https://auth.example']);
});

test('resources and prompts are granted by the ticket: lists filtered, reads and gets checked', async () => {
  const docs = mint(key.secretKey, {
    agent: 'docs-agent', user: 'alice', uris: ['invoices://acme/*', 'invoices://globex/summary'],
    prompts: ['triage', 'refund_policy'], scopes: ['invoices:prompts'], ttl: '1h', resource: server.url,
  });
  const narrow = attenuate(docs, { uris: ['invoices://acme/*'], prompts: ['triage'] });
  // The SDK's own client: it sees only what the ticket allows.
  let c = await client(docs);
  assert.deepEqual((await c.listResources()).resources.map((r) => r.uri).sort(), ['invoices://acme/summary', 'invoices://globex/summary']);
  const read = await c.readResource({ uri: 'invoices://globex/summary' });
  assert.equal(JSON.parse(read.contents[0].text).org, 'globex');
  await assert.rejects(c.readResource({ uri: 'invoices://initech/summary' }), /403|uri_not_granted/);
  assert.deepEqual((await c.listPrompts()).prompts.map((p) => p.name).sort(), ['refund_policy', 'triage']);
  assert.deepEqual((await c.listTools()).tools, [], 'no tool granted, none listed');
  await c.close();
  c = await client(narrow);
  assert.deepEqual((await c.listResources()).resources.map((r) => r.uri), ['invoices://acme/summary']);
  await assert.rejects(c.readResource({ uri: 'invoices://globex/summary' }), /403|uri_not_granted/);
  assert.deepEqual((await c.listPrompts()).prompts.map((p) => p.name), ['triage']);
  await c.getPrompt({ name: 'triage' });
  await assert.rejects(c.getPrompt({ name: 'refund_policy' }), /403|prompt_not_granted/);
  await c.close();
  // Raw HTTP: codes, the path escape, the routing header.
  const rpc = (method, params = {}) => ({ jsonrpc: '2.0', id: 9, method, params });
  const auth = { authorization: `Bearer ${narrow}` };
  let r = await post(server.url, auth, rpc('resources/read', { uri: 'invoices://globex/summary' }));
  assert.equal(r.status, 403);
  assert.match(r.headers.get('www-authenticate'), /insufficient_scope/);
  assert.equal((await r.json()).error.data.code, 'uri_not_granted');
  r = await post(server.url, auth, rpc('resources/read', { uri: 'invoices://acme/../globex/summary' }));
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.data.code, 'args_malformed');
  r = await post(server.url, { ...auth, 'mcp-name': 'invoices://acme/summary' }, rpc('resources/read', { uri: 'invoices://globex/summary' }));
  assert.equal(r.status, 400, 'Mcp-Name must match params.uri');
  r = await post(server.url, auth, rpc('resources/read', { name: 'x' }));
  assert.equal(r.status, 400);
  assert.match((await r.json()).error.data.reason, /resources\/read needs params.uri/);
  // Audited: who read what.
  const find = (target, decision) => audit.find((a) => a.method === 'resources/read' && a.target === target && a.decision === decision);
  assert.equal(find('invoices://globex/summary', 'allow')?.agent, 'docs-agent');
  assert.equal(find('invoices://initech/summary', 'deny')?.code, 'uri_not_granted');
  assert.equal(audit.find((a) => a.method === 'prompts/get' && a.target === 'refund_policy')?.code, 'prompt_not_granted');
});

test('the middleware refuses an unsafe configuration', () => {
  const bare = new Verifier({ publicKeys: [key.publicKey] });
  assert.throws(() => captixMiddleware(bare, { authorizationServers: ['https://as.example'] }), /no resource/);
  const v = new Verifier({ publicKeys: [key.publicKey], resource: 'https://mcp.example/mcp' });
  assert.throws(() => captixMiddleware(v, {}), /authorizationServers/);
  assert.throws(() => captixMiddleware(v, { authorizationServers: ['as.example'] }), /absolute/);
  assert.throws(() => captixMiddleware(v, { authorizationServers: ['https://as.example'], toolScopes: { t: 'a" resource_metadata="http://evil.example' } }), /scope-token/);
  const ok = captixMiddleware(v, { authorizationServers: ['https://as.example'] });
  assert.equal(ok.metadataPath, '/.well-known/oauth-protected-resource/mcp');
});

test('a POST body is checked whatever its Content-Type, and a body that is not JSON is a JSON-RPC error', async () => {
  // `application/json` followed by a non-breaking space: express.json() skips it, the SDK's
  // transport would read it. Found by review: every tool ran unchecked and unaudited. The
  // middleware now reads every POST body itself: the call is checked (and denied: org globex).
  const send = (type, body) => new Promise((resolve, reject) => {
    const u = new URL(server.url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: {
      'content-type': Buffer.from(type, 'latin1').toString('latin1'), accept: 'application/json, text/event-stream', authorization: `Bearer ${agent}` } },
    (res) => { let t = ''; res.on('data', (d) => { t += d; }); res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], text: t })); });
    req.on('error', reject);
    req.end(body);
  });
  const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_invoices', arguments: { org: 'globex' } } });
  for (const type of ['application/json\u00a0', 'text/plain', 'application/x-www-form-urlencoded']) {
    const r = await send(type, call);
    assert.equal(r.status, 403, `${JSON.stringify(type)}: ${r.text}`);
    assert.equal(JSON.parse(r.text).error.data.code, 'arg_denied');
    assert.doesNotMatch(r.text, /globex.*open|9000/);
  }
  // Not JSON, not UTF-8, too large: JSON-RPC errors as JSON, never an HTML page, and the input
  // is not quoted back.
  for (const [body, status, code] of [['<html>{"x":', 400, -32700], [Buffer.from([0x7b, 0xff, 0x7d]), 400, -32700], ['"just a string"', 400, -32700], ['{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"create_refund","arguments":{}}}', 400, -32700], [`{"pad":"${'x'.repeat(1 << 20)}"}`, 413, -32600]]) {
    const r = await send('application/json', body);
    assert.equal(r.status, status, r.text.slice(0, 200));
    assert.match(r.type, /^application\/json/);
    assert.equal(JSON.parse(r.text).error.code, code);
    assert.doesNotMatch(r.text, /html|just a string/);
  }
});

test('a request cannot take the stream of another in flight in its session; no stream resumption', async () => {
  // Found by review: a resources/list and a slow request with the same id in one session got
  // the unfiltered list on the second's stream. A slow stand-in server answers after 300 ms.
  const app = express();
  app.use(express.json());
  const listener = await new Promise((resolve) => { const l = app.listen(0, '127.0.0.1', () => resolve(l)); });
  const url = `http://127.0.0.1:${listener.address().port}/mcp`;
  const verifier = new Verifier({ publicKeys: [key.publicKey], resource: url });
  app.all('/mcp', captixMiddleware(verifier, { authorizationServers: ['https://as.example'] }), async (req, res) => {
    if (req.body?.method === 'initialize') {
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's-1' });
      return res.end(JSON.stringify({ jsonrpc: '2.0', id: req.body.id, result: {} }));
    }
    await new Promise((r) => setTimeout(r, 300));
    res.json({ jsonrpc: '2.0', id: req.body?.id ?? null, result: {} });
  });
  try {
    const t = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['list_invoices'], ttl: '1h', resource: url });
    const auth = { authorization: `Bearer ${t}` };
    let r = await post(url, auth, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    const headers = { ...auth, 'mcp-session-id': r.headers.get('mcp-session-id') };
    const raw = (id) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body: `{"jsonrpc":"2.0","id":${id},"method":"ping"}` });
    const first = raw('7');
    await new Promise((res) => setTimeout(res, 100));
    for (const same of ['7', '7.0', '7e0']) {
      r = await raw(same);
      assert.equal(r.status, 400, same);
      assert.match((await r.json()).error.message, /in flight/);
    }
    assert.equal((await raw('"7"')).status, 200, 'the string "7" is another id');
    assert.equal((await first).status, 200);
    assert.equal((await raw('7')).status, 200, 'free again once answered');
    r = await fetch(url, { method: 'GET', headers: { ...headers, 'last-event-id': '0' } });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error.message, /Last-Event-ID/);
    // A request whose client went away was never answered on its stream: its id stays taken
    // (the server may still answer it on the next request's stream; found by review).
    const gone = new AbortController();
    const abandoned = fetch(url, { method: 'POST', signal: gone.signal, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body: '{"jsonrpc":"2.0","id":8,"method":"ping"}' }).catch(() => 'aborted');
    await new Promise((res) => setTimeout(res, 50));
    gone.abort();
    assert.equal(await abandoned, 'aborted');
    await new Promise((res) => setTimeout(res, 400));
    assert.equal((await raw('8')).status, 400, 'an unanswered id is not reused');
    // A request the middleware refused itself never reached the server: its id is free.
    r = await post(url, { ...headers, 'mcp-name': 'other' }, { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'list_invoices', arguments: {} } });
    assert.equal(r.status, 400);
    assert.equal((await raw('11')).status, 200);
  } finally {
    verifier.free();
    await new Promise((r) => listener.close(r));
  }
});

test('the server policy: 403 naming its scope, 429 for its limits, tools/list without the tool', async () => {
  // The same TOML file the Rust example server reads with --policy (docs §16).
  const policy = '[tool.create_refund]\nscopes = ["invoices:write"]\n[tool.list_invoices]\nlimits = ["2/hour per agent"]\n';
  const s = await startServer({ verifierOptions: { publicKeys: [key.publicKey], policy } });
  try {
    const t = mint(key.secretKey, { agent: 'p-agent', user: 'alice', tools: ['list_invoices', 'create_refund'], rows: ['*:org=acme'], ttl: '1h', resource: s.url });
    const c = new Client({ name: 'policy', version: '1.0.0' });
    await c.connect(new StreamableHTTPClientTransport(new URL(s.url), { requestInit: { headers: { Authorization: `Bearer ${t}` } } }));
    assert.deepEqual((await c.listTools()).tools.map((x) => x.name), ['list_invoices'], 'no create_refund without its scope');
    await c.close();
    const rpc = (name, args) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } });
    let r = await post(s.url, { authorization: `Bearer ${t}` }, rpc('create_refund', { org: 'acme', id: 1, amount: 5 }));
    assert.equal(r.status, 403);
    assert.match(r.headers.get('www-authenticate'), /error="insufficient_scope", scope="invoices:write"/);
    assert.equal((await r.json()).error.data.code, 'scope_missing');
    for (let i = 0; i < 2; i++) {
      r = await post(s.url, { authorization: `Bearer ${t}` }, rpc('list_invoices', { org: 'acme' }));
      assert.equal(r.status, 200);
    }
    r = await post(s.url, { authorization: `Bearer ${t}` }, rpc('list_invoices', { org: 'acme' }));
    assert.equal(r.status, 429);
    // Half an hour (2 an hour), less the whole seconds the calls took: a second boundary
    // between the first call and this one makes it 1799.
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry >= 1795 && retry <= 1800, `Retry-After ${retry}`);
    const d = await r.json();
    assert.equal(d.error.data.code, 'rate_limited');
    assert.match(d.error.data.reason, /per agent/);
    const meta = await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp', s.url))).json();
    assert.ok(meta.scopes_supported.includes('invoices:write'));
    // Metrics: decisions by code, the refusals of the policy among them.
    const counts = s.verifier.decisions;
    assert.equal(counts.rate_limited, 1);
    assert.equal(counts.scope_missing, 1);
    assert.ok(counts.allow >= 2, JSON.stringify(counts));
    assert.equal(counts.expired, 0);
    assert.throws(() => new Verifier({ publicKeys: [key.publicKey], policy: '[tool.t]\nlimits = ["10 per agent"]\n' }), (e) => e.code === 'invalid_policy' && /tool "t": .*limit "10 per agent": a server limit needs a window/.test(e.message));
    assert.throws(() => new Verifier({ publicKeys: [key.publicKey], policy: '[tool.t]\nlimits = [\n' }), (e) => e.code === 'invalid_policy' && /^policy line \d+, column \d+/.test(e.message));
    // The object form is the same policy.
    const v = new Verifier({ publicKeys: [key.publicKey], policy: { tool: { create_refund: { scopes: ['invoices:write'] } } } });
    assert.deepEqual(v.policyScopes('create_refund'), ['invoices:write']);
  } finally {
    await s.close();
  }
});

test('a session belongs to the ticket chain that created it', async () => {
  // A stateful stand-in for the SDK transport: initialize hands out a session id.
  const v = new Verifier({ publicKeys: [key.publicKey], resource: 'http://127.0.0.1/mcp' });
  const app = express();
  app.use(express.json());
  const live = new Set();
  let n = 0;
  const listener = await new Promise((resolve) => { const l = app.listen(0, '127.0.0.1', () => resolve(l)); });
  const url = `http://127.0.0.1:${listener.address().port}/mcp`;
  const records = [];
  const verifier = new Verifier({ publicKeys: [key.publicKey], resource: url, audit: (r) => records.push(r) });
  app.all('/mcp', captixMiddleware(verifier, { authorizationServers: ['https://as.example'], maxSessionsPerTicket: 2 }), (req, res) => {
    if (req.body?.method === 'initialize') {
      const id = `session-${++n}`;
      live.add(id);
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': id });
      return res.end(JSON.stringify({ jsonrpc: '2.0', id: req.body.id, result: {} }));
    }
    const id = req.headers['mcp-session-id'];
    if (!live.has(id)) return res.status(404).end();
    if (req.method === 'DELETE') { live.delete(id); return res.status(200).end(); }
    res.json({ jsonrpc: '2.0', id: req.body?.id ?? null, result: { ok: true } });
  });
  try {
    const a = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['list_invoices', 'get_invoice'], ttl: '1h', resource: url });
    const b = attenuate(a, { tools: ['list_invoices'] });
    let r = await post(url, { authorization: `Bearer ${a}` }, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    const sid = r.headers.get('mcp-session-id');
    assert.ok(sid);
    const ping = { jsonrpc: '2.0', id: 2, method: 'ping' };
    r = await post(url, { authorization: `Bearer ${b}`, 'mcp-session-id': sid }, ping);
    assert.equal(r.status, 404, 'another chain cannot use it');
    r = await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${b}`, 'mcp-session-id': sid } });
    assert.equal(r.status, 404, 'nor delete it');
    assert.ok(live.has(sid));
    r = await post(url, { authorization: `Bearer ${a}`, 'mcp-session-id': sid }, ping);
    assert.equal(r.status, 200, 'the creator can');
    r = await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${a}`, 'mcp-session-id': sid } });
    assert.equal(r.status, 200);
    r = await post(url, { authorization: `Bearer ${a}`, 'mcp-session-id': sid }, ping);
    assert.equal(r.status, 404, 'gone after its creator deleted it');
    // Every refused use is audited with its code.
    assert.equal(records.filter((x) => x.code === 'session_not_found').length, 3);
    // One issuance holds at most maxSessionsPerTicket sessions; a full quota refuses before
    // the server creates one.
    const init = (t) => post(url, { authorization: `Bearer ${t}` }, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    assert.equal((await init(a)).status, 200);
    assert.equal((await init(b)).status, 200);
    const before = n;
    r = await init(attenuate(a, { tools: ['get_invoice'] }));
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('mcp-session-id'), null);
    assert.equal(n, before, 'the server created no session');
    const other = mint(key.secretKey, { agent: 'b', user: 'u', tools: ['list_invoices'], ttl: '1h', resource: url });
    assert.equal((await init(other)).status, 200, 'another issuance is unaffected');
  } finally {
    v.free();
    await new Promise((r) => listener.close(r));
  }
});

test('only the server ending a session at its own path frees its slot', async () => {
  // Found by review: any 404 freed the slot while the server kept the session (a path nothing
  // serves; a JSON-RPC error answered 404), so one ticket opened sessions past its quota.
  const app = express();
  const live = new Set();
  let n = 0;
  const listener = await new Promise((resolve) => { const l = app.listen(0, '127.0.0.1', () => resolve(l)); });
  const base = `http://127.0.0.1:${listener.address().port}`;
  const url = `${base}/mcp`;
  const verifier = new Verifier({ publicKeys: [key.publicKey], resource: url });
  // Mounted on every path, as an app may: requests to paths nothing serves pass through it.
  app.use(captixMiddleware(verifier, { authorizationServers: ['https://as.example'], maxSessionsPerTicket: 2 }));
  app.use(express.json());
  app.all('/mcp', (req, res) => {
    if (req.body?.method === 'initialize') {
      const id = `session-${++n}`;
      live.add(id);
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': id });
      return res.end(JSON.stringify({ jsonrpc: '2.0', id: req.body.id, result: {} }));
    }
    if (!live.has(req.headers['mcp-session-id'])) return res.status(404).end();
    // An unknown method answered 404 with a JSON-RPC error (rmcp's stateless path does).
    res.status(404).json({ jsonrpc: '2.0', id: req.body?.id ?? null, error: { code: -32601, message: 'no such method' } });
  });
  try {
    const a = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['list_invoices'], ttl: '1h', resource: url });
    const auth = { authorization: `Bearer ${a}` };
    const init = () => post(url, auth, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    const sessions = [];
    for (let i = 0; i < 2; i++) {
      const r = await init();
      assert.equal(r.status, 200);
      sessions.push(r.headers.get('mcp-session-id'));
    }
    const withSession = { ...auth, 'mcp-session-id': sessions[0] };
    let r = await post(url, withSession, { jsonrpc: '2.0', id: 2, method: 'ping' });
    assert.equal(r.status, 404, 'the message answered 404');
    assert.equal((await init()).status, 503, 'a JSON-RPC 404 ends no session');
    for (const method of ['GET', 'DELETE']) {
      r = await fetch(`${base}/nope`, { method, headers: withSession });
      assert.equal(r.status, 404);
    }
    assert.equal((await init()).status, 503, 'an answer from another path ends no session');
    live.delete(sessions[0]);
    r = await post(url, withSession, { jsonrpc: '2.0', id: 3, method: 'ping' });
    assert.equal(r.status, 404);
    assert.equal((await init()).status, 200, "the server's own 404 for the session frees its slot");
  } finally {
    verifier.free();
    await new Promise((r) => listener.close(r));
  }
});

test('concurrent initializes cannot overshoot the quota; malformed calls are audited', async () => {
  const app = express();
  app.use(express.json());
  let created = 0;
  const listener = await new Promise((resolve) => { const l = app.listen(0, '127.0.0.1', () => resolve(l)); });
  const url = `http://127.0.0.1:${listener.address().port}/mcp`;
  const records = [];
  const verifier = new Verifier({ publicKeys: [key.publicKey], resource: url, audit: (r) => records.push(r) });
  app.all('/mcp', captixMiddleware(verifier, { authorizationServers: ['https://as.example'], maxSessionsPerTicket: 3 }), async (req, res) => {
    // A slow transport: every request is in flight at once before any session exists.
    await new Promise((r) => setTimeout(r, 50));
    if (req.body?.method === 'initialize') {
      created += 1;
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': `s-${created}` });
      return res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    }
    res.json({ jsonrpc: '2.0', id: req.body?.id ?? null, result: {} });
  });
  try {
    const a = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['list_invoices'], ttl: '1h', resource: url });
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} };
    const answers = await Promise.all(Array.from({ length: 20 }, () => post(url, { authorization: `Bearer ${a}` }, init)));
    const statuses = answers.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 3, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 503).length, 17);
    assert.equal(created, 3, 'the transport created exactly the admitted sessions');
    assert.equal(answers.find((r) => r.status === 503).headers.get('retry-after'), '60');
    // Calls refused before the check are audited as args_malformed.
    records.length = 0;
    for (const params of [{}, { name: 7 }, { name: 'list_invoices', arguments: '{"org":"acme"}' }, { name: 'list_invoices', arguments: [1] }]) {
      const r = await post(url, { authorization: `Bearer ${a}` }, { jsonrpc: '2.0', id: 2, method: 'tools/call', params });
      assert.equal(r.status, 400, JSON.stringify(params));
    }
    const deep = { name: 'list_invoices', arguments: JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)) };
    assert.equal((await post(url, { authorization: `Bearer ${a}` }, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: deep })).status, 400);
    assert.equal(records.filter((r) => r.code === 'args_malformed').length, 4, JSON.stringify(records));
    assert.equal(records.filter((r) => r.code === 'args_too_deep').length, 1, JSON.stringify(records));
    assert.ok(records.every((r) => r.agent === 'a'), 'with the identity of the valid ticket');
  } finally {
    await new Promise((r) => listener.close(r));
  }
});
