// The lean module (the `captix-lean` export condition): within the size budget, the vectors'
// law (test/vectors.test.mjs), and what a holder can and cannot do with a ticket that needs the
// reference path. Each check runs in a child Node started with the condition.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import * as captix from '../index.js';

const here = new URL('..', import.meta.url).pathname;

/** Runs `code` (an ES module body with `captix` imported) in the lean module; its JSON output. */
function lean(code, env = {}) {
  const script = `import * as captix from './index.js';\n${code}`;
  const out = execFileSync(process.execPath, ['--conditions=captix-lean', '--input-type=module', '-e', script], {
    cwd: here,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return JSON.parse(out);
}

test('this process has the full module; the condition selects the lean one', () => {
  assert.equal(captix.build, 'full');
  assert.equal(lean('console.log(JSON.stringify(captix.build));'), 'lean');
});

test('Deno and Bun select it by the same condition', () => {
  const bin = (name) => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;
  const run = (cmd, args) => execFileSync(bin(cmd), args, { cwd: here, encoding: 'utf8' }).trim();
  assert.equal(run('deno', ['run', '--allow-read', '--conditions=captix-lean', 'testing/which-build.mjs']), 'lean');
  assert.equal(run('deno', ['run', '--allow-read', 'testing/which-build.mjs']), 'full');
  assert.equal(run('bun', ['--conditions=captix-lean', 'testing/which-build.mjs']), 'lean');
  assert.equal(run('bun', ['testing/which-build.mjs']), 'full');
});

test('the lean module is within 1 MB and 350 KB gzipped (issue 17), the full one is not', () => {
  const size = (dir) => {
    const bytes = readFileSync(new URL(`../${dir}/captix_wasm_bg.wasm`, import.meta.url));
    return [bytes.length, gzipSync(bytes, { level: 9 }).length];
  };
  const [leanRaw, leanGz] = size('wasm-lean');
  const [fullRaw] = size('wasm');
  assert.ok(leanRaw <= 1_000_000, `lean module: ${leanRaw} B`);
  assert.ok(leanGz <= 350_000, `lean module: ${leanGz} B gzipped`);
  assert.ok(leanRaw < fullRaw, 'the lean module is the smaller');
});

test('every vector, in the lean module, by the lean law', () => {
  // (Without NODE_TEST_CONTEXT the child reports as a test command of its own, in TAP.)
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const out = execFileSync(process.execPath, ['--conditions=captix-lean', '--test', '--test-reporter=tap', 'test/vectors.test.mjs'], {
    cwd: here,
    encoding: 'utf8',
    env,
  });
  assert.match(out, /module: lean; \d+ need the reference path/);
  assert.match(out, /^# fail 0$/m);
});

test('a hostile holder: the lean module never allows what it cannot evaluate', () => {
  const key = captix.generateKey();
  const resource = 'https://mcp.example/x';
  const base = { agent: 'a', user: 'u', tools: ['t', 'u'], resource, ttl: '1h' };
  // Minted by the full module: a hand-written check that holds, one that fails, and a
  // vocabulary ticket; the full module allows the first and the last.
  const holds = captix.mint(key.secretKey, { ...base, datalog: ['check if tool("t") trusting authority'] });
  const fails = captix.mint(key.secretKey, { ...base, datalog: ['check if tool("nothing")'] });
  const plain = captix.mint(key.secretKey, base);
  const expired = captix.mint(key.secretKey, { ...base, ttl: undefined, expiresAt: 1_000, datalog: ['check if true'] });
  const verifier = new captix.Verifier({ publicKeys: [key.publicKey], resource, budgets: false });
  const full = (t) => verifier.check(t, { tool: 't', arguments: {} });
  assert.equal(full(holds).decision, 'allow');
  assert.equal(full(fails).code, 'check_failed');
  assert.equal(full(plain).decision, 'allow');
  const listed = verifier.callableTools(holds);
  verifier.free();

  const got = lean(`
    const e = process.env;
    const verifier = new captix.Verifier({ publicKeys: [e.PUB], resource: e.RES, budgets: false });
    const check = (t) => { const d = verifier.check(t, { tool: 't', arguments: {} }); return [d.decision, d.code ?? null, d.reason ?? null]; };
    const fails = (f) => { try { f(); return null; } catch (x) { return [x.code, x.message]; } };
    console.log(JSON.stringify({
      holds: check(e.HOLDS), fails: check(e.FAILS), plain: check(e.PLAIN), expired: check(e.EXPIRED),
      tools: fails(() => verifier.callableTools(e.HOLDS)),
      info: fails(() => verifier.ticketInfo(e.HOLDS)),
      infoExpired: fails(() => verifier.ticketInfo(e.EXPIRED)),
      infoPlain: verifier.ticketInfo(e.PLAIN).identity.agent,
      shown: captix.inspect(e.HOLDS).blocks[0].description.checks,
      mint: fails(() => captix.mint(e.KEY, { agent: 'a', user: 'u', tools: ['t'], resource: e.RES, ttl: '1h', datalog: ['check if true'] })),
      attenuate: fails(() => captix.attenuate(e.PLAIN, { datalog: ['check if true'] })),
      narrowed: check(captix.attenuate(e.PLAIN, { tools: ['t'] })),
      narrowedHolds: fails(() => captix.attenuate(e.HOLDS, { tools: ['t'] })),
    }));
  `, { PUB: key.publicKey, RES: resource, KEY: key.secretKey, HOLDS: holds, FAILS: fails, PLAIN: plain, EXPIRED: expired });
  // A ticket that needs the reference path is refused, with the code that says why, whether
  // its hand-written check holds or not; the vocabulary's own denials still come first.
  assert.deepEqual(got.holds.slice(0, 2), ['deny', 'limits_exceeded']);
  assert.match(got.holds[2], /evaluates no Datalog outside the captix vocabulary/);
  assert.deepEqual(got.fails.slice(0, 2), ['deny', 'limits_exceeded']);
  assert.deepEqual(got.expired.slice(0, 2), ['deny', 'expired']);
  assert.deepEqual(got.plain, ['allow', null, null]);
  // No call on such a ticket can pass: it is refused when a layer authenticates it (no tool
  // listed, no session), expiry first (found by review: a description lying about its
  // hand-written checks authenticated, and its tools were listed).
  assert.deepEqual(listed, ['t', 'u'], 'the full module lists its tools');
  assert.equal(got.tools[0], 'limits_exceeded');
  assert.equal(got.info[0], 'limits_exceeded');
  assert.equal(got.infoExpired[0], 'expired');
  assert.equal(got.infoPlain, 'a');
  // The check's text is not shown as the block's: nothing here confirmed it.
  assert.deepEqual(got.shown, ['(a hand-written check: not read by this build of captix, which has no Datalog parser)']);
  // Hand-written checks are neither minted nor added.
  assert.equal(got.mint[0], 'invalid_restriction');
  assert.match(got.mint[1], /evaluates no Datalog outside the captix vocabulary/);
  assert.equal(got.attenuate[0], 'invalid_restriction');
  // Attenuating keeps working in the vocabulary, and a ticket with unread checks can still be
  // narrowed (its blocks are kept as they are, signed).
  assert.deepEqual(got.narrowed, ['allow', null, null]);
  assert.equal(got.narrowedHolds, null);
});
