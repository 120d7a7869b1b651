// The JSON Schemas of spec/schema/ describe what the repository holds: every vector, every
// Datalog vector, and every description read out of the vectors' tickets validate; and the
// schemas refuse what the spec refuses (unknown members, a row with two constraints).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { inspect } from '../index.js';

const repo = new URL('../../../..', import.meta.url).pathname;
const schemaDir = join(repo, 'spec/schema');
const load = (p) => JSON.parse(readFileSync(p, 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
for (const f of readdirSync(schemaDir)) ajv.addSchema(load(join(schemaDir, f)), f);
const validate = (schema, doc, what) => {
  const ok = ajv.validate(schema, doc);
  assert.ok(ok, `${what}: ${ajv.errorsText(ajv.errors)}`);
};
const jsonFiles = (dir) => readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => join(dir, f));

test('every conformance vector validates against vector.json', () => {
  const files = jsonFiles(join(repo, 'test-vectors'));
  assert.ok(files.length > 90, `${files.length} vectors`);
  for (const f of files) validate('vector.json', load(f), f);
});

test('every Datalog vector validates against datalog-vector.json', () => {
  const files = jsonFiles(join(repo, 'test-vectors/datalog'));
  assert.ok(files.length >= 14, `${files.length} Datalog vectors`);
  for (const f of files) validate('datalog-vector.json', load(f), f);
});

test('the descriptions inside the vectors\' tickets validate against description.json', () => {
  let seen = 0;
  for (const f of jsonFiles(join(repo, 'test-vectors'))) {
    let report;
    try {
      report = inspect(load(f).ticket);
    } catch {
      continue; // malformed on purpose
    }
    for (const b of report.blocks) {
      if (b.description) {
        validate('description.json', b.description, `${f} block ${b.index}`);
        seen += 1;
      }
    }
  }
  assert.ok(seen > 50, `${seen} descriptions`);
});

test('the schemas refuse what the spec refuses', () => {
  const bad = [
    { captix: 2, unknown: true },
    { captix: 1 },
    { captix: 3 },
    { captix: 2, rows: [{ tool: '*', arg: '/org', eq: 'a', prefix: 'b' }] },
    { captix: 2, rows: [{ tool: '*', arg: 'org', eq: 'a' }] },
    { captix: 2, grants: ['*'] },
    { captix: 2, budgets: [{ tool: '*', max_calls: -1, window: 60 }] },
    { captix: 2, expires: 253402300800 },
    { captix: 2, uris: ['file:///*/a'] },
    { captix: 2, uris: ['no-scheme/*'] },
    { captix: 2, uri_grants: ['file:///a b'] },
    { captix: 2, prompts: ['*'] },
  ];
  for (const d of bad) assert.equal(ajv.validate('description.json', d), false, JSON.stringify(d));
  for (const d of [{ captix: 2, uris: ['*', 'file:///docs/*', 'invoices://acme/summary'] }, { captix: 2, uris: [] }]) {
    assert.equal(ajv.validate('description.json', d), true, JSON.stringify(d));
  }
  const v = load(jsonFiles(join(repo, 'test-vectors'))[0]);
  assert.equal(ajv.validate('vector.json', { ...v, expect: { outcome: 'no_such_code' } }), false);
  // A call names exactly one target, with the members of its method.
  const call = { method: 'resources/read', uri: 'file:///a', time: 1 };
  assert.equal(ajv.validate('vector.json', { ...v, call }), true, ajv.errorsText(ajv.errors));
  assert.equal(ajv.validate('vector.json', { ...v, call: { ...call, tool: 't' } }), false);
  assert.equal(ajv.validate('vector.json', { ...v, call: { ...call, method: 'tools/call' } }), false);
});
