// How a warm check writes the call into the WebAssembly scratch buffer without building
// strings (index.js, Verifier#decide). Internal: not in the package's exports map.

const utf8 = new TextEncoder();

/** Scratch room for arguments written by writeFlat. */
export const FLAT_ROOM = 1024;

/**
 * Writes `s` as UTF-8 at the start of `view` (which has room for three bytes per UTF-16 unit);
 * returns the bytes written. A short ASCII string is copied by a loop: encodeInto costs more
 * per call than a tool name's bytes.
 */
export function writeText(s, view) {
  if (s.length <= 64) {
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      view[i] = c;
    }
    if (i === s.length) return i;
  }
  return utf8.encodeInto(s, view).written;
}

/**
 * Writes `s` quoted at `view[n]`, before `end`, when JSON.stringify would write it so (ASCII,
 * nothing to escape); returns the next offset, or -1 (no room, or it would be escaped).
 */
function writeQuoted(s, view, n, end) {
  if (n + s.length + 2 > end) return -1;
  view[n++] = 34;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7f || c === 34 || c === 92) return -1;
    view[n++] = c;
  }
  view[n++] = 34;
  return n;
}

/**
 * Writes the safe integer `v` in decimal at `view[n]`, before `end`, as JSON.stringify writes it
 * (`-0` as `0`); returns the next offset, or -1 when there is no room.
 */
function writeInteger(v, view, n, end) {
  if (v < 0) {
    if (n >= end) return -1;
    view[n++] = 45;
    v = -v;
  }
  let digits = 1;
  for (let p = 10; p <= v; p *= 10) digits++;
  if (n + digits > end) return -1;
  for (let i = n + digits - 1; i >= n; i--) {
    view[i] = 48 + (v % 10);
    v = Math.floor(v / 10);
  }
  return n + digits;
}

/**
 * Writes `args` as UTF-8 JSON at the start of `view`, byte for byte what
 * `JSON.stringify(args)` writes, when it is a flat object whose members are strings (ASCII,
 * nothing to escape), numbers, booleans or null (members JSON.stringify leaves out are left
 * out), and it fits in `view` and in `max` bytes. Returns the bytes written, or -1 for anything
 * else: the caller then calls JSON.stringify. Getters run in JSON.stringify's order (and again
 * in JSON.stringify after a -1): the caller must write nothing it reads later before this
 * returns. The check must read exactly the arguments the handler gets; a property test holds
 * this to JSON.stringify (test/flat-args.test.mjs). It saves JSON.stringify's string and one
 * encodeInto per call.
 */
export function writeFlat(args, view, max) {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return -1;
  // A plain object only: a boxed Number, String or Boolean, a Date, a class instance with its
  // own toJSON are JSON.stringify's to write (found by review: `new Number(5)` was `{}`).
  const proto = Object.getPrototypeOf(args);
  if ((proto !== Object.prototype && proto !== null) || typeof args.toJSON === 'function') return -1;
  const end = Math.min(view.length, max);
  const keys = Object.keys(args);
  if (end < 2) return -1;
  view[0] = 123;
  let n = 1;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const v = args[k];
    let text;
    switch (typeof v) {
      case 'string':
        break;
      case 'number':
        // A safe integer's digits are written below without making a string.
        if (!Number.isSafeInteger(v)) text = Number.isFinite(v) ? String(v) : 'null';
        break;
      case 'boolean':
        text = v ? 'true' : 'false';
        break;
      case 'undefined':
      case 'function':
      case 'symbol':
        continue;
      default:
        if (v !== null) return -1;
        text = 'null';
    }
    if (n > 1) {
      if (n >= end) return -1;
      view[n++] = 44;
    }
    n = writeQuoted(k, view, n, end);
    if (n < 0 || n >= end) return -1;
    view[n++] = 58;
    if (text === undefined) {
      n = typeof v === 'number' ? writeInteger(v, view, n, end) : writeQuoted(v, view, n, end);
      if (n < 0) return -1;
    } else {
      if (n + text.length > end) return -1;
      for (let j = 0; j < text.length; j++) view[n++] = text.charCodeAt(j);
    }
  }
  if (n >= end) return -1;
  view[n++] = 125;
  return n;
}
