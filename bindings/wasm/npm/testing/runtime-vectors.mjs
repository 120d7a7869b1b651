// Run by test/runtimes.test.mjs in Deno and Bun (outside test/, so no runner takes it for a test): the fetch-style
// handler of examples/fetch-vectors.mjs on the vectors in the JSON file named by the first
// argument; prints `{ status, results }`. It lives in the package so that each runtime reads
// the package's package.json (its `imports`) as it resolves.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import handler from '../examples/fetch-vectors.mjs';

const file = globalThis.Deno?.args?.[0] ?? process.argv[2];
const body = await readFile(file, 'utf8');
const res = await handler.fetch(new Request('http://handler.test/vectors', { method: 'POST', body }));
console.log(JSON.stringify({ status: res.status, results: await res.json() }));
