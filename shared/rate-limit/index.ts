import type { Logger } from 'pino';
import type { RateLimitConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import { createMemoryRateLimiter } from './memory-rate-limit.ts';
import { createRedisRateLimiter } from './redis-rate-limit.ts';
import type { RateLimiter } from './rate-limit.ts';

export type { RateLimiter, RateRule, RateDecision } from './rate-limit.ts';
export { createMemoryRateLimiter, type MemoryRateLimiter, type MemoryRateLimiterOptions } from './memory-rate-limit.ts';
export { createRedisRateLimiter, type RedisRateLimiterConfig, type RedisRateLimiterOptions } from './redis-rate-limit.ts';

/** Builds the configured rate limiter (the rules themselves are passed to each take). */
export async function createRateLimiter(cfg: RateLimitConfig, log: Logger): Promise<RateLimiter> {
  switch (cfg.adapter) {
    case 'memory':
      log.debug({ adapter: cfg.adapter }, 'rate limiter adapter');
      return createMemoryRateLimiter();
    case 'redis':
      log.debug({ adapter: cfg.adapter, topology: cfg.redisTopology?.kind ?? 'standalone' }, 'rate limiter adapter');
      return createRedisRateLimiter(cfg, log);
    default: {
      const never: never = cfg.adapter;
      throw new ChatError('internal', `unknown rate limiter adapter ${JSON.stringify(never)}`);
    }
  }
}
export { Coalescer } from './coalescer.ts';
export { enforceRate } from './enforce.ts';
