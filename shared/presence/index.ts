import type { Logger } from 'pino';
import type { PresenceConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import { createMemoryPresence } from './memory-presence.ts';
import { createRedisPresence } from './redis-presence.ts';
import type { Presence } from './presence.ts';

export type { Presence, ConnectionInfo, DeviceInfo, StatusUpdate, PresenceInfo } from './presence.ts';
export { createMemoryPresence, type MemoryPresenceConfig, type MemoryPresenceOptions } from './memory-presence.ts';
export { createRedisPresence, type RedisPresenceConfig, type RedisPresenceOptions } from './redis-presence.ts';

/** Builds the configured presence adapter. */
export async function createPresence(cfg: PresenceConfig, log: Logger): Promise<Presence> {
  switch (cfg.adapter) {
    case 'memory':
      log.debug({ adapter: cfg.adapter, ttlSec: cfg.ttlSec }, 'presence adapter');
      return createMemoryPresence({ ttlSec: cfg.ttlSec, typingTimeoutMs: cfg.typingTimeoutMs });
    case 'redis':
      log.debug({ adapter: cfg.adapter, ttlSec: cfg.ttlSec, topology: cfg.topology?.kind ?? 'standalone' }, 'presence adapter');
      return createRedisPresence(cfg, log);
    default: {
      const never: never = cfg;
      throw new ChatError('internal', `unknown presence adapter ${JSON.stringify((never as { adapter?: unknown }).adapter)}`);
    }
  }
}
