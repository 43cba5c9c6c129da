import type { Bus, Consumer } from '../shared/bus/index.ts';
import type { Store } from '../shared/store/index.ts';
import type { PersistConfig } from '../shared/config/index.ts';
import { metrics, refreshOnScrape, type Logger } from '../shared/telemetry/index.ts';
import { createBatchWriter } from './batch-writer.ts';

export interface PersisterDeps {
  bus: Bus;
  store: Store;
  persist: PersistConfig;
  log: Logger;
  /** Durable consumer name; every persister process of a deployment uses the same one. */
  durable?: string;
}

export interface Persister {
  /** Events stored in the stream and not yet written (consumer lag). */
  pending(): Promise<number>;
  /**
   * Waits until the stream holds nothing unwritten (or the timeout), then stops consuming: for the
   * embedded mode, whose in-process stream outlives the process only in its journal (when on).
   */
  flushAndStop(timeoutMs?: number): Promise<{ flushed: boolean; pending: number }>;
  /** Waits until the stream holds nothing unwritten (or the timeout); goes on consuming. */
  caughtUp(timeoutMs?: number): Promise<{ flushed: boolean; pending: number }>;
  /**
   * Stops pulling events, writes the batch being written, and hands back at once what it held but
   * had not started (the other persisters get it; on NATS it stays in the stream otherwise). For
   * a persister process on SIGTERM: under load the stream is never empty, so waiting for it would
   * only hold the shutdown.
   */
  stop(): Promise<void>;
}

/**
 * The persister: a durable consumer that writes stream events to the store in batches of up to
 * PERSIST_BATCH_MAX, handed over every PERSIST_INTERVAL_MS (or sooner when full), acking only
 * after the store confirmed.
 */
export function startPersister(deps: PersisterDeps): Persister {
  const { bus, store, persist, log } = deps;
  const writeBatch = createBatchWriter({ bus, store, maxDeliver: persist.maxDeliver, log });
  const consumer: Consumer = bus.consume(
    { durable: deps.durable ?? 'persister', maxBatch: persist.batchMax, maxWaitMs: persist.intervalMs, ...(persist.ackWaitMs ? { ackWaitMs: persist.ackWaitMs } : {}) },
    writeBatch,
  );
  const stopLag = refreshOnScrape(() => consumer.pending().then(
    (n) => { metrics.consumerPending.set(n); },
    (err) => { log.warn({ err }, 'consumer lag unknown'); },
  ));

  async function caughtUp(timeoutMs: number): Promise<{ flushed: boolean; pending: number }> {
    const deadline = Date.now() + timeoutMs;
    let pending = await consumer.pending();
    while (pending > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, persist.intervalMs)));
      pending = await consumer.pending();
    }
    return { flushed: pending === 0, pending };
  }

  return {
    pending: () => consumer.pending(),
    caughtUp: (timeoutMs = 10_000) => caughtUp(timeoutMs),
    async flushAndStop(timeoutMs = 10_000) {
      const { pending } = await caughtUp(timeoutMs);
      stopLag();
      await consumer.stop();
      if (pending > 0) log.warn({ pending }, 'persister stopped with events unwritten; they stay in the stream');
      return { flushed: pending === 0, pending };
    },
    async stop() {
      stopLag();
      await consumer.stop();
    },
  };
}
