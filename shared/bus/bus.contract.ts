import type { Test } from 'tap';
import { roomKey } from '../domain/room-key.ts';
import { encodeMsgpack } from '../protocol/codec.ts';
import { subjects, type Bus, type Delivery, type DurableMessage } from './bus.ts';

/**
 * The behaviour every Bus adapter must show, written against the port only.
 *
 * `open` returns a ready bus; each test closes the bus it opened. The stream behind it may hold
 * events of other tests or runs (tests use their own room ids and durable names, and ack events of
 * other rooms), but consumers start from the oldest retained event, so `open` should hand out a
 * stream with little history (a fresh stream per call, or a purged one).
 */
export interface BusContractOptions {
  name: string;
  open: () => Promise<Bus>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (data: Uint8Array) => dec.decode(data);

export function runBusContract(t: Test, opts: BusContractOptions): void {
  const open = async (t: Test): Promise<Bus> => {
    const bus = await opts.open();
    t.teardown(() => bus.close());
    return bus;
  };

  t.test(`bus - live publish reaches a subscriber in publish order (${opts.name})`, async (t) => {
    const bus = await open(t);
    const subject = `test.${uid()}.ev`;
    const got: string[] = [];
    const subjectsSeen = new Set<string>();
    bus.subscribe(subject, (payload, s) => {
      got.push(text(payload));
      subjectsSeen.add(s);
    });
    const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
    for (const m of sent) bus.publish(subject, enc.encode(m));
    await waitFor(() => got.length >= sent.length, 'all 200 live messages');
    t.same(got, sent, 'every message once, in publish order');
    t.same([...subjectsSeen], [subject], 'handler is told the subject');
  });

  t.test(`bus - queue group: each message reaches one member of the group, plain subscribers get all (${opts.name})`, async (t) => {
    const bus = await open(t);
    const subject = `test.${uid()}.req`;
    const a: string[] = [];
    const b: string[] = [];
    const all: string[] = [];
    bus.subscribe(subject, (p) => a.push(text(p)), { queue: 'workers' });
    bus.subscribe(subject, (p) => b.push(text(p)), { queue: 'workers' });
    bus.subscribe(subject, (p) => all.push(text(p)));
    const sent = Array.from({ length: 40 }, (_, i) => `r${i}`);
    for (const m of sent) bus.publish(subject, enc.encode(m));
    await waitFor(() => all.length === sent.length && a.length + b.length === sent.length, 'every request once in the group');
    t.same([...a, ...b].sort(), [...sent].sort(), 'each request went to exactly one member');
    t.same(all, sent, 'the plain subscriber saw every request');
    t.throws(() => bus.subscribe(`test.${uid()}.*`, () => {}, { queue: 'workers' }), 'a queue group on a wildcard is refused');
  });

  t.test(`bus - watchLive: a working bus reports no interruption, and live keeps flowing (${opts.name})`, async (t) => {
    const bus = await open(t);
    const calls: string[] = [];
    const watch = bus.watchLive({ interrupted: () => calls.push('interrupted'), restored: () => calls.push('restored') });
    const subject = `test.${uid()}.ev`;
    const got: string[] = [];
    bus.subscribe(subject, (p) => got.push(text(p)));
    bus.publish(subject, enc.encode('one'));
    await waitFor(() => got.length === 1, 'the live message');
    watch.unsubscribe();
    t.same(calls, [], 'no interruption reported');
  });

  t.test(`bus - unsubscribe stops delivery to that subscription only (${opts.name})`, async (t) => {
    const bus = await open(t);
    const subject = `test.${uid()}.ev`;
    const a: string[] = [];
    const b: string[] = [];
    const subA = bus.subscribe(subject, (p) => a.push(text(p)));
    bus.subscribe(subject, (p) => b.push(text(p)));
    bus.publish(subject, enc.encode('one'));
    await waitFor(() => a.length === 1 && b.length === 1, 'first message at both subscriptions');
    subA.unsubscribe();
    bus.publish(subject, enc.encode('two'));
    await waitFor(() => b.length === 2, 'second message at the remaining subscription');
    await sleep(100);
    t.same(a, ['one'], 'unsubscribed handler got nothing after unsubscribe');
    t.same(b, ['one', 'two'], 'the other subscription still receives');
  });

  t.test(`bus - wildcard subscriptions: * matches one token, > the rest (${opts.name})`, async (t) => {
    const bus = await open(t);
    const p = `test.${uid()}`;
    const star: string[] = [];
    const rest: string[] = [];
    bus.subscribe(`${p}.room.*.ev`, (_payload, s) => star.push(s));
    bus.subscribe(`${p}.room.>`, (_payload, s) => rest.push(s));
    for (const s of [`${p}.room.a.ev`, `${p}.room.b.ctl`, `${p}.room.c.x.ev`, `${p}.other.a.ev`, `${p}.room`, `${p}.room.z.ev`]) {
      bus.publish(s, enc.encode(s));
    }
    await waitFor(() => star.includes(`${p}.room.z.ev`) && rest.includes(`${p}.room.z.ev`), 'the last message at both');
    t.same(star, [`${p}.room.a.ev`, `${p}.room.z.ev`], '* matched exactly one token');
    t.same(rest, [`${p}.room.a.ev`, `${p}.room.b.ctl`, `${p}.room.c.x.ev`, `${p}.room.z.ev`], '> matched one or more tokens');
  });

  t.test(`bus - a throwing subscriber does not affect other subscribers or later publishes (${opts.name})`, async (t) => {
    const bus = await open(t);
    const subject = `test.${uid()}.ev`;
    const before: string[] = [];
    const after: string[] = [];
    let thrown = 0;
    bus.subscribe(subject, (p) => before.push(text(p)));
    bus.subscribe(subject, () => {
      thrown++;
      throw new Error('subscriber failure (expected by the test)');
    });
    bus.subscribe(subject, (p) => after.push(text(p)));
    t.doesNotThrow(() => bus.publish(subject, enc.encode('x')), 'publish does not throw');
    t.doesNotThrow(() => bus.publish(subject, enc.encode('y')), 'publish still works after a throw');
    await waitFor(() => before.length === 2 && after.length === 2, 'both messages at the healthy subscribers');
    t.same(before, ['x', 'y']);
    t.same(after, ['x', 'y']);
    t.equal(thrown, 2, 'the throwing subscriber was called for each message');
  });

  t.test(`bus - publishDurable returns growing sequences (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const acks = [];
    for (let i = 0; i < 5; i++) acks.push(await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`)));
    t.same(acks.map((a) => a.duplicate), [false, false, false, false, false], 'none is a duplicate');
    for (let i = 1; i < acks.length; i++) t.ok(acks[i]!.seq > acks[i - 1]!.seq, `seq ${acks[i]!.seq} > ${acks[i - 1]!.seq}`);
    const parallel = await Promise.all(Array.from({ length: 10 }, (_, i) => bus.publishDurable(room, `${room}-p${i}`, enc.encode('p'))));
    const seqs = parallel.map((a) => a.seq);
    t.equal(new Set(seqs).size, 10, 'concurrent publishes get distinct sequences');
    t.ok(Math.min(...seqs) > acks[4]!.seq, 'and all are after the earlier ones');
  });

  t.test(`bus - a repeated dedupeId is stored once and answers the first sequence (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const first = await bus.publishDurable(room, `${room}-d1`, enc.encode('first'));
    const again = await bus.publishDurable(room, `${room}-d1`, enc.encode('second'));
    const other = await bus.publishDurable(room, `${room}-d2`, enc.encode('other'));
    t.equal(first.duplicate, false);
    t.equal(again.duplicate, true, 'second publish is a duplicate');
    t.equal(again.seq, first.seq, 'with the first sequence');
    t.equal(other.duplicate, false);
    t.ok(other.seq > first.seq, 'a new dedupeId is a new event');
    const stored = await replayAll(bus, room, 0);
    t.same(stored.map((m) => [m.dedupeId, text(m.data)]), [[`${room}-d1`, 'first'], [`${room}-d2`, 'other']], 'stored once, first payload kept');
  });

  t.test(`bus - republish: each stored event is announced once on the room's live subject with its seq; a duplicate is not (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const live: Array<{ text: string; subject: string; seq: number | undefined }> = [];
    bus.subscribe(subjects.roomEvents(room), (payload, subject, seq) => live.push({ text: text(payload), subject, seq }));
    const others: string[] = [];
    bus.subscribe(subjects.roomEvents(`r${uid()}`), (payload) => others.push(text(payload)));
    const payload = enc.encode('stored');
    const first = await bus.publishDurable(room, `${room}-1`, payload, { traceparent: '00-abc-def-01' });
    payload.fill(0);
    const again = await bus.publishDurable(room, `${room}-1`, enc.encode('retried'));
    bus.publish(subjects.roomEvents(room), enc.encode('ephemeral'));
    const second = await bus.publishDurable(room, `${room}-2`, enc.encode('next'));
    await waitFor(() => live.length >= 3, 'the two stored events and the ephemeral frame');
    await sleep(100);
    t.equal(again.duplicate, true, 'precondition: the retry was a duplicate');
    t.same(live, [
      { text: 'stored', subject: subjects.roomEvents(room), seq: first.seq },
      { text: 'ephemeral', subject: subjects.roomEvents(room), seq: undefined },
      { text: 'next', subject: subjects.roomEvents(room), seq: second.seq },
    ], 'stored payloads with their seq, once each, in stream order; a process\'s own publish carries no seq; the duplicate was not announced');
    t.same(others, [], 'another room\'s subject hears nothing of it');
  });

  t.test(`bus - publishes keep their call order without waiting for each other; the republish follows it (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const announced: number[] = [];
    bus.subscribe(subjects.roomEvents(room), (_payload, _subject, seq) => announced.push(seq!));
    const pending = Array.from({ length: 200 }, (_, i) => bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`)));
    const acks = await Promise.all(pending);
    for (let i = 1; i < acks.length; i++) {
      if (!(acks[i]!.seq > acks[i - 1]!.seq)) t.fail(`publish ${i} got seq ${acks[i]!.seq}, not after ${acks[i - 1]!.seq}`);
    }
    t.same((await replayAll(bus, room, 0)).map((m) => text(m.data)), acks.map((_, i) => `e${i}`), 'stored in call order');
    await waitFor(() => announced.length >= 200, 'every event announced');
    t.same(announced, acks.map((a) => a.seq), 'announced in stream order');
  });

  t.test(`bus - getDurable returns the stored event, undefined for an unknown sequence (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const payload = enc.encode('hello');
    const before = Date.now();
    const ack = await bus.publishDurable(room, `${room}-1`, payload, { traceparent: '00-abc-def-01' });
    const after = Date.now();
    payload.fill(0);
    const msg = await bus.getDurable(ack.seq);
    t.ok(msg, 'found');
    t.equal(msg?.seq, ack.seq);
    t.equal(msg?.roomId, room);
    t.equal(msg?.dedupeId, `${room}-1`);
    t.equal(text(msg!.data), 'hello', 'payload as published, not affected by later changes to the buffer');
    t.equal(msg?.headers?.traceparent, '00-abc-def-01', 'headers kept');
    t.ok(msg!.storedAt >= before - 2000 && msg!.storedAt <= after + 2000, `storedAt ${msg!.storedAt} is stream time near ${before}`);
    t.equal(await bus.getDurable(ack.seq + 1_000_000), undefined, 'unknown sequence');
  });

  t.test(`bus - replay returns the room's events from a time, in stream order (${opts.name})`, async (t) => {
    const bus = await open(t);
    const a = `r${uid()}`;
    const b = `r${uid()}`;
    const a1 = await bus.publishDurable(a, `${a}-1`, enc.encode('a1'));
    await bus.publishDurable(b, `${b}-1`, enc.encode('b1'));
    await sleep(30);
    const a2 = await bus.publishDurable(a, `${a}-2`, enc.encode('a2'));
    await bus.publishDurable(b, `${b}-2`, enc.encode('b2'));
    const a3 = await bus.publishDurable(a, `${a}-3`, enc.encode('a3'));
    const t1 = (await bus.getDurable(a1.seq))!.storedAt;
    const t2 = (await bus.getDurable(a2.seq))!.storedAt;
    t.ok(t2 > t1, 'precondition: the two halves have different stream times');

    const fromMiddle: DurableMessage[] = [];
    const r1 = await bus.replay(a, t2, (m) => fromMiddle.push(m));
    t.same(fromMiddle.map((m) => text(m.data)), ['a2', 'a3'], 'only this room, only at/after sinceMs, in order');
    t.same(fromMiddle.map((m) => m.seq), [a2.seq, a3.seq]);
    t.equal(r1.complete, true, 'nothing was dropped');
    t.ok(r1.lastSeq >= a3.seq, 'lastSeq covers the replayed events');

    const fromStart = await replayAll(bus, a, t1);
    t.same(fromStart.map((m) => text(m.data)), ['a1', 'a2', 'a3']);

    const later = await bus.publishDurable(a, `${a}-4`, enc.encode('a4'));
    t.ok(later.seq > r1.lastSeq, 'an event published after the replay is after lastSeq');
    t.same(await replayAll(bus, `r${uid()}`, t1), [], 'a room without events replays nothing');
  });

  t.test(`bus - a replay with a limit passes on at most that many events and says whether there were more (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const first = await bus.publishDurable(room, `${room}-0`, enc.encode('e0'));
    for (let i = 1; i < 5; i++) await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`));
    const since = (await bus.getDurable(first.seq))!.storedAt;
    const three: string[] = [];
    const capped = await bus.replay(room, since, (m) => { three.push(text(m.data)); }, 3);
    t.same(three, ['e0', 'e1', 'e2'], 'the oldest events, in order, up to the limit');
    t.equal(capped.more, true, 'the room had more');
    const all: string[] = [];
    const whole = await bus.replay(room, since, (m) => { all.push(text(m.data)); }, 5);
    t.same(all, ['e0', 'e1', 'e2', 'e3', 'e4']);
    t.equal(whole.more, false, 'exactly the limit: nothing more');
    t.equal(whole.complete, true);
  });

  t.test(`bus - room keys: two tenants' rooms of one id have their own durable and live subjects (${opts.name})`, async (t) => {
    const bus = await open(t);
    const id = `r${uid()}`;
    // a default-tenant key (the bare id), a plain tenant, and a tenant whose name no subject token could hold
    const keys = [roomKey('default', id), roomKey('acme', id), roomKey('a.b *>c', id)];
    t.equal(new Set(keys).size, 3);
    const live = keys.map(() => [] as string[]);
    keys.forEach((key, i) => bus.subscribe(subjects.roomEvents(key), (p, subject, seq) => live[i]!.push(`${text(p)}@${seq}:${subject}`)));
    const acks: Array<{ seq: number }> = [];
    for (const [i, key] of keys.entries()) acks.push(await bus.publishDurable(key, `${id}-${i}`, enc.encode(`e${i}`)));
    await waitFor(() => live.every((l) => l.length === 1), 'each room heard its event');
    keys.forEach((key, i) => t.same(live[i], [`e${i}@${acks[i]!.seq}:${subjects.roomEvents(key)}`], `room ${i}: only its own, republished on its subject`));
    for (const [i, key] of keys.entries()) {
      const replayed = await replayAll(bus, key, 0);
      t.same(replayed.map((m) => [text(m.data), m.roomId]), [[`e${i}`, key]], `room ${i}: replays only its own, naming its key`);
    }
  });

  t.test(`bus - consume delivers every event once; acked events are not redelivered (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const expected: number[] = [];
    for (let i = 0; i < 12; i++) expected.push((await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`))).seq);
    const got: Array<{ seq: number; count: number }> = [];
    const consumer = bus.consume({ durable: `d${uid()}`, maxBatch: 5, maxWaitMs: 50, ackWaitMs: 400 }, async (batch) => {
      for (const d of batch) {
        if (d.roomId === room) got.push({ seq: d.seq, count: d.deliveryCount });
        d.ack();
      }
    });
    for (let i = 12; i < 17; i++) expected.push((await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`))).seq);
    await waitFor(() => got.length >= expected.length, 'all 17 events');
    await sleep(1000); // 2.5 x ackWaitMs: a missing ack would have redelivered by now
    t.same(got.map((g) => g.seq), expected, 'each event once, in stream order (events published before and after consume)');
    t.ok(got.every((g) => g.count === 1), 'all first deliveries');
    await waitFor(async () => (await consumer.pending()) === 0, 'pending 0');
    t.equal(await consumer.pending(), 0, 'nothing pending after acks');
  });

  t.test(`bus - a delivery decodes its msgpack data; two durables of one event read equal values (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const event = { kind: 'message.created', roomId: room, n: 7, nested: { list: [1, 'two'] } };
    const seq = (await bus.publishDurable(room, `${room}-decode`, encodeMsgpack(event))).seq;
    const values: unknown[] = [];
    for (const name of ['a', 'b']) {
      const consumer = bus.consume({ durable: `${name}${uid()}`, maxBatch: 10, maxWaitMs: 20 }, async (batch) => {
        for (const d of batch) {
          if (d.seq === seq) values.push(d.decoded());
          d.ack();
        }
      });
      t.teardown(() => consumer.stop());
    }
    await waitFor(() => values.length === 2, 'both durables');
    t.same(values, [event, event]);
  });

  t.test(`bus - consumers with the same durable name split the work (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const durable = `d${uid()}`;
    const seenBy = [new Set<number>(), new Set<number>()];
    const processed = new Map<number, number>();
    const handler = (i: number) => async (batch: Delivery[]) => {
      await sleep(20);
      for (const d of batch) {
        if (d.roomId === room) {
          seenBy[i]!.add(d.seq);
          processed.set(d.seq, (processed.get(d.seq) ?? 0) + 1);
        }
        d.ack();
      }
    };
    bus.consume({ durable, maxBatch: 3, maxWaitMs: 20 }, handler(0));
    bus.consume({ durable, maxBatch: 3, maxWaitMs: 20 }, handler(1));
    const expected: number[] = [];
    for (let i = 0; i < 30; i++) expected.push((await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`))).seq);
    await waitFor(() => processed.size >= expected.length, 'all 30 events processed');
    await sleep(200);
    t.same([...processed.keys()].sort((x, y) => x - y), expected, 'no event missing');
    t.same([...processed.values()].filter((n) => n !== 1), [], 'no event processed twice');
    t.same([...seenBy[0]!].filter((s) => seenBy[1]!.has(s)), [], 'no event went to both consumers');
    t.ok(seenBy[0]!.size > 0 && seenBy[1]!.size > 0, `both consumers got work (${seenBy[0]!.size} + ${seenBy[1]!.size})`);
  });

  t.test(`bus - nak redelivers the event with deliveryCount 2 (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const ack = await bus.publishDurable(room, `${room}-1`, enc.encode('n'));
    const got: Array<{ seq: number; count: number; at: number }> = [];
    bus.consume({ durable: `d${uid()}`, maxBatch: 10, maxWaitMs: 20 }, async (batch) => {
      for (const d of batch) {
        if (d.roomId !== room) {
          d.ack();
          continue;
        }
        got.push({ seq: d.seq, count: d.deliveryCount, at: Date.now() });
        if (d.deliveryCount === 1) d.nak(150);
        else d.ack();
      }
    });
    await waitFor(() => got.length >= 2, 'the redelivery');
    await sleep(300);
    t.same(got.map((g) => [g.seq, g.count]), [[ack.seq, 1], [ack.seq, 2]], 'delivered twice, counted');
    t.ok(got[1]!.at - got[0]!.at >= 120, `redelivered after the nak delay (${got[1]!.at - got[0]!.at} ms)`);
  });

  t.test(`bus - a delivery settles once: an ack after its nak does not cancel the redelivery (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const ack = await bus.publishDurable(room, `${room}-1`, enc.encode('once'));
    const got: Array<[number, number]> = [];
    const consumer = bus.consume({ durable: `d${uid()}`, maxBatch: 10, maxWaitMs: 20 }, async (batch) => {
      for (const d of batch) {
        if (d.roomId !== room) {
          d.ack();
          continue;
        }
        got.push([d.seq, d.deliveryCount]);
        if (d.deliveryCount === 1) {
          d.nak(150);
          d.ack();
          d.term();
        } else {
          d.ack();
        }
      }
    });
    await waitFor(() => got.length >= 2, 'the redelivery');
    t.same(got, [[ack.seq, 1], [ack.seq, 2]], 'the nak decided: delivered again');
    await waitFor(async () => (await consumer.pending()) === 0, 'settled by the second delivery\'s ack');
  });

  t.test(`bus - an unsettled delivery is redelivered after ackWaitMs (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const ack = await bus.publishDurable(room, `${room}-1`, enc.encode('w'));
    const got: Array<{ seq: number; count: number; at: number }> = [];
    bus.consume({ durable: `d${uid()}`, maxBatch: 10, maxWaitMs: 20, ackWaitMs: 500 }, async (batch) => {
      for (const d of batch) {
        if (d.roomId !== room) {
          d.ack();
          continue;
        }
        got.push({ seq: d.seq, count: d.deliveryCount, at: Date.now() });
        if (d.deliveryCount > 1) d.ack();
      }
    });
    await waitFor(() => got.length >= 2, 'the redelivery', 15_000);
    const gap = got[1]!.at - got[0]!.at;
    t.same(got.map((g) => [g.seq, g.count]), [[ack.seq, 1], [ack.seq, 2]]);
    t.ok(gap >= 400, `not before ackWaitMs (${gap} ms)`);
  });

  t.test(`bus - a handler slower than ackWaitMs keeps its batch: nothing goes to another consumer (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const durable = `d${uid()}`;
    const ackWaitMs = 400;
    const deliveries: Array<{ seq: number; count: number; by: string }> = [];
    const record = (by: string, batch: Delivery[]) => {
      for (const d of batch) if (d.roomId === room) deliveries.push({ seq: d.seq, count: d.deliveryCount, by });
    };
    let slowStarted = false;
    let slowDone = false;
    // maxBatch 4 of 10 events: the slow consumer also holds events beyond its batch in flight
    // (pulled, waiting for the handler), which must not age out either
    bus.consume({ durable, maxBatch: 4, maxWaitMs: 20, ackWaitMs }, async (batch) => {
      record('slow', batch);
      if (!slowStarted) {
        slowStarted = true;
        await sleep(ackWaitMs * 4);
        slowDone = true;
      }
      for (const d of batch) d.ack();
    });
    const seqs: number[] = [];
    for (let i = 0; i < 10; i++) seqs.push((await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`))).seq);
    await waitFor(() => slowStarted, 'the slow batch started');
    bus.consume({ durable, maxBatch: 4, maxWaitMs: 20, ackWaitMs }, async (batch) => {
      record('fast', batch);
      for (const d of batch) d.ack();
    });
    await waitFor(() => slowDone && deliveries.length >= seqs.length, 'the slow batch finished and every event was delivered');
    await sleep(ackWaitMs * 2); // a redelivery caused by the slow write would show up by now
    t.same(deliveries.map((d) => d.seq).sort((a, b) => a - b), seqs, 'each event delivered exactly once');
    t.same(deliveries.filter((d) => d.count !== 1), [], 'no redelivery');
    t.ok(deliveries.filter((d) => d.by === 'slow').length >= 4, 'the slow consumer kept its whole batch');
  });

  t.test(`bus - a delivery kept after its handler returned stays while working() is called (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const ack = await bus.publishDurable(room, `${room}-1`, enc.encode('kept'));
    const got: Array<{ count: number; at: number }> = [];
    let kept: Delivery | undefined;
    bus.consume({ durable: `d${uid()}`, maxBatch: 10, maxWaitMs: 20, ackWaitMs: 400 }, async (batch) => {
      for (const d of batch) {
        if (d.roomId !== room) {
          d.ack();
          continue;
        }
        got.push({ count: d.deliveryCount, at: Date.now() });
        if (d.deliveryCount === 1) kept = d;
        else d.ack();
      }
    });
    await waitFor(() => kept !== undefined, 'the first delivery');
    const keeping = setInterval(() => kept!.working(), 150);
    await sleep(1200);
    clearInterval(keeping);
    t.same(got.map((g) => g.count), [1], 'not redelivered while its holder says it is working on it');
    await waitFor(() => got.length >= 2, 'the redelivery once working() stopped');
    t.equal(got[1]!.count, 2);
    t.ok(got[1]!.at - got[0]!.at >= 1200, 'only after the holder went quiet');
    t.equal(kept!.seq, ack.seq);
  });

  t.test(`bus - events of a handler that throws are redelivered (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const expected: number[] = [];
    for (let i = 0; i < 3; i++) expected.push((await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`))).seq);
    const attempts = new Map<number, number[]>();
    const done = new Set<number>();
    bus.consume({ durable: `d${uid()}`, maxBatch: 10, maxWaitMs: 20, ackWaitMs: 30_000 }, async (batch) => {
      let fail = false;
      for (const d of batch) {
        if (d.roomId !== room) {
          d.ack();
          continue;
        }
        attempts.set(d.seq, [...(attempts.get(d.seq) ?? []), d.deliveryCount]);
        if (d.deliveryCount === 1) fail = true;
      }
      if (fail) throw new Error('handler failure (expected by the test)');
      for (const d of batch) {
        if (d.roomId === room) done.add(d.seq);
        d.ack();
      }
    });
    // ackWait is 30 s: only the retry after a throw can bring them back this soon
    await waitFor(() => done.size >= 3, 'redelivered events acked', 15_000);
    t.same([...done].sort((x, y) => x - y), expected);
    for (const seq of expected) t.same(attempts.get(seq), [1, 2], `seq ${seq}: failed once, then delivered again`);
  });

  t.test(`bus - a term'd event is never delivered again (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const x = await bus.publishDurable(room, `${room}-x`, enc.encode('x'));
    const y = await bus.publishDurable(room, `${room}-y`, enc.encode('y'));
    const got: number[] = [];
    const consumer = bus.consume({ durable: `d${uid()}`, maxBatch: 10, maxWaitMs: 20, ackWaitMs: 300 }, async (batch) => {
      for (const d of batch) {
        if (d.roomId === room) got.push(d.seq);
        if (d.seq === x.seq) d.term();
        else d.ack();
      }
    });
    await waitFor(async () => got.length >= 2 && (await consumer.pending()) === 0, 'both settled');
    await sleep(1000);
    t.same(got, [x.seq, y.seq], 'the term\'d event came once');
    t.equal(await consumer.pending(), 0, 'term counts as settled');
  });

  t.test(`bus - pending counts events not yet acked, in flight included (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    for (let i = 0; i < 6; i++) await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`));
    const held: Delivery[] = [];
    const consumer = bus.consume({ durable: `d${uid()}`, maxBatch: 10, maxWaitMs: 20, ackWaitMs: 30_000 }, async (batch) => {
      for (const d of batch) {
        if (d.roomId === room) held.push(d);
        else d.ack();
      }
    });
    await waitFor(() => held.length === 6, 'all six delivered');
    await waitFor(async () => (await consumer.pending()) === 6, 'pending 6');
    t.equal(await consumer.pending(), 6, 'delivered, unsettled events are pending');
    held[0]!.ack();
    held[1]!.ack();
    await waitFor(async () => (await consumer.pending()) === 4, 'pending 4 after two acks');
    held[2]!.term();
    await waitFor(async () => (await consumer.pending()) === 3, 'pending 3 after a term');
    held[3]!.nak(60_000);
    await sleep(200);
    t.equal(await consumer.pending(), 3, 'a nak does not settle');
    const late = await bus.publishDurable(room, `${room}-late`, enc.encode('late'));
    await waitFor(() => held.some((d) => d.seq === late.seq), 'the late event delivered');
    t.equal(await consumer.pending(), 4, 'a new event is pending until acked');
  });

  t.test(`bus - batches hold at most maxBatch events; a full batch does not wait (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    for (let i = 0; i < 25; i++) await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`));
    const sizes: number[] = [];
    let own = 0;
    let firstAt = 0;
    const start = Date.now();
    bus.consume({ durable: `d${uid()}`, maxBatch: 10, maxWaitMs: 2000 }, async (batch) => {
      if (sizes.length === 0) firstAt = Date.now();
      sizes.push(batch.length);
      for (const d of batch) {
        if (d.roomId === room) own++;
        d.ack();
      }
    });
    await waitFor(() => own >= 25, 'all 25 events', 20_000);
    t.ok(sizes.every((n) => n >= 1 && n <= 10), `batch sizes ${sizes.join(',')} within 1..10`);
    t.equal(sizes[0], 10, 'the first batch was full');
    t.ok(firstAt - start < 1500, `a full batch is handed over without waiting maxWaitMs (${firstAt - start} ms)`);
  });

  t.test(`bus - a partial batch is handed over after about maxWaitMs (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const batches: Array<{ at: number; own: number }> = [];
    bus.consume({ durable: `d${uid()}`, maxBatch: 100, maxWaitMs: 300 }, async (batch) => {
      let own = 0;
      for (const d of batch) {
        if (d.roomId === room) own++;
        d.ack();
      }
      if (own > 0) batches.push({ at: Date.now(), own });
    });
    await sleep(100);
    const start = Date.now();
    for (let i = 0; i < 3; i++) await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`));
    await waitFor(() => batches.reduce((n, b) => n + b.own, 0) >= 3, 'the three events', 10_000);
    const last = batches[batches.length - 1]!;
    t.ok(last.at - start < 300 + 2500, `delivered without a full batch (${last.at - start} ms)`);
    t.equal(batches.reduce((n, b) => n + b.own, 0), 3, 'each event once');
  });

  t.test(`bus - stop waits for the batch in flight; the group keeps its place (${opts.name})`, async (t) => {
    const bus = await open(t);
    const room = `r${uid()}`;
    const durable = `d${uid()}`;
    const first = await bus.publishDurable(room, `${room}-1`, enc.encode('1'));
    let started = false;
    let finished = false;
    const seenByFirst: number[] = [];
    const consumer = bus.consume({ durable, maxBatch: 10, maxWaitMs: 20 }, async (batch) => {
      started = true;
      await sleep(300);
      for (const d of batch) {
        if (d.roomId === room) seenByFirst.push(d.seq);
        d.ack();
      }
      finished = true;
    });
    await waitFor(() => started, 'the batch started');
    await consumer.stop();
    t.equal(finished, true, 'stop resolved after the handler finished');
    t.same(seenByFirst, [first.seq]);

    const second = await bus.publishDurable(room, `${room}-2`, enc.encode('2'));
    await sleep(200);
    t.same(seenByFirst, [first.seq], 'a stopped consumer gets nothing');
    const seenByNext: number[] = [];
    bus.consume({ durable, maxBatch: 10, maxWaitMs: 20 }, async (batch) => {
      for (const d of batch) {
        if (d.roomId === room) seenByNext.push(d.seq);
        d.ack();
      }
    });
    await waitFor(() => seenByNext.length >= 1, 'the next consumer got the new event');
    await sleep(200);
    t.same(seenByNext, [second.seq], 'the same durable resumes after the acked event');
  });

  t.test(`bus - after close, publish is a no-op and publishDurable rejects with unavailable (${opts.name})`, async (t) => {
    const bus = await opts.open();
    await bus.close();
    t.doesNotThrow(() => bus.publish(`test.${uid()}.ev`, enc.encode('x')));
    await t.rejects(bus.publishDurable(`r${uid()}`, 'x', enc.encode('x')), { name: 'ChatError', code: 'unavailable' });
  });
}

async function replayAll(bus: Bus, roomId: string, sinceMs: number): Promise<DurableMessage[]> {
  const out: DurableMessage[] = [];
  await bus.replay(roomId, sinceMs, (m) => out.push(m));
  return out;
}

function uid(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `cond` holds; a noisy CI machine gets generous time rather than a fixed sleep. */
async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
