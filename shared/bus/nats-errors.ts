import { ChatError } from '../protocol/errors.ts';

/** JetStream API error codes (err_code) the NATS adapter tells apart. */
export const JS_NO_MESSAGE = 10037;
export const JS_STREAM_NOT_FOUND = 10059;
export const JS_CONSUMER_NOT_FOUND = 10014;
export const JS_STREAM_NAME_IN_USE = 10058;

export function jsErrCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code;
}

/** A nats.js error as one line: its message, and its code when that says more. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code !== undefined && code !== err.message ? `${err.message} (${String(code)})` : err.message;
  }
  return String(err);
}

/** A nats.js failure turned into ours at the boundary; `what` says what was being done. */
export function unavailable(err: unknown, what: string): ChatError {
  if (err instanceof ChatError) return err;
  return new ChatError('unavailable', `${what}: ${describe(err)}`, { cause: err });
}
