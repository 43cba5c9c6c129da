import { Type } from '@sinclair/typebox';
import { ChatError } from '../protocol/errors.ts';
import { metricsText, registry } from '../telemetry/metrics.ts';
import { buildInfo } from '../telemetry/build-info.ts';
import type { Readiness } from './readiness.ts';
import { OPERATIONS_TAG } from './route-span.ts';
import { JSON_TYPE } from './reply.ts';
import { mountRoute, RawReply } from './rest-route.ts';
import { begin, observe, type ServerCore } from './server-core.ts';

const UNMATCHED_ROUTE = 'unmatched';

/** What the built-in routes read from their server. */
export interface Builtins {
  readiness: Readiness;
  readinessTimeoutMs: number;
  /** The tier this server belongs to ('gateway', 'api', 'persister', 'all'), when the server is a tier's. */
  tier: string | undefined;
  /** The snowflake node id this process holds, when it holds one. */
  nodeId: number | undefined;
  openapi(): Record<string, unknown>;
}

const SERVICE = 'chat-svc';

/**
 * The routes every server has: liveness, readiness, the detailed health and service information,
 * Prometheus metrics, the OpenAPI document, CORS preflights, and the 404 envelope for anything no
 * route matches.
 */
export function mountBuiltins(core: ServerCore, b: Builtins): void {
  const Status = Type.Object({ status: Type.String() });
  const Build = {
    service: Type.Literal(SERVICE),
    tier: Type.Union([Type.String(), Type.Null()], { description: 'gateway, api, persister or all (one process)' }),
    version: Type.String({ description: 'package version' }),
    build: Type.String({ description: 'the git commit the build was made from when known, else the version' }),
    nodeId: Type.Union([Type.Integer(), Type.Null()], { description: 'snowflake node id this process holds' }),
    uptimeSeconds: Type.Number(),
  };
  const identity = () => {
    const info = buildInfo();
    return { service: SERVICE, tier: b.tier ?? null, version: info.version, build: info.build, nodeId: b.nodeId ?? null, uptimeSeconds: Math.round(process.uptime() * 1000) / 1000 };
  };
  mountRoute(core, {
    method: 'get', path: '/health', operationId: 'health', summary: 'Liveness: the process answers', tags: [OPERATIONS_TAG], auth: false,
    response: Status,
    handler: async () => new RawReply(200, JSON_TYPE, JSON.stringify({ status: 'ok' })),
  }, false);
  mountRoute(core, {
    method: 'get', path: '/health/ready', operationId: 'ready', summary: 'Readiness: every dependency answers', tags: [OPERATIONS_TAG], auth: false,
    description: `Runs each readiness check with a ${b.readinessTimeoutMs} ms timeout; 503 when any fails, naming why.`,
    response: Type.Object({ status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]), checks: Type.Record(Type.String(), Type.String()) }),
    handler: async () => {
      const { ready, checks } = await b.readiness.run();
      const body = { status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(checks.map((c) => [c.name, c.error ?? 'ok'])) };
      return new RawReply(ready ? 200 : 503, JSON_TYPE, JSON.stringify(body));
    },
  }, false);
  mountRoute(core, {
    method: 'get', path: '/health/detailed', operationId: 'healthDetailed', tags: [OPERATIONS_TAG], auth: false,
    summary: 'Readiness with each check\'s latency, and what runs: version, build, node id, uptime',
    description: 'Runs the readiness checks as /health/ready does (200 when all pass, else 503); `dependency` names the server a check reaches.',
    response: Type.Object({
      status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
      ...Build,
      checks: Type.Record(Type.String(), Type.Object({
        status: Type.Union([Type.Literal('ok'), Type.Literal('fail')]),
        latencyMs: Type.Number(),
        dependency: Type.Optional(Type.Union([Type.Literal('nats'), Type.Literal('redis'), Type.Literal('cassandra'), Type.Literal('sqlite')])),
        error: Type.Optional(Type.String()),
      })),
    }),
    handler: async () => {
      const { ready, checks } = await b.readiness.run();
      const body = {
        status: ready ? 'ready' : 'not_ready',
        ...identity(),
        checks: Object.fromEntries(checks.map((c) => [c.name, {
          status: c.ok ? 'ok' : 'fail', latencyMs: c.latencyMs,
          ...(c.dependency ? { dependency: c.dependency } : {}),
          ...(c.error !== undefined ? { error: c.error } : {}),
        }])),
      };
      return new RawReply(ready ? 200 : 503, JSON_TYPE, JSON.stringify(body));
    },
  }, false);
  mountRoute(core, {
    method: 'get', path: '/info', operationId: 'info', summary: 'What runs here: service, tier, version, build, node id, uptime', tags: [OPERATIONS_TAG], auth: false,
    response: Type.Object({
      ...Build,
      commit: Type.Union([Type.String(), Type.Null()], { description: 'git commit, when the build recorded it' }),
      startedAt: Type.String({ format: 'date-time' }),
      node: Type.String({ description: 'Node.js version' }),
      pid: Type.Integer(),
    }),
    handler: async () => {
      const id = identity();
      const body = {
        ...id, commit: buildInfo().commit ?? null,
        startedAt: new Date(Date.now() - id.uptimeSeconds * 1000).toISOString(), node: process.version, pid: process.pid,
      };
      return new RawReply(200, JSON_TYPE, JSON.stringify(body));
    },
  }, false);
  mountRoute(core, {
    method: 'get', path: '/metrics', operationId: 'metrics', summary: 'Prometheus metrics', tags: [OPERATIONS_TAG], auth: false,
    handler: async () => new RawReply(200, registry.contentType, await metricsText()),
  }, false, 'text/plain');
  mountRoute(core, {
    method: 'get', path: '/v1/openapi.json', operationId: 'openapi', summary: 'This OpenAPI 3.1 document', tags: [OPERATIONS_TAG], auth: false,
    handler: async () => new RawReply(200, JSON_TYPE, JSON.stringify(b.openapi())),
  }, false);

  core.app.options('/*', (res, req) => {
    const started = performance.now();
    const ex = begin(core, res, req.getHeader('origin') || undefined);
    ex.write(204, 'text/plain', '', core.cors.preflight(ex.cors));
    observe('preflight', 204, started);
  });
  // uWS matches the most specific pattern whatever the registration order, and handlers of
  // `any` rank below method handlers, so this never shadows a route or a WebSocket upgrade.
  core.app.any('/*', (res, req) => {
    const started = performance.now();
    const ex = begin(core, res, req.getHeader('origin') || undefined);
    const what = `${req.getCaseSensitiveMethod()} ${req.getUrl()}`;
    observe(UNMATCHED_ROUTE, ex.writeError(new ChatError('not_found', `no route for ${what.slice(0, 200)}`)), started);
  });
}
