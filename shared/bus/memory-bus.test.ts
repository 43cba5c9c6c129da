import t, { type Test } from 'tap';
import { pino } from 'pino';
import { encodeMsgpack } from '../protocol/index.ts';
import { runBusContract } from './bus.contract.ts';
import { createBus, createMemoryBus, type Bus, type Delivery, type DurableMessage, type MemoryBusOptions } from './index.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

const reported: Array<{ err: unknown; where: string }> = [];

runBusContract(t, {
  name: 'memory',
  open: async () => createMemoryBus(
    { recoveryWindowSec: 3600, maxMessages: 100_000 },
    { onError: (err, where) => reported.push({ err, where }) },
  ),
});

function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; }, set: (ms: number) => { now = ms; } };
}

function openMemory(t: Test, cfg: { recoveryWindowSec?: number; maxMessages?: number }, opts: MemoryBusOptions = {}): Bus {
  const bus = createMemoryBus(
    { recoveryWindowSec: cfg.recoveryWindowSec ?? 3600, maxMessages: cfg.maxMessages ?? 100_000 },
    { onError: (err, where) => reported.push({ err, where }), ...opts },
  );
  t.teardown(() => bus.close());
  return bus;
}

async function retainedSeqs(bus: Bus, seqs: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const seq of seqs) if (await bus.getDurable(seq)) out.push(seq);
  return out;
}

async function replay(bus: Bus, room: string, sinceMs: number) {
  const events: DurableMessage[] = [];
  const result = await bus.replay(room, sinceMs, (m) => events.push(m));
  return { ...result, seqs: events.map((m) => m.seq) };
}

t.test('bus - memory: retention keeps at most maxMessages, replay reports what was lost', async (t) => {
  const clock = fakeClock();
  const bus = openMemory(t, { maxMessages: 5 }, { now: clock.now });
  const seqs: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < 8; i++) {
    clock.advance(1000);
    times.push(clock.now());
    seqs.push((await bus.publishDurable('room1', `e${i}`, enc.encode(`e${i}`))).seq);
  }
  t.same(await retainedSeqs(bus, seqs), seqs.slice(3), 'the three oldest were dropped');
  const all = await replay(bus, 'room1', 0);
  t.same(all.seqs, seqs.slice(3));
  t.equal(all.complete, false, 'events since 0 were dropped');
  t.equal(all.lastSeq, seqs[7]);
  t.equal((await replay(bus, 'room1', times[3]!)).complete, true, 'nothing at/after the oldest retained event was dropped');
  t.equal((await replay(bus, 'room1', times[2]!)).complete, false, 'the newest dropped event is at sinceMs');
});

t.test('bus - memory: every consumer group is handed the one decoded value of a stored event', async (t) => {
  const bus = openMemory(t, {});
  const got = new Map<string, unknown>();
  for (const durable of ['persister', 'notifier']) {
    bus.consume({ durable, maxBatch: 10, maxWaitMs: 5 }, async (batch) => {
      for (const d of batch) {
        got.set(durable, d.decoded());
        d.ack();
      }
    });
  }
  await bus.publishDurable('room1', 'once', encodeMsgpack({ kind: 'message.created', text: 'hi' }));
  await waitFor(() => got.size === 2);
  t.same(got.get('persister'), { kind: 'message.created', text: 'hi' });
  t.equal(got.get('notifier'), got.get('persister'), 'decoded once: the same object for both groups');
});

t.test('bus - memory: retention drops events older than the recovery window', async (t) => {
  const clock = fakeClock();
  const bus = openMemory(t, { recoveryWindowSec: 60 }, { now: clock.now });
  const old: number[] = [];
  for (let i = 0; i < 3; i++) old.push((await bus.publishDurable('room1', `old${i}`, enc.encode('o'))).seq);
  clock.advance(30_000);
  const recentAt = clock.now();
  const recent: number[] = [];
  for (let i = 0; i < 2; i++) recent.push((await bus.publishDurable('room1', `new${i}`, enc.encode('n'))).seq);
  t.same(await retainedSeqs(bus, [...old, ...recent]), [...old, ...recent], 'all within the window');
  clock.advance(40_000);
  t.same(await retainedSeqs(bus, [...old, ...recent]), recent, 'aged out on read, without a new publish');
  const r = await replay(bus, 'room1', 0);
  t.same(r.seqs, recent);
  t.equal(r.complete, false);
  t.equal((await replay(bus, 'room1', recentAt)).complete, true);
});

t.test('bus - memory: events a consumer group has not acked are never dropped', async (t) => {
  const bus = openMemory(t, { maxMessages: 3 });
  const held: Delivery[] = [];
  const consumer = bus.consume({ durable: 'holder', maxBatch: 100, maxWaitMs: 10, ackWaitMs: 30_000 }, async (batch) => {
    held.push(...batch);
  });
  const seqs: number[] = [];
  for (let i = 0; i < 6; i++) seqs.push((await bus.publishDurable('room1', `e${i}`, enc.encode(`e${i}`))).seq);
  t.same(await retainedSeqs(bus, seqs), seqs, 'over maxMessages, but all unacked, so all kept');
  await waitFor(() => held.length === 6);
  held[1]!.ack();
  held[2]!.ack();
  t.same(await retainedSeqs(bus, seqs), seqs, 'the oldest is still unacked: nothing behind it goes either');
  held[0]!.ack();
  t.same(await retainedSeqs(bus, seqs), seqs.slice(3), 'once acked, trimmed back to maxMessages');
  t.equal(await consumer.pending(), 3);

  // a group without a running consumer still holds its events
  await consumer.stop();
  for (const d of held.slice(3)) d.ack();
  const more: number[] = [];
  for (let i = 0; i < 4; i++) more.push((await bus.publishDurable('room1', `m${i}`, enc.encode('m'))).seq);
  t.same(await retainedSeqs(bus, more), more, 'not yet delivered to the group: kept');
  t.equal(await consumer.pending(), 4);
});

t.test('bus - memory: a dedupeId is forgotten after the dedupe window', async (t) => {
  const clock = fakeClock();
  const bus = openMemory(t, {}, { now: clock.now, dedupeWindowMs: 1000 });
  const a = await bus.publishDurable('room1', 'same', enc.encode('a'));
  clock.advance(900);
  const b = await bus.publishDurable('room1', 'same', enc.encode('b'));
  t.same(b, { seq: a.seq, duplicate: true }, 'inside the window');
  clock.advance(200);
  const c = await bus.publishDurable('room1', 'same', enc.encode('c'));
  t.equal(c.duplicate, false, 'after the window');
  t.ok(c.seq > a.seq);
});

t.test('bus - memory: storedAt never goes backwards when the clock does', async (t) => {
  const clock = fakeClock();
  const bus = openMemory(t, {}, { now: clock.now });
  const a = await bus.publishDurable('room1', 'a', enc.encode('a'));
  clock.advance(-5000);
  const b = await bus.publishDurable('room1', 'b', enc.encode('b'));
  const [ma, mb] = [await bus.getDurable(a.seq), await bus.getDurable(b.seq)];
  t.equal(mb!.storedAt, ma!.storedAt, 'clamped to the last stored time');
  t.same((await replay(bus, 'room1', ma!.storedAt)).seqs, [a.seq, b.seq]);
});

t.test('bus - memory: a publish from inside a handler reaches everyone after the current message', async (t) => {
  const bus = openMemory(t, {});
  const second: string[] = [];
  bus.subscribe('s', (p) => {
    if (dec.decode(p) === 'a') bus.publish('s', enc.encode('b'));
  });
  bus.subscribe('s', (p) => second.push(dec.decode(p)));
  bus.publish('s', enc.encode('a'));
  t.same(second, ['a', 'b'], 'publish order kept for the second subscriber');
});

t.test('bus - memory: a subscription made during a delivery does not get that message', async (t) => {
  const bus = openMemory(t, {});
  const late: string[] = [];
  let subscribed = false;
  bus.subscribe('s', () => {
    if (subscribed) return;
    subscribed = true;
    bus.subscribe('s', (p) => late.push(dec.decode(p)));
  });
  bus.publish('s', enc.encode('first'));
  bus.publish('s', enc.encode('second'));
  t.same(late, ['second']);
});

t.test('bus - memory: subscribe rejects malformed subjects', async (t) => {
  const bus = openMemory(t, {});
  for (const bad of ['a..b', 'a.>.b', '', 'a.']) {
    t.throws(() => bus.subscribe(bad, () => {}), { code: 'bad_request' }, `"${bad}"`);
  }
});

t.test('bus - memory: handler failures are reported through onError with where they happened', async (t) => {
  const errors: Array<{ message: string; where: string }> = [];
  const bus = openMemory(t, {}, { onError: (err, where) => errors.push({ message: (err as Error).message, where }) });
  bus.subscribe('chat.room.r1.ev', () => {
    throw new Error('live boom');
  });
  bus.publish('chat.room.r1.ev', enc.encode('x'));
  t.same(errors, [{ message: 'live boom', where: 'live subscriber of chat.room.r1.ev' }]);

  let calls = 0;
  const consumer = bus.consume({ durable: 'failing', maxBatch: 10, maxWaitMs: 0 }, async (batch) => {
    calls++;
    if (calls === 1) throw new Error('batch boom');
    for (const d of batch) d.ack();
  });
  await bus.publishDurable('r1', 'e1', enc.encode('x'));
  await waitFor(() => calls >= 2);
  t.same(errors[1], { message: 'batch boom', where: 'consumer failing' });
  await waitFor(async () => (await consumer.pending()) === 0);
  t.ok(reported.some((r) => r.where.startsWith('live subscriber of test.')), 'the contract run reported its throwing subscriber');
});

t.test('bus - memory: retries after a throwing handler back off exponentially', async (t) => {
  const bus = openMemory(t, {});
  const at: number[] = [];
  const counts: number[] = [];
  bus.consume({ durable: 'backoff', maxBatch: 10, maxWaitMs: 0 }, async (batch) => {
    at.push(performance.now());
    counts.push(batch[0]!.deliveryCount);
    if (at.length < 3) throw new Error('fail (expected by the test)');
    batch[0]!.ack();
  });
  await bus.publishDurable('r1', 'e1', enc.encode('x'));
  await waitFor(() => at.length >= 3);
  t.same(counts, [1, 2, 3]);
  const gap1 = at[1]! - at[0]!;
  const gap2 = at[2]! - at[1]!;
  t.ok(gap1 >= 190, `first retry after ~200 ms (${gap1.toFixed(0)})`);
  t.ok(gap2 >= 390, `second retry after ~400 ms (${gap2.toFixed(0)})`);
});

t.test('bus - memory: a partial batch waits maxWaitMs for more events', async (t) => {
  const bus = openMemory(t, {});
  const batches: Array<{ size: number; at: number }> = [];
  bus.consume({ durable: 'partial', maxBatch: 100, maxWaitMs: 300 }, async (batch) => {
    batches.push({ size: batch.length, at: performance.now() });
    for (const d of batch) d.ack();
  });
  const start = performance.now();
  for (let i = 0; i < 3; i++) {
    await bus.publishDurable('r1', `e${i}`, enc.encode('x'));
    await sleep(50);
  }
  await waitFor(() => batches.length >= 1);
  await sleep(100);
  t.same(batches.map((b) => b.size), [3], 'one batch with all three');
  t.ok(batches[0]!.at - start >= 290, `handed over after maxWaitMs from the first event (${(batches[0]!.at - start).toFixed(0)} ms)`);
});

t.test('bus - memory: a stopped consumer hands its unsettled deliveries to the others at once', async (t) => {
  const bus = openMemory(t, {});
  const holderGot: number[] = [];
  const holder = bus.consume({ durable: 'shared', maxBatch: 10, maxWaitMs: 0, ackWaitMs: 60_000 }, async (batch) => {
    for (const d of batch) holderGot.push(d.seq);
  });
  const seqs = [
    (await bus.publishDurable('r1', 'e1', enc.encode('1'))).seq,
    (await bus.publishDurable('r1', 'e2', enc.encode('2'))).seq,
  ];
  await waitFor(() => holderGot.length === 2);
  const otherGot: Array<[number, number]> = [];
  bus.consume({ durable: 'shared', maxBatch: 10, maxWaitMs: 0 }, async (batch) => {
    for (const d of batch) {
      otherGot.push([d.seq, d.deliveryCount]);
      d.ack();
    }
  });
  await sleep(100);
  t.same(otherGot, [], 'held deliveries stay with their consumer while it runs');
  await holder.stop();
  await waitFor(() => otherGot.length === 2, 2000);
  t.same(otherGot, seqs.map((s) => [s, 2]));
});

t.test('bus - memory: consume validates its options', async (t) => {
  const bus = openMemory(t, {});
  t.throws(() => bus.consume({ durable: '', maxBatch: 1, maxWaitMs: 0 }, async () => {}), { code: 'bad_request' });
  t.throws(() => bus.consume({ durable: 'x', maxBatch: 0, maxWaitMs: 0 }, async () => {}), { code: 'bad_request' });
  t.throws(() => bus.consume({ durable: 'x', maxBatch: 1, maxWaitMs: -1 }, async () => {}), { code: 'bad_request' });
  await t.rejects(bus.publishDurable('a.b', 'x', enc.encode('x')), { code: 'bad_request' }, 'a room id must be one subject token');
});

t.test('bus - createBus builds the memory bus (the NATS one is tested in nats-bus.test.ts)', async (t) => {
  const log = pino({ level: 'silent' });
  const bus = await createBus({ adapter: 'memory', recoveryWindowSec: 60, maxMessages: 1000 }, log);
  t.teardown(() => bus.close());
  t.equal(bus.kind, 'memory');
  const ack = await bus.publishDurable('r1', 'e1', enc.encode('x'));
  t.equal(dec.decode((await bus.getDurable(ack.seq))!.data), 'x');
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await sleep(5);
  }
}
