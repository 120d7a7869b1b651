import type { Allowed, Verifier } from './index.js';

export { httpStatus, denialStatus } from './index.js';

/** The SDK's AuthInfo of a valid ticket, as the ticket says it (both SDK major versions). */
export interface CaptixAuthInfo {
  token: string;
  /** The ticket's agent. */
  clientId: string;
  scopes: string[];
  /** The ticket's expiry (absent for a ticket that never expires). */
  expiresAt?: number;
  /** The ticket's audience. */
  resource?: URL;
  extra: { captix: unknown; decision?: Allowed } & Record<string, unknown>;
}

/** The AuthInfo of a valid ticket; throws a CaptixError with `code` when it is not valid. */
export declare function authInfo(verifier: Verifier, token: string): CaptixAuthInfo;

/** Methods every valid ticket may send (the lifecycle, tools, resources, prompts). */
export declare const LIFECYCLE: readonly string[];

/** Where a resource's RFC 9728 metadata lives. */
export declare function metadataLocation(resource: string): { origin: string; path: string };

/** The RFC 9728 protected-resource metadata document for this server. */
export declare function protectedResourceMetadata(options: {
  resource: string;
  authorizationServers: string[];
  scopes?: string[];
}): {
  resource: string;
  authorization_servers: string[];
  scopes_supported: string[];
  bearer_methods_supported: string[];
};

/**
 * The allowed decision the middleware, the guard or captixFetch attached to a request, from a
 * handler's `extra` (SDK 1.x) or context (`ctx.http.authInfo`, SDK 2.x); throws when there is
 * none (a handler must never fall back to an unfiltered query).
 */
export declare function decisionOf(
  extra: { authInfo?: { extra?: Record<string, unknown> }; http?: { authInfo?: { extra?: Record<string, unknown> } } } | undefined,
): Allowed;

/** A web-standard MCP handler: what the MCP TypeScript SDK 2.x's `createMcpHandler` returns. */
export interface WebMcpHandler {
  fetch(request: Request, options?: { authInfo?: any; parsedBody?: unknown }): Promise<Response>;
}

export interface CaptixFetchOptions {
  /** The authorization servers the RFC 9728 metadata names (at least one). */
  authorizationServers: string[];
  /** Browser origins admitted besides the resource's own. */
  allowedOrigins?: string[];
  /** Methods admitted beyond the lifecycle, with the scopes each needs (`[]` for none). */
  methods?: Record<string, string | string[]>;
  /** Scopes a tool (or `*`, every tool) needs besides what the ticket grants. */
  toolScopes?: Record<string, string | string[]>;
  /** More scopes for the metadata's `scopes_supported`. */
  scopes?: string[];
  /** Largest POST body read (1 MiB by default). */
  maxBodyBytes?: number;
}

/** A guarded web-standard handler, for `export default`, Deno.serve, Bun.serve, node adapters. */
export interface CaptixFetchHandler {
  fetch(request: Request, options?: Record<string, unknown>): Promise<Response>;
  /** The path of the RFC 9728 metadata document, which `fetch` also answers. */
  metadataPath: string;
  metadata: ReturnType<typeof protectedResourceMetadata>;
}

/**
 * The rules of docs §14 around a web-standard MCP handler (SDK 2.x's `createMcpHandler`, any
 * runtime with the Fetch API), for stateless serving: `captixFetch(verifier, options)(handler)`.
 */
export declare function captixFetch(verifier: Verifier, options: CaptixFetchOptions): (handler: WebMcpHandler) => CaptixFetchHandler;
