import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { runBusContract } from './bus.contract.ts';
import {
  createMemoryBus, openSqliteJournal, type Delivery, type JournalMarks, type MemoryBus, type MemoryBusOptions, type StreamJournal,
} from './index.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

function tempFile(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'chat.db');
}

/** A journal that counts its writes and can be made to fail. */
function counting(inner: StreamJournal) {
  const writes: Array<{ events: number; marks: JournalMarks }> = [];
  let failNext = false;
  const journal: StreamJournal = {
    kind: inner.kind,
    recover: () => inner.recover(),
    async write(events, marks) {
      if (failNext) {
        failNext = false;
        throw new Error('disk full');
      }
      writes.push({ events: events.length, marks: { ...marks } });
      await inner.write(events, marks);
    },
    close: () => inner.close(),
  };
  return { journal, writes, failOnce: () => { failNext = true; } };
}

/**
 * A bus on the journal in `file`. "Crash" = the bus is abandoned without close(): nothing it had
 * not written is flushed, as after kill -9 (its connection stays open; SQLite allows several).
 */
function openBus(file: string, opts: MemoryBusOptions = {}): MemoryBus {
  return createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 100_000 }, { journal: openSqliteJournal({ file, synchronous: 'normal' }), ...opts });
}

runBusContract(t, {
  name: 'memory with a SQLite journal',
  open: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chat-journal-contract-'));
    const bus = openBus(join(dir, 'chat.db'));
    const close = bus.close.bind(bus);
    bus.close = async () => {
      await close();
      rmSync(dir, { recursive: true, force: true });
    };
    return bus;
  },
});

t.test('journal - acked events, their sequences and their dedupe ids survive a crash of the bus', async (t) => {
  const file = tempFile(t);
  const first = openBus(file);
  const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => first.publishDurable(`room${i % 3}`, `d${i}`, enc.encode(`e${i}`), { n: String(i) })));
  t.same(acks.map((a) => a.seq), Array.from({ length: 50 }, (_, i) => i + 1));
  // crash: first is never closed

  const second = openBus(file);
  t.teardown(() => second.close());
  const got = await second.getDurable(17);
  t.equal(dec.decode(got!.data), 'e16', 'an acked event is back, with its payload');
  t.same(got!.headers, { n: '16' }, 'and its headers');
  const retry = await second.publishDurable('room1', 'd16', enc.encode('retried'));
  t.same(retry, { seq: 17, duplicate: true }, 'a retry after the restart is a duplicate of the first');
  const next = await second.publishDurable('room0', 'new', enc.encode('new'));
  t.equal(next.seq, 51, 'sequences continue where the crashed bus stopped');
  const replayed: string[] = [];
  const r = await second.replay('room0', 0, (m) => replayed.push(dec.decode(m.data)));
  t.same(replayed, [...Array.from({ length: 17 }, (_, i) => `e${i * 3}`), 'new'], 'replay of a room covers the events from before the crash');
  t.equal(r.lastSeq, 51);
});

t.test('journal - a consumer gets after a restart what no group had settled, and not what it had', async (t) => {
  const file = tempFile(t);
  const first = openBus(file);
  for (let i = 0; i < 10; i++) await first.publishDurable('r', `a${i}`, enc.encode(`a${i}`));
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => { settle = resolve; });
  const c = first.consume({ durable: 'persister', maxBatch: 10, maxWaitMs: 5 }, async (batch) => {
    for (const d of batch) d.ack();
    if (batch.at(-1)!.seq === 10) settle();
  });
  await settled;
  await c.stop();
  await first.close(); // marks written: 1..10 settled
  const second = openBus(file);
  for (let i = 0; i < 5; i++) await second.publishDurable('r', `b${i}`, enc.encode(`b${i}`));
  // crash with 11..15 unsettled (no consumer ever ran)

  const third = openBus(file);
  t.teardown(() => third.close());
  const delivered = await new Promise<number[]>((resolve) => {
    const seen: number[] = [];
    third.consume({ durable: 'persister', maxBatch: 100, maxWaitMs: 5 }, async (batch: Delivery[]) => {
      for (const d of batch) { seen.push(d.seq); d.ack(); }
      if (seen.length >= 5) resolve(seen);
    });
  });
  t.same(delivered, [11, 12, 13, 14, 15], 'only the unsettled events are delivered again');
  t.same(await third.publishDurable('r', 'a3', enc.encode('x')), { seq: 4, duplicate: true }, 'settled events still dedupe within the window');
});

t.test('journal - unsettled events older than the recovery window still reach the first consumer after a restart', async (t) => {
  const file = tempFile(t);
  let now = 1_700_000_000_000;
  const first = openBus(file, { now: () => now });
  for (let i = 0; i < 3; i++) await first.publishDurable('r', `old${i}`, enc.encode(`old${i}`));
  // crash; the process comes back two hours later (the window is one hour)
  now += 2 * 3600_000;
  const second = openBus(file, { now: () => now });
  t.teardown(() => second.close());
  const seen = await new Promise<string[]>((resolve) => {
    const got: string[] = [];
    second.consume({ durable: 'persister', maxBatch: 10, maxWaitMs: 5 }, async (batch) => {
      for (const d of batch) { got.push(dec.decode(d.data)); d.ack(); }
      if (got.length >= 3) resolve(got);
    });
  });
  t.same(seen, ['old0', 'old1', 'old2'], 'retention waited for the first group');
});

t.test('journal - one write per event-loop turn, however many appends it holds', async (t) => {
  const file = tempFile(t);
  const { journal, writes } = counting(openSqliteJournal({ file, synchronous: 'normal' }));
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 100_000 }, { journal });
  t.teardown(() => bus.close());
  await Promise.all(Array.from({ length: 200 }, (_, i) => bus.publishDurable('r', `g${i}`, enc.encode('x'))));
  t.same(writes.map((w) => w.events), [200], '200 appends of one turn: one write');
  await Promise.all(Array.from({ length: 3 }, (_, i) => bus.publishDurable('r', `h${i}`, enc.encode('x'))));
  t.same(writes.map((w) => w.events), [200, 3]);
  t.equal(writes[1]!.marks.nextSeq, 204, 'the marks carry the next sequence past the batch');
});

t.test('journal - nothing is visible or announced before it is written', async (t) => {
  const file = tempFile(t);
  const bus = openBus(file);
  t.teardown(() => bus.close());
  const live: number[] = [];
  bus.subscribe('chat.live.r', (_p, _s, seq) => { if (seq !== undefined) live.push(seq); });
  const pending = bus.publishDurable('r', 'p1', enc.encode('x'));
  t.equal(await bus.getDurable(1), undefined, 'not readable while its write is pending');
  t.same(live, [], 'not announced');
  t.same(await pending, { seq: 1, duplicate: false });
  t.same(live, [1], 'announced once written, before the publish resolved');
  t.ok(await bus.getDurable(1));
});

t.test('journal - a failed write fails its publishes with unavailable and leaves no trace', async (t) => {
  const file = tempFile(t);
  const { journal, failOnce } = counting(openSqliteJournal({ file, synchronous: 'normal' }));
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 100_000 }, { journal });
  t.teardown(() => bus.close());
  await bus.publishDurable('r', 'ok', enc.encode('ok'));
  failOnce();
  const failed = await Promise.allSettled([bus.publishDurable('r', 'f1', enc.encode('1')), bus.publishDurable('r', 'f2', enc.encode('2'))]);
  t.same(failed.map((f) => f.status === 'rejected' && (f.reason as { code?: string }).code), ['unavailable', 'unavailable']);
  t.equal(await bus.getDurable(2), undefined, 'the lost events are not in the stream');
  t.same(await bus.publishDurable('r', 'f1', enc.encode('1')), { seq: 2, duplicate: false }, 'a retry is stored, not deduplicated against the lost one, and takes the next sequence');
});

t.test('journal - a retry of an event still being written is acked only with it, and fails with it', async (t) => {
  const file = tempFile(t);
  const { journal, failOnce } = counting(openSqliteJournal({ file, synchronous: 'normal' }));
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 100_000 }, { journal });
  t.teardown(() => bus.close());
  const order: string[] = [];
  const first = bus.publishDurable('r', 'same', enc.encode('1')).then((a) => { order.push('first'); return a; });
  const retry = bus.publishDurable('r', 'same', enc.encode('2')).then((a) => { order.push('retry'); return a; });
  t.same(await retry, { seq: 1, duplicate: true });
  t.same(await first, { seq: 1, duplicate: false });
  t.same(order, ['first', 'retry'], 'the duplicate resolved after the write of the first');

  failOnce();
  const results = await Promise.allSettled([bus.publishDurable('r', 'lost', enc.encode('1')), bus.publishDurable('r', 'lost', enc.encode('2'))]);
  t.same(results.map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code), ['unavailable', 'unavailable'], 'a duplicate of a lost event is not acked either');
});

t.test('journal - events leave the table once settled and past the dedupe window; the sequence stays', async (t) => {
  const file = tempFile(t);
  let now = 1_700_000_000_000;
  const bus = openBus(file, { now: () => now, dedupeWindowMs: 1000 });
  const done = new Promise<void>((resolve) => {
    bus.consume({ durable: 'persister', maxBatch: 100, maxWaitMs: 5 }, async (batch) => {
      for (const d of batch) d.ack();
      if (batch.some((d) => d.seq === 20)) resolve();
    });
  });
  for (let i = 0; i < 20; i++) await bus.publishDurable('r', `t${i}`, enc.encode('x'));
  await done;
  now += 5000;
  await bus.publishDurable('r', 'last', enc.encode('x'));
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  const rows = db.prepare('SELECT seq FROM stream_journal ORDER BY seq').all() as Array<{ seq: number }>;
  t.same(rows.map((r) => r.seq), [21], 'only the unsettled event is kept');
  // crash, then restart: the sequence goes on although its events were forgotten
  const again = openBus(file, { now: () => now });
  t.teardown(() => again.close());
  t.equal((await again.publishDurable('r', 'after', enc.encode('x'))).seq, 22);
  t.same(await again.getDurable(21) !== undefined, true, 'the unsettled event is back');
});

t.test('journal - settled events the stream no longer holds leave the table even inside the dedupe window', async (t) => {
  const file = tempFile(t);
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 5 }, { journal: openSqliteJournal({ file, synchronous: 'normal' }) });
  t.teardown(() => bus.close());
  const done = new Promise<void>((resolve) => {
    bus.consume({ durable: 'persister', maxBatch: 100, maxWaitMs: 1 }, async (batch) => {
      for (const d of batch) d.ack();
      if (batch.some((d) => d.seq === 30)) resolve();
    });
  });
  for (let i = 0; i < 30; i++) await bus.publishDurable('r', `k${i}`, enc.encode('x'));
  await done;
  await bus.publishDurable('r', 'last', enc.encode('x'));
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  const { n } = db.prepare('SELECT count(*) AS n FROM stream_journal').get() as { n: number };
  t.ok(n <= 6, `the table holds what the stream holds (${n} rows), not 120 s of events`);
});

t.test('journal - the stream stays bounded by bytes; unsettled events over the bound refuse appends with unavailable', async (t) => {
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 100_000, maxBytes: 1024 * 1024 });
  t.teardown(() => bus.close());
  const payload = new Uint8Array(60 * 1024);
  // a persister that acks everything: settled events leave as the bound is reached
  const c = bus.consume({ durable: 'persister', maxBatch: 1000, maxWaitMs: 1 }, async (batch) => { for (const d of batch) d.ack(); });
  let peak = 0;
  for (let user = 0; user < 100; user++) {
    for (let m = 0; m < 20; m++) {
      for (;;) {
        try {
          await bus.publishDurable(`room${user % 10}`, `u${user}-${m}`, payload);
          break;
        } catch (err) {
          if ((err as { code?: string }).code !== 'unavailable') throw err;
          await new Promise((r) => setTimeout(r, 5)); // the persister catches up
        }
      }
      peak = Math.max(peak, bus.buffered().bytes);
    }
  }
  t.ok(peak <= 1024 * 1024, `100 users x 20 events of 60 KB (117 MB) never held more than the bound: peak ${peak} bytes`);
  t.ok(bus.buffered().events < 20, `the stream holds ${bus.buffered().events} events`);
  await c.stop();

  // no consumer settles now: the unsettled bytes reach the bound and appends are refused
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  const stalled = bus.consume({ durable: 'stalled', maxBatch: 1, maxWaitMs: 1 }, () => held);
  let refused: unknown;
  for (let i = 0; i < 40 && refused === undefined; i++) {
    await bus.publishDurable('r', `s${i}`, payload).catch((err: unknown) => { refused = err; });
  }
  t.match(refused, { code: 'unavailable' }, 'refused with unavailable once unsettled events fill the bound');
  t.ok(bus.buffered().bytes <= 1024 * 1024);
  await t.rejects(bus.publishDurable('r', 'huge', new Uint8Array(2 * 1024 * 1024)), { code: 'too_large' }, 'an event over the bound by itself is too large');
  release();
  await stalled.stop();
});

