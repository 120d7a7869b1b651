// Compiled with `tsc --noEmit --strict` by test/pack.test.mjs: the published types fit real use.
import { Verifier, generateKey, mint, attenuate, inspect, CaptixError, type Code, type Decision } from '@captix/captix';
import { captixMiddleware, captixTokenVerifier, captixGuard, decisionOf, httpStatus } from '@captix/captix/mcp';
import { captixFetch, type CaptixFetchHandler } from '@captix/captix/fetch';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';

const key = generateKey();
const ticket: string = mint(key.secretKey, { agent: 'a', user: 'u', tools: ['t'], rows: ['*:org=acme'], ttl: '1h' });
const sub: string = attenuate(ticket, { tools: ['t'], budgets: ['3'] });
const v = new Verifier({ publicKeys: [key.publicKey], resource: 'https://mcp.example', audit: (r) => r.seq });
const d: Decision = v.check(sub, { tool: 't', arguments: { org: 'acme' } });
if (d.decision === 'allow') {
  const agent: string = d.identity.agent;
  const first = d.filters[0]?.constraints[0];
  void agent;
  void first;
} else {
  const code: string = d.code;
  const status: number = httpStatus(code);
  void status;
}
const tv: OAuthTokenVerifier = captixTokenVerifier(v);
const mw = captixMiddleware(v, {
  authorizationServers: ['https://auth.example'],
  methods: { 'resources/list': [], 'prompts/get': 'prompts' },
  toolScopes: { t: ['tools:t'] },
});
const path: string = mw.metadataPath;
void path;
v.recordRequest(sub, 'resources/read', { target: 'file:///x', denial: { code: 'method_not_allowed', reason: 'no' } });
const resource: string | undefined = v.resource;
void resource;
const transport = { send: async (_m: unknown) => {}, onmessage: undefined as ((m: any, e?: any) => void) | undefined };
const guarded: Promise<typeof transport> = captixGuard(v, { ticket: sub }).connect({ connect: async (_t: typeof transport) => {} }, transport);
// A handler gets the typed decision, no cast: `filters` and `identity` are there.
const handler = (extra: { authInfo?: { extra?: Record<string, unknown> } }) => {
  const allowed = decisionOf(extra);
  const user: string = allowed.identity.user;
  return allowed.filters.length + user.length;
};
void handler;
void tv;
void mw;
void guarded;
try {
  v.ticketInfo('captix1_x');
} catch (e) {
  if (e instanceof CaptixError) {
    const c: CaptixError['code'] = e.code;
    const block: number | undefined = e.block;
    void c;
    void block;
  }
}
const some: Code = 'budget_exhausted';
void some;

// Objects that hold WebAssembly memory are disposable.
{
  using scoped = new Verifier({ publicKeys: [key.publicKey], resource: 'https://mcp.example' });
  const status: 400 | 401 | 403 | 404 | 429 | 500 | 503 = httpStatus(scoped.check(sub, { tool: 't' }).decision === 'allow' ? 'revoked' : 'expired');
  void status;
}

// inspect's report is typed: no casts to read a block's kind or its description.
const report = inspect(sub, { publicKeys: [key.publicKey] });
const kind: 'authority' | 'attenuation' | 'foreign' | 'invalid' = report.blocks[0].kind;
const who: string | undefined = report.blocks[0].description?.identity?.agent;
const checked: 'verified' | 'not_checked' = report.signatures;
void kind;
void who;
void checked;

// captixFetch wraps a web-standard handler: the result is a `{ fetch }` for any runtime.
const edge: CaptixFetchHandler = captixFetch(v, { authorizationServers: ['https://auth.example'] })({
  fetch: async (_request: Request) => new Response('{}'),
});
const answer: Promise<Response> = edge.fetch(new Request('https://mcp.example/mcp', { method: 'POST', body: '{}' }));
void answer;
