import { Type } from '@sinclair/typebox';
import { ChatError } from '../protocol/errors.ts';
import { registry } from '../telemetry/metrics.ts';
import { JSON_TYPE } from './reply.ts';
import { mountRoute, RawReply } from './rest-route.ts';
import { begin, observe, type ServerCore } from './server-core.ts';

const UNMATCHED_ROUTE = 'unmatched';

/** What the built-in routes read from their server. */
export interface Builtins {
  readiness: ReadonlyMap<string, () => Promise<void>>;
  readinessTimeoutMs: number;
  openapi(): Record<string, unknown>;
}

/**
 * The routes every server has: liveness, readiness, Prometheus metrics, the OpenAPI document, CORS
 * preflights, and the 404 envelope for anything no route matches.
 */
export function mountBuiltins(core: ServerCore, b: Builtins): void {
  const Status = Type.Object({ status: Type.String() });
  mountRoute(core, {
    method: 'get', path: '/health', operationId: 'health', summary: 'Liveness: the process answers', tags: ['operations'], auth: false,
    response: Status,
    handler: async () => new RawReply(200, JSON_TYPE, JSON.stringify({ status: 'ok' })),
  }, false);
  mountRoute(core, {
    method: 'get', path: '/health/ready', operationId: 'ready', summary: 'Readiness: every dependency answers', tags: ['operations'], auth: false,
    description: `Runs each readiness check with a ${b.readinessTimeoutMs} ms timeout; 503 when any fails, naming why.`,
    response: Type.Object({ status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]), checks: Type.Record(Type.String(), Type.String()) }),
    handler: async () => {
      const results = await Promise.all([...b.readiness].map(async ([name, check]) => {
        try {
          await withTimeout(check(), b.readinessTimeoutMs, name);
          return [name, 'ok'] as const;
        } catch (err) {
          core.log.warn({ err, check: name }, 'readiness check failed');
          return [name, err instanceof Error ? err.message : String(err)] as const;
        }
      }));
      const ready = results.every(([, r]) => r === 'ok');
      const body = { status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(results) };
      return new RawReply(ready ? 200 : 503, JSON_TYPE, JSON.stringify(body));
    },
  }, false);
  mountRoute(core, {
    method: 'get', path: '/metrics', operationId: 'metrics', summary: 'Prometheus metrics', tags: ['operations'], auth: false,
    handler: async () => new RawReply(200, registry.contentType, await registry.metrics()),
  }, false, 'text/plain');
  mountRoute(core, {
    method: 'get', path: '/v1/openapi.json', operationId: 'openapi', summary: 'This OpenAPI 3.1 document', tags: ['operations'], auth: false,
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
