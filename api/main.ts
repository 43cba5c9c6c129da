import { loadConfig } from '../shared/config/index.ts';
import { createLogger, startTracing } from '../shared/telemetry/index.ts';
import { addDependencyChecks, attachmentStorage, buildAdapters, messageCommands, roomCommands, onShutdown } from '../shared/runtime/index.ts';
import { createStoreRoomAccess, RoomGuard } from '../shared/commands/index.ts';
import { createHttpServer } from '../shared/http/index.ts';
import { startApi } from './start.ts';
import { createAssistant } from '../shared/ai/index.ts';
import { createChannels } from '../shared/channels/index.ts';
import { createSecretCipher } from '../shared/secrets/index.ts';
import { createSessionStore } from '../shared/sessions/index.ts';

/** `chat api`: the REST tier alone. Message writes go through the bus; a persister stores them. */
export async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, { service: 'chat-svc', tier: 'api' });
  const tracing = await startTracing('chat-svc-api');
  const adapters = await buildAdapters(config, log);
  const { store, bus, presence } = adapters;

  const server = createHttpServer({ http: config.http, log, authenticator: adapters.authenticator, apiKeys: adapters.apiKeys, title: 'chat-svc api', tier: 'api', nodeId: adapters.ids.nodeId });
  addDependencyChecks(server, adapters);
  const access = createStoreRoomAccess(store);
  const attachments = await attachmentStorage(config);
  const sessions = await createSessionStore(config.sessions, log);
  const api = await startApi({
    server, auth: config.auth, store, bus, presence, log,
    rooms: roomCommands(config, adapters),
    messages: messageCommands(config, adapters, access, log),
    guard: new RoomGuard(access),
    history: config.history,
    ...(config.rateLimit.presence ? { presenceRate: { limiter: adapters.rateLimiter, rule: config.rateLimit.presence } } : {}),
    ai: { config: config.ai, assistant: createAssistant(config.ai, log), rateLimiter: adapters.rateLimiter },
    notify: config.notify, tenants: config.tenants,
    attachments,
    channels: { adapters: createChannels(config.channels), tenant: config.channels.tenant, config: config.channels },
    secrets: await createSecretCipher(config.secrets, log),
    sessions,
  });
  const port = await server.listen(config.host, config.port);
  log.info({ port, bus: config.bus.adapter, store: config.store.adapter }, 'api listening');
  if (config.bus.adapter === 'nats' && config.presence.adapter === 'memory') {
    log.warn('presence is in this process\'s memory: the notifier sees no gateway\'s connections and takes every user for offline; set REDIS_URL');
  }
  if (config.bus.adapter === 'nats' && config.sessions.adapter === 'memory') {
    log.warn('channel sessions are in this process\'s memory: another api process taking the same person\'s next webhook starts another session; set REDIS_URL');
  }
  if (config.attachments.objects.adapter === 'disk') {
    log.warn({ dir: config.attachments.objects.dir }, 'attachments are stored on this process\'s disk: other api processes cannot serve them; set S3_BUCKET_ATTACHMENTS to share them');
  }
  if (config.bus.adapter === 'memory') {
    log.warn('the api runs alone on the in-process bus: messages sent here reach no persister or gateway; set NATS_URL or run `chat all`');
  }

  onShutdown(log, {
    readiness: server, drainGraceMs: config.ws.drainGraceMs,
    async stop() {
      server.stopListening();
      await api.stop();
      server.close();
      await Promise.all([adapters.close(), attachments.objects.close(), sessions.close()]);
      await tracing?.shutdown();
    },
  });
}
