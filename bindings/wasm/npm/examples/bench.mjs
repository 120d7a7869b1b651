// Warm and cold check times in Node: `node examples/bench.mjs` (after bindings/wasm/build.sh).
import { generateKey, mint, attenuate, Verifier } from '../index.js';

const key = generateKey();
let ticket = mint(key.secretKey, {
  agent: 'billing-agent', user: 'alice', tools: ['list_invoices', 'get_invoice'],
  rows: ['*:org=acme'], budgets: ['1000000000000/min'], ttl: '1h', resource: 'https://mcp.example',
});
const chains = { 1: ticket };
for (let i = 2; i <= 4; i++) {
  ticket = attenuate(ticket, i === 2 ? { rows: ['list_invoices:status=open|paid'] } : { ttl: '50min' });
  chains[i] = ticket;
}
const call = { tool: 'list_invoices', arguments: { org: 'acme', status: 'open', page: 2 } };

function median(xs) {
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)];
}

for (const [blocks, t] of Object.entries(chains)) {
  const v = new Verifier({ publicKeys: [key.publicKey], resource: 'https://mcp.example' });
  if (v.check(t, call).decision !== 'allow') throw new Error('not allowed');
  const samples = [];
  for (let s = 0; s < 30; s++) {
    const n = 20_000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) v.check(t, call);
    samples.push(Number(process.hrtime.bigint() - start) / n);
  }
  const cold = [];
  for (let s = 0; s < 30; s++) {
    const fresh = new Verifier({ publicKeys: [key.publicKey], resource: 'https://mcp.example' });
    const start = process.hrtime.bigint();
    fresh.check(t, call);
    cold.push(Number(process.hrtime.bigint() - start));
    fresh.free();
  }
  console.log(`${blocks} block(s), ${t.length} bytes: warm check ${(median(samples) / 1000).toFixed(2)} µs, cold check ${(median(cold) / 1000).toFixed(0)} µs (medians)`);
  v.free();
}
