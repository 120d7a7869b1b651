// Loads the WebAssembly module in browsers, Deno, Bun and `fetch`-handler runtimes: fetched
// (streamed, compiled while it downloads) from beside its JavaScript, before the package's code
// runs (top-level await). Where `fetch` cannot read a file: URL, the file is read instead.
// (The full or the lean module, by the `captix-lean` condition of the package's imports map.)
import init from '#wasm';
import url from '#wasm-url';

await init({
  module_or_path: url.protocol === 'file:' ? (await import('node:fs/promises')).readFile(url) : url,
});
