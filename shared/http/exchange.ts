import type { HttpResponse } from 'uWebSockets.js';
import type { ChatError } from '../protocol/errors.ts';
import type { InFlight } from './in-flight.ts';
import { errorReply, JSON_TYPE, writeAnswer, type HeaderList } from './reply.ts';

const NO_HEADERS: HeaderList = [];

/**
 * One request's lifetime. uWS rules kept here: `onAborted` is set before any async work, nothing
 * is written to an aborted response, and writes (which may come after an await) are corked.
 */
export class Exchange {
  aborted = false;
  /** A response was written, or given up on. */
  done = false;
  /** Called when the client goes away, so that pending work (a body read, a held poll) settles. */
  onAbort: (() => void) | undefined;

  constructor(readonly res: HttpResponse, readonly cors: HeaderList, private readonly requests: InFlight) {
    res.onAborted(() => {
      this.aborted = true;
      this.onAbort?.();
    });
    requests.enter();
  }

  /** Ends the exchange's part in the in-flight count; false when nothing may be written any more. */
  finish(): boolean {
    if (this.done) return false;
    this.done = true;
    this.requests.leave();
    return !this.aborted;
  }

  write(status: number, contentType: string, body: string, headers: HeaderList = NO_HEADERS, closeConnection = false): void {
    if (this.finish()) writeAnswer(this.res, status, contentType, body, this.cors, headers, closeConnection);
  }

  /** The error envelope with the code's status; returns the status. */
  writeError(err: ChatError, closeConnection = false): number {
    const reply = errorReply(err);
    this.write(reply.status, JSON_TYPE, reply.body, reply.headers, closeConnection);
    return reply.status;
  }
}
