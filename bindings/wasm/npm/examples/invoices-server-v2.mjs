// The invoices MCP server on the official TypeScript SDK 2.x: `createMcpHandler` (protocol
// revision 2026-07-28, and its stateless fallback for 2025 clients) behind `captixFetch`, a
// web-standard handler served here by node:http on loopback. The same `{ fetch }` object is what
// Deno.serve, Bun.serve and Workers-style runtimes take.
//
//   node examples/invoices-server-v2.mjs --pubkey root.pub --authorization-server URL [--port 8789]
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createHandler } from './fetch-handler.mjs';

/** A node:http request as a web Request (every header line kept: two Authorization lines stay two). */
function toRequest(req, origin) {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (!['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host'].includes(name)) headers.append(name, req.rawHeaders[i + 1]);
  }
  const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : Readable.toWeb(req);
  return new Request(new URL(req.url, origin), { method: req.method, headers, body, duplex: 'half' });
}

/** Writes a web Response to a node:http response, streaming its body. */
async function send(res, response) {
  res.writeHead(response.status, [...response.headers].flat());
  if (response.body) {
    for await (const chunk of response.body) res.write(chunk);
  }
  res.end();
}

/**
 * Starts the server; resolves to `{ url, verifier, close() }`, as invoices-server.mjs does.
 * `middleware` adds captixFetch options.
 */
export async function startServer({ verifierOptions, port = 0, host = '127.0.0.1', authorizationServers = ['https://auth.example'], middleware = {} } = {}) {
  let serve;
  const listener = createServer((req, res) => {
    const failed = (status, message) => () => {
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message } }));
    };
    // Everything inside the promise: a request that is not even a URL (a bad Host or target)
    // is a 400, never an exception out of the listener.
    Promise.resolve()
      .then(() => toRequest(req, `http://${host}:${listener.address().port}`))
      .then((request) => serve(request), (e) => Promise.reject(Object.assign(e, { bad: true })))
      .then((r) => send(res, r))
      .catch((e) => failed(e?.bad ? 400 : 500, e?.bad ? 'not a request this server can read' : 'internal error')());
  });
  await new Promise((resolve) => listener.listen(port, host, resolve));
  const url = `http://${host}:${listener.address().port}/mcp`;
  const { verifier, ...handler } = createHandler({ publicKeys: verifierOptions.publicKeys, verifierOptions, resource: url, authorizationServers, middleware });
  serve = (request) => handler.fetch(request);
  return { url, verifier, close: () => new Promise((r) => { listener.closeAllConnections?.(); listener.close(r); }) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--pubkey');
  const p = process.argv.indexOf('--port');
  const a = process.argv.indexOf('--authorization-server');
  if (i < 0 || a < 0) {
    console.error('usage: node examples/invoices-server-v2.mjs --pubkey root.pub --authorization-server URL [--port 8789]');
    process.exit(2);
  }
  const publicKey = readFileSync(process.argv[i + 1], 'utf8').split('\n').find((l) => l && !l.startsWith('#'));
  const port = p > 0 ? Number(process.argv[p + 1]) : 8789;
  const { url } = await startServer({ verifierOptions: { publicKeys: [publicKey.trim()] }, port, authorizationServers: [process.argv[a + 1]] });
  console.log(`invoices MCP server (SDK 2.x) on ${url}`);
}
