import { loadConfig, type Config } from '../shared/config/index.ts';
import { createLogger, startTracing, type Logger } from '../shared/telemetry/index.ts';
import { addDependencyChecks, attachmentStorage, buildAdapters, messageCommands, roomCommands, onShutdown, SHUTTING_DOWN, type Adapters } from '../shared/runtime/index.ts';
import { createCachedRoomAccess, createStoreRoomAccess, RoomGuard } from '../shared/commands/index.ts';
import { createHttpServer, type HttpServer } from '../shared/http/index.ts';
import { startGateway, type Gateway } from '../gateway/start.ts';
import { startApi } from '../api/start.ts';
import { createAssistant } from '../shared/ai/index.ts';
import { createChannels } from '../shared/channels/index.ts';
import { createSecretCipher } from '../shared/secrets/index.ts';
import { createSessionStore } from '../shared/sessions/index.ts';
import { startPersister, type Persister } from '../persister/start.ts';

/** How long `chat all` waits at start for the persister to write what the stream's journal recovered. */
const RECOVERED_WRITE_TIMEOUT_MS = 30_000;

export interface AllInOne {
  port: number;
  config: Config;
  adapters: Adapters;
  gateway: Gateway;
  persister: Persister;
  server: HttpServer;
  /**
   * Turn not ready, tell clients to reconnect and give them DRAIN_GRACE_MS (REST keeps answering
   * meanwhile), close the rest with 1001, stop accepting, finish requests, write everything
   * pending, close backends.
   */
  stop(): Promise<void>;
}

/**
 * `chat all`: gateway + api + persister in one process on one port, joined by the configured bus
 * (in-process by default). This is `npm start`, and what the end-to-end tests run.
 */
export async function startAll(env: Record<string, string | undefined> = process.env, log?: Logger): Promise<AllInOne> {
  const config = loadConfig(env);
  log ??= createLogger(config.logLevel, { service: 'chat-svc', tier: 'all' });
  const adapters = await buildAdapters(config, log);
  const { store, bus } = adapters;
  const server = createHttpServer({ http: config.http, log, authenticator: adapters.authenticator, apiKeys: adapters.apiKeys, title: 'chat-svc', tier: 'all', nodeId: adapters.ids.nodeId });
  addDependencyChecks(server, adapters);

  const rooms = roomCommands(config, adapters);
  const persister = startPersister({ bus, store, persist: config.persist, log: log.child({ tier: 'persister' }) });
  if (config.bus.adapter === 'memory') {
    // What the stream's journal took back after a crash is written before history is served: the
    // api's history windows read the store for events the stream does not announce again.
    const { flushed, pending } = await persister.caughtUp(RECOVERED_WRITE_TIMEOUT_MS);
    if (!flushed) log.warn({ pending }, 'serving before every recovered stream event was written to the store');
  }
  const apiAccess = createStoreRoomAccess(store);
  const attachments = await attachmentStorage(config);
  const sessions = await createSessionStore(config.sessions, log);
  const api = await startApi({
    server, auth: config.auth, store, bus, presence: adapters.presence, rooms,
    messages: messageCommands(config, adapters, apiAccess, log), guard: new RoomGuard(apiAccess), log: log.child({ tier: 'api' }),
    history: config.history,
    ...(config.rateLimit.presence ? { presenceRate: { limiter: adapters.rateLimiter, rule: config.rateLimit.presence } } : {}),
    ai: { config: config.ai, assistant: createAssistant(config.ai, log.child({ tier: 'api' })), rateLimiter: adapters.rateLimiter },
    notify: config.notify, tenants: config.tenants,
    attachments,
    channels: { adapters: createChannels(config.channels), tenant: config.channels.tenant, config: config.channels },
    secrets: await createSecretCipher(config.secrets, log.child({ tier: 'api' })),
    sessions,
  });
  const access = createCachedRoomAccess(store);
  const gateway = startGateway({
    server, ws: config.ws, bus, store, presence: adapters.presence, authenticator: adapters.authenticator,
    messages: messageCommands(config, adapters, access, log), rooms, access, rateLimiter: adapters.rateLimiter, log: log.child({ tier: 'gateway' }),
  });
  const port = await server.listen(config.host, config.port);

  let stopped: Promise<void> | undefined;
  return {
    port, config, adapters, gateway, persister, server,
    stop() {
      stopped ??= (async () => {
        server.markNotReady(SHUTTING_DOWN);
        // still listening during the grace: /health/ready answers 503, upgrades are refused, REST answers
        await gateway.drain();
        server.stopListening();
        await api.stop();
        const { pending } = await persister.flushAndStop();
        if (pending) log.warn({ pending }, 'stopped before every event was written');
        server.close();
        await Promise.all([adapters.close(), attachments.objects.close(), sessions.close()]);
      })();
      return stopped;
    },
  };
}

export async function runAll(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, { service: 'chat-svc' });
  const tracing = await startTracing('chat-svc');
  const all = await startAll(process.env, log);
  onShutdown(log, {
    readiness: all.server, drainGraceMs: config.ws.drainGraceMs,
    async stop() {
      await all.stop();
      await tracing?.shutdown();
    },
  });
  const host = config.host === '0.0.0.0' ? 'localhost' : config.host;
  const base = `http://${host}:${all.port}`;
  log.info({ port: all.port, bus: config.bus.adapter, store: config.store.adapter, presence: config.presence.adapter }, 'chat-svc listening');
  process.stderr.write([
    '',
    `chat-svc is up: ${base}`,
    `  mode       all-in-one (bus: ${config.bus.adapter}, store: ${describeStore(config)}, presence: ${config.presence.adapter})`,
    `  web page   ${base}/`,
    `  REST       ${base}/v1/chat   (OpenAPI: ${base}/v1/openapi.json)`,
    `  WebSocket  ws://${host}:${all.port}/chat?token=<token>`,
    `  health     ${base}/health  ${base}/health/ready  ${base}/metrics`,
    ...(config.auth.devTokens ? [
      '',
      '  a dev token (development secret in use; refused when NODE_ENV=production):',
      '    export TOKEN=$(npm run -s chat -- token alice)',
    ] : []),
    '',
  ].join('\n') + '\n');
}

function describeStore(config: Config): string {
  return config.store.adapter === 'sqlite' ? `sqlite in ${config.store.dataDir}` : config.store.adapter;
}
