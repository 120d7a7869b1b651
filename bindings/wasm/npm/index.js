// captix for JavaScript: mint, attenuate, inspect and verify capability tickets.
// A thin layer over the WebAssembly core: every decision is made by the Rust library.
import { parse as parseToml } from 'smol-toml';
// Instantiates the WebAssembly module first: the package's `imports` map picks the loader for
// the runtime (Node reads the file; browsers, Deno, Bun and edge runtimes fetch it).
import '#load';
import * as wasm from '#wasm';
import { FLAT_ROOM, writeFlat, writeText } from './scratch.js';

/**
 * Which WebAssembly module this is: `'full'`, or `'lean'` (the `captix-lean` export condition:
 * about 60% of the size, no Datalog beyond the captix vocabulary; a ticket with hand-written
 * checks or a block from another Biscuit tool is refused with `limits_exceeded`).
 */
export const build = wasm.datalog() ? 'full' : 'lean';

/** Every stable error code (spec §8). */
export const codes = Object.freeze(JSON.parse(wasm.codes()));

const STATUSES = Object.freeze(JSON.parse(wasm.httpStatuses()));

/** The HTTP status an MCP server answers a denial code with (spec §8; the core's table). */
export function httpStatus(code) {
  return Object.hasOwn(STATUSES, code) ? STATUSES[code] : 403;
}

/**
 * The HTTP status of a denial: its code's, except that a budget that never refills (no
 * `retry_after`) is 403, since retrying cannot help.
 */
export function denialStatus(decision) {
  if (decision.code === 'budget_exhausted' && decision.retry_after === undefined) return 403;
  return httpStatus(decision.code);
}

const now = () => Math.floor(Date.now() / 1000);
const utf8 = new TextEncoder();
const memory = wasm.wasmMemory();
const [MAX_TICKET_BYTES, MAX_ARGS_BYTES, MAX_TOOL_NAME_BYTES] = wasm.limits();

// WebAssembly memory grows to the largest input ever copied in and never shrinks. A string of
// more than `max` UTF-16 units is more than `max` UTF-8 bytes, so one unit past the limit is
// enough for the core to refuse it with the same code (ticket_too_large, args_too_large).
function clip(s, max) {
  return s.length > max ? s.slice(0, max + 1) : s;
}

function ticketText(t) {
  return clip(String(t ?? ''), MAX_TICKET_BYTES);
}

function seconds(t, what) {
  if (t === undefined || t === null) return undefined;
  if (t instanceof Date) return Math.floor(t.getTime() / 1000);
  if (typeof t === 'number' && Number.isFinite(t) && t >= 0) return Math.floor(t);
  throw invalid(`${what} must be a Date or Unix seconds`);
}

/**
 * Every error this package throws: `code` is a code of the core's table (`codes`), a library
 * error code (`invalid_restriction`, `invalid_key`, `build`, ...) or `invalid_argument`; a
 * denial also carries `reason`, and `block`/`restriction` when a block denied.
 */
export class CaptixError extends Error {
  constructor(message, { code, reason, block, restriction, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CaptixError';
    this.code = code ?? 'internal';
    if (reason !== undefined) this.reason = reason;
    if (block !== undefined) this.block = block;
    if (restriction !== undefined) this.restriction = restriction;
  }
}

function invalid(message) {
  return new CaptixError(message, { code: 'invalid_argument' });
}

/** An error from WebAssembly (or the JS runtime) as a CaptixError. */
function captixError(e) {
  if (e instanceof CaptixError) return e;
  return new CaptixError(e?.message ?? String(e), { code: e?.code, reason: e?.reason, block: e?.block, restriction: e?.restriction, cause: e });
}

/** Runs a call into WebAssembly, giving its errors as CaptixError. */
function guarded(f) {
  try {
    return f();
  } catch (e) {
    throw captixError(e);
  }
}

const UNITS = { s: 1, sec: 1, m: 60, min: 60, h: 3600, hour: 3600, d: 86400, day: 86400 };

/** Parses a duration: `90s`, `5min`, `1h`, `7d`, or a number of seconds. */
export function duration(d) {
  if (typeof d === 'number' && Number.isFinite(d) && d >= 0) return Math.floor(d);
  const m = typeof d === 'string' && /^(\d+)([a-z]+)$/.exec(d);
  if (!m || !(m[2] in UNITS)) throw invalid(`${JSON.stringify(d)} is not a duration like 90s, 5min, 1h or 7d`);
  return Number(m[1]) * UNITS[m[2]];
}

function spec(s = {}) {
  const { ttl, expiresAt, notBefore, ...rest } = s;
  const out = { ...rest };
  const exp = ttl !== undefined ? now() + duration(ttl) : seconds(expiresAt, 'expiresAt');
  if (exp !== undefined) out.expiresAt = exp;
  const nbf = seconds(notBefore, 'notBefore');
  if (nbf !== undefined) out.notBefore = nbf;
  return JSON.stringify(out);
}

/** A new Ed25519 root key: `{ secretKey, publicKey, keyId }` (text forms, as the CLI writes). */
export function generateKey() {
  return guarded(() => JSON.parse(wasm.generateKey()));
}

/** The public key and key id of a secret key's text. */
export function publicKeyOf(secretKey) {
  return guarded(() => JSON.parse(wasm.publicKeyOf(secretKey)));
}

/** Mints a ticket. */
export function mint(secretKey, s) {
  return guarded(() => wasm.mint(secretKey, spec(s)));
}

/** Narrows a ticket for a sub-agent. Needs no key. */
export function attenuate(ticket, s) {
  return guarded(() => wasm.attenuate(ticketText(ticket), spec(s)));
}

/** Every block of a ticket; with `publicKeys`, signatures are verified (throws if invalid). */
export function inspect(ticket, { publicKeys } = {}) {
  return guarded(() => JSON.parse(wasm.inspect(ticketText(ticket), publicKeys ? JSON.stringify(publicKeys) : undefined)));
}

const ALLOW_CACHE_LIMIT = 10_000;

/**
 * The server policy's value (docs §16): TOML text (the file the Rust layer reads too), read
 * here so the WebAssembly module carries no TOML parser; or the same shape as an object.
 */
function policyValue(policy) {
  if (policy === undefined || (typeof policy === 'object' && policy !== null)) return policy;
  if (typeof policy !== 'string') throw invalid('policy must be TOML text or an object');
  try {
    return parseToml(policy);
  } catch (e) {
    throw new CaptixError(`policy line ${e.line}, column ${e.column}: ${String(e.message).split('\n')[0]}`, { code: 'invalid_policy' });
  }
}

/** The method and name of a call: exactly one of `tool`, `uri`, `prompt`, a string. */
function target({ tool, uri, prompt }) {
  const given = [['tools/call', tool], ['resources/read', uri], ['prompts/get', prompt]]
    .filter(([, v]) => v !== undefined);
  if (given.length !== 1 || typeof given[0][1] !== 'string') {
    throw invalid('a call names exactly one of tool, uri or prompt, as a string');
  }
  return given[0];
}

/** Where a warm check writes flat arguments before it writes anything into the module's memory. */
const staging = {
  bytes: new Uint8Array(FLAT_ROOM),
  busy: false,
  // The view of the first n bytes, kept while calls write the same length (most do).
  view: new Uint8Array(0),
  /** The first `n` bytes. */
  written(n) {
    if (this.view.length !== n) this.view = this.bytes.subarray(0, n);
    return this.view;
  },
};

/** What #decide answers for arguments JSON.stringify cannot write (nested too deep). */
const TOO_DEEP = Symbol('too deep');

/** Checks tool calls against tickets: cached, with budgets, revocation and audit. */
export class Verifier {
  #inner;
  #audit;
  #allowed = new Map();
  #ptr = 0;
  #cap = 0;
  #view = new Uint8Array(0);
  // Views of the scratch buffer from the offsets the last call used (most calls repeat them).
  #toolAt = -1;
  #toolView = this.#view;
  #argsAt = -1;
  #argsView = this.#view;

  /**
   * @param {object} options `{ publicKeys, resource, budgets = true, audit, redact, cacheBytes,
   *   allowTicketsWithoutExpiry = false, allowTicketsWithoutAudience = false, maxLifetime }`;
   *   `maxLifetime` (seconds or a duration such as '1h') refuses tickets valid longer than that;
   *   `policy` is the server policy's TOML text (docs §16: scopes and rate limits per tool,
   *   per agent, per user), the same file the Rust layer reads;
   *   `audit` is a function called with each audit record.
   */
  constructor({
    publicKeys,
    resource,
    budgets = true,
    audit,
    redact,
    cacheBytes,
    allowTicketsWithoutExpiry = false,
    allowTicketsWithoutAudience = false,
    maxLifetime,
    policy,
  } = {}) {
    if (!Array.isArray(publicKeys) || publicKeys.length === 0) throw invalid('publicKeys must be a non-empty array');
    if (audit !== undefined && typeof audit !== 'function') throw invalid('audit must be a function');
    this.#audit = audit;
    this.#inner = guarded(() => new wasm.WasmVerifier(
      JSON.stringify({
        publicKeys,
        resource,
        budgets,
        audit: !!audit,
        redact,
        cacheBytes,
        allowTicketsWithoutExpiry,
        allowTicketsWithoutAudience,
        maxLifetime: maxLifetime === undefined ? undefined : duration(maxLifetime),
        policy: policyValue(policy),
      }),
    ));
  }

  /**
   * Checks one call: a tool call `{ tool, arguments }`, a resource read `{ uri }` or a prompt
   * request `{ prompt }` (spec §4.11). `call.arguments` is an object or its JSON text (text lets
   * duplicate keys be refused); `call.time` is a Date or Unix seconds (default: now).
   * @returns the decision: `{ decision: 'allow', tool | uri | prompt, identity, filters, budgets,
   *   expires, chain }` or `{ decision: 'deny', code, reason, block, restriction, retry_after }`.
   */
  check(ticket, call = {}) {
    const { tool, arguments: args, time } = call;
    // A tool call (the common case) is recognized without building anything.
    const isTool = typeof tool === 'string' && call.uri === undefined && call.prompt === undefined;
    const other = isTool ? undefined : target(call);
    const when = seconds(time, 'time') ?? now();
    let decision;
    let lines;
    try {
      decision = isTool
        ? this.#decide(ticketText(ticket), tool, args, when)
        : JSON.parse(this.#inner.checkTarget(ticketText(ticket), other[0], other[1], when));
      if (decision === TOO_DEEP) {
        // Arguments nested past what JSON.stringify can write: refused as too deep, audited.
        decision = { decision: 'deny', code: 'args_too_deep', reason: 'arguments nest too deep' };
        this.#inner.recordRequest(ticketText(ticket), 'tools/call', clip(tool, MAX_TOOL_NAME_BYTES), decision.code, decision.reason, when);
      }
      lines = this.#audit ? JSON.parse(this.#inner.drainAudit()) : undefined;
    } catch (e) {
      throw captixError(e);
    }
    // The caller's audit function runs outside: its own errors stay its own.
    if (lines) for (const line of lines) this.#audit(JSON.parse(line), line);
    return decision;
  }

  /**
   * Writes the ticket and the tool name at the start of the scratch buffer, which is made
   * large enough for them and `argsRoom` bytes of arguments (at least FLAT_ROOM). Then the
   * tool name starts at `#toolAt`, the arguments at `#argsAt`, and `#argsView` is the room
   * after them. Runs no code of the caller's.
   */
  #head(t, tool, argsRoom) {
    const need = (t.length + tool.length) * 3 + Math.max(argsRoom, FLAT_ROOM);
    // A view of memory that grew is detached (length 0): made again, as when it is too small.
    if (need > this.#cap || this.#view.length === 0) {
      this.#cap = Math.max(need, this.#cap);
      this.#ptr = this.#inner.scratch(this.#cap);
      this.#view = new Uint8Array(memory.buffer, this.#ptr, this.#cap);
      this.#toolAt = -1;
      this.#argsAt = -1;
    }
    const a = utf8.encodeInto(t, this.#view).written;
    if (a !== this.#toolAt) {
      this.#toolAt = a;
      this.#toolView = this.#view.subarray(a);
    }
    const b = writeText(tool, this.#toolView);
    if (a + b !== this.#argsAt) {
      this.#argsAt = a + b;
      this.#argsView = this.#view.subarray(a + b);
    }
  }

  #decide(t, name, args, when) {
    const tool = clip(name, MAX_TOOL_NAME_BYTES);
    // The arguments first: the caller's code (getters, toJSON) runs before anything is written
    // into WebAssembly memory, so a check it makes (re-entering this verifier or another one,
    // or growing the memory) cannot change the bytes this one reads (found by review). Flat
    // arguments go to a staging buffer (not while a check that is writing there is under
    // way: the nested one takes the long way), others through JSON.stringify.
    let flat = -1;
    let text;
    if (typeof args !== 'string' && !staging.busy) {
      staging.busy = true;
      try {
        flat = writeFlat(args ?? {}, staging.bytes, MAX_ARGS_BYTES);
      } finally {
        staging.busy = false;
      }
    }
    if (flat < 0) {
      let json;
      try {
        json = typeof args === 'string' ? args : JSON.stringify(args ?? {});
      } catch (e) {
        if (e instanceof RangeError) return TOO_DEEP;
        throw e;
      }
      text = clip(json, MAX_ARGS_BYTES);
    }
    // Then the ticket, tool name and arguments, straight into WebAssembly memory (no
    // allocation); only numbers cross the boundary. No code of the caller's runs from here
    // to the check.
    this.#head(t, tool, flat >= 0 ? FLAT_ROOM : text.length * 3);
    const a = this.#toolAt;
    const b = this.#argsAt - a;
    let c = flat;
    if (flat >= 0) this.#argsView.set(staging.written(flat));
    else c = utf8.encodeInto(text, this.#argsView).written;
    const id = this.#inner.checkScratch(a, b, c, when);
    if (id === 0) return JSON.parse(this.#inner.lastJson());
    if (id < 0) throw new CaptixError('the scratch buffer did not hold the call', { code: 'internal' });
    // An allowed decision is the same for every call of a ticket and tool (its id says
    // which): parsed once, shared frozen.
    let decision = this.#allowed.get(id);
    if (!decision) {
      if (this.#allowed.size >= ALLOW_CACHE_LIMIT) this.#allowed.clear();
      decision = deepFreeze(JSON.parse(this.#inner.lastJson()));
      this.#allowed.set(id, decision);
    }
    return decision;
  }

  /**
   * Whether the ticket allows a resource read `{ uri }` or a prompt request `{ prompt }` now,
   * without an audit record: for filtering `resources/list` and `prompts/list`.
   */
  allows(ticket, { uri, prompt, time } = {}) {
    const [method, name] = target({ uri, prompt });
    const when = seconds(time, 'time') ?? now();
    return guarded(() => this.#inner.allows(ticketText(ticket), method, name, when));
  }

  /** The scopes the server policy requires for calls of `tool` (for a challenge's `scope=`). */
  policyScopes(tool) {
    return guarded(() => JSON.parse(this.#inner.policyScopes(String(tool))));
  }

  /** Decisions made so far, by code: `{ allow, malformed, ... }` (docs §16.3), for metrics. */
  get decisions() {
    return guarded(() => JSON.parse(this.#inner.decisions()));
  }

  /** Every scope the server policy names (for the metadata's `scopes_supported`). */
  get policyAllScopes() {
    return guarded(() => JSON.parse(this.#inner.policyAllScopes()));
  }

  /** The tools this ticket may call now (for `tools/list`); throws if the ticket is invalid. */
  callableTools(ticket, time) {
    const t = seconds(time, 'time') ?? now();
    return guarded(() => JSON.parse(this.#inner.callableTools(ticketText(ticket), t)));
  }

  /**
   * What a ticket valid now says: `{ identity, tools, expires, chain }`. Throws an error whose
   * `code` says why when the ticket is not valid (malformed, bad_signature, expired, revoked...).
   */
  ticketInfo(ticket, time) {
    const t = seconds(time, 'time') ?? now();
    return guarded(() => JSON.parse(this.#inner.ticketInfo(ticketText(ticket), t)));
  }

  /**
   * Audits a decision on a request other than a tool call (an MCP method the server admits by
   * its own configuration, e.g. `resources/read`): `denial` is `{ code, reason }`, or undefined
   * for an allow. The identity is read from the ticket when it is valid.
   */
  recordRequest(ticket, method, { target, denial, time } = {}) {
    if (typeof method !== 'string') throw invalid('method must be a string');
    const t = seconds(time, 'time') ?? now();
    guarded(() => this.#inner.recordRequest(
      typeof ticket === 'string' ? ticket : '',
      method,
      target === undefined ? undefined : String(target).slice(0, 1024),
      denial?.code ?? '',
      denial?.reason ?? '',
      t,
    ));
    if (this.#audit) {
      const lines = guarded(() => JSON.parse(this.#inner.drainAudit()));
      for (const line of lines) this.#audit(JSON.parse(line), line);
    }
  }

  /** Revokes a block (hex revocation id): the ticket it ended and every attenuation of it. */
  revoke(revocationId) {
    guarded(() => this.#inner.revoke(revocationId));
  }

  /** This server's resource URI (RFC 8707, normalized), or undefined. */
  get resource() {
    return guarded(() => this.#inner.resource()) ?? undefined;
  }

  /** Number of cached tickets. */
  get cached() {
    return guarded(() => this.#inner.cached());
  }

  /** Frees the WebAssembly memory now rather than at garbage collection. */
  free() {
    guarded(() => this.#inner.free());
  }

  /** `using v = new Verifier(...)` frees it at the end of the scope (explicit resource management). */
  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
    this.free();
  }
}

function deepFreeze(o) {
  if (o && typeof o === 'object') {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
