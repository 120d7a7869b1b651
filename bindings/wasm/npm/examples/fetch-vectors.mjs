// A `fetch`-style handler (the shape of Workers, Deno.serve and Bun.serve) that runs the
// conformance vectors it is POSTed and answers their outcomes: how the test suite checks the
// package where only Request and Response exist (test/runtimes.test.mjs).
import * as captix from '../index.js';
import { runVectors } from '../testing/run-vectors.mjs';

export default {
  async fetch(request) {
    if (request.method !== 'POST') return new Response('POST the vectors', { status: 405 });
    return Response.json(runVectors(captix, await request.json()));
  },
};
