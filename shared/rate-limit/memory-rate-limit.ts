import { performance } from 'node:perf_hooks';
import type { RateDecision, RateLimiter, RateRule } from './rate-limit.ts';
import { checkTake } from './rate-rule.ts';

/**
 * Token buckets in one process. A bucket that would be full again is the same as no bucket, so the
 * sweep deletes those; past `maxKeys` the least recently used bucket goes too (its key starts over
 * with a full bucket: under a flood of fresh keys the limit errs on the generous side rather than
 * letting memory grow).
 */
export interface MemoryRateLimiterOptions {
  /** Monotonic ms; default performance.now. */
  now?: () => number;
  maxKeys?: number;
  sweepIntervalMs?: number;
}

/** The memory adapter also tells how many buckets it holds (for tests and metrics). */
export interface MemoryRateLimiter extends RateLimiter {
  readonly size: number;
}

export const DEFAULT_MAX_KEYS = 100_000;
export const DEFAULT_SWEEP_INTERVAL_MS = 30_000;
/**
 * Float slack in tokens: a take exactly `retryAfterMs` later is allowed, and 0.99 + 0.01 tokens
 * count as one, despite rounding in the refill.
 */
const EPSILON = 1e-9;

interface Bucket {
  tokens: number;
  updatedAt: number;
  /** When the bucket is full again if nobody takes: from then on it can be forgotten. */
  fullAt: number;
}

export function createMemoryRateLimiter(opts: MemoryRateLimiterOptions = {}): MemoryRateLimiter {
  const clock = opts.now ?? (() => performance.now());
  const maxKeys = opts.maxKeys ?? DEFAULT_MAX_KEYS;
  // Map order is least recently used first: every take re-inserts its key
  const buckets = new Map<string, Bucket>();

  const sweep = () => {
    const now = clock();
    for (const [key, bucket] of buckets) if (bucket.fullAt <= now) buckets.delete(key);
  };
  let sweeper: NodeJS.Timeout | undefined = setInterval(sweep, opts.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS);
  sweeper.unref();

  return {
    kind: 'memory',
    get size() {
      return buckets.size;
    },

    async take(key: string, rule: RateRule, cost = 1): Promise<RateDecision> {
      checkTake(rule, cost);
      const { perSecond, burst } = rule;
      const now = clock();
      let bucket = buckets.get(key);
      let tokens = burst;
      if (bucket !== undefined) {
        tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) * perSecond) / 1000);
        buckets.delete(key);
      }
      const allowed = tokens + EPSILON >= cost;
      if (allowed) tokens = Math.max(0, tokens - cost);
      if (bucket === undefined) bucket = { tokens, updatedAt: now, fullAt: 0 };
      bucket.tokens = tokens;
      bucket.updatedAt = now;
      bucket.fullAt = now + ((burst - tokens) * 1000) / perSecond;
      buckets.set(key, bucket);
      if (buckets.size > maxKeys) {
        for (const oldest of buckets.keys()) {
          buckets.delete(oldest);
          break;
        }
      }
      return {
        allowed,
        remaining: Math.floor(tokens + EPSILON),
        retryAfterMs: allowed ? 0 : Math.ceil(((cost - tokens - EPSILON) * 1000) / perSecond),
      };
    },

    async close(): Promise<void> {
      if (sweeper !== undefined) clearInterval(sweeper);
      sweeper = undefined;
      buckets.clear();
    },
  };
}
