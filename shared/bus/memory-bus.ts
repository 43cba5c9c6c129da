import { ChatError } from '../protocol/errors.ts';
import {
  subjects, type BatchHandler, type Bus, type ConsumeOptions, type Consumer, type DurableAck, type DurableMessage, type ReplayResult, type LiveHandler, type SubscribeOptions,
  type LiveWatcher, type Subscription,
} from './bus.ts';
import { DEFAULT_DEDUPE_WINDOW_SEC, DEFAULT_MEMORY_STREAM_MAX_BYTES } from './bus-defaults.ts';
import { consumerSettings } from './consume-options.ts';
import { DecodeCache } from './decode-cache.ts';
import { checkDurableArguments } from './durable-arguments.ts';
import { MemoryConsumer } from './memory-consumer.ts';
import { MemoryConsumerGroup } from './memory-consumer-group.ts';
import { GroupCommit } from './group-commit.ts';
import type { JournalMarks, StreamJournal } from './journal.ts';
import { MemoryLivePlane } from './memory-live.ts';
import { MemoryStream } from './memory-stream.ts';

/**
 * The in-process bus of embedded mode: both planes in one process. Without a journal nothing
 * survives a restart; with one (`journal`, SQLite in embedded mode) the stream does: a durable
 * publish resolves only once the journal stored it (group commit: one write per event-loop turn),
 * and a new bus on the same journal takes the stream back (its events, sequences and dedupe
 * window) and hands consumer groups what they had not settled.
 *
 * Differences from NATS that callers may notice (none of them is promised by the port):
 * - live handlers run synchronously inside `publish`; a publish made from inside a handler is
 *   queued and delivered after the current one, so every subscriber still sees publish order;
 * - the stream's republish of a stored event runs inside `publishDurable`, before it resolves
 *   (on NATS it may reach subscribers before or after the publisher's ack);
 * - live payloads are shared, not copied: subscribers must not mutate them;
 * - the stream never drops an event some consumer group has not acked or term'd yet. A group
 *   that stops acking makes the stream grow past `maxMessages` and the recovery window, up to
 *   `maxBytes`: from there publishes fail with `unavailable` until it acks again (not losing
 *   events, and not growing without bound either); the persister always acks or terms.
 */
export interface MemoryBusConfig {
  recoveryWindowSec: number;
  maxMessages: number;
  /** Bytes of events the stream holds at most (see MemoryStreamLimits.maxBytes); default DEFAULT_MEMORY_STREAM_MAX_BYTES. */
  maxBytes?: number;
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
  /**
   * Makes the stream survive a crash of the process (see StreamJournal). Recovered at once; the
   * bus owns it from then on and closes it on close.
   */
  journal?: StreamJournal;
}

/** The memory bus, and what it holds (for tests and metrics). */
export interface MemoryBus extends Bus {
  readonly kind: 'memory';
  /** Events the stream holds, and their bytes as counted against maxBytes. */
  buffered(): { bytes: number; events: number };
}

export function createMemoryBus(cfg: MemoryBusConfig, opts: MemoryBusOptions = {}): MemoryBus {
  return new InProcessBus(cfg, opts);
}

/** Assembles the live plane, the stream, its consumer groups and its journal. */
class InProcessBus implements MemoryBus {
  readonly kind = 'memory' as const;

  readonly #live: MemoryLivePlane;
  readonly #stream: MemoryStream;
  readonly #groups = new Map<string, MemoryConsumerGroup>();
  readonly #report: (err: unknown, where: string) => void;
  /** Every group's deliveries decode through it, so an event is decoded once for all of them. */
  readonly #decodeCache = new DecodeCache();
  readonly #decoded = (data: Uint8Array): unknown => this.#decodeCache.decode(data);
  readonly #commits: GroupCommit | undefined;
  readonly #journaled: boolean;
  readonly #now: () => number;
  /** Where consumer groups start after a restart: every group had settled what is below. */
  #recoveredAckedBelow = 1;
  #closed = false;

  constructor(cfg: MemoryBusConfig, opts: MemoryBusOptions) {
    if (!(cfg.recoveryWindowSec > 0)) throw new ChatError('bad_request', `memory bus: recoveryWindowSec must be > 0, got ${cfg.recoveryWindowSec}`);
    if (!(Number.isInteger(cfg.maxMessages) && cfg.maxMessages > 0)) {
      throw new ChatError('bad_request', `memory bus: maxMessages must be a positive integer, got ${cfg.maxMessages}`);
    }
    const maxBytes = cfg.maxBytes ?? DEFAULT_MEMORY_STREAM_MAX_BYTES;
    if (!(Number.isInteger(maxBytes) && maxBytes > 0)) throw new ChatError('bad_request', `memory bus: maxBytes must be a positive integer, got ${maxBytes}`);
    this.#report = errorReporter(opts.onError);
    this.#now = opts.now ?? Date.now;
    this.#live = new MemoryLivePlane(this.#report);
    this.#stream = new MemoryStream(
      { windowMs: cfg.recoveryWindowSec * 1000, maxMessages: cfg.maxMessages, dedupeWindowMs: opts.dedupeWindowMs ?? DEFAULT_DEDUPE_WINDOW_SEC * 1000, maxBytes },
      this.#now,
      () => this.#ackFloor(),
    );
    const journal = opts.journal;
    this.#journaled = journal !== undefined;
    if (journal !== undefined) {
      const recovered = journal.recover();
      // first: retention must keep what the first group will want, from the restore on
      this.#recoveredAckedBelow = recovered.ackedBelow;
      this.#stream.restore(recovered.events, recovered.nextSeq);
      this.#commits = new GroupCommit(journal, {
        marks: () => this.#journalMarks(),
        durable: (events) => {
          this.#stream.commit(events.at(-1)!.seq);
          for (const group of this.#groups.values()) group.pump();
          // JetStream RePublish: the stored copy, announced once, with its sequence
          for (const msg of events) this.#live.publish(subjects.roomEvents(msg.roomId), msg.data, msg.seq);
        },
        lost: (seq) => this.#stream.rollback(seq),
      }, this.#report);
    }
  }

  buffered(): { bytes: number; events: number } {
    return this.#stream.buffered;
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
    const { seq, duplicate, msg } = this.#stream.append(roomId, dedupeId, payload, headers);
    if (this.#commits !== undefined) {
      // acknowledged only once stored: a retry of a pending event waits for the first one's write
      await (duplicate ? this.#commits.durable(seq) : this.#commits.add(msg!));
      return { seq, duplicate };
    }
    if (duplicate) return { seq, duplicate };
    this.#stream.commit(seq);
    for (const group of this.#groups.values()) group.pump();
    // JetStream RePublish: the stored copy, announced once, with its sequence
    this.#live.publish(subjects.roomEvents(roomId), msg!.data, seq);
    return { seq, duplicate };
  }

  async getDurable(seq: number): Promise<DurableMessage | undefined> {
    this.#checkOpen();
    return this.#stream.get(seq);
  }

  async replay(roomId: string, sinceMs: number, onEvent: (msg: DurableMessage) => void, limit?: number): Promise<ReplayResult> {
    this.#checkOpen();
    return this.#stream.replay(roomId, sinceMs, onEvent, limit);
  }

  consume(options: ConsumeOptions, handler: BatchHandler): Consumer {
    this.#checkOpen();
    const settings = consumerSettings(options);
    let group = this.#groups.get(settings.durable);
    if (group === undefined) {
      // deliver-all: a new group starts at the oldest event still retained (after a restart, at
      // the first one some group had not settled: the journal keeps older ones only for dedupe)
      const start = Math.min(Math.max(this.#stream.firstSeq, this.#recoveredAckedBelow), this.#stream.nextSeq);
      group = new MemoryConsumerGroup(this.#stream, settings.durable, start, this.#report, this.#decoded);
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
    await this.#commits?.close();
    this.#groups.clear();
    this.#live.clear();
    this.#stream.clear();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
  }

  /** The lowest sequence some group has not settled: retention stops there. */
  #ackFloor(): number {
    // journaled, before any group exists: what no group of the last process had settled stays
    if (this.#groups.size === 0 && this.#journaled) return this.#recoveredAckedBelow;
    let floor = Infinity;
    for (const group of this.#groups.values()) floor = Math.min(floor, group.ackFloor());
    return floor;
  }

  /**
   * The journal keeps what some group has not settled, and, for dedupe after a restart, settled
   * events whose dedupeIds are remembered, as long as the stream itself still holds them: a retry
   * is answered with the first event only while it is held, so keeping more would only make a
   * restart hold more than the running process did (rate x dedupe window, where the stream's
   * limits bound it). With no group yet (a restart, before the persister consumes), nothing newer
   * than what the last process had settled may be forgotten: the first group will want it.
   */
  #journalMarks(): JournalMarks {
    const ackedBelow = this.#groups.size === 0 ? this.#recoveredAckedBelow : Math.min(this.#ackFloor(), this.#stream.nextSeq);
    const dedupeFrom = Math.max(this.#stream.oldestDedupeSeq(this.#now()), this.#stream.firstSeq);
    return { nextSeq: this.#stream.nextSeq, ackedBelow, forgetBelow: Math.min(ackedBelow, dedupeFrom) };
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
