import type { Config } from '../config/config.ts';
import { createStore, type Store } from '../store/index.ts';
import { createBus, type Bus } from '../bus/index.ts';
import { createPresence, type Presence } from '../presence/index.ts';
import { createRateLimiter, type RateLimiter } from '../rate-limit/index.ts';
import { createApiKeyVerifier, createAuthenticator, type ApiKeyVerifier, type Authenticator } from '../auth/index.ts';
import type { Snowflake } from '../ids/snowflake.ts';
import { claimNodeId, LeasedSnowflake } from '../ids/index.ts';
import { MessageCommands, RoomCommands, TenantQuotaReader, type RoomAccess } from '../commands/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { exitOnLostNodeId } from './shutdown.ts';

/** Every backend a tier may need, built from config in one place (adapters are chosen by config, never code). */
export interface Adapters {
  store: Store;
  bus: Bus;
  presence: Presence;
  rateLimiter: RateLimiter;
  authenticator: Authenticator;
  /** Tenant API keys, checked against the store. */
  apiKeys: ApiKeyVerifier;
  ids: Snowflake;
  close(): Promise<void>;
}

export async function buildAdapters(config: Config, log: Logger): Promise<Adapters> {
  const store = createStore(config.store, log);
  const bus = await createBus(config.bus, log);
  const presence = await createPresence(config.presence, log);
  const rateLimiter = await createRateLimiter(config.rateLimit, log);
  const authenticator = await createAuthenticator(config.auth);
  // NODE_ID, else a lease in NATS KV on the NATS bus, else 0 (one embedded process). Ids stop at
  // once if the lease is lost, and the process exits: a duplicate id would break order and dedupe.
  const lease = await claimNodeId({ nodeId: config.nodeId, bus: config.bus }, log);
  exitOnLostNodeId(lease, log);
  const ids = new LeasedSnowflake(lease);
  return {
    store, bus, presence, rateLimiter, authenticator, apiKeys: createApiKeyVerifier(store), ids,
    async close() {
      await lease.release();
      await bus.close();
      await Promise.allSettled([presence.close(), rateLimiter.close()]);
      await store.close();
    },
  };
}

export function messageCommands(config: Config, a: Adapters, access: RoomAccess, log?: Logger): MessageCommands {
  return new MessageCommands({
    bus: a.bus, store: a.store, presence: a.presence, access, ids: a.ids,
    limits: { maxMessageLength: config.limits.maxMessageLength, ...(config.limits.maxMetadataBytes !== undefined ? { maxMetadataBytes: config.limits.maxMetadataBytes } : {}) },
    rateLimiter: a.rateLimiter,
    userRate: { perSecond: config.rateLimit.perSecond, burst: config.rateLimit.burst },
    tenantRate: config.rateLimit.tenantPerSecond > 0
      ? { perSecond: config.rateLimit.tenantPerSecond, burst: config.rateLimit.tenantPerSecond * 2 }
      : undefined,
    quotas: tenantQuotas(config, a),
    coalesceReadMs: config.rateLimit.coalesceReadMs,
    onHeldError: (err) => log?.warn({ err }, 'a held read mark was not stored'),
  });
}

export function roomCommands(config: Config, a: Adapters): RoomCommands {
  const { roomCreate, membership, roomAdmin } = config.rateLimit;
  return new RoomCommands({
    bus: a.bus, store: a.store, presence: a.presence, ids: a.ids,
    rates: { limiter: a.rateLimiter, create: roomCreate, membership, admin: roomAdmin },
    quotas: tenantQuotas(config, a),
  });
}

const quotaReaders = new WeakMap<object, TenantQuotaReader>();

/** The tenants' quotas (their own, else TENANT_* defaults), read through a short cache one per store, shared by the commands. */
export function tenantQuotas(config: Config, a: Pick<Adapters, 'store'>): TenantQuotaReader {
  let reader = quotaReaders.get(a.store);
  if (!reader) quotaReaders.set(a.store, (reader = new TenantQuotaReader(config.tenants.defaultQuotas, a.store, { metricLabels: config.tenants.metricLabels })));
  return reader;
}
