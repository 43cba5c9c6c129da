import { ChatError } from '../protocol/errors.ts';
import { SESSION_CONTEXT_MAX_BYTES } from './session-store.ts';

/** A context patch that would make the session's context larger than the limit: 413, nothing changed. */
export class SessionContextTooLargeError extends ChatError {
  constructor(bytes: number) {
    super('too_large', `a session context may hold ${SESSION_CONTEXT_MAX_BYTES} bytes of keys and JSON values; this would make it ${bytes}`,
      { details: { limitBytes: SESSION_CONTEXT_MAX_BYTES, bytes } });
    this.name = 'SessionContextTooLargeError';
  }
}
