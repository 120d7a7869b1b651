import type { RequestHandler } from 'express';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Decision, Verifier } from './index.js';

/** The HTTP status for a denial code (spec §8): 400, 401, 403, 404, 429, 500 or 503. */
export declare function httpStatus(code: string): number;
/** The HTTP status of a denial: as httpStatus, but 403 for a budget that never refills. */
export declare function denialStatus(decision: { code: string; retry_after?: number }): number;

/**
 * The SDK AuthInfo of a valid ticket as the ticket says it (clientId = agent, resource = the
 * ticket's audience, expiresAt = its expiry; extra.captix = ticket info).
 */
export declare function authInfo(verifier: Verifier, token: string): AuthInfo;

/** An OAuthTokenVerifier for the SDK's `requireBearerAuth`. */
export declare function captixTokenVerifier(verifier: Verifier): OAuthTokenVerifier;

/** Methods every valid ticket may send: the lifecycle, the client's notifications, the tools. */
export declare const LIFECYCLE: readonly string[];

export interface MiddlewareOptions {
  /** Authorization servers that mint tickets for this resource (at least one). */
  authorizationServers: string[];
  /** Origins accepted besides the resource's own (browser requests; DNS rebinding). */
  allowedOrigins?: string[];
  /** Methods admitted beyond the lifecycle, each with the scopes it needs (`[]`: none). */
  methods?: Record<string, string | string[]>;
  /** Scopes a tool's calls need (`*`: every tool). */
  toolScopes?: Record<string, string | string[]>;
  /** Scopes to advertise besides the required ones. */
  scopes?: string[];
  /** Most sessions bound at once (default 10,000). */
  maxSessions?: number;
  /** Most sessions for the tickets of one issuance (default 32). */
  maxSessionsPerTicket?: number;
  /** Seconds without a request after which a session's binding lapses (default 600). */
  sessionIdleSecs?: number;
}

/**
 * Express middleware: 401 for missing or invalid tickets, 403/429/400 for denied tool calls,
 * 404 for another chain's session, 403 for methods not configured or scopes missing. The
 * resource is the verifier's. Carries the RFC 9728 metadata route.
 */
export declare function captixMiddleware(
  verifier: Verifier,
  options: MiddlewareOptions,
): RequestHandler & {
  metadataPath: string;
  metadata: ReturnType<typeof protectedResourceMetadata>;
  metadataHandler: RequestHandler;
};

/** Where a resource's RFC 9728 metadata lives. */
export declare function metadataLocation(resource: string): { origin: string; path: string };

export interface CaptixGuard {
  check(token: string, tool: string, args?: Record<string, unknown> | string): Decision;
  /** Wraps a tool handler: the call is checked against `extra.authInfo.token` first. */
  wrap<A, E extends { authInfo?: AuthInfo }, R>(
    tool: string,
    handler: (args: A, extra: E & { captix: Decision }) => R | Promise<R>,
  ): (args: A, extra: E) => Promise<R | { isError: true; content: { type: 'text'; text: string }[] }>;
}

export declare function captixGuard(verifier: Verifier): CaptixGuard;

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
