import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { ChatError } from '../protocol/errors.ts';
import { extractToken, type Authenticator } from '../auth/authenticator.ts';
import { isApiKey, type ApiKeyVerifier } from '../auth/api-keys.ts';
import type { Principal } from '../auth/principal.ts';
import type { Logger } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';
import type { Cors } from './cors.ts';
import { Exchange } from './exchange.ts';
import type { InFlight } from './in-flight.ts';
import type { RouteTable } from './route-table.ts';
import { STANDARD_HEADERS, type RequestHeaders } from './route.ts';

/** Metrics status of a request whose client went away before the answer (nginx's convention). */
export const CLIENT_CLOSED = 499;

/** What every kind of route mounts on: the server's app, policies and bookkeeping. */
export interface ServerCore {
  readonly app: TemplatedApp;
  readonly log: Logger;
  readonly cors: Cors;
  readonly requests: InFlight;
  readonly routes: RouteTable;
  readonly authenticator: Authenticator | undefined;
  /** Tenant API keys (`X-Tenant-ID` with `Authorization: Bearer ctk_...`); without it keys are refused. */
  readonly apiKeys: ApiKeyVerifier | undefined;
  readonly bodyLimit: number;
  /** Check success responses against their schema (tests). */
  readonly checkResponses: boolean;
}

export function begin(core: ServerCore, res: HttpResponse, origin: string | undefined): Exchange {
  return new Exchange(res, core.cors.headers(origin), core.requests);
}

/** Label objects per route and status, made once rather than per request. */
const labelsOf = new Map<string, { route: { route: string }; byStatus: Map<number, { route: string; status: string }> }>();

export function observe(label: string, status: number, started: number): void {
  let labels = labelsOf.get(label);
  if (labels === undefined) labelsOf.set(label, labels = { route: { route: label }, byStatus: new Map() });
  let counted = labels.byStatus.get(status);
  if (counted === undefined) labels.byStatus.set(status, counted = { route: label, status: String(status) });
  metrics.httpRequests.inc(counted);
  metrics.httpDuration.observe(labels.route, (performance.now() - started) / 1000);
}

/** The standard headers and the route's own, read now: uWS requests are gone after the first await. */
export function readHeaders(req: HttpRequest, extra: readonly string[] | undefined): RequestHeaders {
  const headers: Record<string, string | undefined> = {};
  for (const name of STANDARD_HEADERS) headers[name] = req.getHeader(name) || undefined;
  for (const name of extra ?? []) headers[name] = req.getHeader(name) || undefined;
  return headers;
}

/**
 * The caller of a route that needs auth; `query` also offers `?token=` where a route allows it.
 * A tenant API key acts for the tenant `X-Tenant-ID` names; a token with `X-Tenant-ID` must be of
 * that tenant (seed 003 sends both), else 403.
 */
export async function authenticate(core: ServerCore, headers: RequestHeaders, query: string | undefined): Promise<Principal> {
  const token = extractToken(headers['authorization'], query);
  if (!token) {
    throw new ChatError('unauthorized', query === undefined
      ? 'missing bearer token (Authorization: Bearer <jwt>)'
      : 'missing token (Authorization: Bearer <jwt> or ?token=)');
  }
  const tenantHeader = headers['x-tenant-id'];
  if (isApiKey(token)) {
    // a key in a URL ends up in proxies' logs: only the header carries one
    if (!headers['authorization']) throw new ChatError('unauthorized', 'an API key goes in the Authorization header, never in the URL');
    if (!tenantHeader) throw new ChatError('unauthorized', 'an API key needs the X-Tenant-ID header');
    if (!core.apiKeys) throw new ChatError('unauthorized', 'this server does not take API keys');
    return core.apiKeys.verify(tenantHeader, token);
  }
  const principal = await core.authenticator!.verify(token);
  if (tenantHeader !== undefined && tenantHeader.normalize('NFKC') !== principal.tenant) {
    throw new ChatError('forbidden', "X-Tenant-ID is not the token's tenant");
  }
  return principal;
}
