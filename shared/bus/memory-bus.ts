import { ChatError } from '../protocol/errors.ts';
import {
  subjects, type BatchHandler, type Bus, type ConsumeOptions, type Consumer, type DurableAck, type DurableMessage, type LiveHandler, type SubscribeOptions,
  type LiveWatcher, type Subscription,
} from './bus.ts';
import { DEFAULT_DEDUPE_WINDOW_SEC } from './bus-defaults.ts';
import { consumerSettings } from './consume-options.ts';
import { checkDurableArguments } from './durable-arguments.ts';
import { MemoryConsumer } from './memory-consumer.ts';
import { MemoryConsumerGroup } from './memory-consumer-group.ts';
import { MemoryLivePlane } from './memory-live.ts';
import { MemoryStream } from './memory-stream.ts';

/**
 * The in-process bus of embedded mode: both planes in one process, nothing survives a restart.
 *
 * Differences from NATS that callers may notice (none of them is promised by the port):
 * - live handlers run synchronously inside `publish`; a publish made from inside a handler is
 *   queued and delivered after the current one, so every subscriber still sees publish order;
 * - the stream's republish of a stored event runs inside `publishDurable`, before it resolves
 *   (on NATS it may reach subscribers before or after the publisher's ack);
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

export function createMemoryBus(cfg: MemoryBusConfig, opts: MemoryBusOptions = {}): Bus {
  return new MemoryBus(cfg, opts);
}

/** Assembles the live plane, the stream and its consumer groups. */
class MemoryBus implements Bus {
  readonly kind = 'memory' as const;

  readonly #live: MemoryLivePlane;
  readonly #stream: MemoryStream;
  readonly #groups = new Map<string, MemoryConsumerGroup>();
  readonly #report: (err: unknown, where: string) => void;
  #closed = false;

  constructor(cfg: MemoryBusConfig, opts: MemoryBusOptions) {
    if (!(cfg.recoveryWindowSec > 0)) throw new ChatError('bad_request', `memory bus: recoveryWindowSec must be > 0, got ${cfg.recoveryWindowSec}`);
    if (!(Number.isInteger(cfg.maxMessages) && cfg.maxMessages > 0)) {
      throw new ChatError('bad_request', `memory bus: maxMessages must be a positive integer, got ${cfg.maxMessages}`);
    }
    this.#report = errorReporter(opts.onError);
    this.#live = new MemoryLivePlane(this.#report);
    this.#stream = new MemoryStream(
      { windowMs: cfg.recoveryWindowSec * 1000, maxMessages: cfg.maxMessages, dedupeWindowMs: opts.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_SEC * 1000 },
      opts.now ?? Date.now,
      () => this.#ackFloor(),
    );
  }

  publish(subject: string, payload: Uint8Array): void {
    if (this.#closed) return;
    this.#live.publish(subject, payload, undefined);
  }

  subscribe(subject: string, handler: LiveHandler, options?: SubscribeOptions): Subscription {
    return this.#live.subscribe(subject, handler, options?.queue);
  }

  /** In-process delivery has no connection to lose: the watcher is never called. */
  watchLive(_watcher: LiveWatcher): Subscription {
    return { unsubscribe: () => {} };
  }

  async publishDurable(roomId: string, dedupeId: string, payload: Uint8Array, headers?: Record<string, string>): Promise<DurableAck> {
    this.#checkOpen();
    checkDurableArguments(roomId, dedupeId);
    const { seq, duplicate, data } = this.#stream.append(roomId, dedupeId, payload, headers);
    if (duplicate) return { seq, duplicate };
    for (const group of this.#groups.values()) group.pump();
    // JetStream RePublish: the stored copy, announced once, with its sequence
    this.#live.publish(subjects.roomEvents(roomId), data!, seq);
    return { seq, duplicate };
  }

  async getDurable(seq: number): Promise<DurableMessage | undefined> {
    this.#checkOpen();
    return this.#stream.get(seq);
  }

  async replay(roomId: string, sinceMs: number, onEvent: (msg: DurableMessage) => void): Promise<{ complete: boolean; lastSeq: number }> {
    this.#checkOpen();
    return this.#stream.replay(roomId, sinceMs, onEvent);
  }

  consume(options: ConsumeOptions, handler: BatchHandler): Consumer {
    this.#checkOpen();
    const settings = consumerSettings(options);
    let group = this.#groups.get(settings.durable);
    if (group === undefined) {
      // deliver-all: a new group starts at the oldest event still retained
      group = new MemoryConsumerGroup(this.#stream, settings.durable, this.#stream.firstSeq, this.#report);
      this.#groups.set(settings.durable, group);
    }
    const consumer = new MemoryConsumer(group, settings, handler);
    group.add(consumer);
    return consumer;
  }

  async ready(): Promise<void> {
    this.#checkOpen();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#groups.values()].map((g) => g.close()));
    this.#groups.clear();
    this.#live.clear();
    this.#stream.clear();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
  }

  /** The lowest sequence some group has not settled: retention stops there. */
  #ackFloor(): number {
    let floor = Infinity;
    for (const group of this.#groups.values()) floor = Math.min(floor, group.ackFloor());
    return floor;
  }
}

function errorReporter(onError: MemoryBusOptions['onError']): (err: unknown, where: string) => void {
  if (onError === undefined) {
    return (err, where) => process.emitWarning(`memory bus: ${where} threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  }
  return (err, where) => {
    try {
      onError(err, where);
    } catch (reportErr) {
      process.emitWarning(`memory bus: onError threw while reporting ${where}: ${String(reportErr)}`);
    }
  };
}
