import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { RedisTopology } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import { RedisFallback, closeRedis, openRedis, waitReady, type RedisClient } from '../redis/index.ts';
import { registry } from '../telemetry/metrics.ts';
import { createMemoryRateLimiter, type MemoryRateLimiter } from './memory-rate-limit.ts';
import type { RateDecision, RateLimiter, RateRule } from './rate-limit.ts';
import { checkTake } from './rate-rule.ts';

/**
 * Token buckets shared by every process through Redis: one hash per key (`rl:<key>`: tokens, ts)
 * and one Lua script per take, so takes are atomic across processes. The refill is computed from
 * Redis TIME, never from the callers' clocks, so processes with skewed clocks share one bucket
 * fairly. A bucket PEXPIREs when it would be full again (then it is the same as no bucket).
 *
 * When Redis fails, takes are decided by a memory bucket of this process for the duration of the
 * outage (see RedisFallback) and say `degraded: true`; the buckets start full, so an outage errs
 * on the generous side (each process allows up to a burst per key). Back on Redis as soon as it
 * answers; the memory buckets are dropped.
 */
export interface RedisRateLimiterConfig {
  redisUrl: string | undefined;
  redisTopology?: RedisTopology | undefined;
}

export interface RedisRateLimiterOptions {
  /** A client to use instead of opening one from `cfg.redisUrl`; the caller keeps it (close leaves it open). */
  client?: RedisClient;
  /** Put before every key. Default none. */
  keyPrefix?: string;
  /** For the client this adapter opens. Default 500 ms. */
  commandTimeoutMs?: number;
  /** How long `createRedisRateLimiter` waits for Redis before starting degraded. Default 3 s. */
  connectWaitMs?: number;
  /** During an outage, how often a background PING checks whether Redis is back. Default 1 s. */
  probeIntervalMs?: number;
}

const DEFAULT_CONNECT_WAIT_MS = 3000;

const degradedTakes = new Counter({
  name: 'chat_rate_limit_degraded_total',
  help: 'Rate limit takes decided by a process-local bucket because Redis failed',
  registers: [registry],
});

/**
 * KEYS[1] bucket; ARGV perSecond, burst, cost. Returns { allowed 0|1, remaining whole tokens,
 * retryAfterMs }. Same arithmetic as the memory adapter (EPSILON included), in ms with µs from TIME.
 * A denied take writes nothing: the stored state already refills to the same value.
 */
export const TOKEN_BUCKET_LUA = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local stored = tonumber(state[1])
local last = tonumber(state[2])
local tokens = burst
if stored and last then
  local elapsed = now - last
  -- TIME can step back (a failover to a replica with another clock): never refill negatively
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, stored + elapsed * rate / 1000)
end
local eps = 1e-9
if tokens + eps >= cost then
  tokens = math.max(0, tokens - cost)
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) * 1000 / rate)))
  return { 1, math.floor(tokens + eps), 0 }
end
return { 0, math.floor(tokens + eps), math.ceil((cost - tokens - eps) * 1000 / rate) }
`;

interface RateLimitCommands {
  chatRateLimitTake(key: string, perSecond: number, burst: number, cost: number): Promise<[number, number, number]>;
}

export async function createRedisRateLimiter(cfg: RedisRateLimiterConfig, log: Logger, opts: RedisRateLimiterOptions = {}): Promise<RateLimiter> {
  const own = opts.client === undefined;
  let client = opts.client;
  if (client === undefined) {
    if (cfg.redisUrl === undefined) throw new ChatError('internal', 'the Redis rate limiter needs REDIS_URL');
    client = openRedis({ url: cfg.redisUrl, topology: cfg.redisTopology }, {
      connectionName: 'chat-rate-limit',
      ...(opts.commandTimeoutMs !== undefined ? { commandTimeoutMs: opts.commandTimeoutMs } : {}),
    });
  }
  client.defineCommand('chatRateLimitTake', { numberOfKeys: 1, lua: TOKEN_BUCKET_LUA });
  const cmd = client as unknown as RateLimitCommands;
  const prefix = `${opts.keyPrefix ?? ''}rl:`;

  const fallback = new RedisFallback<MemoryRateLimiter>(client, {
    what: 'rate limiter',
    log: log.child({ adapter: 'redis-rate-limit' }),
    onDegraded: () => degradedTakes.inc(),
    open: () => createMemoryRateLimiter(),
    close: (memory) => memory.close(),
    ...(opts.probeIntervalMs !== undefined ? { probeIntervalMs: opts.probeIntervalMs } : {}),
  });
  const connectWaitMs = opts.connectWaitMs ?? DEFAULT_CONNECT_WAIT_MS;
  if (!(await waitReady(client, connectWaitMs))) {
    fallback.markDown(new Error(`Redis not ready within ${connectWaitMs} ms of start (status ${client.status})`));
  }

  const redis = client;
  return {
    kind: 'redis',

    async take(key: string, rule: RateRule, cost = 1): Promise<RateDecision> {
      checkTake(rule, cost);
      return fallback.run('take', async () => {
        const [allowed, remaining, retryAfterMs] = await cmd.chatRateLimitTake(prefix + key, rule.perSecond, rule.burst, cost);
        return { allowed: allowed === 1, remaining, retryAfterMs };
      }, async (memory) => ({ ...(await memory.take(key, rule, cost)), degraded: true }));
    },

    async close(): Promise<void> {
      // close before detaching, so errors of the closing connection still have a listener
      if (own) await closeRedis(redis);
      await fallback.dispose();
    },
  };
}
