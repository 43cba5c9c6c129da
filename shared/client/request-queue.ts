import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { ChatClientError } from './errors.ts';
import type { Request } from './rest-commands.ts';
import type { FrameOf } from './types.ts';

/** A request waiting for its ack: queued while disconnected, retried with the same content (and clientMsgId). */
interface Pending {
  request: Request;
  resolve(body: Record<string, unknown>): void;
  reject(err: ChatClientError): void;
  /** The ref of the attempt in flight. */
  ref: string | undefined;
  /** A retry or timeout is scheduled. */
  timer: ReturnType<typeof setTimeout> | undefined;
  attempts: number;
}

/**
 * Requests until they are acked or refused: each goes out once the connection is open, in the
 * order they were made; an attempt that gets no answer in time, or a retryable error, is sent
 * again with the same content (so a send keeps its clientMsgId and is never stored twice). A
 * lost connection puts the attempts in flight back in line for the next one.
 */
export class RequestQueue {
  private readonly queue: Pending[] = [];
  private readonly inFlight = new Map<string, Pending>();
  private refSeq = 0;
  /** Writes to the open connection; undefined while there is none. */
  private send: ((request: Request) => void) | undefined;

  constructor(private readonly backoff: BackoffOptions, private readonly timeoutMs: number) {}

  /** A fresh ref; requests and the connection's own frames (resume) share the numbering. */
  nextRef(prefix: string): string {
    return `${prefix}${++this.refSeq}`;
  }

  /** Resolves with what the ack carries besides `type` and `ref`; rejects with the server's error. */
  add(request: Request): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const p: Pending = { request, resolve, reject, ref: undefined, timer: undefined, attempts: 0 };
      this.queue.push(p);
      if (this.send) this.dispatch(p);
    });
  }

  /** A connection is open: what was queued while disconnected goes out once, oldest first. */
  online(send: (request: Request) => void): void {
    this.send = send;
    for (const p of this.queue) if (p.ref === undefined && p.timer === undefined) this.dispatch(p);
  }

  /** The connection is gone: attempts in flight will be answered by no one, so they wait for the next. */
  offline(): void {
    this.send = undefined;
    for (const p of this.queue) {
      clearTimeout(p.timer);
      p.timer = undefined;
      p.ref = undefined;
    }
    this.inFlight.clear();
  }

  /** The client closed for good: every request not yet acked is rejected. */
  rejectAll(err: ChatClientError): void {
    this.send = undefined;
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.inFlight.clear();
  }

  /** Settles the request an ack or error answers; false when it answers none of ours. */
  settle(f: FrameOf<'ack'> | FrameOf<'error'>): boolean {
    const ref = String(f.ref);
    const p = this.inFlight.get(ref);
    if (!p) return false;
    this.inFlight.delete(ref);
    clearTimeout(p.timer);
    p.timer = undefined;
    p.ref = undefined;
    if (f.type === 'ack') {
      this.dequeue(p);
      const { type: _t, ref: _r, ...body } = f;
      p.resolve(body);
      return true;
    }
    const err = new ChatClientError(f.code, f.message, f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {});
    if (err.retryable) {
      const delay = err.retryAfterMs ?? backoffDelay(p.attempts - 1, this.backoff);
      p.timer = setTimeout(() => {
        p.timer = undefined;
        this.dispatch(p);
      }, delay);
      return true;
    }
    this.dequeue(p);
    p.reject(err);
    return true;
  }

  private dispatch(p: Pending): void {
    const send = this.send;
    if (!send) return;
    const ref = this.nextRef('r');
    p.ref = ref;
    p.attempts++;
    this.inFlight.set(ref, p);
    p.timer = setTimeout(() => {
      if (this.inFlight.get(ref) !== p) return;
      this.inFlight.delete(ref);
      p.ref = undefined;
      p.timer = undefined;
      this.dispatch(p);
    }, this.timeoutMs);
    send({ ...p.request, ref });
  }

  private dequeue(p: Pending): void {
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
  }
}
