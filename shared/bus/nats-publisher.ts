import type { Logger } from 'pino';
import { ErrorCode, createInbox, type Msg, type MsgHdrs, type NatsConnection, type PublishOptions, type Subscription as NatsSubscription } from 'nats';
import { ChatError } from '../protocol/errors.ts';
import type { DurableAck } from './bus.ts';
import { checkDurableArguments } from './durable-arguments.ts';
import type { NatsBusConnection } from './nats-connection.ts';
import { unavailable } from './nats-errors.ts';
import { DURABLE_PREFIX, MSG_ID_HEADER } from './nats-messages.ts';
import type { NatsStreamSetup } from './nats-stream.ts';

/** How often publishes past their timeout are failed: the timeout's granularity. */
const SWEEP_MS = 100;
/** JetStream's "message size exceeds maximum allowed" (the stream's max_msg_size). */
const JS_MESSAGE_TOO_LARGE = 10054;

interface InFlight {
  resolve(ack: DurableAck): void;
  reject(err: ChatError): void;
  roomId: string;
  deadline: number;
  /** What to write, until it is written. */
  subject: string;
  payload: Uint8Array | undefined;
  headers: Uint8Array | undefined;
}

/** What a PubAck's JSON holds: the stored sequence, or the stream's refusal. */
interface PubAckJson {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

/**
 * The durable publish, pipelined: any number of JetStream publishes in flight on the bus's one
 * connection, their PubAcks correlated on ONE reply subscription (`<inbox>.<n>`), so that a
 * publish costs one PUB with headers and one small reply, not a request object, a timer and an
 * error object (for its async stack) each, as `js.publish` makes.
 *
 * Order: publishes go out in call order on one connection, and the stream stores them in that
 * order, so callers keep their order without waiting for each PubAck.
 *
 * Writes: the publishes made during one turn of the event loop are written together at its end
 * (setImmediate), so the sends that arrived in one poll of the sockets cost one socket write, not
 * one each (nats.js flushes after every microtask checkpoint, i.e. after every WebSocket message,
 * and a loopback write costs tens of microseconds here).
 *
 * Fail fast: when the connection drops (or closes for good, or the bus closes) every publish in
 * flight fails at once with `unavailable` (it may or may not have been stored: a retry with the
 * same dedupe id is safe), and new ones fail at once until it is back. A publish whose PubAck does
 * not come within the timeout fails the same way, checked every SWEEP_MS.
 */
export class NatsDurablePublisher {
  readonly #connection: Pick<NatsBusConnection, 'require'>;
  readonly #stream: Pick<NatsStreamSetup, 'name' | 'ensureInBackground'>;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  /** Publishes waiting for their PubAck, by reply token, oldest first (monotonic deadlines grow with it). */
  readonly #inFlight = new Map<number, InFlight>();
  #nextToken = 0;
  /** The connection the reply subscription is on, its subscription and reply prefix. */
  #nc: NatsConnection | undefined;
  #replies: NatsSubscription | undefined;
  #prefix = '';
  #sweeper: NodeJS.Timeout | undefined;
  /** Tokens of publishes not written yet, in call order, and whether a write is scheduled. */
  #queued: number[] = [];
  #writeScheduled = false;
  readonly #write = () => this.#writeQueued();
  // Reused for every publish: nats.js reads them synchronously inside publish(), and of headers it
  // only calls encode() (its MsgHdrs would be built, then encoded, for every publish).
  readonly #headers: { bytes: Uint8Array; encode(): Uint8Array } = { bytes: new Uint8Array(0), encode() { return this.bytes; } };
  readonly #options = { reply: '', headers: this.#headers as unknown as MsgHdrs } satisfies PublishOptions;

  constructor(
    connection: Pick<NatsBusConnection, 'require'>,
    stream: Pick<NatsStreamSetup, 'name' | 'ensureInBackground'>,
    timeoutMs: number,
    log: Logger,
  ) {
    this.#connection = connection;
    this.#stream = stream;
    this.#timeoutMs = timeoutMs;
    this.#log = log;
  }

  /**
   * Takes the event in call order (it is written at the end of this turn of the event loop, after
   * the ones taken before it) and resolves with the PubAck. Throws nothing: every failure is the
   * returned promise's; while disconnected it fails at once.
   */
  publish(roomId: string, dedupeId: string, payload: Uint8Array, headers: Record<string, string> | undefined): Promise<DurableAck> {
    try {
      checkDurableArguments(roomId, dedupeId);
      // while disconnected nats.js would buffer the publish until we time it out
      const { nc } = this.#connection.require();
      if (this.#nc !== nc) this.#listen(nc);
      const headerBytes = encodeHeaders(dedupeId, headers);
      const token = ++this.#nextToken;
      const acked = new Promise<DurableAck>((resolve, reject) => {
        this.#inFlight.set(token, {
          resolve, reject, roomId, deadline: performance.now() + this.#timeoutMs, subject: DURABLE_PREFIX + roomId, payload, headers: headerBytes,
        });
      });
      this.#queued.push(token);
      if (!this.#writeScheduled) {
        this.#writeScheduled = true;
        setImmediate(this.#write);
      }
      this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_MS).unref();
      return acked;
    } catch (err) {
      return Promise.reject(err instanceof ChatError ? err : unavailable(err, `publishing the event for room ${roomId}`));
    }
  }

  /** How many publishes wait for their PubAck. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * The connection dropped (nats.js reconnects), closed for good, or the bus closed: nothing in
   * flight will be confirmed on it, so everything in flight fails now.
   */
  failAll(why: string): void {
    if (this.#inFlight.size === 0) return;
    const pending = [...this.#inFlight.values()];
    this.#inFlight.clear();
    this.#stopSweeper();
    for (const p of pending) p.reject(new ChatError('unavailable', `${why}; the stream did not confirm the event for room ${p.roomId}`));
  }

  /** The connection closed for good: the reply subscription went with it. */
  detach(): void {
    this.#nc = undefined;
    this.#replies = undefined;
  }

  /** Hands the queued publishes to nats.js, which writes them with one flush. */
  #writeQueued(): void {
    this.#writeScheduled = false;
    const tokens = this.#queued;
    this.#queued = [];
    // lost since they were taken (the drop may not have been reported yet when they were): nats.js
    // would keep them for its reconnect instead of failing them now
    let lost: ChatError | undefined;
    try {
      if (this.#connection.require().nc !== this.#nc) lost = new ChatError('unavailable', 'the NATS connection was replaced');
    } catch (err) {
      lost = err instanceof ChatError ? err : unavailable(err, 'the NATS connection');
    }
    const nc = this.#nc;
    for (const token of tokens) {
      const p = this.#inFlight.get(token);
      // failed meanwhile (the connection dropped, or the bus closed)
      if (p === undefined || p.payload === undefined) continue;
      if (lost !== undefined || nc === undefined) {
        this.#inFlight.delete(token);
        p.reject(lost ?? new ChatError('unavailable', 'the NATS connection is gone'));
        continue;
      }
      this.#headers.bytes = p.headers!;
      this.#options.reply = this.#prefix + token;
      try {
        nc.publish(p.subject, p.payload, this.#options);
      } catch (err) {
        this.#inFlight.delete(token);
        p.reject(this.#publishError(err, p.roomId));
      }
      p.payload = undefined;
      p.headers = undefined;
    }
    if (this.#inFlight.size === 0) this.#stopSweeper();
  }

  #listen(nc: NatsConnection): void {
    this.#replies?.unsubscribe();
    this.#nc = nc;
    // a fresh inbox per connection: a late PubAck of an earlier connection matches nothing
    this.#prefix = `${createInbox()}.`;
    this.#replies = nc.subscribe(`${this.#prefix}*`, { callback: (err, msg) => this.#reply(err, msg) });
  }

  #reply(err: Error | null, msg: Msg): void {
    if (err !== null) {
      this.#log.error({ err }, 'nats bus: the PubAck subscription failed');
      return;
    }
    const token = Number(msg.subject.slice(this.#prefix.length));
    const p = this.#inFlight.get(token);
    // timed out or failed already, or an earlier connection's
    if (p === undefined) return;
    this.#inFlight.delete(token);
    if (this.#inFlight.size === 0) this.#stopSweeper();
    const data = msg.data;
    if (data.length === 0) {
      // a status message: 503 = no stream takes the subject
      if (msg.headers?.code === 503) {
        this.#stream.ensureInBackground(true);
        p.reject(new ChatError('unavailable', `no JetStream stream takes ${DURABLE_PREFIX}${p.roomId} (is ${this.#stream.name} there?)`));
      } else {
        p.reject(new ChatError('unavailable', `the stream answered the event for room ${p.roomId} with status ${msg.headers?.code ?? 'none'}`));
      }
      return;
    }
    let ack: PubAckJson;
    try {
      ack = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as PubAckJson;
    } catch (parseErr) {
      p.reject(unavailable(parseErr, `an unreadable PubAck for the event for room ${p.roomId}`));
      return;
    }
    if (ack.error !== undefined) {
      const what = `the stream refused the event for room ${p.roomId}: ${ack.error.description ?? 'no description'} (${ack.error.err_code ?? ack.error.code})`;
      p.reject(new ChatError(ack.error.err_code === JS_MESSAGE_TOO_LARGE ? 'too_large' : 'unavailable', what));
      return;
    }
    if (typeof ack.seq !== 'number' || !ack.stream) {
      p.reject(new ChatError('unavailable', `an invalid PubAck for the event for room ${p.roomId}`));
      return;
    }
    p.resolve({ seq: ack.seq, duplicate: ack.duplicate === true });
  }

  #sweep(): void {
    const now = performance.now();
    for (const [token, p] of this.#inFlight) {
      if (p.deadline > now) break;
      this.#inFlight.delete(token);
      p.reject(new ChatError('unavailable', `the stream did not confirm the event for room ${p.roomId} within ${this.#timeoutMs} ms`));
    }
    if (this.#inFlight.size === 0) this.#stopSweeper();
  }

  #stopSweeper(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  #publishError(err: unknown, roomId: string): ChatError {
    if ((err as { code?: unknown }).code === ErrorCode.MaxPayloadExceeded) {
      return new ChatError('too_large', `event for room ${roomId} is larger than the NATS max payload`, { cause: err });
    }
    return unavailable(err, `publishing the event for room ${roomId}`);
  }
}

/**
 * The header block of a durable publish: the dedupe id as the JetStream message id, then the
 * caller's headers (trace context). Values must not break the block's lines.
 */
function encodeHeaders(dedupeId: string, headers: Record<string, string> | undefined): Uint8Array {
  let block = `NATS/1.0\r\n${MSG_ID_HEADER}: ${headerValue(dedupeId)}\r\n`;
  if (headers !== undefined) {
    for (const key in headers) {
      if (!HEADER_KEY.test(key)) throw new ChatError('bad_request', `invalid header name for a NATS message: ${JSON.stringify(key)}`);
      block += `${key}: ${headerValue(headers[key]!)}\r\n`;
    }
  }
  return Buffer.from(`${block}\r\n`, 'utf8');
}

const HEADER_KEY = /^[!-9;-~]+$/;

function headerValue(value: string): string {
  if (value.includes('\r') || value.includes('\n')) {
    throw new ChatError('bad_request', `invalid header value for a NATS message: ${JSON.stringify(value.slice(0, 40))}`);
  }
  return value;
}
