import { backoffDelay, type BackoffOptions } from '../../shared/retry/index.ts';
import { OutboundError, type OutboundResponse } from './outbound-http.ts';

/** What one try of a delivery came to. */
export type AttemptOutcome =
  | { kind: 'delivered' }
  /** The receiver says the address is gone for good (Web Push 404/410). */
  | { kind: 'gone'; error: string }
  | { kind: 'failed'; error: string; retryable: boolean };

/** How a delivery ended after its tries. */
export type DeliveryOutcome = { kind: 'delivered'; attempts: number } | { kind: 'gone'; error: string } | { kind: 'dead_letter'; error: string; attempts: number };

export interface RetryPolicy {
  maxAttempts: number;
  backoff: BackoffOptions;
  /** Resolves after `ms` (tests shorten or count it); stops early when the notifier stops. */
  sleep: (ms: number) => Promise<void>;
  /** False once the notifier is stopping: no new try starts, the delivery is left for redelivery. */
  running: () => boolean;
}

/** The outcome of an HTTP answer: 2xx delivered; 408, 429 and 5xx worth another try; other 4xx and 3xx not. */
export function httpOutcome(res: OutboundResponse): AttemptOutcome {
  if (res.status >= 200 && res.status < 300) return { kind: 'delivered' };
  const error = `HTTP ${res.status}${res.body ? `: ${res.body.slice(0, 200)}` : ''}`;
  const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
  return { kind: 'failed', error, retryable };
}

/** A request that got no answer: worth another try. */
export function transportOutcome(err: unknown): AttemptOutcome {
  return { kind: 'failed', error: err instanceof OutboundError ? err.message : String(err), retryable: true };
}

export class StoppedError extends Error {
  override readonly name = 'StoppedError';
}

/**
 * Tries `attempt` until it is delivered, gone, fails without a retry, or `maxAttempts` ran out,
 * waiting the shared backoff between tries. Rejects with StoppedError when the notifier stops
 * before the delivery ended, so that the event is redelivered rather than dead-lettered.
 */
export async function withRetries(policy: RetryPolicy, attempt: () => Promise<AttemptOutcome>): Promise<DeliveryOutcome> {
  for (let n = 1; ; n++) {
    if (!policy.running()) throw new StoppedError('the notifier is stopping');
    const outcome = await attempt();
    if (outcome.kind === 'delivered') return { kind: 'delivered', attempts: n };
    if (outcome.kind === 'gone') return outcome;
    if (!outcome.retryable || n >= policy.maxAttempts) return { kind: 'dead_letter', error: outcome.error, attempts: n };
    await policy.sleep(backoffDelay(n - 1, policy.backoff));
  }
}
