export { backoffDelay, redeliveryDelayMs, REDELIVERY_BACKOFF, type BackoffOptions } from './backoff.ts';
