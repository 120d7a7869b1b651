// Runs every conformance vector of test-vectors/ (spec §9), as the Rust runner does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Verifier } from '../index.js';

const dir = new URL('../../../../test-vectors/', import.meta.url).pathname;
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('the folder holds the vectors', () => {
  assert.ok(files.length >= 60, `only ${files.length} vectors`);
});

for (const file of files) {
  const v = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  test(`vector ${v.name} (§${v.section})`, () => {
    // As the Rust runner: the paths' evaluation is compared; what a server accepts at all
    // (expiry and audience required, spec §10.1) is tested on its own.
    const verifier = new Verifier({
      publicKeys: v.keys,
      resource: v.call.resource,
      budgets: false,
      allowTicketsWithoutExpiry: true,
      allowTicketsWithoutAudience: true,
    });
    const c = v.call;
    const call = c.method === 'tools/call' ? { tool: c.tool, arguments: c.args }
      : c.method === 'resources/read' ? { uri: c.uri }
        : c.method === 'prompts/get' ? { prompt: c.prompt }
          : assert.fail(`unknown method ${c.method}`);
    const d = verifier.check(v.ticket, { ...call, time: c.time });
    const outcome = d.decision === 'allow' ? 'allow' : d.code;
    assert.equal(outcome, v.expect.outcome, `${v.comment}: ${d.reason ?? ''}`);
    if (v.expect.block !== undefined) assert.equal(d.block, v.expect.block);
    verifier.free();
  });
}
