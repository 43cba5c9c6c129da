import type { Test } from 'tap';
import type { DurableMessage } from './bus.ts';
import type { StreamJournal } from './journal.ts';

/** A journal, and a way to open another on the same storage (as the next process does). */
export interface JournalFixture {
  journal: StreamJournal;
  /** A new journal on the same storage; the first is left as a crash leaves it (not closed). */
  reopen(): StreamJournal;
}

const enc = new TextEncoder();

function event(seq: number, extra: Partial<DurableMessage> = {}): DurableMessage {
  return { seq, roomId: `room${seq % 2}`, dedupeId: `d${seq}`, storedAt: 1_700_000_000_000 + seq, data: enc.encode(`payload ${seq}`), headers: undefined, ...extra };
}

/** The StreamJournal contract (journal.ts), run against each adapter. */
export function runJournalContract(t: Test, opts: { name: string; open: (t: Test) => JournalFixture }): void {
  const { name } = opts;

  t.test(`journal - a new journal recovers nothing, at sequence 1 (${name})`, async (t) => {
    const { journal } = opts.open(t);
    t.same(journal.recover(), { events: [], nextSeq: 1, ackedBelow: 1 });
    await journal.close();
  });

  t.test(`journal - what a write resolved is recovered by the next journal, exactly (${name})`, async (t) => {
    const { journal, reopen } = opts.open(t);
    journal.recover();
    await journal.write([event(1), event(2, { headers: { traceparent: '00-abc-def-01' } })], { nextSeq: 3, ackedBelow: 1, forgetBelow: 1 });
    await journal.write([event(3, { data: new Uint8Array([0, 255, 1]) })], { nextSeq: 4, ackedBelow: 2, forgetBelow: 1 });
    const next = reopen();
    t.teardown(() => next.close());
    const state = next.recover();
    t.same(state.events.map((e) => e.seq), [1, 2, 3]);
    t.same(state.events.map((e) => [e.roomId, e.dedupeId, e.storedAt]), [1, 2, 3].map((s) => [`room${s % 2}`, `d${s}`, 1_700_000_000_000 + s]));
    t.same(state.events[1]!.headers, { traceparent: '00-abc-def-01' }, 'headers kept');
    t.equal(state.events[0]!.headers, undefined, 'no headers stays none');
    t.same([...state.events[2]!.data], [0, 255, 1], 'payload bytes kept');
    t.equal(state.nextSeq, 4);
    t.equal(state.ackedBelow, 2);
  });

  t.test(`journal - forgotten events are gone, and the sequence survives them (${name})`, async (t) => {
    const { journal, reopen } = opts.open(t);
    journal.recover();
    await journal.write([event(1), event(2), event(3)], { nextSeq: 4, ackedBelow: 1, forgetBelow: 1 });
    await journal.write([], { nextSeq: 4, ackedBelow: 4, forgetBelow: 3 });
    let next = reopen();
    let state = next.recover();
    t.same(state.events.map((e) => e.seq), [3], 'below forgetBelow is gone');
    t.equal(state.ackedBelow, 4, 'marks written without events are kept');
    await next.write([], { nextSeq: 4, ackedBelow: 4, forgetBelow: 4 });
    next = reopen();
    t.teardown(() => next.close());
    state = next.recover();
    t.same(state.events, [], 'everything forgotten');
    t.equal(state.nextSeq, 4, 'the next sequence is still known');
  });
}
