// Runs every conformance vector of test-vectors/ (spec §9), as the Rust runner does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as captix from '../index.js';
import { runVector } from '../testing/run-vectors.mjs';

const dir = new URL('../../../../test-vectors/', import.meta.url).pathname;
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('the folder holds the vectors', () => {
  assert.ok(files.length >= 60, `only ${files.length} vectors`);
});

for (const file of files) {
  const v = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  test(`vector ${v.name} (§${v.section})`, () => {
    const r = runVector(captix, v);
    assert.ok(r.ok, `${v.comment}: got ${r.got}, want ${r.want}`);
  });
}
