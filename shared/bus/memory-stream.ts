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
}

interface RoomIndex {
  msgs: DurableMessage[];
  head: number;
}

/**
 * The memory bus's durable stream: contiguous sequences, a per-room index for replay, the dedupe
 * window, and retention by age and count that never drops an event a consumer group still holds
 * (`ackFloor`: the lowest sequence any group has not settled).
 */
export class MemoryStream {
  readonly #limits: MemoryStreamLimits;
  readonly #clock: () => number;
  readonly #ackFloor: () => number;
  // msgs[head..] hold the contiguous sequences nextSeq - count .. nextSeq - 1
  #msgs: Array<DurableMessage | undefined> = [];
  #head = 0;
  #nextSeq = 1;
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

  /** The sequence the next stored event gets. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** The oldest retained sequence (nextSeq when the stream is empty). */
  get firstSeq(): number {
    return this.#nextSeq - this.#count();
  }

  /**
   * Stores an event unless its dedupeId is still remembered; `duplicate` says which. `data` is
   * the stored copy (undefined for a duplicate), which the bus republishes.
   */
  append(roomId: string, dedupeId: string, payload: Uint8Array, headers: Record<string, string> | undefined): DurableAck & { data: Uint8Array | undefined } {
    // stream time never goes backwards, so storedAt order is stream order (replay bisects on it)
    const now = Math.max(this.#clock(), this.#lastStoredAt);
    const dedupeCutoff = now - this.#limits.dedupeWindowMs;
    if (this.#dedupeOldestAt < dedupeCutoff) this.#expireDedupe(dedupeCutoff);
    const first = this.#dedupe.get(dedupeId);
    if (first !== undefined) return { seq: first.seq, duplicate: true, data: undefined };

    const seq = this.#nextSeq++;
    const msg: DurableMessage = {
      seq, roomId, dedupeId, storedAt: now,
      // copied: the caller may reuse its buffer once the publish resolved
      data: new Uint8Array(payload),
      headers: headers === undefined ? undefined : { ...headers },
    };
    this.#msgs.push(msg);
    this.#lastStoredAt = now;
    let room = this.#rooms.get(roomId);
    if (room === undefined) this.#rooms.set(roomId, room = { msgs: [], head: 0 });
    room.msgs.push(msg);
    if (this.#dedupe.size === 0) this.#dedupeOldestAt = now;
    this.#dedupe.set(dedupeId, { seq, at: now });

    this.#trim();
    return { seq, duplicate: false, data: msg.data };
  }

  /** The retained event at `seq`, after applying retention. */
  get(seq: number): DurableMessage | undefined {
    this.#trim();
    return this.messageAt(seq);
  }

  /** The retained event at `seq` as of the last trim (for consumer groups, which pin what they hold). */
  messageAt(seq: number): DurableMessage | undefined {
    const first = this.firstSeq;
    if (!(seq >= first && seq < this.#nextSeq)) return undefined;
    return this.#msgs[this.#head + (seq - first)];
  }

  /**
   * `lastSeq` is the stream's last sequence when the replay ran: every event of the room up to it
   * (and stored at or after sinceMs) was passed to onEvent.
   */
  replay(roomId: string, sinceMs: number, onEvent: (msg: DurableMessage) => void, limit = Infinity): ReplayResult {
    this.#trim();
    const lastSeq = this.#nextSeq - 1;
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
      const events = room.msgs.slice(lo, lo + Math.min(limit, room.msgs.length) + 1);
      const passed = Math.min(limit, events.length);
      for (let i = 0; i < passed; i++) onEvent(events[i]!);
      if (limit !== Infinity) return { complete, lastSeq, more: events.length > passed };
    }
    return limit === Infinity ? { complete, lastSeq } : { complete, lastSeq, more: false };
  }

  /** A group settled an event: retention may have been waiting for it. */
  settled(): void {
    if (this.#pinned) this.#trim();
  }

  clear(): void {
    this.#msgs = [];
    this.#head = 0;
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
   * Drops events from the head while the stream is over its size or age limit, stopping at the
   * first event a group still holds (so the stream stays contiguous and seq lookups O(1)).
   */
  #trim(): void {
    this.#pinned = false;
    if (this.#count() === 0) return;
    const cutoff = this.#clock() - this.#limits.windowMs;
    // asked only when something is due to leave: it walks the consumer groups
    let floor: number | undefined;
    while (this.#head < this.#msgs.length) {
      const msg = this.#msgs[this.#head]!;
      if (this.#count() <= this.#limits.maxMessages && msg.storedAt >= cutoff) break;
      floor ??= this.#ackFloor();
      if (msg.seq >= floor) {
        this.#pinned = true;
        break;
      }
      this.#msgs[this.#head++] = undefined;
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
