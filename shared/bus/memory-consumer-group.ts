import { performance } from 'node:perf_hooks';
import type { DurableMessage } from './bus.ts';
import { BusDelivery, type Settler } from './delivery.ts';
import type { MemoryConsumer } from './memory-consumer.ts';

/** What a group reads of the stream. */
export interface GroupStream {
  readonly nextSeq: number;
  messageAt(seq: number): DurableMessage | undefined;
  /** Called when the group settled an event: retention may have been waiting for it. */
  settled(): void;
}

export type MemoryDelivery = BusDelivery<MemoryConsumerGroup>;

/** One settler for every delivery of the memory bus: the group is the delivery's handle. */
const settleInGroup: Settler<MemoryConsumerGroup> = {
  ack: (group, delivery) => group.settle(delivery),
  nak: (group, delivery, delayMs) => group.nak(delivery, delayMs),
  term: (group, delivery) => group.settle(delivery),
  working: (group, delivery) => group.working(delivery),
};

/** An event delivered to a group and not yet acked or term'd. */
interface Outstanding {
  readonly seq: number;
  deliveryCount: number;
  /** The latest delivery handed out: only it may nak (an older one was already given up on). */
  current: MemoryDelivery | undefined;
  owner: MemoryConsumer | undefined;
  /** Monotonic time at which it goes back to the ready set. */
  dueAt: number;
  ready: boolean;
}

/** One durable consumer: the cursor and unacked events shared by every `consume` of that name. */
export class MemoryConsumerGroup {
  readonly #stream: GroupStream;
  readonly #report: (err: unknown, where: string) => void;
  readonly name: string;
  /** Next sequence never delivered to this group. */
  #cursor: number;
  /** In first-delivery order, which is sequence order: the first key is the ack floor. */
  readonly #outstanding = new Map<number, Outstanding>();
  /** Redeliveries that are due. */
  readonly #ready = new Set<number>();
  readonly #instances: MemoryConsumer[] = [];
  #rr = 0;
  /** Monotonic time work became available while no batch took it. */
  #availableSince: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  readonly #decode: (data: Uint8Array) => unknown;

  /**
   * `cursor`: the first sequence the group gets (deliver-all: the oldest retained event);
   * `decode`: how deliveries decode their data (the bus's, shared by its groups).
   */
  constructor(stream: GroupStream, name: string, cursor: number, report: (err: unknown, where: string) => void, decode: (data: Uint8Array) => unknown) {
    this.#stream = stream;
    this.#decode = decode;
    this.name = name;
    this.#cursor = cursor;
    this.#report = report;
  }

  add(consumer: MemoryConsumer): void {
    this.#instances.push(consumer);
    this.pump();
  }

  remove(consumer: MemoryConsumer): void {
    const i = this.#instances.indexOf(consumer);
    if (i !== -1) this.#instances.splice(i, 1);
  }

  ackFloor(): number {
    for (const seq of this.#outstanding.keys()) return seq;
    return this.#cursor;
  }

  pending(): number {
    return this.#outstanding.size + (this.#stream.nextSeq - this.#cursor);
  }

  #available(): number {
    return this.#ready.size + (this.#stream.nextSeq - this.#cursor);
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
  #take(consumer: MemoryConsumer, now: number): MemoryDelivery[] {
    const batch: MemoryDelivery[] = [];
    const max = consumer.maxBatch;
    if (this.#ready.size !== 0) {
      // redeliveries are all below the cursor, so they go first to keep the batch in stream order
      const seqs = [...this.#ready].sort((a, b) => a - b);
      for (const seq of seqs) {
        if (batch.length === max) break;
        this.#ready.delete(seq);
        const entry = this.#outstanding.get(seq)!;
        const msg = this.#stream.messageAt(seq);
        if (msg === undefined) {
          this.#outstanding.delete(seq);
          continue;
        }
        entry.ready = false;
        entry.deliveryCount++;
        batch.push(this.#handOut(entry, msg, consumer, now));
      }
    }
    while (batch.length < max && this.#cursor < this.#stream.nextSeq) {
      const seq = this.#cursor++;
      const msg = this.#stream.messageAt(seq);
      if (msg === undefined) continue;
      const entry: Outstanding = { seq, deliveryCount: 1, current: undefined, owner: undefined, dueAt: 0, ready: false };
      this.#outstanding.set(seq, entry);
      batch.push(this.#handOut(entry, msg, consumer, now));
    }
    return batch;
  }

  #handOut(entry: Outstanding, msg: DurableMessage, consumer: MemoryConsumer, now: number): MemoryDelivery {
    const delivery = new BusDelivery(msg, entry.deliveryCount, settleInGroup, this, this.#decode);
    entry.current = delivery;
    entry.owner = consumer;
    entry.dueAt = now + consumer.ackWaitMs;
    this.#schedule(entry.dueAt);
    return delivery;
  }

  /** Ack or term: the event leaves the group. */
  settle(delivery: MemoryDelivery): void {
    const entry = this.#outstanding.get(delivery.seq);
    if (entry === undefined) return;
    this.#outstanding.delete(delivery.seq);
    if (entry.ready) this.#ready.delete(delivery.seq);
    this.#stream.settled();
  }

  /** Also how a throwing handler's unsettled events come back (BusDelivery.retryIfUnsettled). */
  nak(delivery: MemoryDelivery, delayMs: number): void {
    const entry = this.#outstanding.get(delivery.seq);
    // one redelivered meanwhile (or due for it) belongs to someone else
    if (entry === undefined || entry.current !== delivery || entry.ready) return;
    this.#retryAt(entry, performance.now() + delayMs);
  }

  /** The delivery is still being worked on by its consumer: its ack wait starts again. */
  working(delivery: MemoryDelivery): void {
    const entry = this.#outstanding.get(delivery.seq);
    // given up on (nak'd, released, due again) or handed out anew: no longer this delivery's to keep
    if (entry === undefined || entry.current !== delivery || entry.ready || entry.owner === undefined) return;
    // the timer set for the old deadline finds nothing due and moves on to the next one
    entry.dueAt = performance.now() + entry.owner.ackWaitMs;
  }

  /** A consumer stopped: what it still holds goes to the others now rather than after ackWait. */
  release(consumer: MemoryConsumer): void {
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
    this.#report(err, `consumer ${this.name}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.#instances.slice().map((c) => c.stop()));
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
