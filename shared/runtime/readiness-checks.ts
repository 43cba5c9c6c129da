import type { HttpServer } from '../http/index.ts';
import type { Adapters } from './adapters.ts';

/**
 * The readiness checks of the servers a tier uses: the bus (NATS when distributed), the store, and
 * Redis when presence runs on it. Redis is a readiness check although presence and rate limits fall
 * back to process memory while it is down (open connections keep working): a process without it
 * shows other gateways' users as offline, so a balancer should prefer processes that have it. The
 * persister never reads presence (`usesRedis: false`).
 */
export function addDependencyChecks(server: HttpServer, a: Pick<Adapters, 'bus' | 'store' | 'presence'>, opts: { usesRedis?: boolean } = {}): void {
  server.addReadiness('bus', () => a.bus.ready(), a.bus.kind === 'nats' ? 'nats' : undefined);
  server.addReadiness('store', () => a.store.ping(), a.store.kind);
  if ((opts.usesRedis ?? true) && a.presence.kind === 'redis') server.addReadiness('redis', () => a.presence.ping(), 'redis');
}
