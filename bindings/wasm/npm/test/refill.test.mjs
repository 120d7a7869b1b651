// A verifier keeps one call in WebAssembly memory and refills it on every check (the core's
// `Call::refill_tool`): nothing of an earlier call may reach a later call's decision. The law:
// a long-lived verifier decides every call of a sequence as a new verifier decides it alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKey, mint, Verifier } from '../index.js';

const R = 'https://mcp.example';
const NOW = Math.floor(Date.now() / 1000);
const key = generateKey();
const base = { agent: 'a', user: 'u', ttl: '1h', resource: R, tools: ['list_invoices', 'get_invoice'] };
const TICKETS = {
  org: mint(key.secretKey, { ...base, uris: ['file:///docs/*'], rows: ['*:org=acme'] }),
  escaped: mint(key.secretKey, { ...base, rows: ['*:/a~1b=v', '*:/~0=1'] }),
  typed: mint(key.secretKey, { ...base, rows: ['*:n=42', '*:s="42"', '*:flag=true'] }),
};

/** `n` members `k0`..: flat arguments of any size. */
const many = (n, extra = {}) => {
  const o = {};
  for (let i = 0; i < n; i++) o[`k${i}`] = 'x';
  return { ...o, ...extra };
};

// Calls that are allowed, with few or many members, escaped names, every kind of value.
const FIRST = [
  { org: 'acme', status: 'open', page: 2 },
  '{"org":"acme"}',
  many(15, { org: 'acme' }),
  '{"a/b":"v","~":1,"org":"acme"}',
  { n: 42, s: '42', flag: true, org: 'acme', 'a/b': 'v', '~': 1 },
];
// What follows them: a member missing or of another type, shapes the flat reader declines part
// way (a repeated name, an escape, nesting, a fraction, text after the object), more members
// than it reads, malformed text, a bad tool name, a resource read.
const NEXT = [
  {}, '{}', { status: 'open' }, '{"status":"open"}', { org: 1 }, '{"org":null}', '{"org":{"x":"acme"}}',
  '{"org":"ac\\u006de"}', '{"o\\u0072g":"globex"}', '{"status":"open","org":"globex","org":"acme"}',
  '{"a":1,"b":2,"a":3}', '{"status":"open","org":"acme","n":1.5}', '{"org":"acme"} x', '{"org":"acme"',
  '', '[]', many(17), many(16, { org: 'acme' }), '{"a~1b":"v","~0":1}', '{"a/b":"v","~":"1"}',
  { n: '42', s: 42, flag: true }, '{"n":42,"s":"42"}', { 'a/b': 'v' },
  { tool: '' }, { tool: 't'.repeat(129) }, { uri: 'file:///docs/a' }, { uri: 'file:///docs/../etc' },
];

function call(step) {
  if (step && typeof step === 'object' && 'tool' in step) return { tool: step.tool, arguments: '{"org":"acme"}', time: NOW };
  if (step && typeof step === 'object' && 'uri' in step) return { uri: step.uri, time: NOW };
  return { tool: 'list_invoices', arguments: step, time: NOW };
}

function decide(v, t, c) {
  try {
    return JSON.stringify(v.check(t, c));
  } catch (e) {
    return `throws ${e.code}: ${e.message}`;
  }
}

const verifier = () => new Verifier({ publicKeys: [key.publicKey], resource: R, budgets: false });

test('a long-lived verifier decides each call as a new verifier does', () => {
  let allowed = 0;
  let denied = 0;
  for (const [name, t] of Object.entries(TICKETS)) {
    const long = verifier();
    for (const first of FIRST) {
      for (const next of NEXT) {
        for (const step of [first, next]) {
          const c = call(step);
          const got = decide(long, t, c);
          assert.equal(got, decide(verifier(), t, c), `${name}: ${JSON.stringify(first)} then ${JSON.stringify(next)}`);
          if (got.includes('"decision":"allow"')) allowed++;
          else denied++;
        }
      }
    }
  }
  // Both kinds of answer were compared: the sequence is not all refusals or all passes.
  assert.ok(allowed > 100 && denied > 100, `${allowed} allowed, ${denied} denied`);
});
