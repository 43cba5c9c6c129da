import { ChatError } from '../protocol/errors.ts';
import type { DurableAck, DurableMessage, ReplayResult } from './bus.ts';

/** Below this many dropped slots the stream array is not compacted (compaction copies the array). */
const COMPACT_MIN = 1024;

export interface MemoryStreamLimits {
  /** Events older than this leave the stream (once no consumer group holds them). */
  windowMs: number;
  /** The stream keeps at most this many events (once no consumer group holds them). */
  maxMessages: number;
  /** How long a dedupeId is remembered. */
  dedupeWindowMs: number;
  /**
   * The stream holds at most this many bytes of events (`eventBytes`): past it, events every group
   * has settled leave first, and while what remains (unsettled) is over it, appends are refused
   * with `unavailable` until the consumers catch up.
   */
  maxBytes: number;
}

/**
 * What an event is counted as against `maxBytes`: its payload, ids and headers, plus an estimate
 * of the objects that hold it (the event, its slot in both indexes, its dedupe entry).
 */
export function eventBytes(roomId: string, dedupeId: string, payloadBytes: number, headers: Record<string, string> | undefined): number {
  let bytes = EVENT_OVERHEAD_BYTES + payloadBytes + 2 * (roomId.length + dedupeId.length);
  if (headers !== undefined) for (const k in headers) bytes += 2 * (k.length + headers[k]!.length);
  return bytes;
}
const EVENT_OVERHEAD_BYTES = 256;

/** A retained event and what it counts against maxBytes. */
type SizedMessage = DurableMessage & { size: number };

interface RoomIndex {
  msgs: SizedMessage[];
  head: number;
}

/**
 * The memory bus's durable stream: contiguous sequences, a per-room index for replay, the dedupe
 * window, and retention by age, count and bytes that never drops an event a consumer group still
 * holds (`ackFloor`: the lowest sequence any group has not settled).
 *
 * Appended events are first pending: they hold their sequence and dedupeId but nobody sees them
 * (not groups, `get`, `replay` or `nextSeq`) until `commit` makes them visible, or `rollback`
 * forgets them. Without a journal the bus commits each append at once; with one, after the
 * journal stored it.
 */
export class MemoryStream {
  readonly #limits: MemoryStreamLimits;
  readonly #clock: () => number;
  readonly #ackFloor: () => number;
  // msgs[head..] hold the contiguous sequences nextSeq - count .. nextSeq - 1
  #msgs: Array<SizedMessage | undefined> = [];
  #head = 0;
  #nextSeq = 1;
  /** Sequences below it are committed (visible); the rest up to nextSeq are pending. */
  #visibleNext = 1;
  /** eventBytes of every retained event, pending ones included. */
  #bytes = 0;
  #lastStoredAt = 0;
  readonly #rooms = new Map<string, RoomIndex>();
  readonly #dedupe = new Map<string, { seq: number; at: number }>();
  /** When the oldest remembered dedupeId was stored (Infinity: none), so most appends expire nothing without looking. */
  #dedupeOldestAt = Infinity;
  #dropped = false;
  #lastDroppedAt = 0;
  /** Last trim stopped at an event a group still holds: settling one may free space. */
  #pinned = false;

  constructor(limits: MemoryStreamLimits, clock: () => number, ackFloor: () => number) {
    this.#limits = limits;
    this.#clock = clock;
    this.#ackFloor = ackFloor;
  }

  /** The sequence after the last committed event: what consumers and replays see ends below it. */
  get nextSeq(): number {
    return this.#visibleNext;
  }

  /** The oldest retained sequence (nextSeq when the stream is empty). */
  get firstSeq(): number {
    return this.#nextSeq - this.#count();
  }

  /** Bytes (as `eventBytes` counts them) and number of the events the stream holds. */
  get buffered(): { bytes: number; events: number } {
    return { bytes: this.#bytes, events: this.#count() };
  }

  /**
   * Loads what a journal kept across a restart, before anything is appended: `events` in sequence
   * order (committed, their dedupeIds remembered as of their storedAt), and the next sequence.
   */
  restore(events: readonly DurableMessage[], nextSeq: number): void {
    if (this.#nextSeq !== 1 || this.#count() !== 0) throw new ChatError('internal', 'memory stream: restore after appends');
    const first = events.length === 0 ? nextSeq : events[0]!.seq;
    this.#nextSeq = first;
    for (const msg of events) {
      if (msg.seq !== this.#nextSeq) throw new ChatError('internal', `memory stream: restored sequences are not contiguous at ${msg.seq}`);
      this.#nextSeq++;
      this.#store(msg);
      this.#dedupe.set(msg.dedupeId, { seq: msg.seq, at: msg.storedAt });
    }
    if (this.#dedupe.size !== 0) this.#dedupeOldestAt = events[0]!.storedAt;
    if (nextSeq < this.#nextSeq) throw new ChatError('internal', `memory stream: restored next sequence ${nextSeq} is behind its events`);
    this.#nextSeq = nextSeq;
    this.#visibleNext = nextSeq;
    this.#trim(0);
  }

  /** Makes the pending events up to `seq` visible. */
  commit(seq: number): void {
    if (seq >= this.#visibleNext) this.#visibleNext = Math.min(seq + 1, this.#nextSeq);
  }

  /** Forgets the pending events from `seq` on (their journal write failed): their sequences are reused. */
  rollback(seq: number): void {
    const from = Math.max(seq, this.#visibleNext);
    while (this.#nextSeq > from && this.#count() !== 0) {
      const msg = this.#msgs.pop()!;
      this.#nextSeq--;
      this.#bytes -= msg.size;
      const room = this.#rooms.get(msg.roomId)!;
      room.msgs.pop();
      if (room.head === room.msgs.length) this.#rooms.delete(msg.roomId);
      if (this.#dedupe.get(msg.dedupeId)?.seq === msg.seq) this.#dedupe.delete(msg.dedupeId);
    }
    this.#nextSeq = from;
    if (this.#dedupe.size === 0) this.#dedupeOldestAt = Infinity;
  }

  /**
   * The lowest sequence whose dedupeId is still remembered at `now` (nextSeq when none is): a
   * journal keeps events from there, so that a retry after a restart still dedupes.
   */
  oldestDedupeSeq(now: number): number {
    const cutoff = now - this.#limits.dedupeWindowMs;
    if (this.#dedupeOldestAt < cutoff) this.#expireDedupe(cutoff);
    for (const entry of this.#dedupe.values()) return entry.seq;
    return this.#nextSeq;
  }

  /**
   * Stores an event unless its dedupeId is still remembered; `duplicate` says which (the first
   * one's sequence, which may still be pending). `msg` is the stored event (undefined for a
   * duplicate), pending until committed. Throws `unavailable` when the unsettled events fill
   * `maxBytes`, `too_large` when the event alone is over it.
   */
  append(roomId: string, dedupeId: string, payload: Uint8Array, headers: Record<string, string> | undefined): DurableAck & { msg: DurableMessage | undefined } {
    // stream time never goes backwards, so storedAt order is stream order (replay bisects on it)
    const now = Math.max(this.#clock(), this.#lastStoredAt);
    const dedupeCutoff = now - this.#limits.dedupeWindowMs;
    if (this.#dedupeOldestAt < dedupeCutoff) this.#expireDedupe(dedupeCutoff);
    const first = this.#dedupe.get(dedupeId);
    if (first !== undefined) return { seq: first.seq, duplicate: true, msg: undefined };

    const size = eventBytes(roomId, dedupeId, payload.byteLength, headers);
    if (this.#bytes + size > this.#limits.maxBytes) this.#makeRoom(size);

    const seq = this.#nextSeq++;
    const msg: SizedMessage = {
      seq, roomId, dedupeId, storedAt: now,
      // copied: the caller may reuse its buffer once the publish resolved
      data: new Uint8Array(payload),
      headers: headers === undefined ? undefined : { ...headers },
      size,
    };
    this.#store(msg);
    this.#lastStoredAt = now;
    if (this.#dedupe.size === 0) this.#dedupeOldestAt = now;
    this.#dedupe.set(dedupeId, { seq, at: now });

    this.#trim(0);
    return { seq, duplicate: false, msg };
  }

  #store(msg: DurableMessage): void {
    const sized = msg as SizedMessage;
    sized.size ??= eventBytes(msg.roomId, msg.dedupeId, msg.data.byteLength, msg.headers);
    this.#msgs.push(sized);
    this.#bytes += sized.size;
    this.#lastStoredAt = Math.max(this.#lastStoredAt, msg.storedAt);
    let room = this.#rooms.get(msg.roomId);
    if (room === undefined) this.#rooms.set(msg.roomId, room = { msgs: [], head: 0 });
    room.msgs.push(sized);
  }

  /** Drops settled events until `size` more bytes fit, or refuses the append. */
  #makeRoom(size: number): void {
    if (size > this.#limits.maxBytes) {
      throw new ChatError('too_large', `an event of ${size} bytes is over the stream's limit of ${this.#limits.maxBytes}`);
    }
    this.#trim(size);
    if (this.#bytes + size > this.#limits.maxBytes) {
      throw new ChatError('unavailable', `the stream holds ${this.#bytes} bytes not yet written to the store (limit ${this.#limits.maxBytes}); retry shortly`, {
        details: { retryAfterMs: 1000 },
      });
    }
  }

  /** The retained event at `seq`, after applying retention. */
  get(seq: number): DurableMessage | undefined {
    this.#trim(0);
    return this.messageAt(seq);
  }

  /** The retained event at `seq` as of the last trim (for consumer groups, which pin what they hold). */
  messageAt(seq: number): DurableMessage | undefined {
    const first = this.firstSeq;
    if (!(seq >= first && seq < this.#visibleNext)) return undefined;
    return this.#msgs[this.#head + (seq - first)];
  }

  /**
   * `lastSeq` is the stream's last sequence when the replay ran: every event of the room up to it
   * (and stored at or after sinceMs) was passed to onEvent.
   */
  replay(roomId: string, sinceMs: number, onEvent: (msg: DurableMessage) => void, limit = Infinity): ReplayResult {
    this.#trim(0);
    const lastSeq = this.#visibleNext - 1;
    // events leave in stream order, so the newest dropped one tells whether any at/after sinceMs left
    const complete = !(this.#dropped && this.#lastDroppedAt >= sinceMs);
    const room = this.#rooms.get(roomId);
    if (room !== undefined) {
      let lo = room.head;
      let hi = room.msgs.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (room.msgs[mid]!.storedAt < sinceMs) lo = mid + 1;
        else hi = mid;
      }
      // a snapshot: onEvent may publish, which appends to and trims this index
      const events = room.msgs.slice(lo);
      let passed = 0;
      for (const msg of events) {
        if (msg.seq > lastSeq) break;
        // past the limit, one more event only says that there was more
        if (passed >= limit) return { complete, lastSeq, more: true };
        onEvent(msg);
        passed++;
      }
      if (limit !== Infinity) return { complete, lastSeq, more: false };
    }
    return limit === Infinity ? { complete, lastSeq } : { complete, lastSeq, more: false };
  }

  /** A group settled an event: retention may have been waiting for it. */
  settled(): void {
    if (this.#pinned) this.#trim(0);
  }

  clear(): void {
    this.#msgs = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#rooms.clear();
    this.#dedupe.clear();
    this.#dedupeOldestAt = Infinity;
  }

  /** Forgets dedupeIds stored before `cutoff` (the map is in storage order). */
  #expireDedupe(cutoff: number): void {
    for (const [id, entry] of this.#dedupe) {
      if (entry.at >= cutoff) {
        this.#dedupeOldestAt = entry.at;
        return;
      }
      this.#dedupe.delete(id);
    }
    this.#dedupeOldestAt = Infinity;
  }

  #count(): number {
    return this.#msgs.length - this.#head;
  }

  /**
   * Drops events from the head while the stream is over its count, age or byte limit (with `extra`
   * bytes about to come), stopping at the first event a group still holds or that is pending (so
   * the stream stays contiguous and seq lookups O(1)).
   */
  #trim(extra: number): void {
    this.#pinned = false;
    if (this.#count() === 0) return;
    const cutoff = this.#clock() - this.#limits.windowMs;
    const maxBytes = this.#limits.maxBytes - extra;
    // asked only when something is due to leave: it walks the consumer groups
    let floor: number | undefined;
    while (this.#head < this.#msgs.length) {
      const msg = this.#msgs[this.#head]!;
      if (this.#count() <= this.#limits.maxMessages && msg.storedAt >= cutoff && this.#bytes <= maxBytes) break;
      floor ??= Math.min(this.#ackFloor(), this.#visibleNext);
      if (msg.seq >= floor) {
        this.#pinned = true;
        break;
      }
      this.#msgs[this.#head++] = undefined;
      this.#bytes -= msg.size;
      this.#dropped = true;
      this.#lastDroppedAt = msg.storedAt;
      const room = this.#rooms.get(msg.roomId)!;
      room.head++;
      if (room.head === room.msgs.length) this.#rooms.delete(msg.roomId);
      else if (room.head >= 32 && room.head * 2 >= room.msgs.length) {
        room.msgs.splice(0, room.head);
        room.head = 0;
      }
    }
    if (this.#head >= COMPACT_MIN && this.#head * 2 >= this.#msgs.length) {
      this.#msgs.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
