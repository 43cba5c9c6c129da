import { ChatError } from '../protocol/errors.ts';
import type { DurableMessage } from './bus.ts';
import type { JournalMarks, StreamJournal } from './journal.ts';

/** How often marks alone are written while no event is: the journal then forgets what the persister stored meanwhile. */
const MARKS_INTERVAL_MS = 1000;

/** Appends waiting for one journal write, and their outcome. */
interface Batch {
  readonly events: DurableMessage[];
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

export interface GroupCommitHooks {
  /** The marks to write with a batch (read at write time). */
  marks(): JournalMarks;
  /** The batch is durable: make it visible (commit, pump, republish), in sequence order. */
  durable(events: readonly DurableMessage[]): void;
  /** A write failed: forget the events from `seq` on (every pending one). */
  lost(seq: number): void;
}

/**
 * Group commit for the memory stream's journal: every append of one event-loop turn (and those made
 * while a write is under way) goes to the journal in one write, and each append's promise resolves
 * once that write is durable. One transaction per turn, never one per event: under load a turn
 * holds many appends, so the journal's cost per event falls as the load grows.
 */
export class GroupCommit {
  readonly #journal: StreamJournal;
  readonly #hooks: GroupCommitHooks;
  #pending: Batch | undefined;
  #writing: Batch | undefined;
  #scheduled = false;
  #lastMarks: JournalMarks | undefined;
  readonly #marksTimer: NodeJS.Timeout;
  #closed = false;

  constructor(journal: StreamJournal, hooks: GroupCommitHooks, onError: (err: unknown, where: string) => void) {
    this.#journal = journal;
    this.#hooks = hooks;
    this.#marksTimer = setInterval(() => {
      if (this.#pending !== undefined || this.#writing !== undefined || this.#closed) return;
      if (sameMarks(hooks.marks(), this.#lastMarks)) return;
      // an empty batch: the marks go through the same single writer as events do
      const batch = this.#pending = newBatch();
      void this.#flush();
      batch.done.catch((err: unknown) => onError(err, 'stream journal (marks)'));
    }, MARKS_INTERVAL_MS);
    this.#marksTimer.unref();
  }

  /** Queues a stored (pending) event; resolves once it is durable, rejects with `unavailable` if the write failed. */
  add(msg: DurableMessage): Promise<void> {
    let batch = this.#pending;
    if (batch === undefined) this.#pending = batch = newBatch();
    batch.events.push(msg);
    if (!this.#scheduled && this.#writing === undefined) {
      this.#scheduled = true;
      // after this turn's I/O callbacks: every frame read in this turn joins the batch
      setImmediate(() => this.#flush());
    }
    return batch.done;
  }

  /** Resolves once the event at `seq` is durable (at once if it is already). */
  durable(seq: number): Promise<void> {
    for (const batch of [this.#writing, this.#pending]) {
      if (batch !== undefined && batch.events.length !== 0 && seq >= batch.events[0]!.seq && seq <= batch.events.at(-1)!.seq) return batch.done;
    }
    return Promise.resolve();
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch === undefined || this.#writing !== undefined) return;
    this.#pending = undefined;
    this.#writing = batch;
    const marks = this.#hooks.marks();
    // the marks' nextSeq is what is visible; this batch, not yet visible, goes past it
    if (batch.events.length !== 0) marks.nextSeq = Math.max(marks.nextSeq, batch.events.at(-1)!.seq + 1);
    try {
      await this.#journal.write(batch.events, marks);
    } catch (err) {
      this.#writing = undefined;
      // whatever was appended after this batch is behind it in the journal's order: it goes too
      const later = this.#pending as Batch | undefined;
      this.#pending = undefined;
      const first = batch.events[0] ?? later?.events[0];
      if (first !== undefined) this.#hooks.lost(first.seq);
      const error = new ChatError('unavailable', 'the stream journal could not be written; retry', { cause: err });
      batch.reject(error);
      later?.reject(error);
      return;
    }
    this.#lastMarks = marks;
    this.#writing = undefined;
    if (batch.events.length !== 0) this.#hooks.durable(batch.events);
    batch.resolve();
    if (this.#pending !== undefined) await this.#flush();
  }

  /** Writes what is pending and the latest marks; nothing is written after. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#marksTimer);
    while (this.#writing !== undefined || this.#pending !== undefined) {
      // a failed write is its publishers' error (they hold the same promise); close goes on
      await (this.#writing ?? this.#pending)!.done.catch(() => undefined);
      if (this.#pending !== undefined && this.#writing === undefined) await this.#flush();
    }
    await this.#journal.write([], this.#hooks.marks());
    await this.#journal.close();
  }
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  return { events: [], done, resolve, reject };
}

function sameMarks(a: JournalMarks, b: JournalMarks | undefined): boolean {
  return b !== undefined && a.nextSeq === b.nextSeq && a.ackedBelow === b.ackedBelow && a.forgetBelow === b.forgetBelow;
}
