/**
 * The one backoff formula: exponential from `initialDelayMs`, capped at `maxDelayMs`, with a
 * random share taken off each delay so that parties failing together do not retry together.
 */
export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** 0..1: the share of each delay that is random (0.5: between half and all of it; 0: exact). */
  jitter: number;
}

/** The delay before attempt `attempt` (0 is the first retry), rounded to whole ms. */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** Math.max(0, attempt));
  return Math.round(base * (1 - o.jitter * random()));
}

/**
 * Redelivery of a durable event that failed (a throwing batch handler, a nak without delay, a
 * store that is unavailable): 200 ms after the first delivery, doubling up to 5 s. No jitter:
 * each event keeps its own schedule, and tests rely on the delays being exact.
 */
export const REDELIVERY_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialDelayMs: 200, maxDelayMs: 5000, factor: 2, jitter: 0 });

/** The redelivery delay of an event delivered `deliveryCount` times (1 on the first delivery). */
export function redeliveryDelayMs(deliveryCount: number): number {
  return backoffDelay(deliveryCount - 1, REDELIVERY_BACKOFF);
}
