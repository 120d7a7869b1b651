/// <reference lib="esnext.disposable" />
/** A denial code of the core's table (spec §8); `test/api.test.mjs` checks this list is `codes`. */
export type Code =
  | 'malformed'
  | 'ticket_too_large'
  | 'too_many_blocks'
  | 'bad_signature'
  | 'unknown_key'
  | 'revoked'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_resource'
  | 'tool_not_granted'
  | 'uri_not_granted'
  | 'prompt_not_granted'
  | 'arg_denied'
  | 'check_failed'
  | 'budget_exhausted'
  | 'rate_limited'
  | 'args_malformed'
  | 'args_duplicate_key'
  | 'args_too_large'
  | 'args_too_deep'
  | 'limits_exceeded'
  | 'store_unavailable'
  | 'invalid_time'
  | 'method_not_allowed'
  | 'scope_missing'
  | 'session_not_found';

/**
 * Which WebAssembly module this is: `'full'`, or `'lean'` (selected by the `captix-lean` export
 * condition: about 60% of the size, no Datalog beyond the captix vocabulary; a ticket with
 * hand-written checks or a block from another Biscuit tool is refused with `limits_exceeded`,
 * such checks cannot be minted, and `inspect` shows a mark in place of the text a description
 * claims for them; a block's `datalog`, printed from its signed bytes, is still shown).
 */
export declare const build: 'full' | 'lean';

/** The core's denial codes, in spec order. */
export declare const codes: readonly Code[];

/** The HTTP status for a denial code (spec §8; the core's table): 400, 401, 403, 404, 429, 500 or 503. */
export declare function httpStatus(code: Code | string): 400 | 401 | 403 | 404 | 429 | 500 | 503;
/** The HTTP status of a denial: as httpStatus, but 403 for a budget that never refills. */
export declare function denialStatus(decision: { code: Code | string; retry_after?: number }): 400 | 401 | 403 | 404 | 429 | 500 | 503;

/**
 * Every error this package throws. `code` is a denial code, a library error code
 * (`invalid_restriction`, `invalid_key`, `build`, `io`) or `invalid_argument`; a denial also
 * carries `reason`, and `block`/`restriction` when a block denied.
 */
export declare class CaptixError extends Error {
  readonly name: 'CaptixError';
  readonly code: Code | 'invalid_restriction' | 'invalid_key' | 'build' | 'io' | 'invalid_argument' | 'internal';
  readonly reason?: string;
  readonly block?: number;
  readonly restriction?: string;
}

export interface Key {
  /** `# comment` lines and `ed25519-private/<hex>`: keep it secret. */
  secretKey: string;
  /** `ed25519/<hex>`. */
  publicKey: string;
  /** 8 hex digits. */
  keyId: string;
}

/** Restrictions shared by mint and attenuate (spec §4). */
export interface Restrictions {
  /** Row filters, e.g. `*:org=acme`, `list_invoices:status=open|paid`, `refund:amount<=500`. */
  rows?: string[];
  /** Budgets, e.g. `100/min`, `list_invoices:10/5min`, `50` (lifetime). */
  budgets?: string[];
  /** Valid for this long from now: `90s`, `5min`, `1h`, `7d`, or seconds. */
  ttl?: string | number;
  /** Valid until (Date or Unix seconds). */
  expiresAt?: Date | number;
  /** Not valid before (Date or Unix seconds). */
  notBefore?: Date | number;
  /** Valid only for this MCP server (its canonical resource URI). */
  resource?: string;
  /** Hand-written Datalog checks. */
  datalog?: string[];
}

export interface MintSpec extends Restrictions {
  /** The OAuth client id of the agent that holds the ticket. */
  agent: string;
  /** The user the agent acts for. */
  user: string;
  issuer?: string;
  scopes?: string[];
  /** Granted tools. A ticket that grants no tool, URI or prompt allows nothing. */
  tools?: string[];
  /** Granted resources: URI patterns (`file:///docs/readme.md`, `file:///docs/*`, `*`). */
  uris?: string[];
  /** Granted prompts, by name. */
  prompts?: string[];
}

export interface AttenuateSpec extends Restrictions {
  /** Only these tools (narrows; `[]`: none). Resources and prompts are not affected. */
  tools?: string[];
  /** Only the resources these URI patterns admit (narrows; `[]`: none). */
  uris?: string[];
  /** Only these prompts (narrows; `[]`: none). */
  prompts?: string[];
}

export interface Identity {
  issuer?: string;
  agent: string;
  user: string;
  scopes?: string[];
}

export type Constraint =
  | { eq: string | number | boolean }
  | { one_of: (string | number)[] }
  | { prefix: string }
  | { range: { min?: number; max?: number } };

export type BlockConstraint = { block: number } & Constraint;

export interface ArgFilter {
  /** JSON Pointer of the argument, e.g. `/org`. */
  arg: string;
  constraints: BlockConstraint[];
}

export interface BudgetRef {
  block: number;
  index: number;
  revocation_id: string;
  root_id: string;
  budget: { tool: string; max_calls: number; window: number };
}

export interface Allowed {
  decision: 'allow';
  /** What was asked for: one of `tool`, `uri` (a resource read), `prompt`. */
  tool?: string;
  uri?: string;
  prompt?: string;
  identity: Identity;
  filters: ArgFilter[];
  budgets: BudgetRef[];
  expires?: number;
  chain: string[];
}

export interface Denied {
  decision: 'deny';
  code: string;
  reason: string;
  block?: number;
  restriction?: string;
  /** For `budget_exhausted`: seconds until a unit is available (absent: never). */
  retry_after?: number;
}

export type Decision = Allowed | Denied;

/** A tool call, a resource read or a prompt request: exactly one of `tool`, `uri`, `prompt`. */
export type Call =
  | {
      tool: string;
      /** The arguments object, or its JSON text (text lets duplicate keys be refused). */
      arguments?: Record<string, unknown> | string;
      /** Default: now. */
      time?: Date | number;
    }
  | { uri: string; time?: Date | number }
  | { prompt: string; time?: Date | number };

export interface AuditRecord {
  v: 1;
  seq: number;
  time: number;
  kind: 'decision' | 'outcome';
  agent?: string;
  user?: string;
  chain?: string[];
  /** For requests other than a tool call: the method (`resources/read`, ...). */
  method?: string;
  /** What such a request names (a resource URI, a prompt name). */
  target?: string;
  tool?: string;
  args?: Record<string, unknown>;
  decision?: 'allow' | 'deny';
  code?: string;
  block?: number;
  reason?: string;
  prev: string;
}

export interface TicketInfo {
  identity: Identity;
  /** Tools the ticket may call now on this server. */
  tools: string[];
  /** The resource (RFC 8707 audience) the ticket names, if any. */
  audience?: string;
  expires?: number;
  chain: string[];
}

export interface VerifierOptions {
  /** Root public keys (`ed25519/<hex>`); several for rotation. */
  publicKeys: string[];
  /** This server's canonical resource URI (RFC 8707). */
  resource?: string;
  /** Enforce budgets in memory (default true). */
  budgets?: boolean;
  /** Called with each audit record (hash-chained; `line` is the exact JSON line). */
  audit?: (record: AuditRecord, line: string) => void;
  /** Keep only these argument values in audit records (JSON Pointers); default: all. */
  redact?: string[];
  /** Most heap the ticket cache may hold, in bytes (default 64 MiB). */
  cacheBytes?: number;
  /** Accept tickets that never expire (the unsafe opt-out; default false). */
  allowTicketsWithoutExpiry?: boolean;
  /** Accept tickets that name no resource on a verifier that has one (unsafe; default false). */
  allowTicketsWithoutAudience?: boolean;
  /** Refuse tickets valid longer than this from the check (seconds, or e.g. '1h'). */
  maxLifetime?: number | string;
  /**
   * The server policy (docs §16): the TOML text of its file (the one the Rust layer reads), or
   * the same shape as an object, `{ tool: { NAME: { scopes?: string[], limits?: string[] } } }`.
   */
  policy?: string | { tool?: Record<string, { scopes?: string[]; limits?: string[] }> };
}

export declare class Verifier {
  constructor(options: VerifierOptions);
  check(ticket: string, call: Call): Decision;
  /** The scopes the server policy requires for calls of `tool`. */
  policyScopes(tool: string): string[];
  /** Decisions made so far, by code (`allow` first), for metrics. */
  readonly decisions: Record<string, number>;
  /** Every scope the server policy names. */
  readonly policyAllScopes: string[];
  /** Whether a read or prompt request is allowed now, without an audit record (for lists). */
  allows(ticket: string, call: { uri: string; time?: Date | number } | { prompt: string; time?: Date | number }): boolean;
  callableTools(ticket: string, time?: Date | number): string[];
  ticketInfo(ticket: string, time?: Date | number): TicketInfo;
  revoke(revocationId: string): void;
  /** Audits a decision on a request other than a tool call (allow when `denial` is absent). */
  recordRequest(
    ticket: string | undefined,
    method: string,
    options?: { target?: string; denial?: { code: string; reason: string }; time?: Date | number },
  ): void;
  /** This server's resource URI (RFC 8707, normalized), if configured. */
  readonly resource: string | undefined;
  readonly cached: number;
  free(): void;
  /** `using v = new Verifier(...)`: freed at the end of the scope. */
  [Symbol.dispose](): void;
}

export declare function generateKey(): Key;
export declare function publicKeyOf(secretKey: string): { publicKey: string; keyId: string };
export declare function mint(secretKey: string, spec: MintSpec): string;
export declare function attenuate(ticket: string, spec: AttenuateSpec): string;
/** A block's description (spec §4.3; JSON Schema `spec/schema/description.json`). */
export interface BlockDescription {
  captix: number;
  identity?: { agent: string; user: string; issuer?: string; scopes?: string[] };
  grants?: string[];
  uri_grants?: string[];
  prompt_grants?: string[];
  not_before?: number;
  expires?: number;
  resource?: string;
  tools?: string[];
  uris?: string[];
  prompts?: string[];
  rows?: ({ tool: string; arg: string } & Record<string, unknown>)[];
  budgets?: { tool: string; max_calls: number; window?: number }[];
  checks?: string[];
}

/** One block of `inspect`'s report. */
export interface BlockReport {
  /** Position; 0 is the authority block. */
  index: number;
  kind: 'authority' | 'attenuation' | 'foreign' | 'invalid';
  /** The block's revocation id (hex). */
  revocation_id: string;
  /** For captix blocks. */
  description?: BlockDescription;
  /** The restrictions in plain words, in check order. */
  restrictions: string[];
  /** Why the block is invalid, for `invalid` blocks. */
  problem?: string;
  /** The block's Datalog source. */
  datalog: string;
}

/** What `inspect` reports of a ticket. */
export interface InspectReport {
  /** The root key id the ticket names (hex). */
  key_id: string | null;
  /** `verified` when public keys were given (an invalid signature throws instead). */
  signatures: 'verified' | 'not_checked';
  /** Size of the text form in bytes. */
  bytes: number;
  blocks: BlockReport[];
}

export declare function inspect(ticket: string, options?: { publicKeys?: string[] }): InspectReport;
export declare function duration(d: string | number): number;
