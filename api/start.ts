import type { ApiDeps } from './deps.ts';
import { roomRoutes } from './routes/rooms.ts';
import { memberRoutes } from './routes/members.ts';
import { messageRoutes } from './routes/messages.ts';
import { reactionRoutes } from './routes/reactions.ts';
import { pinRoutes } from './routes/pins.ts';
import { threadRoutes } from './routes/threads.ts';
import { readStateRoutes } from './routes/read-state.ts';
import { searchRoutes } from './routes/search.ts';
import { presenceRoutes } from './routes/presence-routes.ts';
import { meRoutes } from './routes/me.ts';
import { devTokenRoutes } from './routes/dev-token.ts';
import { serveWebApp } from './web-app.ts';
import { historyReads } from './history-reads.ts';
import { aiRoutes } from './routes/ai.ts';
import { notificationPrefsRoutes } from './routes/notification-prefs.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { pushRoutes } from './routes/push-subscriptions.ts';
import { startNotifications, type Notifier } from './notify/index.ts';
import { attachmentRoutes } from './routes/attachments.ts';
import { tenantRoutes } from './routes/tenants.ts';
import { channelRoutes } from './routes/channels.ts';
import { channelSessionRoutes } from './routes/channel-sessions.ts';
import { SessionTouch } from './channels/session-touch.ts';
import { startChannelSender, type ChannelSender } from './channels/sender.ts';
import { attachmentLinks } from './attachment-links.ts';
import { askWaitMs, createAiAsker, startAiWorkers, type AiWorkers } from '../shared/ai/index.ts';
import { DEFAULTS } from '../shared/config/index.ts';
import { TenantQuotaReader } from '../shared/commands/index.ts';
import { createChannelDirectory, type ChannelDirectory } from '../shared/channels/index.ts';
import { aesGcmCipher, TenantSecrets } from '../shared/secrets/index.ts';
import type { Message } from '../shared/domain/index.ts';

export type { ApiDeps } from './deps.ts';

export interface Api {
  /** Waits for in-flight requests (up to `timeoutMs`) after the caller stopped the server listening. */
  stop(timeoutMs?: number): Promise<void>;
}

const STOP_TIMEOUT_MS = 10_000;

/**
 * The REST api under /v1/chat: registers its routes on the given server (it does not listen, so
 * the all-in-one mode serves it on the gateway's port). Handlers are thin: every rule lives in the
 * shared room and message commands, which the gateway uses too.
 */
export async function startApi(deps: ApiDeps): Promise<Api> {
  const reads = historyReads(deps);
  const aiConfig = deps.ai?.config;
  const asking = {
    asker: createAiAsker(deps.bus, askWaitMs(aiConfig ?? { providers: [...DEFAULTS.aiProviders], timeoutMs: DEFAULTS.aiResponseTimeoutMs })),
    maxQuestionLength: aiConfig?.maxQuestionLength ?? DEFAULTS.aiMaxQuestionLength,
  };
  const tenantSecrets = new TenantSecrets(deps.store, deps.secrets ?? aesGcmCipher({ current: undefined, previous: [] }));
  const ch = deps.channels;
  const channelDirectory: ChannelDirectory | undefined = ch && (ch.adapters.size > 0 || ch.config.perTenant) ? createChannelDirectory({
    envTenant: ch.tenant, env: ch.adapters,
    ...(ch.config.perTenant ? { stored: { secretsOf: async (tenant: string) => (await tenantSecrets.read(tenant))?.secrets, config: ch.config } } : {}),
  }) : undefined;
  const routeDeps = { ...deps, reads, asking, tenantSecrets, channelDirectory };
  for (const register of [
    roomRoutes, memberRoutes, messageRoutes, reactionRoutes, pinRoutes, threadRoutes, readStateRoutes, searchRoutes, presenceRoutes, meRoutes, aiRoutes, attachmentRoutes,
    notificationPrefsRoutes, webhookRoutes, pushRoutes, tenantRoutes, channelRoutes, channelSessionRoutes,
  ]) register(routeDeps);
  // the AI workers of this process: one member of the bus's queue group, whatever the number of api processes
  const workers: AiWorkers | undefined = deps.ai && startAiWorkers({
    ...(deps.tenants ? { quotas: new TenantQuotaReader(deps.tenants.defaultQuotas, deps.store, { metricLabels: deps.tenants.metricLabels }) } : {}),
    bus: deps.bus, store: deps.store, rateLimiter: deps.ai.rateLimiter, assistant: deps.ai.assistant, ai: deps.ai.config,
    postAnswer: (input) => deps.messages.postAiAnswer(input), log: deps.log.child({ part: 'ai' }),
    history: async (roomId, q) => (await reads.windows.history(roomId, q)).map((item) => JSON.parse(item.json) as Message),
  });
  // the notifier runs here, not in the persister: it reads presence (which the persister never
  // connects to) and makes outgoing HTTP calls that may be slow, and the persister's store writes
  // must never wait behind them; api processes share its durable consumer like the AI workers'
  // queue group
  const notifier: Notifier | undefined = deps.notify && startNotifications({
    bus: deps.bus, store: deps.store, presence: deps.presence, config: deps.notify, log: deps.log.child({ part: 'notify' }),
  });
  // replies to the platforms: like the notifier, here for its slow outgoing HTTP, and shared by
  // every api process through one durable consumer
  const sender: ChannelSender | undefined = ch && channelDirectory ? startChannelSender({
    bus: deps.bus, store: deps.store, directory: channelDirectory, config: ch.config, log: deps.log.child({ part: 'channels' }),
    ...(deps.sessions ? { sessions: new SessionTouch(deps.sessions, deps.log.child({ part: 'channels' })) } : {}),
    ...(deps.attachments?.links ? { links: attachmentLinks({ objects: deps.attachments.objects, ...deps.attachments.links }) } : {}),
  }) : undefined;
  await devTokenRoutes(deps);
  serveWebApp(deps.server, deps.log);
  deps.log.debug('api routes registered');
  return {
    async stop(timeoutMs = STOP_TIMEOUT_MS) {
      const [left] = await Promise.all([deps.server.drain(timeoutMs), workers?.stop(timeoutMs), notifier?.stop(timeoutMs), sender?.stop()]);
      reads.close();
      if (left > 0) deps.log.warn({ inFlight: left }, 'api stopped with requests still running');
    },
  };
}
