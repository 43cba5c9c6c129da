import type { DurableMessage } from './bus.ts';

/**
 * The in-process stream's journal: what makes an acknowledgement of the memory bus mean stored on
 * disk, as a JetStream PubAck does, so that a crash of the process (kill -9, OOM, a fault) loses no
 * acknowledged event, and neither the stream's sequences nor its dedupe window restart with it.
 *
 * Contract an adapter keeps:
 * - `write` stores its events (in sequence order, each after every event of earlier writes) and
 *   the marks, atomically: when it resolves all of it survives a crash of the process; when it
 *   rejects none of the events does (the caller forgets them and fails their publishes). Calls
 *   never overlap: the next write starts after the previous one settled.
 * - Events below `marks.forgetBelow` may be dropped (every consumer group settled them and their
 *   dedupeIds have expired); the others stay until a later write says otherwise.
 * - `recover` returns, in sequence order, every event not yet forgotten, with the last marks
 *   written. It is called once, before the first write.
 * - How durable "survives" is beyond the process (power loss) is the adapter's setting, stated
 *   by it (SQLite: `synchronous`).
 */
export interface StreamJournal {
  readonly kind: 'sqlite';
  recover(): JournalState;
  write(events: readonly DurableMessage[], marks: JournalMarks): Promise<void>;
  /** Closes the journal; nothing may be written after. */
  close(): Promise<void>;
}

export interface JournalMarks {
  /** The sequence the stream gives its next event (sequences never go back, even when every event was forgotten). */
  nextSeq: number;
  /** Every consumer group has settled the events below it: after a restart they are not delivered again. */
  ackedBelow: number;
  /** Events below it are no longer needed (settled, and their dedupeIds expired). */
  forgetBelow: number;
}

export interface JournalState {
  /** The events kept, in sequence order, contiguous. */
  events: DurableMessage[];
  /** 1 and 1 for a journal never written. */
  nextSeq: number;
  ackedBelow: number;
}
