/** Reconnect and retry delays: exponential, capped, with jitter so clients cut off together do not return together. */
export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** 0..1: the share of each delay that is random (0.5: between half and all of it). */
  jitter: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialDelayMs: 250, maxDelayMs: 10_000, factor: 2, jitter: 0.5 });

/** The delay before attempt `attempt` (0 is the first retry). */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** Math.max(0, attempt));
  return Math.round(base * (1 - o.jitter * random()));
}
