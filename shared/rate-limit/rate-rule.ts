import { ChatError } from '../protocol/errors.ts';
import type { RateRule } from './rate-limit.ts';

/**
 * Every adapter refuses the same takes, before touching its backend: a rule that never refills, an
 * unbounded bucket, or a cost no bucket of that size could ever allow is a caller's bug, not a rate
 * decision (and must not reach Redis, where it would fail like an outage).
 */
export function checkTake({ perSecond, burst }: RateRule, cost: number): void {
  if (!(perSecond > 0 && burst > 0 && cost > 0 && cost <= burst && Number.isFinite(perSecond) && Number.isFinite(burst))) {
    throw new ChatError('bad_request', `rate limit: need perSecond > 0, burst > 0 and 0 < cost <= burst (got ${perSecond}/s, burst ${burst}, cost ${cost})`);
  }
}
