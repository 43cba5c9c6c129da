import type { HttpResponse } from 'uWebSockets.js';
import { ChatError } from '../protocol/errors.ts';
import type { RequestBody } from './route.ts';

/** Bytes held before the socket is paused: enough to keep a disk or S3 write busy, small per upload. */
const HIGH_WATER_BYTES = 256 * 1024;

/**
 * A request body read as a stream, for uploads: uWS hands over chunks as they arrive, this holds at
 * most about HIGH_WATER_BYTES of them and pauses the socket until the reader catches up, so an
 * upload of any size costs a bounded amount of memory.
 *
 * It starts paused: nothing past the first chunk is read until someone reads (after the route
 * decided, for example, the room's own limit). Past `limit` bytes (Content-Length, when it says
 * more, is refused before the reader even starts) the reader gets ChatError('too_large') and no
 * more bytes are taken.
 *
 * Must be made synchronously in the uWS handler (uWS delivers the body once, to `onData` set then).
 */
export class RequestStream implements RequestBody {
  /** Bytes received from the client so far. */
  received = 0;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: ChatError | undefined;
  private paused = false;
  /** The response was answered or aborted: `res` may no longer be touched. */
  private detached = false;
  /** What arrives from now on is dropped (the answer is out, or the body was refused). */
  private discarding = false;
  private wake: (() => void) | undefined;

  /**
   * @param declaredLength the Content-Length header, undefined for a chunked body
   * @param limit bytes past which the body is refused
   */
  constructor(private readonly res: HttpResponse, readonly declaredLength: number | undefined, private limit: number) {
    if (declaredLength !== undefined && declaredLength > limit) this.failure = tooLarge(limit);
    res.onData((chunk, isLast) => this.take(chunk, isLast));
    this.pause();
  }

  /** The whole body arrived. */
  get complete(): boolean {
    return this.ended;
  }

  /** Why the body cannot be read (too large, client gone), if it cannot. */
  get error(): ChatError | undefined {
    return this.failure;
  }

  /** Lowers the limit (a room's own); a declared length over it fails at once. */
  setLimit(limit: number): void {
    if (limit >= this.limit) return;
    this.limit = limit;
    if ((this.declaredLength !== undefined && this.declaredLength > limit) || this.received > limit) this.fail(tooLarge(limit));
  }

  /** The client went away: the reader gets an error instead of waiting forever. */
  abort(): void {
    this.detached = true;
    this.fail(new ChatError('bad_request', 'the client closed the request before sending its whole body'));
  }

  /**
   * The answer is being written: from now on the stream leaves the response alone, and what is
   * left of the body is read and dropped (so a client still sending is not cut off mid-write).
   */
  detach(): void {
    this.resume();
    this.detached = true;
    this.discarding = true;
    this.queue.length = 0;
    this.queued = 0;
  }

  /**
   * The first `n` bytes (fewer if the body is shorter), without consuming them: iteration still
   * starts at byte 0. Throws the stream's error.
   */
  async peek(n: number): Promise<Buffer> {
    while (this.queued < n && !this.ended && !this.failure) {
      this.resume();
      await new Promise<void>((resolve) => { this.wake = resolve; });
    }
    if (this.failure) throw this.failure;
    const head = Buffer.concat(this.queue, this.queued);
    // keep one buffer: the next peek or read starts from it
    this.queue.length = 0;
    if (head.length) this.queue.push(head);
    return head.subarray(0, n);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.failure) throw this.failure;
      const chunk = this.queue.shift();
      if (chunk !== undefined) {
        this.queued -= chunk.length;
        if (this.queued < HIGH_WATER_BYTES / 2) this.resume();
        yield chunk;
        continue;
      }
      if (this.ended) return;
      this.resume();
      await new Promise<void>((resolve) => { this.wake = resolve; });
    }
  }

  private take(chunk: ArrayBuffer, isLast: boolean): void {
    if (this.ended) return;
    if (isLast) this.ended = true;
    if (this.discarding || this.failure) return;
    this.received += chunk.byteLength;
    if (this.received > this.limit) {
      this.fail(tooLarge(this.limit));
      return;
    }
    if (chunk.byteLength) {
      // uWS reuses the chunk's memory once this callback returns
      const copy = Buffer.from(new Uint8Array(chunk));
      this.queue.push(copy);
      this.queued += copy.length;
    }
    if (!isLast && this.queued >= HIGH_WATER_BYTES) this.pause();
    this.notify();
  }

  private fail(err: ChatError): void {
    if (this.failure) return;
    this.failure = err;
    this.queue.length = 0;
    this.queued = 0;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private pause(): void {
    if (this.paused || this.ended || this.detached) return;
    this.paused = true;
    this.res.pause();
  }

  private resume(): void {
    if (!this.paused || this.detached) return;
    this.paused = false;
    this.res.resume();
  }
}

function tooLarge(limit: number): ChatError {
  return new ChatError('too_large', `the file is larger than ${limit} bytes`, { details: { limit } });
}
