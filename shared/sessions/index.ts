import type { Logger } from 'pino';
import type { SessionsConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import { createMemorySessionStore } from './memory-session-store.ts';
import { createRedisSessionStore } from './redis-session-store.ts';
import type { SessionStore } from './session-store.ts';

export {
  SESSION_CONTEXT_MAX_BYTES, SYSTEM_CONTEXT_KEYS, contextBytes,
  type ChannelSession, type InboundTouch, type JsonValue, type SessionContext, type SessionKey, type SessionStore,
} from './session-store.ts';
export { SessionContextTooLargeError } from './context-too-large.ts';
export { createMemorySessionStore, type MemorySessionStoreOptions } from './memory-session-store.ts';
export { createRedisSessionStore, type RedisSessionStoreConfig, type RedisSessionStoreOptions } from './redis-session-store.ts';

/** Builds the configured session store: Redis when REDIS_URL is set, like presence; memory otherwise. */
export async function createSessionStore(cfg: SessionsConfig, log: Logger): Promise<SessionStore> {
  switch (cfg.adapter) {
    case 'memory':
      return createMemorySessionStore({ ttlSec: cfg.ttlSec });
    case 'redis':
      return createRedisSessionStore(cfg, log);
    default: {
      const never: never = cfg;
      throw new ChatError('internal', `unknown session store ${JSON.stringify((never as { adapter?: unknown }).adapter)}`);
    }
  }
}
