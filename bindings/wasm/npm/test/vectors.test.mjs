// Runs every conformance vector of test-vectors/ (spec §9), as the Rust runner does, with the
// module the package resolves to: the full one, or the lean one under
// `node --conditions=captix-lean` (test/lean.test.mjs runs this file so).
//
// The lean module evaluates no Datalog beyond the captix vocabulary. Its law: on every vector
// it answers as the full module does, except that a ticket that needs the reference path (a
// hand-written check or a block from another Biscuit tool, as its inspection shows) is refused
// with `limits_exceeded` where the vocabulary names no other denial (the full answer is then an
// allow, `check_failed`, `limits_exceeded`, or `malformed` for check text the lean module does
// not read). It never allows what the vectors deny.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as captix from '../index.js';
import { runVector } from '../testing/run-vectors.mjs';

const dir = new URL('../../../../test-vectors/', import.meta.url).pathname;
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const vectors = files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));

/** Whether a ticket needs the reference path: an unread check or a foreign block. */
function needsReference(ticket) {
  try {
    return captix.inspect(ticket).blocks.some((b) => b.kind === 'foreign' || (b.description?.checks ?? []).length > 0);
  } catch {
    return false;
  }
}

const lean = captix.build === 'lean';
const refused = lean ? vectors.filter((v) => needsReference(v.ticket)).length : 0;

test(`the folder holds the vectors (module: ${captix.build}; ${refused} need the reference path)`, () => {
  assert.ok(files.length >= 60, `only ${files.length} vectors`);
  // The law below is not vacuous: the lean module meets tickets it must refuse.
  if (lean) assert.ok(refused >= 8, `only ${refused} vectors need the reference path`);
});

for (const v of vectors) {
  test(`vector ${v.name} (§${v.section})`, () => {
    const r = runVector(captix, v);
    // Only where no vocabulary restriction fails: the full answer is an allow, a failing
    // hand-written or foreign check, a run limit, or a description whose check text the lean
    // module does not read (a vocabulary denial must be the same in both; review).
    if (lean && !r.ok && needsReference(v.ticket) && ['allow', 'check_failed', 'limits_exceeded', 'malformed'].includes(v.expect.outcome)) {
      assert.match(r.got, /^limits_exceeded: this build of captix evaluates no Datalog/, `${v.name}: ${r.got}`);
      return;
    }
    assert.ok(r.ok, `${v.comment}: got ${r.got}, want ${r.want}`);
  });
}
