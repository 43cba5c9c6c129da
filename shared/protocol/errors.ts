/**
 * The one registry of error codes. Every error a client can see carries one of these codes, both
 * on the WebSocket (`{type:'error', code}`) and over HTTP (`{success:false, error:{code}}`).
 * Codes are part of the public contract: add new ones, never rename or reuse one.
 */
export const ERROR_CODES = [
  'bad_frame',
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'too_large',
  'rate_limited',
  'unavailable',
  'timeout',
  'internal',
  'moderated',
  'unsupported_type',
  'quota_exceeded',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorMapping {
  /** HTTP status the api answers with. */
  http: number;
  /**
   * WebSocket close code used when the error ends a connection (4000-4999 is the application
   * range of RFC 6455). Most errors do not close: they answer with an error frame.
   */
  close: number;
  /** Whether a client may retry the same request unchanged later. */
  retryable: boolean;
}

export function errorMapping(code: ErrorCode): ErrorMapping {
  switch (code) {
    case 'bad_frame': return { http: 400, close: 4400, retryable: false };
    case 'bad_request': return { http: 400, close: 4400, retryable: false };
    case 'unauthorized': return { http: 401, close: 4401, retryable: false };
    case 'forbidden': return { http: 403, close: 4403, retryable: false };
    case 'not_found': return { http: 404, close: 4404, retryable: false };
    case 'conflict': return { http: 409, close: 4409, retryable: false };
    case 'too_large': return { http: 413, close: 4413, retryable: false };
    case 'rate_limited': return { http: 429, close: 4429, retryable: true };
    case 'unavailable': return { http: 503, close: 4503, retryable: true };
    case 'timeout': return { http: 504, close: 4504, retryable: true };
    case 'internal': return { http: 500, close: 4500, retryable: true };
    // a room with moderationLevel strict refused the content; sending it again is refused again
    case 'moderated': return { http: 422, close: 4422, retryable: false };
    // an upload whose bytes are of a type the room does not take (judged by its content, not its claim)
    case 'unsupported_type': return { http: 415, close: 4415, retryable: false };
    // a count the tenant's quotas cap (rooms, members per room): it stays refused until the tenant
    // frees some or its admin raises the quota (rates over a quota are rate_limited, 429)
    case 'quota_exceeded': return { http: 403, close: 4403, retryable: false };
    default: {
      const never: never = code;
      throw new Error(`unmapped error code ${String(never)}`);
    }
  }
}

/** Close codes the gateway uses that are not errors of a request. */
export const CLOSE_CODES = {
  /** Server is shutting down or draining; reconnect elsewhere and resume. */
  goingAway: 1001,
  /** A frame larger than four times MAX_PAYLOAD_BYTES (RFC 6455 "message too big"); the reason says the limit. */
  messageTooBig: 1009,
  /** The socket's send buffer passed MAX_BACKPRESSURE_BYTES: it reads too slowly. Reconnect and resume. */
  slowConsumer: 4008,
  /** The token's `exp` passed without an `auth` frame extending it: reconnect with a fresh token and resume. */
  tokenExpired: 4401,
  /**
   * Live delivery to the socket was cut off (NATS outage) and the events it missed could not be
   * replayed from the stream in time; reconnect and resume, which replays them.
   */
  resync: 4009,
} as const;

/** Our error: a stable code, a human message, optional details and the cause it wraps. */
export class ChatError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ChatError';
    this.code = code;
    this.details = options?.details;
  }

  get status(): number {
    return errorMapping(this.code).http;
  }
}

/** Turns anything thrown into a ChatError; unknown failures become `internal` with the original as cause. */
export function toChatError(err: unknown): ChatError {
  if (err instanceof ChatError) return err;
  return new ChatError('internal', 'internal error', { cause: err });
}
