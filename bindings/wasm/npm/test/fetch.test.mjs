// captixFetch against hostile handlers and callers (review of 2026-12-01): a list the wrapper
// cannot filter is never passed on; a body that repeats a key is refused (a reader keeping the
// first of two keys would see another call than the one checked); a credential is the whole
// rest of the Authorization header; the example server survives a request that is not a URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { generateKey, mint, Verifier } from '../index.js';
import { captixFetch, repeatsKey, bearerToken } from '../http.js';
import { startServer } from '../examples/invoices-server-v2.mjs';

const key = generateKey();
const R = 'https://x.example/mcp';
const ticket = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['ok'], ttl: '1h', resource: R });
const verifier = new Verifier({ publicKeys: [key.publicKey], resource: R });
const listOf = (id) => ({ jsonrpc: '2.0', id, result: { tools: [{ name: 'ok' }, { name: 'SECRET' }] } });
const sse = (text, type = 'text/event-stream') => new Response(text, { headers: { 'content-type': type } });

function wrap(answer) {
  const seen = [];
  const h = captixFetch(verifier, { authorizationServers: ['https://auth.example'] })({
    fetch: async (request, options) => {
      seen.push({ body: await request.text(), parsed: options.parsedBody });
      return answer();
    },
  });
  return { h, seen };
}

const post = (h, body, auth = `Bearer ${ticket}`) => h.fetch(new Request(R, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body }));

test('a list in any form is filtered or not passed on', async () => {
  const chunked = (text, n) => {
    const enc = new TextEncoder();
    return new Response(new ReadableStream({ start(c) { for (let i = 0; i < text.length; i += n) c.enqueue(enc.encode(text.slice(i, i + n))); c.close(); } }), { headers: { 'content-type': 'text/event-stream' } });
  };
  const pretty = JSON.stringify(listOf(1), null, 1).split('\n').map((l) => `data: ${l}`).join('\n');
  const cases = [
    ['JSON', () => new Response(JSON.stringify(listOf(1)), { headers: { 'content-type': 'application/json' } }), 200],
    ['JSON, media type in capitals', () => new Response(JSON.stringify(listOf(1)), { headers: { 'content-type': 'Application/JSON; charset=utf-8' } }), 200],
    ['JSON, the id as a string', () => new Response(JSON.stringify(listOf('1')), { headers: { 'content-type': 'application/json' } }), 200],
    ['JSON array', () => new Response(JSON.stringify([listOf(1)]), { headers: { 'content-type': 'application/json' } }), 502],
    ['not JSON', () => new Response('{"result":', { headers: { 'content-type': 'application/json' } }), 502],
    ['another media type', () => new Response(JSON.stringify(listOf(1)), { headers: { 'content-type': 'text/plain' } }), 502],
    ['events, LF', () => sse(`event: message\ndata: ${JSON.stringify(listOf(1))}\n\n`), 200],
    ['events, CR only', () => sse(`event: message\rdata: ${JSON.stringify(listOf(1))}\r\r`, 'Text/Event-Stream'), 200],
    ['events, CRLF in 7-byte chunks', () => chunked(`event: message\r\ndata: ${JSON.stringify(listOf(1))}\r\n\r\n`, 7), 200],
    ['events, one message over several data lines', () => sse(`event: message\n${pretty}\n\n`), 200],
    ['events, an array', () => sse(`data: ${JSON.stringify([listOf(1)])}\n\n`), 200],
    ['events, no final blank line', () => sse(`data: ${JSON.stringify(listOf(1))}`), 200],
  ];
  for (const [name, answer, status] of cases) {
    const { h } = wrap(answer);
    const r = await post(h, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    const text = await r.text();
    assert.equal(r.status, status, `${name}: ${text}`);
    assert.doesNotMatch(text, /SECRET/, name);
    if (status === 200 && text) assert.match(text, /"name":"ok"/, name);
  }
});

test('a body that repeats a key is refused before the handler sees it', async () => {
  for (const body of [
    '{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"ok","arguments":{}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"SECRET","name":"ok","arguments":{}}}',
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok","arguments":{"org":"globex","o\\u0072g":"acme"}}}',
  ]) {
    const { h, seen } = wrap(() => new Response('{}', { headers: { 'content-type': 'application/json' } }));
    const r = await post(h, body);
    assert.equal(r.status, 400, body);
    assert.equal((await r.json()).error.code, -32700);
    assert.deepEqual(seen, [], 'the handler saw nothing');
  }
  assert.equal(repeatsKey('{"a":{"b":1},"b":[{"a":1},{"a":2}],"s":"\\"a\\":1,\\"a\\":2"}'), false);
  assert.equal(repeatsKey('{"a":1,"\\u0061":2}'), true);
});

test('the credential is the whole rest of the Authorization header', async () => {
  assert.equal(bearerToken(`Bearer ${ticket} extra`), `${ticket} extra`);
  assert.equal(bearerToken('Basic abc'), undefined);
  assert.equal(bearerToken('Bearer   '), undefined);
  const { h, seen } = wrap(() => new Response('{}', { headers: { 'content-type': 'application/json' } }));
  const r = await post(h, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), `Bearer ${ticket} ${ticket}`);
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/);
  assert.deepEqual(seen, []);
});

test('the example server answers a request that is not a URL with 400 and keeps serving', async () => {
  const s = await startServer({ verifierOptions: { publicKeys: [key.publicKey] } });
  const port = new URL(s.url).port;
  const raw = (text) => new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(text));
    let t = '';
    c.on('data', (d) => { t += d; });
    c.on('end', () => resolve(t.split('\r\n')[0]));
    c.on('error', (e) => resolve(String(e)));
  });
  assert.match(await raw('GET http://[/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), / 400 /);
  assert.match(await raw('GET /mcp HTTP/1.1\r\nHost: [\r\nConnection: close\r\n\r\n'), / 401 /);
  const r = await fetch(new URL('/.well-known/oauth-protected-resource/mcp', s.url));
  assert.equal(r.status, 200, 'still serving');
  await s.close();
});
