// The warm check writes flat arguments into WebAssembly memory itself (scratch.js) instead of
// calling JSON.stringify. The check must read exactly the arguments the handler gets, so the
// law is: whatever writeFlat writes is byte for byte what JSON.stringify writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFlat, writeText } from '../scratch.js';
import { generateKey, mint, Verifier } from '../index.js';
import { wasmMemory } from '#wasm';

/** A deterministic sequence (xorshift32). */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

const KEYS = ['org', 'status', 'page', '', '0', '10', '2', 'a"b', 'a\\b', 'é', '\u0001', '\ud800', 'k'.repeat(300), 'toJSON', '__proto__x', 'a b'];
const STRINGS = ['acme', '', 'open', 'ac"me', 'back\\slash', 'tab\t', 'nl\n', '\u001f', '\u007f', 'é', '日本', '\ud83d\ude00', '\ud800', '\udc00x', 'x'.repeat(700), '</script>', '\u2028'];
// Integers at every digit-count boundary (writeFlat writes safe integers' digits itself), and
// the numbers JSON.stringify writes otherwise.
const NUMBERS = [0, -0, 1, -1, 9, -9, 10, 99, 100, 999999, 1000000, -1000000, 2 ** 31, 2 ** 32 + 7,
  Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1.5, 1e21, 1e-7, 123456789012345680000, 2 ** 53 + 1,
  NaN, Infinity, -Infinity, Number.MIN_VALUE, -2.5e-300];

function value(r, depth) {
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  switch (Math.floor(r() * 12)) {
    case 0:
    case 1:
    case 2:
      return pick(STRINGS);
    case 3:
    case 4:
      return pick(NUMBERS);
    case 5:
      return r() < 0.5;
    case 6:
      return null;
    case 7:
      return pick([undefined, () => 1, Symbol('s')]);
    case 8:
      return depth > 1 ? 'leaf' : object(r, depth + 1);
    case 9:
      return depth > 1 ? 0 : [value(r, depth + 1)];
    case 10:
      return pick([new Date(0), new String('boxed'), { toJSON: () => 'x' }]);
    default:
      return 'a'.repeat(Math.floor(r() * 40));
  }
}

function object(r, depth = 0) {
  const o = {};
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) o[KEYS[Math.floor(r() * KEYS.length)]] = value(r, depth);
  return o;
}

const utf8 = new TextEncoder();

/** A ticket granting `grant` (tools, rows) and `n` verifiers of it. */
function granted(grant, n = 1) {
  const key = generateKey();
  const resource = 'https://mcp.example';
  const ticket = mint(key.secretKey, { agent: 'a', user: 'u', ttl: '1h', resource, ...grant });
  return { ticket, verifiers: Array.from({ length: n }, () => new Verifier({ publicKeys: [key.publicKey], resource })) };
}

test('writeFlat writes what JSON.stringify writes, or declines', () => {
  const r = rng(0x5eed);
  let written = 0;
  let declined = 0;
  for (let i = 0; i < 20000; i++) {
    const args = object(r);
    const view = new Uint8Array(Math.floor(r() * 1200));
    view.fill(0xaa);
    const max = r() < 0.1 ? Math.floor(r() * 64) : 1 << 20;
    const n = writeFlat(args, view, max);
    if (n < 0) {
      declined++;
      assert.equal(n, -1);
      continue;
    }
    written++;
    assert.ok(n <= Math.min(view.length, max), `${n} bytes past the room`);
    assert.deepEqual(view.subarray(0, n), utf8.encode(JSON.stringify(args)), JSON.stringify(args));
  }
  // Neither side of the law is empty.
  assert.ok(written > 2000, `only ${written} written`);
  assert.ok(declined > 2000, `only ${declined} declined`);
});

test('writeFlat declines what it must leave to JSON.stringify', () => {
  const room = new Uint8Array(256);
  for (const args of [
    [],
    { toJSON: () => ({}) },
    new Date(0),
    { org: { nested: 1 } },
    { org: ['a'] },
    { org: 'ac"me' },
    { org: 'a\\b' },
    { org: 'é' },
    { org: '\ud800' },
    { org: '\n' },
    { 'o"rg': 'acme' },
    { org: 10n },
    { org: new String('acme') },
  ]) {
    assert.equal(writeFlat(args, room, 1 << 20), -1, `${String(Object.keys(args))}`);
  }
  // Too little room, or more than `max`: declined, nothing claimed.
  assert.equal(writeFlat({ org: 'acme' }, new Uint8Array(13), 1 << 20), -1);
  assert.equal(writeFlat({ org: 'acme' }, room, 13), -1);
  assert.equal(writeFlat({ org: 'acme' }, new Uint8Array(14), 1 << 20), 14);
  // Members JSON.stringify leaves out are left out.
  const n = writeFlat({ a: undefined, b: () => 1, c: Symbol('c'), d: NaN, e: -0 }, room, 1 << 20);
  assert.equal(new TextDecoder().decode(room.subarray(0, n)), '{"d":null,"e":0}');
});

test('writeText writes UTF-8 as TextEncoder does', () => {
  const r = rng(7);
  const alphabet = ['a', 'Z', '_', '-', '.', '\u007f', '\u0000', 'é', '日', '\ud83d\ude00', '\ud800', '\udfff'];
  for (let i = 0; i < 5000; i++) {
    let s = '';
    const len = Math.floor(r() * 90);
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(r() * (r() < 0.8 ? 5 : alphabet.length))];
    const view = new Uint8Array(s.length * 3);
    const n = writeText(s, view);
    assert.deepEqual(view.subarray(0, n), utf8.encode(s), JSON.stringify(s));
  }
});

test('a check reads an argument object as it reads its JSON text', () => {
  const { ticket, verifiers: [v] } = granted({ tools: ['list_invoices'], rows: ['*:org=acme'] });
  for (const args of [
    { org: 'acme' },
    { org: 'acme', page: 2, open: true, note: null },
    { org: 'ac"me' },
    { org: 'acme\u0000' },
    { org: 'acmé' },
    { org: 'globex' },
    {},
    { org: 'acme', extra: undefined },
    { org: 'x'.repeat(5000) },
  ]) {
    const fromObject = v.check(ticket, { tool: 'list_invoices', arguments: args });
    const fromText = v.check(ticket, { tool: 'list_invoices', arguments: JSON.stringify(args) });
    assert.deepEqual(fromObject, fromText, JSON.stringify(args).slice(0, 80));
    assert.equal(fromObject.decision, args.org === 'acme' ? 'allow' : 'deny', JSON.stringify(args).slice(0, 80));
  }
});

test('the caller code a check runs cannot change what it reads (found by review)', () => {
  const { ticket, verifiers: [v, other] } = granted({ tools: ['list_invoices'], rows: ['*:org=acme'] }, 2);
  // A toJSON that checks another call of the same length first: the tool must stay its own.
  const swapTool = { id: 1, nested: {}, toJSON() { v.check(ticket, { tool: 'list_invoices', arguments: { org: 'acme' } }); return { org: 'acme' }; } };
  assert.equal(v.check(ticket, { tool: 'create_refund', arguments: swapTool }).code, 'tool_not_granted');
  // A getter that checks allowed arguments in the middle of writing its own.
  for (const w of [v, other]) {
    const args = { org: 'globexglobex', get x() { w.check(ticket, { tool: 'list_invoices', arguments: { org: 'acme', q: 'q' } }); return 'y'; } };
    assert.equal(v.check(ticket, { tool: 'list_invoices', arguments: args }).decision, 'deny');
    const fine = { org: 'acme', get x() { w.check(ticket, { tool: 'list_invoices', arguments: { org: 'globex' } }); return 'y'; } };
    assert.equal(v.check(ticket, { tool: 'list_invoices', arguments: fine }).decision, 'allow');
  }
  // A getter that grows the module's memory (every view of it is then detached).
  const memory = wasmMemory();
  const grows = { org: 'globex', get x() { memory.grow(1); return 'y'; } };
  assert.equal(v.check(ticket, { tool: 'list_invoices', arguments: grows }).decision, 'deny');
  const growsFine = { org: 'acme', get x() { memory.grow(1); return 'y'; } };
  assert.equal(v.check(ticket, { tool: 'list_invoices', arguments: growsFine }).decision, 'allow');
});

test('boxed values and other objects are left to JSON.stringify (found by review)', () => {
  const room = new Uint8Array(256);
  class Args { constructor() { this.org = 'acme'; } }
  for (const args of [new Number(5), new Boolean(true), new String('ab'), Object(10n), new Args(), new Map([['org', 'acme']])]) {
    assert.equal(writeFlat(args, room, 1 << 20), -1, String(args));
  }
  const bare = Object.assign(Object.create(null), { org: 'acme' });
  const n = writeFlat(bare, room, 1 << 20);
  assert.equal(new TextDecoder().decode(room.subarray(0, n)), JSON.stringify(bare));
  const { ticket, verifiers: [v] } = granted({ tools: ['t'] });
  for (const args of [new Number(5), new String('ab'), new Boolean(true)]) {
    const fromObject = v.check(ticket, { tool: 't', arguments: args });
    assert.equal(fromObject.decision, 'deny', String(args));
    assert.deepEqual(fromObject, v.check(ticket, { tool: 't', arguments: JSON.stringify(args) }));
  }
});
