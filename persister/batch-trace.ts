import type { Delivery } from '../shared/bus/index.ts';
import { context, contextFromHeaders, SpanKind, SpanStatusCode, trace, tracer, type Link, type Logger, type Span } from '../shared/telemetry/index.ts';

interface TracedEvent {
  delivery: Delivery;
  /** `chat.persist`: the event's stay with the persister, a child of its publish span. */
  persist: Span;
  /** `chat.store.write`: the store write that committed it, under `persist`. */
  write: Span;
}

/**
 * The spans of one batch. A batch holds events of many traces, so it gets both:
 * - its own span `chat.persist.batch` (a root), linked to every traced event's context (up to the
 *   SDK's link limit, 128 by default), active while the batch is written, so the batch's log lines
 *   carry its trace id and a trace UI leads from the batch to the messages;
 * - for each traced event, a child span per event: `chat.persist` under the sender's publish span
 *   and `chat.store.write` under it, covering the write that committed the event. So each
 *   message's own trace ends with its store write (the same write shows in the trace of every
 *   event of the batch), and the line the persister logs for it carries that trace's id.
 * Links alone would leave the store write out of every message's trace; a child per event costs
 * two spans per traced event, and only while tracing is on (sampling keeps it bounded).
 */
export class BatchTrace {
  readonly #batch: Span;
  readonly #events: TracedEvent[];

  private constructor(batch: Span, events: TracedEvent[]) {
    this.#batch = batch;
    this.#events = events;
  }

  static start(deliveries: Delivery[], dbSystem: string): BatchTrace {
    const links: Link[] = [];
    const parents = deliveries.map((d) => {
      const parent = contextFromHeaders(d.headers);
      const sc = parent && trace.getSpanContext(parent);
      if (sc) links.push({ context: sc });
      return parent;
    });
    const batch = tracer.startSpan('chat.persist.batch', {
      kind: SpanKind.INTERNAL, root: true, links,
      attributes: { 'chat.batch_size': deliveries.length, 'chat.traced_events': links.length, 'db.system': dbSystem },
    });
    const batchLink: Link = { context: batch.spanContext() };
    const events: TracedEvent[] = [];
    deliveries.forEach((d, i) => {
      const parent = parents[i];
      if (parent === undefined) return;
      const persist = tracer.startSpan('chat.persist', {
        kind: SpanKind.CONSUMER, links: [batchLink],
        attributes: { 'chat.room_id': d.roomId, 'chat.stream_seq': d.seq, 'chat.delivery_count': d.deliveryCount, 'chat.batch_size': deliveries.length },
      }, parent);
      const write = tracer.startSpan('chat.store.write', {
        kind: SpanKind.CLIENT, attributes: { 'db.system': dbSystem, 'db.operation.name': 'applyEvents', 'chat.batch_size': deliveries.length },
      }, trace.setSpan(parent, persist));
      events.push({ delivery: d, persist, write });
    });
    return new BatchTrace(batch, events);
  }

  /** Runs the batch's work with its span active. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return context.with(trace.setSpan(context.active(), this.#batch), fn);
  }

  /** The batch was committed: ends every span, logging (debug) each event in its own trace. */
  committed(log: Logger): void {
    const debug = log.isLevelEnabled('debug');
    for (const e of this.#events) {
      e.write.end();
      if (debug) {
        context.with(trace.setSpan(context.active(), e.persist), () => {
          log.debug({ roomId: e.delivery.roomId, seq: e.delivery.seq }, 'event persisted');
        });
      }
      e.persist.end();
    }
    this.#batch.end();
  }

  /** The batch write failed (it is retried or split): every span ends with the error. */
  failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    for (const e of this.#events) {
      e.write.recordException(err as Error);
      e.write.setStatus({ code: SpanStatusCode.ERROR, message });
      e.write.end();
      e.persist.setStatus({ code: SpanStatusCode.ERROR, message });
      e.persist.end();
    }
    this.#batch.recordException(err as Error);
    this.#batch.setStatus({ code: SpanStatusCode.ERROR, message });
    this.#batch.end();
  }
}
