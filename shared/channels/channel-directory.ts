import type { ChannelsConfig } from '../config/index.ts';
import { PLATFORMS, type Channel, type Platform } from './channel.ts';
import { tenantChannel } from './tenant-credentials.ts';

/** How long a process trusts what it read of a tenant's credentials (another process may have changed them). */
export const DIRECTORY_TTL_MS = 15_000;
/** Tenants remembered at once; past it the memory starts over (an unknown tenant is remembered too). */
const DIRECTORY_MAX_TENANTS = 10_000;

/**
 * Which adapter speaks for a tenant on a platform. The contract:
 * - `get` resolves the adapter, or undefined when the tenant has none for that platform (an
 *   unknown tenant and a tenant without those credentials are alike); it throws (SecretsError, a
 *   store error) when the tenant's secrets cannot be read, and nothing is remembered then.
 * - What `get` answered holds for at most DIRECTORY_TTL_MS in this process, or until `invalidate`
 *   (a write of the tenant's settings here): another api process sees a change within the TTL.
 */
export interface ChannelDirectory {
  get(tenant: string, platform: Platform): Promise<Channel | undefined>;
  invalidate(tenant: string): void;
}

export interface ChannelDirectoryOptions {
  /** CHANNELS_TENANT and the adapters of the deployment's own credentials (WHATSAPP_*, ...): theirs first. */
  envTenant: string;
  env: ReadonlyMap<Platform, Channel>;
  /**
   * Tenants' stored credentials (CHANNELS_PER_TENANT): a tenant's secrets in the clear, undefined
   * for a tenant without a record. Absent: only the deployment's credentials are served.
   */
  stored?: { secretsOf(tenant: string): Promise<Readonly<Record<string, string>> | undefined>; config: ChannelsConfig };
  ttlMs?: number;
  now?: () => number;
}

interface Entry { until: number; adapters: Promise<ReadonlyMap<Platform, Channel>> }

/**
 * The deployment's credentials serve CHANNELS_TENANT as they always did; every tenant's stored
 * credentials (`whatsapp.appSecret`, ...: tenant-credentials.ts) serve that tenant, the
 * CHANNELS_TENANT too for a platform the environment does not configure. One read of a tenant's
 * secrets builds all its adapters, shared by the simultaneous calls that asked for them.
 */
export function createChannelDirectory(opts: ChannelDirectoryOptions): ChannelDirectory {
  const ttlMs = opts.ttlMs ?? DIRECTORY_TTL_MS;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, Entry>();
  const stored = opts.stored;

  async function load(tenant: string): Promise<ReadonlyMap<Platform, Channel>> {
    const adapters = new Map<Platform, Channel>();
    if (stored === undefined) return adapters;
    const secrets = await stored.secretsOf(tenant);
    if (secrets === undefined) return adapters;
    for (const platform of PLATFORMS) {
      const channel = tenantChannel(platform, secrets, stored.config);
      if (channel) adapters.set(platform, channel);
    }
    return adapters;
  }

  function adaptersOf(tenant: string): Promise<ReadonlyMap<Platform, Channel>> {
    const hit = cache.get(tenant);
    if (hit && hit.until > now()) return hit.adapters;
    if (cache.size >= DIRECTORY_MAX_TENANTS) cache.clear();
    const entry: Entry = { until: now() + ttlMs, adapters: load(tenant) };
    cache.set(tenant, entry);
    entry.adapters.catch(() => {
      if (cache.get(tenant) === entry) cache.delete(tenant);
    });
    return entry.adapters;
  }

  return {
    async get(tenant, platform) {
      if (tenant === opts.envTenant) {
        const own = opts.env.get(platform);
        if (own) return own;
      }
      if (stored === undefined) return undefined;
      return (await adaptersOf(tenant)).get(platform);
    },
    invalidate(tenant) {
      cache.delete(tenant);
    },
  };
}
