// Loads the WebAssembly module in browsers, Deno, Bun and `fetch`-handler runtimes: fetched
// (streamed, compiled while it downloads) from beside this file, before the package's code
// runs (top-level await). Where `fetch` cannot read a file: URL, the file is read instead.
import init from '../wasm/captix_wasm.js';

const url = new URL('../wasm/captix_wasm_bg.wasm', import.meta.url);
await init({
  module_or_path: url.protocol === 'file:' ? (await import('node:fs/promises')).readFile(url) : url,
});
