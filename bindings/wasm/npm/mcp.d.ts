import type { RequestHandler } from 'express';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { Decision, Verifier } from './index.js';

/** The HTTP status for a denial code: 401, 403, 429, 400 or 503 (spec §8). */
export declare function httpStatus(code: string): number;
/** The HTTP status of a denial: as httpStatus, but 403 for a budget that never refills. */
export declare function denialStatus(decision: { code: string; retry_after?: number }): number;

/** The SDK AuthInfo of a valid ticket (clientId = agent; extra.captix = ticket info). */
export declare function authInfo(verifier: Verifier, token: string, options?: { resource?: string }): AuthInfo;

/** An OAuthTokenVerifier for the SDK's `requireBearerAuth`. */
export declare function captixTokenVerifier(verifier: Verifier, options?: { resource?: string }): OAuthTokenVerifier;

/** Express middleware: 401 for missing or invalid tickets, 403/429/400 for denied tool calls. */
export declare function captixMiddleware(
  verifier: Verifier,
  options?: { resource?: string; resourceMetadataUrl?: string; allowedOrigins?: string[] },
): RequestHandler;

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
  authorizationServers?: string[];
  scopes?: string[];
}): {
  resource: string;
  authorization_servers: string[];
  scopes_supported: string[];
  bearer_methods_supported: string[];
};
