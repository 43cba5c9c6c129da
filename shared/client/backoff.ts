import type { BackoffOptions } from '../retry/backoff.ts';

// The SDK reconnects and retries with the project's one backoff formula (shared/retry).
export { backoffDelay, type BackoffOptions } from '../retry/backoff.ts';

/** Reconnect and retry delays: jittered, so clients cut off together do not return together. */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialDelayMs: 250, maxDelayMs: 10_000, factor: 2, jitter: 0.5 });
