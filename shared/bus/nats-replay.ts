import type { Logger } from 'pino';
import { AckPolicy, DeliverPolicy, ErrorCode, nanos, type JetStreamClient, type JetStreamManager, type StoredMsg, type StreamState } from 'nats';
import { ChatError } from '../protocol/errors.ts';
import type { DurableMessage, ReplayResult } from './bus.ts';
import { checkRoomId } from './durable-arguments.ts';
import type { NatsBusConnection } from './nats-connection.ts';
import { JS_NO_MESSAGE, jsErrCode, unavailable } from './nats-errors.ts';
import { DURABLE_PREFIX, jsToDurable, storedToDurable } from './nats-messages.ts';

const REPLAY_BATCH = 256;
/** A replay consumer that delivers nothing for this long while events are still due is replaced. */
const REPLAY_IDLE_MS = 5000;
/** The first event is due as soon as the consumer exists: waiting longer only delays the replacement (nats.js: >= 1000). */
const REPLAY_FIRST_EVENT_MS = 1500;
const REPLAY_ATTEMPTS = 10;
const REPLAY_INACTIVE_MS = 30_000;
/** The API timeout for creating replay consumers (`Connected.replayJsm`). */
export const REPLAY_CREATE_TIMEOUT_MS = 2000;

/** Reads the stream back: one event by sequence, or a room's events since a time. */
export class NatsStreamReader {
  readonly #connection: Pick<NatsBusConnection, 'require' | 'connected'>;
  readonly #stream: string;
  readonly #log: Logger;

  constructor(connection: Pick<NatsBusConnection, 'require' | 'connected'>, stream: string, log: Logger) {
    this.#connection = connection;
    this.#stream = stream;
    this.#log = log;
  }

  async get(seq: number): Promise<DurableMessage | undefined> {
    const { jsm } = this.#connection.require();
    if (!(Number.isSafeInteger(seq) && seq >= 1)) return undefined;
    try {
      return storedToDurable(await jsm.streams.getMessage(this.#stream, { seq }));
    } catch (err) {
      if (jsErrCode(err) === JS_NO_MESSAGE) return undefined;
      throw unavailable(err, `reading event ${seq}`);
    }
  }

  /**
   * `lastSeq` is the stream's last sequence when the replay started (or the room's last event if
   * that is later): every event of the room up to it, stored at or after sinceMs, was passed on.
   */
  async replay(roomId: string, sinceMs: number, onEvent: (msg: DurableMessage) => void, limit = Infinity): Promise<ReplayResult> {
    checkRoomId(roomId);
    const { js, jsm, replayJsm } = this.#connection.require();
    // storedAt is whole ms: "stored at or after 10.5" means from 11
    const since = Math.max(0, Math.ceil(sinceMs));
    const subject = DURABLE_PREFIX + roomId;

    let state: StreamState;
    let last: StoredMsg | undefined;
    try {
      state = (await jsm.streams.info(this.#stream)).state;
      last = await jsm.streams.getMessage(this.#stream, { last_by_subj: subject }).catch((err: unknown) => {
        if (jsErrCode(err) === JS_NO_MESSAGE) return undefined;
        throw err;
      });
    } catch (err) {
      throw unavailable(err, `replay of room ${roomId}`);
    }
    const lastSeq = Math.max(state.last_seq, last?.seq ?? 0);
    const limited = limit !== Infinity;
    if (last === undefined || Date.parse(last.timestamp) < since) return { complete: covers(state, since), lastSeq, ...(limited ? { more: false } : {}) };

    // past the limit, the next event only tells that there was more: it stops the read
    let passed = 0;
    let more = false;
    const reachedTarget = await this.#replayUntil(js, replayJsm, roomId, subject, since, last.seq, (msg) => {
      if (passed >= limit) {
        more = true;
        return false;
      }
      passed++;
      onEvent(msg);
      return true;
    });
    const extra = limited ? { more } : {};
    if (reachedTarget) return { complete: covers(state, since), lastSeq, ...extra };
    // the room's last event aged out while we read: judge by what the stream holds now
    const now = await jsm.streams.info(this.#stream).catch((err: unknown) => { throw unavailable(err, `replay of room ${roomId}`); });
    return { complete: covers(now.state, since), lastSeq, ...extra };
  }

  /**
   * Reads the room's events from `since` until event `target`; resolves false if the stream ran
   * out before it (target dropped meanwhile).
   *
   * Each attempt is an ephemeral, unacknowledged consumer read with bounded fetches. One that
   * delivers nothing while events are due is deleted and replaced, continuing after the last
   * event passed on: in a cluster that lost a node, the server can place the (single-replica)
   * consumer on the dead node, where it never delivers (for seconds after the loss, most
   * replays). nats.js's ordered consumer is not used because it re-creates a stalled consumer
   * by itself, forever, even after it was stopped and the connection closed.
   */
  async #replayUntil(js: JetStreamClient, jsm: JetStreamManager, roomId: string, subject: string, since: number, target: number, onEvent: (msg: DurableMessage) => boolean): Promise<boolean> {
    let after = 0;
    for (let attempt = 1; ; attempt++) {
      const r = await this.#replayAttempt(js, jsm, roomId, subject, after === 0 ? { since } : { fromSeq: after + 1 }, target, (msg) => {
        if (!onEvent(msg)) return false;
        after = msg.seq;
        return true;
      });
      if (r !== 'stalled') return r;
      if (attempt >= REPLAY_ATTEMPTS) {
        throw new ChatError('unavailable', `replay of room ${roomId} stalled ${attempt} times before event ${target} (last passed on: ${after || 'none'})`);
      }
      this.#log.debug({ roomId, attempt, after, target }, 'nats bus: replay consumer stalled; replacing it');
    }
  }

  async #replayAttempt(
    js: JetStreamClient, jsm: JetStreamManager, roomId: string, subject: string, start: { since: number } | { fromSeq: number }, target: number,
    /** false: stop here (the caller has what it wants), as if the target was reached */
    onEvent: (msg: DurableMessage) => boolean,
  ): Promise<boolean | 'stalled'> {
    let name: string;
    let consumer;
    try {
      name = (await jsm.consumers.add(this.#stream, {
        ack_policy: AckPolicy.None,
        filter_subject: subject, // filter_subjects (plural) is ignored by servers before 2.10
        ...('since' in start
          ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(start.since).toISOString() }
          : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.fromSeq }),
        inactive_threshold: nanos(REPLAY_INACTIVE_MS),
        mem_storage: true,
        num_replicas: 1,
      })).name;
      consumer = await js.consumers.get(this.#stream, name);
    } catch (err) {
      if ((err as { code?: unknown }).code === ErrorCode.Timeout && this.#connection.connected) return 'stalled';
      throw unavailable(err, `replay of room ${roomId}`);
    }
    try {
      for (let first = true; ; first = false) {
        let got = 0;
        let inHandler = false;
        try {
          const batch = await consumer.fetch({ max_messages: REPLAY_BATCH, expires: first ? REPLAY_FIRST_EVENT_MS : REPLAY_IDLE_MS });
          for await (const msg of batch) {
            got++;
            if (msg.seq > target) return true;
            inHandler = true;
            if (!onEvent(jsToDurable(msg))) return true;
            inHandler = false;
            if (msg.seq === target) return true;
            if (msg.info.pending === 0) return false;
          }
        } catch (err) {
          if (inHandler) throw err;
          if (!this.#connection.connected) throw unavailable(err, `replay of room ${roomId}`);
          // missed heartbeats of a consumer that is not there: replace it
          this.#log.debug({ err, roomId }, 'nats bus: replay fetch failed');
          return 'stalled';
        }
        if (got === 0) return 'stalled';
      }
    } finally {
      jsm.consumers.delete(this.#stream, name).catch((err: unknown) => {
        this.#log.debug({ err, roomId }, 'nats bus: could not delete a replay consumer (it expires by itself)');
      });
    }
  }
}

/**
 * Whether every event stored at or after `since` is still in the stream. Events leave from the
 * head in stream order, and stream times grow with sequence, so the dropped ones are no newer than
 * the oldest retained event: if that one is older than `since`, nothing at/after `since` left.
 */
function covers(state: StreamState, since: number): boolean {
  if (state.first_seq <= 1) return true; // nothing ever dropped
  if (state.messages === 0) return false; // everything dropped: no way to tell when
  return Date.parse(state.first_ts) < since;
}
