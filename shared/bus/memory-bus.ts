import { performance } from 'node:perf_hooks';
import { ChatError } from '../protocol/errors.ts';
import type {
  BatchHandler, Bus, ConsumeOptions, Consumer, Delivery, DurableAck, DurableMessage, LiveHandler, LiveWatcher, Subscription,
} from './bus.ts';

/**
 * The in-process bus of embedded mode: both planes in one process, nothing survives a restart.
 *
 * Differences from NATS that callers may notice (none of them is promised by the port):
 * - live handlers run synchronously inside `publish`; a publish made from inside a handler is
 *   queued and delivered after the current one, so every subscriber still sees publish order;
 * - live payloads are shared, not copied: subscribers must not mutate them;
 * - the stream never drops an event some consumer group has not acked or term'd yet. A group
 *   that stops acking makes the stream grow past `maxMessages` and the recovery window; that is
 *   the price of not losing events, and the persister always acks or terms.
 */
export interface MemoryBusConfig {
  recoveryWindowSec: number;
  maxMessages: number;
}

export interface MemoryBusOptions {
  /** Stream clock (storedAt, retention, dedupe window), ms since epoch. Default Date.now. */
  now?: () => number;
  /** How long a dedupeId is remembered. */
  dedupeWindowMs?: number;
  /**
   * Called when a live subscriber or a consumer's batch handler throws (`where` names which).
   * Default: a process warning, so a failure is never silent.
   */
  onError?: (err: unknown, where: string) => void;
}

export const DEFAULT_DEDUPE_WINDOW_MS = 2 * 60_000;
export const DEFAULT_ACK_WAIT_MS = 30_000;
/** Redelivery delay after a throwing handler or a nak without delay: doubles per try up to the max. */
export const RETRY_BASE_MS = 200;
export const RETRY_MAX_MS = 5000;

/** Room ids become one subject token (`chat.durable.<roomId>`), so they obey the token rules. */
const ROOM_TOKEN = /^[^\s.*>]+$/;
/** Below this many dropped slots the stream array is not compacted (compaction copies the array). */
const COMPACT_MIN = 1024;

export function createMemoryBus(cfg: MemoryBusConfig, opts: MemoryBusOptions = {}): Bus {
  return new MemoryBus(cfg, opts);
}

function retryDelayMs(deliveryCount: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, deliveryCount - 1));
}

interface LiveSub {
  readonly handler: LiveHandler;
  /** Pattern tokens for wildcard subscriptions; undefined for exact subjects. */
  readonly tokens: readonly string[] | undefined;
  /** Number of the first publish this subscription may see: no message published before it subscribed. */
  readonly from: number;
}

interface RoomIndex {
  msgs: DurableMessage[];
  head: number;
}

class MemoryBus implements Bus {
  readonly kind = 'memory' as const;

  readonly #clock: () => number;
  readonly #windowMs: number;
  readonly #maxMessages: number;
  readonly #dedupeWindowMs: number;
  readonly #onError: ((err: unknown, where: string) => void) | undefined;
  #closed = false;

  // live plane
  readonly #exact = new Map<string, Set<LiveSub>>();
  readonly #wildcards = new Set<LiveSub>();
  #published = 0;
  #delivering = false;
  // publishes made by handlers while a delivery runs, delivered after it in order
  #queuedSubjects: string[] = [];
  #queuedPayloads: Uint8Array[] = [];
  #queuedNumbers: number[] = [];

  // durable plane: msgs[head..] hold the contiguous sequences nextSeq - count .. nextSeq - 1
  #msgs: Array<DurableMessage | undefined> = [];
  #head = 0;
  #nextSeq = 1;
  #lastStoredAt = 0;
  readonly #rooms = new Map<string, RoomIndex>();
  readonly #dedupe = new Map<string, { seq: number; at: number }>();
  #dropped = false;
  #lastDroppedAt = 0;
  /** Last trim stopped at an event a group still holds: settling one may free space. */
  #pinned = false;
  readonly #groups = new Map<string, Group>();

  constructor(cfg: MemoryBusConfig, opts: MemoryBusOptions) {
    if (!(cfg.recoveryWindowSec > 0)) throw new ChatError('bad_request', `memory bus: recoveryWindowSec must be > 0, got ${cfg.recoveryWindowSec}`);
    if (!(Number.isInteger(cfg.maxMessages) && cfg.maxMessages > 0)) {
      throw new ChatError('bad_request', `memory bus: maxMessages must be a positive integer, got ${cfg.maxMessages}`);
    }
    this.#clock = opts.now ?? Date.now;
    this.#windowMs = cfg.recoveryWindowSec * 1000;
    this.#maxMessages = cfg.maxMessages;
    this.#dedupeWindowMs = opts.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_MS;
    this.#onError = opts.onError;
  }

  // ---- live plane ----

  publish(subject: string, payload: Uint8Array): void {
    if (this.#closed) return;
    const n = ++this.#published;
    if (this.#delivering) {
      this.#queuedSubjects.push(subject);
      this.#queuedPayloads.push(payload);
      this.#queuedNumbers.push(n);
      return;
    }
    this.#delivering = true;
    try {
      this.#deliver(subject, payload, n);
      for (let i = 0; i < this.#queuedSubjects.length; i++) {
        this.#deliver(this.#queuedSubjects[i]!, this.#queuedPayloads[i]!, this.#queuedNumbers[i]!);
      }
    } finally {
      this.#delivering = false;
      if (this.#queuedSubjects.length !== 0) {
        this.#queuedSubjects.length = 0;
        this.#queuedPayloads.length = 0;
        this.#queuedNumbers.length = 0;
      }
    }
  }

  #deliver(subject: string, payload: Uint8Array, n: number): void {
    const set = this.#exact.get(subject);
    if (set !== undefined) {
      for (const sub of set) if (sub.from <= n) this.#call(sub, payload, subject);
    }
    if (this.#wildcards.size !== 0) {
      for (const sub of this.#wildcards) {
        if (sub.from <= n && matchesPattern(sub.tokens!, subject)) this.#call(sub, payload, subject);
      }
    }
  }

  #call(sub: LiveSub, payload: Uint8Array, subject: string): void {
    try {
      sub.handler(payload, subject);
    } catch (err) {
      this.reportError(err, `live subscriber of ${subject}`);
    }
  }

  subscribe(subject: string, handler: LiveHandler): Subscription {
    const tokens = subject.split('.');
    let wildcard = false;
    for (let i = 0; i < tokens.length; i++) {
      const tok = tokens[i]!;
      if (tok === '' || (tok === '>' && i !== tokens.length - 1)) {
        throw new ChatError('bad_request', `invalid subject "${subject}": empty token or '>' before the last token`);
      }
      if (tok === '*' || tok === '>') wildcard = true;
    }
    const sub: LiveSub = { handler, tokens: wildcard ? tokens : undefined, from: this.#published + 1 };
    if (wildcard) {
      this.#wildcards.add(sub);
      return { unsubscribe: () => { this.#wildcards.delete(sub); } };
    }
    let set = this.#exact.get(subject);
    if (set === undefined) this.#exact.set(subject, set = new Set());
    set.add(sub);
    return {
      unsubscribe: () => {
        const current = this.#exact.get(subject);
        if (current === undefined || !current.delete(sub)) return;
        if (current.size === 0) this.#exact.delete(subject);
      },
    };
  }

  /** In-process delivery has no connection to lose: the watcher is never called. */
  watchLive(_watcher: LiveWatcher): Subscription {
    return { unsubscribe: () => {} };
  }

  // ---- durable plane ----

  async publishDurable(roomId: string, dedupeId: string, payload: Uint8Array, headers?: Record<string, string>): Promise<DurableAck> {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
    if (!ROOM_TOKEN.test(roomId)) throw new ChatError('bad_request', `invalid room id for a subject token: "${roomId}"`);
    if (dedupeId === '') throw new ChatError('bad_request', 'dedupeId must not be empty');

    // stream time never goes backwards, so storedAt order is stream order (replay bisects on it)
    const now = Math.max(this.#clock(), this.#lastStoredAt);
    const dedupeCutoff = now - this.#dedupeWindowMs;
    for (const [id, entry] of this.#dedupe) {
      if (entry.at >= dedupeCutoff) break;
      this.#dedupe.delete(id);
    }
    const first = this.#dedupe.get(dedupeId);
    if (first !== undefined) return { seq: first.seq, duplicate: true };

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
    this.#dedupe.set(dedupeId, { seq, at: now });

    this.#trim();
    for (const group of this.#groups.values()) group.pump();
    return { seq, duplicate: false };
  }

  async getDurable(seq: number): Promise<DurableMessage | undefined> {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
    this.#trim();
    return this.messageAt(seq);
  }

  /**
   * `lastSeq` is the stream's last sequence when the replay ran: every event of the room up to it
   * (and stored at or after sinceMs) was passed to onEvent.
   */
  async replay(roomId: string, sinceMs: number, onEvent: (msg: DurableMessage) => void): Promise<{ complete: boolean; lastSeq: number }> {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
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
      const events = room.msgs.slice(lo);
      for (const msg of events) onEvent(msg);
    }
    return { complete, lastSeq };
  }

  consume(options: ConsumeOptions, handler: BatchHandler): Consumer {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
    const { durable, maxBatch, maxWaitMs } = options;
    const ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
    if (durable === '') throw new ChatError('bad_request', 'consume: durable name must not be empty');
    if (!(Number.isInteger(maxBatch) && maxBatch > 0)) throw new ChatError('bad_request', `consume: maxBatch must be a positive integer, got ${maxBatch}`);
    if (!(maxWaitMs >= 0)) throw new ChatError('bad_request', `consume: maxWaitMs must be >= 0, got ${maxWaitMs}`);
    if (!(ackWaitMs > 0)) throw new ChatError('bad_request', `consume: ackWaitMs must be > 0, got ${ackWaitMs}`);

    let group = this.#groups.get(durable);
    if (group === undefined) {
      // deliver-all: a new group starts at the oldest event still retained
      this.#groups.set(durable, group = new Group(this, durable, this.#nextSeq - this.#count()));
    }
    const consumer = new ConsumerInstance(group, handler, maxBatch, maxWaitMs, ackWaitMs);
    group.add(consumer);
    return consumer;
  }

  async ready(): Promise<void> {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#groups.values()].map((g) => g.close()));
    this.#groups.clear();
    this.#exact.clear();
    this.#wildcards.clear();
    this.#msgs = [];
    this.#head = 0;
    this.#rooms.clear();
    this.#dedupe.clear();
  }

  // ---- used by consumer groups ----

  get nextSeq(): number {
    return this.#nextSeq;
  }

  messageAt(seq: number): DurableMessage | undefined {
    const first = this.#nextSeq - this.#count();
    if (!(seq >= first && seq < this.#nextSeq)) return undefined;
    return this.#msgs[this.#head + (seq - first)];
  }

  /** A group settled an event: retention may have been waiting for it. */
  settled(): void {
    if (this.#pinned) this.#trim();
  }

  reportError(err: unknown, where: string): void {
    if (this.#onError === undefined) {
      process.emitWarning(`memory bus: ${where} threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      return;
    }
    try {
      this.#onError(err, where);
    } catch (reportErr) {
      process.emitWarning(`memory bus: onError threw while reporting ${where}: ${String(reportErr)}`);
    }
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
    const cutoff = this.#clock() - this.#windowMs;
    let floor = Infinity;
    for (const group of this.#groups.values()) floor = Math.min(floor, group.ackFloor());
    while (this.#head < this.#msgs.length) {
      const msg = this.#msgs[this.#head]!;
      if (this.#count() <= this.#maxMessages && msg.storedAt >= cutoff) break;
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

/** Matches a subject against pattern tokens without splitting it (no allocation). */
function matchesPattern(tokens: readonly string[], subject: string): boolean {
  let pos = 0;
  for (let i = 0; i < tokens.length; i++) {
    if (pos > subject.length) return false;
    const tok = tokens[i]!;
    if (tok === '>') return pos < subject.length;
    let end = subject.indexOf('.', pos);
    if (end === -1) end = subject.length;
    if (tok === '*') {
      if (end === pos) return false;
    } else if (end - pos !== tok.length || !subject.startsWith(tok, pos)) {
      return false;
    }
    pos = end + 1;
  }
  return pos === subject.length + 1;
}

/** An event delivered to a group and not yet acked or term'd. */
interface Outstanding {
  readonly seq: number;
  deliveryCount: number;
  /** The latest delivery handed out: only it may nak (an older one was already given up on). */
  current: MemoryDelivery | undefined;
  owner: ConsumerInstance | undefined;
  /** Monotonic time at which it goes back to the ready set. */
  dueAt: number;
  ready: boolean;
}

/** One durable consumer: the cursor and unacked events shared by every `consume` of that name. */
class Group {
  readonly #bus: MemoryBus;
  readonly name: string;
  /** Next sequence never delivered to this group. */
  #cursor: number;
  /** In first-delivery order, which is sequence order: the first key is the ack floor. */
  readonly #outstanding = new Map<number, Outstanding>();
  /** Redeliveries that are due. */
  readonly #ready = new Set<number>();
  readonly #instances: ConsumerInstance[] = [];
  #rr = 0;
  /** Monotonic time work became available while no batch took it. */
  #availableSince: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  constructor(bus: MemoryBus, name: string, cursor: number) {
    this.#bus = bus;
    this.name = name;
    this.#cursor = cursor;
  }

  add(consumer: ConsumerInstance): void {
    this.#instances.push(consumer);
    this.pump();
  }

  remove(consumer: ConsumerInstance): void {
    const i = this.#instances.indexOf(consumer);
    if (i !== -1) this.#instances.splice(i, 1);
  }

  ackFloor(): number {
    for (const seq of this.#outstanding.keys()) return seq;
    return this.#cursor;
  }

  pending(): number {
    return this.#outstanding.size + (this.#bus.nextSeq - this.#cursor);
  }

  #available(): number {
    return this.#ready.size + (this.#bus.nextSeq - this.#cursor);
  }

  /** Hands work to idle consumers: a full batch at once, a partial one after their maxWaitMs. */
  pump(): void {
    if (this.#available() === 0) {
      this.#availableSince = undefined;
      return;
    }
    const now = performance.now();
    let since = this.#availableSince ?? now;
    const n = this.#instances.length;
    for (let k = 0; k < n; k++) {
      const available = this.#available();
      if (available === 0) break;
      const i = (this.#rr + k) % n;
      const consumer = this.#instances[i]!;
      if (!consumer.idle) continue;
      const deadline = since + consumer.maxWaitMs;
      if (available >= consumer.maxBatch || now >= deadline) {
        this.#rr = i + 1;
        const batch = this.#take(consumer, now);
        if (batch.length !== 0) consumer.run(batch);
        // what is left waits for the next idle consumer from now on
        since = now;
      } else {
        consumer.wakeAt(deadline);
      }
    }
    this.#availableSince = this.#available() === 0 ? undefined : since;
  }

  /** Claims up to maxBatch events for one consumer, in stream order. */
  #take(consumer: ConsumerInstance, now: number): MemoryDelivery[] {
    const batch: MemoryDelivery[] = [];
    const max = consumer.maxBatch;
    if (this.#ready.size !== 0) {
      // redeliveries are all below the cursor, so they go first to keep the batch in stream order
      const seqs = [...this.#ready].sort((a, b) => a - b);
      for (const seq of seqs) {
        if (batch.length === max) break;
        this.#ready.delete(seq);
        const entry = this.#outstanding.get(seq)!;
        const msg = this.#bus.messageAt(seq);
        if (msg === undefined) {
          this.#outstanding.delete(seq);
          continue;
        }
        entry.ready = false;
        entry.deliveryCount++;
        batch.push(this.#handOut(entry, msg, consumer, now));
      }
    }
    while (batch.length < max && this.#cursor < this.#bus.nextSeq) {
      const seq = this.#cursor++;
      const msg = this.#bus.messageAt(seq);
      if (msg === undefined) continue;
      const entry: Outstanding = { seq, deliveryCount: 1, current: undefined, owner: undefined, dueAt: 0, ready: false };
      this.#outstanding.set(seq, entry);
      batch.push(this.#handOut(entry, msg, consumer, now));
    }
    return batch;
  }

  #handOut(entry: Outstanding, msg: DurableMessage, consumer: ConsumerInstance, now: number): MemoryDelivery {
    const delivery = new MemoryDelivery(this, msg, entry.deliveryCount);
    entry.current = delivery;
    entry.owner = consumer;
    entry.dueAt = now + consumer.ackWaitMs;
    this.#schedule(entry.dueAt);
    return delivery;
  }

  settle(delivery: MemoryDelivery): void {
    const entry = this.#outstanding.get(delivery.seq);
    if (entry === undefined) return;
    this.#outstanding.delete(delivery.seq);
    if (entry.ready) this.#ready.delete(delivery.seq);
    this.#bus.settled();
  }

  nak(delivery: MemoryDelivery, delayMs: number | undefined): void {
    const entry = this.#outstanding.get(delivery.seq);
    if (entry === undefined || entry.current !== delivery || entry.ready) return;
    this.#retryAt(entry, performance.now() + (delayMs ?? retryDelayMs(entry.deliveryCount)));
  }

  /** The handler of `batch` threw: its unsettled deliveries come back after the retry backoff. */
  failed(batch: MemoryDelivery[], consumer: ConsumerInstance): void {
    const now = performance.now();
    for (const delivery of batch) {
      const entry = this.#outstanding.get(delivery.seq);
      // a nak'd delivery keeps its own delay; one redelivered meanwhile belongs to someone else
      if (entry === undefined || entry.current !== delivery || entry.owner !== consumer) continue;
      this.#retryAt(entry, now + retryDelayMs(entry.deliveryCount));
    }
  }

  /** A consumer stopped: what it still holds goes to the others now rather than after ackWait. */
  release(consumer: ConsumerInstance): void {
    const now = performance.now();
    for (const entry of this.#outstanding.values()) {
      if (entry.owner === consumer && !entry.ready) this.#retryAt(entry, now);
    }
  }

  #retryAt(entry: Outstanding, at: number): void {
    entry.owner = undefined;
    entry.dueAt = at;
    this.#schedule(at);
  }

  #schedule(at: number): void {
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, at - performance.now()));
    // redelivery alone must not keep a process alive; whoever waits for it holds its own handle
    this.#timer.unref();
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    let due = false;
    for (const entry of this.#outstanding.values()) {
      if (entry.ready) continue;
      if (entry.dueAt <= now) {
        entry.ready = true;
        entry.owner = undefined;
        this.#ready.add(entry.seq);
        due = true;
      } else if (entry.dueAt < next) {
        next = entry.dueAt;
      }
    }
    if (next !== Infinity) this.#schedule(next);
    if (due) this.pump();
  }

  reportError(err: unknown): void {
    this.#bus.reportError(err, `consumer ${this.name}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.#instances.slice().map((c) => c.stop()));
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

class ConsumerInstance implements Consumer {
  readonly #group: Group;
  readonly #handler: BatchHandler;
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly ackWaitMs: number;
  #inflight: Promise<void> | undefined;
  #stopped = false;
  #wake: NodeJS.Timeout | undefined;
  #wakeAt = Infinity;

  constructor(group: Group, handler: BatchHandler, maxBatch: number, maxWaitMs: number, ackWaitMs: number) {
    this.#group = group;
    this.#handler = handler;
    this.maxBatch = maxBatch;
    this.maxWaitMs = maxWaitMs;
    this.ackWaitMs = ackWaitMs;
  }

  get idle(): boolean {
    return this.#inflight === undefined && !this.#stopped;
  }

  /** Asks the group again at `at` (monotonic ms), when a partial batch is due. */
  wakeAt(at: number): void {
    if (this.#wake !== undefined && this.#wakeAt <= at) return;
    this.#clearWake();
    this.#wakeAt = at;
    this.#wake = setTimeout(() => {
      this.#wake = undefined;
      this.#wakeAt = Infinity;
      this.#group.pump();
    }, Math.max(0, at - performance.now()));
  }

  #clearWake(): void {
    if (this.#wake !== undefined) clearTimeout(this.#wake);
    this.#wake = undefined;
    this.#wakeAt = Infinity;
  }

  run(batch: MemoryDelivery[]): void {
    this.#clearWake();
    this.#inflight = this.#handle(batch);
  }

  async #handle(batch: MemoryDelivery[]): Promise<void> {
    // the batch was claimed synchronously; the handler runs outside the publisher's stack
    await undefined;
    try {
      await this.#handler(batch);
    } catch (err) {
      this.#group.reportError(err);
      this.#group.failed(batch, this);
    }
    this.#inflight = undefined;
    if (this.#stopped) this.#group.release(this);
    this.#group.pump();
  }

  async pending(): Promise<number> {
    return this.#group.pending();
  }

  async stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#clearWake();
      this.#group.remove(this);
      if (this.#inflight === undefined) this.#group.release(this);
    }
    await this.#inflight;
  }
}

class MemoryDelivery implements Delivery {
  readonly seq: number;
  readonly roomId: string;
  readonly dedupeId: string;
  readonly storedAt: number;
  readonly data: Uint8Array;
  readonly headers: Record<string, string> | undefined;
  readonly deliveryCount: number;
  readonly #group: Group;

  constructor(group: Group, msg: DurableMessage, deliveryCount: number) {
    this.seq = msg.seq;
    this.roomId = msg.roomId;
    this.dedupeId = msg.dedupeId;
    this.storedAt = msg.storedAt;
    this.data = msg.data;
    this.headers = msg.headers;
    this.deliveryCount = deliveryCount;
    this.#group = group;
  }

  ack(): void {
    this.#group.settle(this);
  }

  nak(delayMs?: number): void {
    this.#group.nak(this, delayMs);
  }

  term(): void {
    this.#group.settle(this);
  }
}
