/**
 * Token-bucket rate limits. A bucket holds up to `burst` tokens and refills at `perSecond`; each
 * `take` removes `cost` tokens if there are enough. Keys are opaque to the limiter (the message
 * commands use `u:<tenant>:<userId>` and `t:<tenant>`). Taking is atomic per key: concurrent
 * takes never overdraw a bucket, across every process sharing the adapter's backend.
 *
 * Adapters never throw: when a shared backend is unreachable they fall back to a per-process
 * bucket and say so in `degraded`.
 */
export interface RateLimiter {
  readonly kind: 'memory' | 'redis';
  take(key: string, rule: RateRule, cost?: number): Promise<RateDecision>;
  close(): Promise<void>;
}

export interface RateRule {
  perSecond: number;
  burst: number;
}

export interface RateDecision {
  allowed: boolean;
  /** Whole tokens left after this take. */
  remaining: number;
  /** When not allowed: ms until `cost` tokens are available. 0 when allowed. */
  retryAfterMs: number;
  /** True when the shared backend was unreachable and a per-process bucket decided. */
  degraded?: boolean;
}
