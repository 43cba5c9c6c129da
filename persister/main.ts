import { loadConfig } from '../shared/config/index.ts';
import { createLogger, startTracing } from '../shared/telemetry/index.ts';
import { addDependencyChecks, buildAdapters, onShutdown } from '../shared/runtime/index.ts';
import { createHttpServer } from '../shared/http/index.ts';
import { startPersister } from './start.ts';

/** `chat persister`: stream -> store; serves /health, /health/ready and /metrics on PORT. */
export async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, { service: 'chat-svc', tier: 'persister' });
  const tracing = await startTracing('chat-svc-persister');
  const adapters = await buildAdapters(config, log);
  if (adapters.bus.kind === 'memory') log.warn('BUS is in-process: this persister receives nothing from other tiers; set NATS_URL');
  const server = createHttpServer({ http: config.http, log, title: 'chat-svc persister', tier: 'persister', nodeId: adapters.ids.nodeId });
  addDependencyChecks(server, adapters, { usesRedis: false });
  const persister = startPersister({ bus: adapters.bus, store: adapters.store, persist: config.persist, log });
  const port = await server.listen(config.host, config.port);
  log.info({ port }, 'persister listening');
  onShutdown(log, {
    readiness: server, drainGraceMs: config.ws.drainGraceMs,
    async stop() {
      await persister.stop();
      server.stopListening();
      server.close();
      await adapters.close();
      await tracing?.shutdown();
    },
  });
}
