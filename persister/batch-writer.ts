import { subjects, type Bus, type Delivery } from '../shared/bus/index.ts';
import { encodeMsgpack, ChatError } from '../shared/protocol/index.ts';
import { redeliveryDelayMs } from '../shared/retry/index.ts';
import type { DurableEvent } from '../shared/domain/index.ts';
import type { Store } from '../shared/store/index.ts';
import { metrics, tracingEnabled, type Logger } from '../shared/telemetry/index.ts';
import { BatchTrace } from './batch-trace.ts';

/**
 * Writes one batch of durable events and settles every delivery: ack after the store confirmed,
 * nak with backoff while the store is unavailable, and dead-letter an event that still fails on
 * its own after `maxDeliver` deliveries (a poison event must not block its neighbours forever).
 */
export function createBatchWriter(deps: { bus: Bus; store: Store; maxDeliver: number; log: Logger }) {
  const { bus, store, maxDeliver, log } = deps;

  function deadLetter(d: Delivery, reason: string, err?: unknown): void {
    metrics.deadLetters.inc();
    log.error({ err, seq: d.seq, roomId: d.roomId, dedupeId: d.dedupeId, deliveries: d.deliveryCount, reason }, 'event dead-lettered');
    bus.publish(subjects.deadLetter, encodeMsgpack({ reason, seq: d.seq, roomId: d.roomId, dedupeId: d.dedupeId, data: d.data }));
    d.term();
  }

  return async function writeBatch(batch: Delivery[]): Promise<void> {
    const events: DurableEvent[] = [];
    const deliveries: Delivery[] = [];
    for (const d of batch) {
      let event: DurableEvent;
      try {
        event = d.decoded() as DurableEvent;
        if (!event || typeof event !== 'object' || typeof event.kind !== 'string') throw new Error('not an event');
      } catch (err) {
        deadLetter(d, 'undecodable', err);
        continue;
      }
      events.push(event);
      deliveries.push(d);
    }
    if (!events.length) return;

    const started = process.hrtime.bigint();
    const traced = tracingEnabled() ? BatchTrace.start(deliveries, store.kind) : undefined;
    try {
      if (traced) await traced.run(() => store.applyEvents(events));
      else await store.applyEvents(events);
    } catch (err) {
      // the batch's log lines below are written in its span, so they carry its trace id
      const settle = () => failed(err, events, deliveries);
      if (traced) await traced.run(settle).finally(() => traced.failed(err));
      else await settle();
      return;
    }
    traced?.committed(log);
    metrics.persistLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    metrics.persistBatchSize.observe(events.length);
    observeLag(deliveries);
    countByKind(events);
    for (const d of deliveries) d.ack();
  };

  async function failed(err: unknown, events: DurableEvent[], deliveries: Delivery[]): Promise<void> {
    metrics.persistFailures.inc();
    if (err instanceof ChatError && err.code === 'unavailable') {
      log.warn({ err, events: events.length }, 'store unavailable; batch will be retried');
      for (const d of deliveries) d.nak(redeliveryDelayMs(d.deliveryCount));
      return;
    }
    log.warn({ err, events: events.length }, 'batch rejected; writing its events one by one');
    await writeOneByOne(events, deliveries);
  }

  async function writeOneByOne(events: DurableEvent[], deliveries: Delivery[]): Promise<void> {
    for (let i = 0; i < events.length; i++) {
      const d = deliveries[i]!;
      try {
        await store.applyEvents([events[i]!]);
        metrics.persistedEvents.labels(events[i]!.kind).inc();
        observeLag([d]);
        d.ack();
      } catch (err) {
        if (d.deliveryCount >= maxDeliver) deadLetter(d, 'store rejected the event', err);
        else d.nak(redeliveryDelayMs(d.deliveryCount));
      }
    }
  }
}

/**
 * Stream time (the NATS server's clock) to commit time (ours): a skew between the two clocks shows
 * in these histograms, and a negative difference counts as 0.
 */
function observeLag(deliveries: Delivery[]): void {
  const now = Date.now();
  let oldest = now;
  for (const d of deliveries) {
    if (d.storedAt < oldest) oldest = d.storedAt;
    metrics.persistLag.observe(Math.max(0, now - d.storedAt) / 1000);
  }
  metrics.streamToStore.observe((now - oldest) / 1000);
}

/** persistedEvents by kind, one counter update per kind of the batch rather than per event. */
function countByKind(events: DurableEvent[]): void {
  let kind = events[0]!.kind;
  let n = 0;
  for (const e of events) {
    if (e.kind !== kind) {
      metrics.persistedEvents.labels(kind).inc(n);
      kind = e.kind;
      n = 0;
    }
    n++;
  }
  metrics.persistedEvents.labels(kind).inc(n);
}
