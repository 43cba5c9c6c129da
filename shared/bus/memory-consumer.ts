import { performance } from 'node:perf_hooks';
import type { BatchHandler, Consumer } from './bus.ts';
import type { ConsumerSettings } from './consume-options.ts';
import { InProgress } from './in-progress.ts';
import type { MemoryConsumerGroup, MemoryDelivery } from './memory-consumer-group.ts';

/** One `consume` of the memory bus: runs one batch at a time, handed to it by its group. */
export class MemoryConsumer implements Consumer {
  readonly #group: MemoryConsumerGroup;
  readonly #handler: BatchHandler;
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly ackWaitMs: number;
  #inflight: Promise<void> | undefined;
  #stopped = false;
  #wake: NodeJS.Timeout | undefined;
  #wakeAt = Infinity;

  constructor(group: MemoryConsumerGroup, settings: ConsumerSettings, handler: BatchHandler) {
    this.#group = group;
    this.#handler = handler;
    this.maxBatch = settings.maxBatch;
    this.maxWaitMs = settings.maxWaitMs;
    this.ackWaitMs = settings.ackWaitMs;
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
    // the batch's ack wait runs from the moment it was claimed, as the server's does from sending
    const held = new InProgress<MemoryDelivery>(this.ackWaitMs);
    for (const d of batch) held.hold(d);
    // the batch was claimed synchronously; the handler runs outside the publisher's stack
    await undefined;
    try {
      await this.#handler(batch);
    } catch (err) {
      this.#group.reportError(err);
      for (const d of batch) d.retryIfUnsettled();
    } finally {
      held.release();
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
