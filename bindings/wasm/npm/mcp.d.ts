import type { RequestHandler } from 'express';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Decision, Verifier } from './index.js';
import type { protectedResourceMetadata, CaptixFetchOptions } from './http.js';

export { LIFECYCLE, metadataLocation, decisionOf, protectedResourceMetadata } from './http.js';

export { httpStatus, denialStatus } from './index.js';

/**
 * The SDK AuthInfo of a valid ticket as the ticket says it (clientId = agent, resource = the
 * ticket's audience, expiresAt = its expiry; extra.captix = ticket info).
 */
export declare function authInfo(verifier: Verifier, token: string): AuthInfo;

/** An OAuthTokenVerifier for the SDK's `requireBearerAuth`. */
export declare function captixTokenVerifier(verifier: Verifier): OAuthTokenVerifier;

/** The Express middleware's options: captixFetch's, and the sessions' bounds. */
export interface MiddlewareOptions extends CaptixFetchOptions {
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

/** The transport shape both SDK major versions share (what `server.connect` takes). */
export interface GuardableTransport {
  send(message: any, options?: any): Promise<void>;
  onmessage?: (message: any, extra?: any) => void;
  onerror?: (error: Error) => void;
}

export interface CaptixGuard {
  /** Checks one tool call with a ticket. */
  check(token: string, tool: string, args?: Record<string, unknown> | string): Decision;
  /**
   * Connects the server to the transport with the guard between them: every tools/call,
   * resources/read and prompts/get is checked by the name it carries before the server
   * receives it; lists are filtered to the ticket; other methods beyond the lifecycle are
   * refused unless `methods` names them. A denial is a JSON-RPC error -32001 carrying the
   * decision in `error.data`; an allowed request reaches the handler with
   * `authInfo.extra.decision` (see `decisionOf`).
   */
  connect<T extends GuardableTransport>(server: { connect(transport: T): Promise<void> }, transport: T): Promise<T>;
}

/**
 * A per-call guard for transports without the HTTP middleware (stdio: give `ticket`). Use it
 * or the middleware for a call, not both: each check spends budgets.
 */
export declare function captixGuard(
  verifier: Verifier,
  options?: { ticket?: string; methods?: Record<string, string | string[]> },
): CaptixGuard;

