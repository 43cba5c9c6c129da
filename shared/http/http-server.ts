import { STATUS_CODES } from 'node:http';
import uWS, { type HttpResponse, type TemplatedApp, type us_listen_socket, type us_socket } from 'uWebSockets.js';
import { Type, type TObject, type TSchema, type TUnknown } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { ChatError, errorMapping } from '../protocol/errors.ts';
import { extractToken, type Authenticator } from '../auth/authenticator.ts';
import type { Principal } from '../auth/principal.ts';
import type { HttpConfig } from '../config/config.ts';
import type { Logger } from '../telemetry/logger.ts';
import { metrics, registry } from '../telemetry/metrics.ts';
import { buildOpenApi, type DocRoute } from './openapi.ts';
import { assertNativeUws } from './uws-native.ts';
import { STANDARD_HEADERS, type AnyRouteDef, type RequestHeaders, type RouteDef } from './route.ts';

/**
 * The HTTP layer both HTTP-serving tiers use, on uWebSockets.js. One server per process: in the
 * all-in-one mode the gateway registers its WebSocket routes on `app` and the api its REST routes
 * through `route`, and both are served on one port.
 *
 * uWS rules this file keeps: headers, query and parameters are read synchronously before the first
 * await (the request object is gone after); `onAborted` is set before any async work and nothing is
 * written to an aborted response; writes after an await are corked.
 */
export interface HttpServer {
  readonly app: TemplatedApp;
  route<P extends TSchema = TObject<{}>, Q extends TSchema = TObject<{}>, B extends TSchema = TUnknown, R extends TSchema = TUnknown, A extends boolean = true>(
    def: RouteDef<P, Q, B, R, A>,
  ): void;
  /** A dependency `/health/ready` checks; a check fails by rejecting or by taking longer than 2 s. */
  addReadiness(name: string, check: () => Promise<void>): void;
  /** Resolves with the bound port (`port` 0 picks a free one). */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting connections; open sockets and in-flight requests carry on. */
  stopListening(): void;
  /** Resolves once no request is in flight, or after `timeoutMs`; with how many were still running. */
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
  title?: string;
  version?: string;
  /**
   * Check every success response against the route's response schema and answer 500 on a mismatch.
   * Costs a validation per response: for tests, which keep the OpenAPI document honest with it.
   */
  checkResponses?: boolean;
  /** Per readiness check (default 2000 ms). */
  readinessTimeoutMs?: number;
}

const READINESS_TIMEOUT_MS = 2000;
const JSON_TYPE = 'application/json; charset=utf-8';
const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';
const ALLOWED_HEADERS = 'Authorization, Content-Type';
const PREFLIGHT_MAX_AGE_SEC = '600';
const UNMATCHED_ROUTE = 'unmatched';
/** Metrics status of a request whose client went away before the answer (nginx's convention). */
const CLIENT_CLOSED = 499;

type Headers = Array<[string, string]>;

/** One request's lifetime flags; `done` once a response was written or given up on. */
interface Exchange {
  res: HttpResponse;
  aborted: boolean;
  done: boolean;
  cors: Headers;
  /** Called when the client goes away, so a pending body read settles instead of waiting forever. */
  onAbort: (() => void) | undefined;
}

interface CompiledRoute {
  def: AnyRouteDef;
  label: string;
  paramNames: string[];
  headerNames: string[];
  params: TypeCheck<TSchema> | undefined;
  query: TypeCheck<TSchema> | undefined;
  body: TypeCheck<TSchema> | undefined;
  response: TypeCheck<TSchema> | undefined;
}

type BodyResult = { ok: true; bytes: Buffer } | { ok: false; error: ChatError; closeConnection: boolean };

/** A response that is not the JSON envelope (health probes, metrics, the OpenAPI document). */
class RawReply {
  constructor(readonly status: number, readonly contentType: string, readonly body: string) {}
}

export function createHttpServer(opts: HttpServerOptions): HttpServer {
  assertNativeUws();
  const { log, authenticator } = opts;
  const bodyLimit = opts.http.bodyLimitBytes;
  const readinessTimeoutMs = opts.readinessTimeoutMs ?? READINESS_TIMEOUT_MS;
  const app = uWS.App();
  const docs: DocRoute[] = [];
  const readiness = new Map<string, () => Promise<void>>();
  let listenSocket: us_listen_socket | undefined;
  let inFlight = 0;
  let idle: Array<() => void> = [];
  let openapiDoc: Record<string, unknown> | undefined;

  const allowAnyOrigin = opts.http.corsOrigins.includes('*');
  const allowedOrigins = new Set(opts.http.corsOrigins);
  function corsHeaders(origin: string | undefined): Headers {
    if (!origin) return allowAnyOrigin ? [['Access-Control-Allow-Origin', '*']] : [];
    if (allowAnyOrigin) return [['Access-Control-Allow-Origin', '*'], ['Access-Control-Expose-Headers', 'Retry-After']];
    if (!allowedOrigins.has(origin)) return [];
    return [['Access-Control-Allow-Origin', origin], ['Vary', 'Origin'], ['Access-Control-Expose-Headers', 'Retry-After']];
  }

  function begin(res: HttpResponse, origin: string | undefined): Exchange {
    const ex: Exchange = { res, aborted: false, done: false, cors: corsHeaders(origin), onAbort: undefined };
    res.onAborted(() => {
      ex.aborted = true;
      ex.onAbort?.();
    });
    inFlight++;
    return ex;
  }

  function write(ex: Exchange, status: number, contentType: string, body: string, headers: Headers = [], closeConnection = false): void {
    if (ex.done) return;
    ex.done = true;
    if (--inFlight === 0 && idle.length) {
      const waiting = idle;
      idle = [];
      for (const resolve of waiting) resolve();
    }
    if (ex.aborted) return;
    ex.res.cork(() => {
      ex.res.writeStatus(statusLine(status));
      ex.res.writeHeader('Content-Type', contentType);
      for (const [k, v] of ex.cors) ex.res.writeHeader(k, v);
      for (const [k, v] of headers) ex.res.writeHeader(k, v);
      ex.res.end(body, closeConnection);
    });
  }

  function writeError(ex: Exchange, err: ChatError, closeConnection = false): number {
    const status = errorMapping(err.code).http;
    const headers: Headers = [];
    if (err.code === 'rate_limited') {
      const ms = Number(err.details?.['retryAfterMs'] ?? 1000);
      headers.push(['Retry-After', String(Math.max(1, Math.ceil(ms / 1000)))]);
    }
    if (err.code === 'unauthorized') headers.push(['WWW-Authenticate', 'Bearer']);
    const error = { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
    write(ex, status, JSON_TYPE, JSON.stringify({ success: false, error }), headers, closeConnection);
    return status;
  }

  function observe(label: string, status: number, started: number): void {
    metrics.httpRequests.inc({ route: label, status: String(status) });
    metrics.httpDuration.observe({ route: label }, (performance.now() - started) / 1000);
  }

  /**
   * What the client is told about a failure. Anything not a ChatError, and ChatError('internal')
   * (whose message and cause may describe a driver), becomes a bare 500 and is logged with its
   * stack; other server-side codes (unavailable, timeout) keep their message and are logged too.
   */
  function clientError(err: unknown, ctx: Record<string, unknown>): ChatError {
    if (err instanceof ChatError && err.code !== 'internal') {
      if (err.status >= 500) log.warn({ err, ...ctx }, 'request failed');
      return err;
    }
    log.error({ err, ...ctx }, 'request failed');
    return new ChatError('internal', 'internal error');
  }

  function readBody(ex: Exchange, contentLength: string): Promise<BodyResult> {
    if (contentLength && Number(contentLength) > bodyLimit) {
      return Promise.resolve({ ok: false, error: tooLarge(bodyLimit), closeConnection: true });
    }
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let finished = false;
      ex.onAbort = () => {
        if (finished) return;
        finished = true;
        resolve({ ok: false, error: new ChatError('bad_request', 'client closed the request before sending its body'), closeConnection: true });
      };
      ex.res.onData((chunk, isLast) => {
        if (finished) return;
        size += chunk.byteLength;
        if (size > bodyLimit) {
          finished = true;
          resolve({ ok: false, error: tooLarge(bodyLimit), closeConnection: true });
          return;
        }
        // uWS reuses the chunk's memory after this callback returns: copy it.
        chunks.push(Buffer.from(new Uint8Array(chunk)));
        if (isLast) {
          finished = true;
          resolve({ ok: true, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
        }
      });
    });
  }

  async function authenticate(route: CompiledRoute, headers: RequestHeaders): Promise<Principal | undefined> {
    if (route.def.auth === false) return undefined;
    const token = extractToken(headers['authorization'], undefined);
    if (!token) throw new ChatError('unauthorized', 'missing bearer token (Authorization: Bearer <jwt>)');
    return authenticator!.verify(token);
  }

  async function run(
    ex: Exchange, route: CompiledRoute, raw: { params: string[]; query: string; headers: RequestHeaders }, body: Promise<BodyResult> | undefined,
  ): Promise<number> {
    const principal = await authenticate(route, raw.headers);
    const params = validate(route.params, decodeParams(route.paramNames, raw.params), 'path', true);
    const query = validate(route.query, parseQuery(raw.query, route.def.query), 'query', true);
    let payload: unknown;
    if (body) {
      const read = await body;
      if (!read.ok) return writeError(ex, read.error, read.closeConnection);
      payload = validate(route.body, parseJson(read.bytes), 'body', false);
    }
    let status = route.def.status ?? 200;
    const extra: Headers = [];
    const data = await route.def.handler({
      principal, params, query, body: payload, headers: raw.headers,
      setStatus: (s) => { status = s; },
      setHeader: (name, value) => { extra.push([name, value]); },
    });
    if (data instanceof RawReply) {
      write(ex, data.status, data.contentType, data.body, extra);
      return data.status;
    }
    if (opts.checkResponses && route.response && !route.response.Check(data)) {
      const first = route.response.Errors(data).First();
      throw new Error(`response of ${route.def.operationId} does not match its schema: ${first?.path || '/'} ${first?.message}`);
    }
    write(ex, status, JSON_TYPE, JSON.stringify({ success: true, data }), extra);
    return status;
  }

  function mount(def: AnyRouteDef, envelope: boolean, contentType?: string): void {
    if (def.auth !== false && !authenticator) throw new Error(`route ${def.operationId} needs auth but the server has no authenticator`);
    if (docs.some((d) => d.operationId === def.operationId || (d.method === def.method && d.path === def.path))) {
      throw new Error(`route ${def.operationId} (${def.method} ${def.path}) is registered twice`);
    }
    const paramNames = [...def.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
    const declared = Object.keys((def.params as { properties?: object } | undefined)?.properties ?? {});
    const missing = paramNames.filter((n) => !declared.includes(n));
    if (def.params ? missing.length || declared.length !== paramNames.length : paramNames.length) {
      throw new Error(`route ${def.operationId}: params schema must declare exactly ${paramNames.join(', ') || 'nothing'}`);
    }
    const route: CompiledRoute = {
      def,
      label: def.path,
      paramNames,
      headerNames: [...STANDARD_HEADERS, ...(def.headers ?? [])],
      params: def.params ? TypeCompiler.Compile(def.params) : undefined,
      query: def.query ? TypeCompiler.Compile(def.query) : undefined,
      body: def.body ? TypeCompiler.Compile(def.body) : undefined,
      response: def.response && opts.checkResponses ? TypeCompiler.Compile(def.response) : undefined,
    };
    docs.push({
      method: def.method, path: def.path, operationId: def.operationId, summary: def.summary, auth: def.auth !== false,
      status: def.status ?? 200, envelope,
      ...(def.description ? { description: def.description } : {}),
      ...(def.tags ? { tags: def.tags } : {}),
      ...(def.params ? { params: def.params } : {}),
      ...(def.query ? { query: def.query } : {}),
      ...(def.body ? { body: def.body } : {}),
      ...(def.response ? { response: def.response } : {}),
      ...(contentType ? { contentType } : {}),
    });
    openapiDoc = undefined;

    app[def.method](def.path, (res, req) => {
      const started = performance.now();
      const headers: Record<string, string | undefined> = {};
      for (const name of route.headerNames) headers[name] = req.getHeader(name) || undefined;
      const raw = { params: paramNames.map((_, i) => req.getParameter(i)), query: req.getQuery() ?? '', headers };
      const ex = begin(res, headers['origin']);
      const body = def.body ? readBody(ex, req.getHeader('content-length')) : undefined;
      run(ex, route, raw, body).then(
        (status) => observe(route.label, ex.aborted ? CLIENT_CLOSED : status, started),
        (err: unknown) => {
          const status = writeError(ex, clientError(err, { route: route.label, method: def.method }));
          observe(route.label, ex.aborted ? CLIENT_CLOSED : status, started);
        },
      );
    });
  }

  const server: HttpServer = {
    app,
    route(def) {
      mount(def as unknown as AnyRouteDef, true);
    },
    addReadiness(name, check) {
      readiness.set(name, check);
    },
    listen(host, port) {
      return new Promise((resolve, reject) => {
        app.listen(host, port, (socket) => {
          if (!socket) {
            reject(new ChatError('unavailable', `cannot listen on ${host}:${port} (address in use or not allowed)`));
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
      // uWS >= 20.29 has App.close(); the bundled type declarations predate it.
      (app as TemplatedApp & { close(): void }).close();
    },
    async drain(timeoutMs) {
      if (inFlight === 0) return 0;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => idle.push(resolve)),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); }),
      ]);
      clearTimeout(timer);
      return inFlight;
    },
    openapi() {
      openapiDoc ??= buildOpenApi({ title: opts.title ?? 'chat-svc', version: opts.version ?? '1' }, docs);
      return openapiDoc;
    },
  };

  mountBuiltins();
  return server;

  function mountBuiltins(): void {
    const Status = Type.Object({ status: Type.String() });
    mount({
      method: 'get', path: '/health', operationId: 'health', summary: 'Liveness: the process answers', tags: ['operations'], auth: false,
      response: Status,
      handler: async () => new RawReply(200, JSON_TYPE, JSON.stringify({ status: 'ok' })),
    }, false);
    mount({
      method: 'get', path: '/health/ready', operationId: 'ready', summary: 'Readiness: every dependency answers', tags: ['operations'], auth: false,
      description: `Runs each readiness check with a ${readinessTimeoutMs} ms timeout; 503 when any fails, naming why.`,
      response: Type.Object({ status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]), checks: Type.Record(Type.String(), Type.String()) }),
      handler: async () => {
        const results = await Promise.all([...readiness].map(async ([name, check]) => {
          try {
            await withTimeout(check(), readinessTimeoutMs, name);
            return [name, 'ok'] as const;
          } catch (err) {
            log.warn({ err, check: name }, 'readiness check failed');
            return [name, err instanceof Error ? err.message : String(err)] as const;
          }
        }));
        const ready = results.every(([, r]) => r === 'ok');
        const body = { status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(results) };
        return new RawReply(ready ? 200 : 503, JSON_TYPE, JSON.stringify(body));
      },
    }, false);
    mount({
      method: 'get', path: '/metrics', operationId: 'metrics', summary: 'Prometheus metrics', tags: ['operations'], auth: false,
      handler: async () => new RawReply(200, registry.contentType, await registry.metrics()),
    }, false, 'text/plain');
    mount({
      method: 'get', path: '/v1/openapi.json', operationId: 'openapi', summary: 'This OpenAPI 3.1 document', tags: ['operations'], auth: false,
      handler: async () => new RawReply(200, JSON_TYPE, JSON.stringify(server.openapi())),
    }, false);

    app.options('/*', (res, req) => {
      const started = performance.now();
      const ex = begin(res, req.getHeader('origin') || undefined);
      const headers: Headers = ex.cors.length
        ? [['Access-Control-Allow-Methods', ALLOWED_METHODS], ['Access-Control-Allow-Headers', ALLOWED_HEADERS], ['Access-Control-Max-Age', PREFLIGHT_MAX_AGE_SEC]]
        : [];
      write(ex, 204, 'text/plain', '', headers);
      observe('preflight', 204, started);
    });
    // uWS matches the most specific pattern whatever the registration order, and handlers of
    // `any` rank below method handlers, so this never shadows a route or a WebSocket upgrade.
    app.any('/*', (res, req) => {
      const started = performance.now();
      const ex = begin(res, req.getHeader('origin') || undefined);
      const what = `${req.getCaseSensitiveMethod()} ${req.getUrl()}`;
      observe(UNMATCHED_ROUTE, writeError(ex, new ChatError('not_found', `no route for ${what.slice(0, 200)}`)), started);
    });
  }
}

function tooLarge(limit: number): ChatError {
  return new ChatError('too_large', `request body exceeds ${limit} bytes`, { details: { limit } });
}

const statusLines = new Map<number, string>();
function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (!line) {
    line = `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
    statusLines.set(status, line);
  }
  return line;
}

function decodeParams(names: string[], values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  names.forEach((name, i) => {
    try {
      out[name] = decodeURIComponent(values[i] ?? '');
    } catch (err) {
      throw new ChatError('bad_request', `invalid path: ${name} is not valid percent-encoding`, { cause: err });
    }
  });
  return out;
}

/** Query strings as an object; a repeated key, or one whose schema is an array, becomes an array. */
function parseQuery(raw: string, schema: TSchema | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!raw) return out;
  const props = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {};
  for (const [key, value] of new URLSearchParams(raw)) {
    const prev = out[key];
    if (prev === undefined) out[key] = props[key]?.type === 'array' ? [value] : value;
    else out[key] = Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) return {};
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ChatError('bad_request', 'request body is not valid JSON', { cause: err });
  }
}

function validate(check: TypeCheck<TSchema> | undefined, value: unknown, where: 'path' | 'query' | 'body', fromStrings: boolean): any {
  if (!check) return value;
  const schema = check.Schema();
  let candidate = Value.Default(schema, value);
  if (fromStrings) candidate = Value.Convert(schema, candidate);
  if (check.Check(candidate)) return candidate;
  const first = check.Errors(candidate).First();
  const path = first?.path || '/';
  throw new ChatError('bad_request', `invalid ${where}: ${path} ${first?.message ?? 'does not match the schema'}`, {
    details: { in: where, path },
  });
}

async function withTimeout(work: Promise<void>, ms: number, name: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ChatError('timeout', `${name} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
