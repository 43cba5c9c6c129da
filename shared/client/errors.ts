import { ERROR_CODES, errorMapping, type ErrorCode } from '../protocol/errors.ts';

/**
 * A failure the client reports: the server's error code (the registry in shared/protocol/errors.ts,
 * the same on the WebSocket and over HTTP), or `unavailable` when the server could not be reached.
 */
export class ChatClientError extends Error {
  readonly code: string;
  /** HTTP status when the failure came from a REST call. */
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, options: { status?: number; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChatClientError';
    this.code = code;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** Whether the same request may succeed later unchanged (the registry's `retryable`). */
  get retryable(): boolean {
    return isRetryable(this.code);
  }
}

export function isRetryable(code: string): boolean {
  return (ERROR_CODES as readonly string[]).includes(code) && errorMapping(code as ErrorCode).retryable;
}
