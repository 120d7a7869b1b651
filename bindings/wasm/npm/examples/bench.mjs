// Warm and cold check times in Node, beside the native warm check on the same tickets in the
// same run: `node examples/bench.mjs` (after bindings/wasm/build.sh; the native side needs
// cargo and the repository, and is skipped with a note without them). Size of the module too.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { generateKey, mint, attenuate, Verifier } from '../index.js';

const RESOURCE = 'https://mcp.example';
const key = generateKey();
let ticket = mint(key.secretKey, {
  agent: 'billing-agent', user: 'alice', tools: ['list_invoices', 'get_invoice'],
  rows: ['*:org=acme'], budgets: ['1000000000000/min'], ttl: '1h', resource: RESOURCE,
});
const chains = [ticket];
for (let i = 2; i <= 8; i++) {
  ticket = attenuate(ticket, i === 2 ? { rows: ['list_invoices:status=open|paid'] } : { ttl: `${60 - i}min` });
  chains.push(ticket);
}
const call = { tool: 'list_invoices', arguments: { org: 'acme', status: 'open', page: 2 } };

function median(xs) {
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)];
}

/** Native warm checks (ns) per ticket, from crates/captix/examples/warm.rs. */
function native() {
  const dir = mkdtempSync(join(tmpdir(), 'captix-bench-'));
  try {
    const file = join(dir, 'input.json');
    writeFileSync(file, JSON.stringify({ publicKey: key.publicKey, resource: RESOURCE, tool: call.tool, arguments: JSON.stringify(call.arguments), tickets: chains }));
    const root = new URL('../../../../', import.meta.url).pathname;
    const out = execFileSync('cargo', ['run', '--locked', '-q', '--release', '-p', 'captix', '--example', 'warm', '--', file], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    return out.trim().split('\n').map((l) => Number(l.split(' ')[1]));
  } catch (e) {
    console.log(`(native side skipped: ${e.message.split('\n')[0]})`);
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const wasmFile = new URL('../wasm/captix_wasm_bg.wasm', import.meta.url);
const bytes = readFileSync(wasmFile);
console.log(`module: ${bytes.length} bytes, ${gzipSync(bytes, { level: 9 }).length} gzipped (level 9)`);

const nativeNs = native();
for (const [i, t] of chains.entries()) {
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RESOURCE });
  if (v.check(t, call).decision !== 'allow') throw new Error('not allowed');
  const samples = [];
  for (let s = 0; s < 30; s++) {
    const n = 20_000;
    const start = process.hrtime.bigint();
    for (let k = 0; k < n; k++) v.check(t, call);
    samples.push(Number(process.hrtime.bigint() - start) / n);
  }
  const cold = [];
  for (let s = 0; s < 30; s++) {
    const fresh = new Verifier({ publicKeys: [key.publicKey], resource: RESOURCE });
    const start = process.hrtime.bigint();
    fresh.check(t, call);
    cold.push(Number(process.hrtime.bigint() - start));
    fresh.free();
  }
  const warm = median(samples);
  const vs = nativeNs ? `, native warm ${nativeNs[i].toFixed(0)} ns (${(warm / nativeNs[i]).toFixed(1)}x)` : '';
  console.log(`${i + 1} block(s), ${t.length} bytes: warm check ${(warm / 1000).toFixed(2)} µs, cold check ${(median(cold) / 1000).toFixed(0)} µs${vs} (medians)`);
  v.free();
}
