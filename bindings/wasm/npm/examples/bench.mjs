// Warm and cold check times in Node, beside the native warm check on the same tickets in the
// same run: `node examples/bench.mjs` (after bindings/wasm/build.sh; the native side needs
// cargo and the repository, and is skipped with a note without them). Size of the module too;
// `node --conditions=captix-lean examples/bench.mjs` measures the lean module.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import wasmFile from '#wasm-url';
import { build, generateKey, mint, attenuate, Verifier } from '../index.js';

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

/**
 * Native warm checks (ns) per ticket, from crates/captix/examples/warm.rs, built once: `run()`
 * measures (the bench runs it after each pass of the JavaScript side and keeps each ticket's
 * best, so both sides see the same machine).
 */
function native() {
  const dir = mkdtempSync(join(tmpdir(), 'captix-bench-'));
  const file = join(dir, 'input.json');
  writeFileSync(file, JSON.stringify({ publicKey: key.publicKey, resource: RESOURCE, tool: call.tool, arguments: JSON.stringify(call.arguments), tickets: chains }));
  const root = new URL('../../../../', import.meta.url).pathname;
  try {
    execFileSync('cargo', ['build', '--locked', '-q', '--release', '-p', 'captix', '--example', 'warm'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (e) {
    console.log(`(native side skipped: ${e.message.split('\n')[0]})`);
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const bin = join(root, 'target/release/examples/warm');
  return {
    run: () => execFileSync(bin, [file], { encoding: 'utf8' }).trim().split('\n').map((l) => Number(l.split(' ')[1])),
    done: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const bytes = readFileSync(wasmFile);
console.log(`module (${build}): ${bytes.length} bytes, ${gzipSync(bytes, { level: 9 }).length} gzipped (level 9)`);

const nativeRunner = native();
// Warm-up: the JavaScript and the WebAssembly code optimized before anything is measured.
{
  const v = new Verifier({ publicKeys: [key.publicKey], resource: RESOURCE });
  for (const t of chains) for (let k = 0; k < 100_000; k++) v.check(t, call);
  v.free();
}
/** One pass of the JavaScript side: each chain's best warm sample and median cold check. */
function measure(order) {
  const out = [];
  for (const i of order) {
    const t = chains[i];
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
    v.free();
    out[i] = { t, warm: Math.min(...samples), cold: median(cold) };
  }
  return out;
}

// Four passes of each side, interleaved, each ticket's best kept on both sides: a slow spell of
// a shared machine then weighs on neither side alone, nor on one depth (every other pass runs
// the depths in the other order).
const PASSES = 4;
const js = [];
const nat = [];
for (let p = 0; p < PASSES; p++) {
  js.push(measure(chains.map((_, i) => (p % 2 === 0 ? i : chains.length - 1 - i))));
  const n = nativeRunner?.run();
  if (n) nat.push(n);
}
nativeRunner?.done();
const results = chains.map((t, i) => ({
  t,
  warm: Math.min(...js.map((r) => r[i].warm)),
  cold: Math.min(...js.map((r) => r[i].cold)),
}));
for (const [i, { t, warm, cold }] of results.entries()) {
  const native = nat.length ? Math.min(...nat.map((n) => n[i])) : undefined;
  const vs = native ? ` = ${(warm / native).toFixed(1)}x native ${native.toFixed(0)} ns` : '';
  console.log(`${i + 1} block(s), ${t.length} bytes: warm check ${(warm / 1000).toFixed(2)} µs${vs}, cold check ${(cold / 1000).toFixed(0)} µs (warm: best of ${PASSES} x 30 samples; cold: best of ${PASSES} medians)`);
}
if (nat.length) {
  const ratios = results.map((r, i) => r.warm / Math.min(...nat.map((n) => n[i])));
  const worst = Math.max(...ratios);
  console.log(`warm check in Node against native: at most ${worst.toFixed(1)}x (${ratios.indexOf(worst) + 1} block(s); goal: 8x at every depth)`);
}
