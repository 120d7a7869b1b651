// The conformance vectors' check (spec §9), written once for every runtime: Node's test runner,
// headless Chromium and a fetch-style handler each call it with the package they loaded.
// As the Rust runner: the paths' evaluation is compared; what a server accepts at all (expiry
// and audience required, spec §10.1) is tested on its own.

/** The outcome of one vector: `{ name, ok, got, want }`. */
export function runVector({ Verifier }, v) {
  const verifier = new Verifier({
    publicKeys: v.keys,
    resource: v.call.resource,
    budgets: false,
    allowTicketsWithoutExpiry: true,
    allowTicketsWithoutAudience: true,
  });
  try {
    const c = v.call;
    const call = c.method === 'tools/call' ? { tool: c.tool, arguments: c.args }
      : c.method === 'resources/read' ? { uri: c.uri }
        : c.method === 'prompts/get' ? { prompt: c.prompt }
          : undefined;
    if (call === undefined) return { name: v.name, ok: false, got: `unknown method ${c.method}`, want: v.expect.outcome };
    const d = verifier.check(v.ticket, { ...call, time: c.time });
    const got = d.decision === 'allow' ? 'allow' : d.code;
    const blockOk = v.expect.block === undefined || d.block === v.expect.block;
    return { name: v.name, ok: got === v.expect.outcome && blockOk, got: `${got}${d.block === undefined ? '' : ` (block ${d.block})`}: ${d.reason ?? ''}`, want: v.expect.outcome };
  } finally {
    verifier.free();
  }
}

/** Every vector's outcome. */
export function runVectors(captix, vectors) {
  return vectors.map((v) => runVector(captix, v));
}
