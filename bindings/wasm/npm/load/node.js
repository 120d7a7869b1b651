// Loads the WebAssembly module in Node: read from the package's own files, compiled once,
// synchronously (the package's `imports` map picks this file under the `node` condition, and
// the full or the lean module by the `captix-lean` condition).
import { readFileSync } from 'node:fs';
import { initSync } from '#wasm';
import url from '#wasm-url';

initSync({ module: readFileSync(url) });
