// Loads the WebAssembly module in Node: read from the package's own files, compiled once,
// synchronously (the package's `imports` map picks this file under the `node` condition).
import { readFileSync } from 'node:fs';
import { initSync } from '../wasm/captix_wasm.js';

initSync({ module: readFileSync(new URL('../wasm/captix_wasm_bg.wasm', import.meta.url)) });
