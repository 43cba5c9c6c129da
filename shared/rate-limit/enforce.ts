import { ChatError } from '../protocol/errors.ts';
import type { RateLimiter, RateRule } from './rate-limit.ts';

/**
 * Takes one token of `rule` for `key`, or throws the stable `rate_limited` error with
 * `retryAfterMs` (the same error every limited request gets, frame or REST). `what` names the
 * request in the message ("room creations").
 */
export async function enforceRate(limiter: RateLimiter, key: string, rule: RateRule, what: string): Promise<void> {
  const decision = await limiter.take(key, rule);
  if (decision.allowed) return;
  const retryAfterMs = Math.ceil(decision.retryAfterMs);
  throw new ChatError('rate_limited', `too many ${what}; retry in ${retryAfterMs} ms`, { details: { retryAfterMs } });
}
