import uWS, { type HttpResponse, type TemplatedApp, type us_listen_socket, type us_socket } from 'uWebSockets.js';
import type { TObject, TSchema, TUnknown } from '@sinclair/typebox';
import { ChatError } from '../protocol/errors.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { ApiKeyVerifier } from '../auth/api-keys.ts';
import type { HttpConfig } from '../config/config.ts';
import type { Logger } from '../telemetry/logger.ts';
import { mountBuiltins } from './builtin-routes.ts';
import { Readiness, type Dependency } from './readiness.ts';
import { refreshOnScrape } from '../telemetry/metrics.ts';
import { Cors } from './cors.ts';
import { mountHeld } from './held-route.ts';
import { InFlight } from './in-flight.ts';
import { errorReply, JSON_TYPE, writeReply } from './reply.ts';
import { mountRoute } from './rest-route.ts';
import { RouteTable } from './route-table.ts';
import type { AnyRouteDef, BinaryRouteDef, HeldRouteDef, RouteDef } from './route.ts';
import { mountBinary } from './binary-route.ts';
import type { ServerCore } from './server-core.ts';
import { assertNativeUws } from './uws-native.ts';

/**
 * The HTTP layer both HTTP-serving tiers use, on uWebSockets.js. One server per process: in the
 * all-in-one mode the gateway registers its WebSocket routes on `app` and its held routes (SSE,
 * long-poll) through `held`, the api its REST routes through `route`, and all are served on one port.
 *
 * uWS rules the server keeps: headers, query and parameters are read synchronously before the
 * first await (the request object is gone after); `onAborted` is set before any async work and
 * nothing is written to an aborted response; writes after an await are corked.
 */
export interface HttpServer {
  readonly app: TemplatedApp;
  route<P extends TSchema = TObject<{}>, Q extends TSchema = TObject<{}>, B extends TSchema = TUnknown, R extends TSchema = TUnknown, A extends boolean = true>(
    def: RouteDef<P, Q, B, R, A>,
  ): void;
  /** A route whose answer outlives its handler (a stream, a held poll): see HeldRouteDef. */
  held<Q extends TSchema = TObject<{}>, B extends TSchema = TUnknown>(def: HeldRouteDef<Q, B>): void;
  /** A route whose request body or answer is bytes (uploads, downloads): see BinaryRouteDef. */
  binary<P extends TSchema = TObject<{}>, Q extends TSchema = TObject<{}>, A extends boolean = true>(def: BinaryRouteDef<P, Q, A>): void;
  /**
   * Answers a request no route handles (a refused WebSocket upgrade) with the error envelope,
   * CORS included, as routes do. The caller owns `res`: it was not aborted, nothing was written.
   * Returns the status.
   */
  writeError(res: HttpResponse, origin: string | undefined, err: ChatError): number;
  /**
   * A check `/health/ready` runs; it fails by rejecting or by taking longer than the readiness
   * timeout (2 s). `dependency` names the server it reaches (shown on /health/detailed, and in
   * chat_dependency_up).
   */
  addReadiness(name: string, check: () => Promise<void>, dependency?: Dependency): void;
  /**
   * From now on `/health/ready` answers 503 naming `reason` (check `draining`), whatever the
   * dependencies say: a process shutting down tells load balancers first. Idempotent.
   */
  markNotReady(reason: string): void;
  /** Resolves with the bound port (`port` 0 picks a free one). */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting connections; open sockets and in-flight requests carry on. */
  stopListening(): void;
  /** Resolves once no request is in flight (held ones included), or after `timeoutMs`; with how many were still running. */
  drain(timeoutMs: number): Promise<number>;
  /**
   * Closes the listen socket and every open connection, WebSockets included (after draining: an
   * in-flight request is cut off). Without it, idle keep-alive connections hold the process open.
   */
  close(): void;
  openapi(): Record<string, unknown>;
}

export interface HttpServerOptions {
  http: HttpConfig;
  log: Logger;
  /** Needed by every route that does not say `auth: false`. */
  authenticator?: Authenticator;
  /** Tenant API keys for server-to-server calls; without it a request with a key is refused (401). */
  apiKeys?: ApiKeyVerifier;
  title?: string;
  version?: string;
  /**
   * Check every success response against the route's response schema and answer 500 on a mismatch.
   * Costs a validation per response: for tests, which keep the OpenAPI document honest with it.
   */
  checkResponses?: boolean;
  /** Per readiness check (default 2000 ms). */
  readinessTimeoutMs?: number;
  /**
   * The tier this server serves ('gateway', 'api', 'persister', 'all'): shown on /info, and its
   * readiness is exported as chat_ready{tier}, refreshed at each scrape.
   */
  tier?: string;
  /** The snowflake node id of this process, shown on /info and /health/detailed. */
  nodeId?: number;
}

const READINESS_TIMEOUT_MS = 2000;
/** The readiness check a process shutting down fails (markNotReady). */
export const DRAINING_CHECK = 'draining';
// uWS ListenOptions (LIBUS_LISTEN_DEFAULT, LIBUS_LISTEN_EXCLUSIVE_PORT); the host+port+options form
// of listen() is missing from the bundled declarations.
const LISTEN_SHARED = 0;
const LISTEN_EXCLUSIVE = 1;
type ListenWithOptions = (host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void) => TemplatedApp;

export function createHttpServer(opts: HttpServerOptions): HttpServer {
  assertNativeUws();
  const app = uWS.App();
  const core: ServerCore = {
    app,
    log: opts.log,
    cors: new Cors(opts.http.corsOrigins),
    requests: new InFlight(),
    routes: new RouteTable({ title: opts.title ?? 'chat-svc', version: opts.version ?? '1' }),
    authenticator: opts.authenticator,
    apiKeys: opts.apiKeys,
    bodyLimit: opts.http.bodyLimitBytes,
    checkResponses: opts.checkResponses ?? false,
  };
  const readinessTimeoutMs = opts.readinessTimeoutMs ?? READINESS_TIMEOUT_MS;
  const readiness = new Readiness(opts.tier, readinessTimeoutMs, opts.log);
  // a scrape shows whether the tier is ready now, not when a probe last asked
  const stopScrapeRefresh = opts.tier !== undefined ? refreshOnScrape(async () => { await readiness.run(); }) : () => {};
  let listenSocket: us_listen_socket | undefined;

  const server: HttpServer = {
    app,
    route(def) {
      mountRoute(core, def as unknown as AnyRouteDef, true);
    },
    held(def) {
      mountHeld(core, def as unknown as HeldRouteDef<TSchema, TSchema>);
    },
    binary(def) {
      mountBinary(core, def as unknown as BinaryRouteDef<TSchema, TSchema, boolean>);
    },
    writeError(res, origin, err) {
      const reply = errorReply(err);
      writeReply(res, reply.status, JSON_TYPE, reply.body, [...core.cors.headers(origin), ...reply.headers]);
      return reply.status;
    },
    addReadiness(name, check, dependency) {
      readiness.add(name, check, dependency);
    },
    markNotReady(reason) {
      // One more check, so readiness stays decided in one place (the /health/ready route).
      const refusal = new ChatError('unavailable', reason);
      readiness.add(DRAINING_CHECK, () => Promise.reject(refusal));
    },
    listen(host, port) {
      return new Promise((resolve, reject) => {
        // uWS binds with SO_REUSEPORT by default: a second server on a busy port would start and
        // silently split the traffic with the first. Sharing a port is an explicit choice.
        const options = opts.http.reusePort ? LISTEN_SHARED : LISTEN_EXCLUSIVE;
        (app.listen as unknown as ListenWithOptions).call(app, host, port, options, (socket) => {
          if (!socket) {
            reject(new ChatError('unavailable', `cannot listen on ${host}:${port}: the address is in use (another process listens there) `
              + 'or not allowed; stop that process or choose another PORT (REUSE_PORT=true shares a port on purpose)'));
            return;
          }
          listenSocket = socket;
          resolve(uWS.us_socket_local_port(socket as unknown as us_socket));
        });
      });
    },
    stopListening() {
      if (!listenSocket) return;
      uWS.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
    },
    close() {
      listenSocket = undefined;
      stopScrapeRefresh();
      // uWS >= 20.29 has App.close(); the bundled type declarations predate it.
      (app as TemplatedApp & { close(): void }).close();
    },
    drain(timeoutMs) {
      return core.requests.drain(timeoutMs);
    },
    openapi() {
      return core.routes.openapi();
    },
  };

  mountBuiltins(core, { readiness, readinessTimeoutMs, tier: opts.tier, nodeId: opts.nodeId, openapi: () => server.openapi() });
  return server;
}
