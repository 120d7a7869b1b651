// What the package README's snippets take as given, ambient for test/pack.test.mjs, which
// compiles each ```ts snippet of the README as its own module (a snippet's own declarations
// shadow these).
import type { RequestHandler } from 'express';
import type { McpServer } from '@modelcontextprotocol/server';
import type { Verifier } from '@captix/captix';

declare global {
  /** A caller's ticket. */
  const ticket: string;
  /** The issuer's public key (a line of `root.pub`). */
  const publicKey: string;
  /** The server's own handler, with the MCP SDK's transport. */
  const handleWithSdkTransport: RequestHandler;
  /** An MCP server on SDK 2.x. */
  const server: McpServer;
  /** A tool's input schema. */
  const inputSchema: any;
  /** A verifier made as in the first snippet. */
  const verifier: Verifier;
  const process: { env: Record<string, string | undefined> };
}
