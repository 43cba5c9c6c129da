import { loadConfig } from '../shared/config/index.ts';
import { createLogger, startTracing } from '../shared/telemetry/index.ts';
import { addDependencyChecks, buildAdapters, messageCommands, roomCommands, onShutdown } from '../shared/runtime/index.ts';
import { createCachedRoomAccess } from '../shared/commands/index.ts';
import { createHttpServer } from '../shared/http/index.ts';
import { startGateway } from './start.ts';

/** `chat gateway`: WebSocket connections on PORT, with /health, /health/ready and /metrics. */
export async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, { service: 'chat-svc', tier: 'gateway' });
  const tracing = await startTracing('chat-svc-gateway');
  const adapters = await buildAdapters(config, log);
  if (adapters.bus.kind === 'memory') log.warn('BUS is in-process: this gateway reaches no other tier; set NATS_URL');
  const server = createHttpServer({ http: config.http, log, authenticator: adapters.authenticator, title: 'chat-svc gateway', tier: 'gateway', nodeId: adapters.ids.nodeId });
  addDependencyChecks(server, adapters);
  const access = createCachedRoomAccess(adapters.store);
  const gateway = startGateway({
    server, ws: config.ws, bus: adapters.bus, store: adapters.store, presence: adapters.presence, authenticator: adapters.authenticator,
    messages: messageCommands(config, adapters, access, log), rooms: roomCommands(config, adapters), access, rateLimiter: adapters.rateLimiter, log,
  });
  const port = await server.listen(config.host, config.port);
  log.info({ port }, 'gateway listening');
  onShutdown(log, {
    readiness: server, drainGraceMs: config.ws.drainGraceMs,
    async stop() {
      // listening through the grace: /health/ready answers 503 and upgrades are refused meanwhile
      await gateway.drain();
      server.stopListening();
      server.close();
      await adapters.close();
      await tracing?.shutdown();
    },
  });
}
