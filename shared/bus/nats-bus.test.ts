import t, { type Test } from 'tap';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { connect, type JetStreamManager } from 'nats';
import { runBusContract } from './bus.contract.ts';
import { createBus, createNatsBus, type Bus, type NatsBusConfig, type NatsBusOptions } from './index.ts';
import { ChatError } from '../protocol/errors.ts';
import { startNatsServer, startNatsCluster, freePort, type NatsServer } from '../../test/support/nats-server.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const STREAM = 'CHAT';

/** Log lines of every bus the tests open, to check what the adapter reports. */
function capturingLogger(): { log: Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

async function startServer(t: Test, opts: Parameters<typeof startNatsServer>[0] = {}): Promise<NatsServer> {
  const server = await startNatsServer(opts);
  t.teardown(() => server.destroy());
  return server;
}

async function adminFor(t: Test, server: NatsServer): Promise<JetStreamManager> {
  const nc = await connect({ servers: server.url, name: 'nats-bus test admin' });
  t.teardown(() => nc.close());
  return nc.jetstreamManager();
}

async function deleteStream(jsm: JetStreamManager, name = STREAM): Promise<void> {
  try {
    await jsm.streams.delete(name);
  } catch (err) {
    if ((err as { api_error?: { err_code?: number } }).api_error?.err_code !== 10059) throw err;
  }
}

function openBus(t: Test, cfg: Partial<NatsBusConfig> & { servers: string[] }, log: Logger, opts: NatsBusOptions = {}): Bus {
  const bus = createNatsBus({ recoveryWindowSec: 3600, ...cfg }, log, { reconnectWaitMs: 200, ...opts });
  t.teardown(() => bus.close());
  return bus;
}

// one server for the contract and the tests that only need a working NATS
const server = await startServer(t);
const admin = await adminFor(t, server);
const contractLog = capturingLogger();

runBusContract(t, {
  name: 'nats',
  open: async () => {
    // consumers start at the oldest retained event: hand every test a fresh stream
    await deleteStream(admin);
    const bus = createNatsBus({ servers: [server.url], recoveryWindowSec: 3600 }, contractLog.log);
    await bus.ready();
    return bus;
  },
});

t.test('bus - nats: the stream is created with the configured retention, dedupe window and replicas', async (t) => {
  await deleteStream(admin, 'CHAT_CFG');
  await deleteStream(admin);
  const bus = openBus(t, { servers: [server.url], streamName: 'CHAT_CFG', recoveryWindowSec: 600, duplicateWindowSec: 30 }, pino({ level: 'silent' }));
  t.teardown(() => deleteStream(admin, 'CHAT_CFG'));
  await bus.ready();
  const info = await admin.streams.info('CHAT_CFG');
  t.same(info.config.subjects, ['chat.durable.>']);
  t.equal(info.config.storage, 'file');
  t.equal(info.config.discard, 'old');
  t.equal(info.config.max_age, 600 * 1e9);
  t.equal(info.config.duplicate_window, 30 * 1e9);
  t.equal(info.config.num_replicas, 1);
  t.same(info.config.republish, { src: 'chat.durable.>', dest: 'chat.live.>' }, 'every stored event is republished on the live subjects');

  await bus.close();
  const wider = openBus(t, { servers: [server.url], streamName: 'CHAT_CFG', recoveryWindowSec: 1200, duplicateWindowSec: 60 }, pino({ level: 'silent' }));
  await wider.ready();
  const updated = await admin.streams.info('CHAT_CFG');
  t.equal(updated.config.max_age, 1200 * 1e9, 'an existing stream is updated to the config');
  t.equal(updated.config.duplicate_window, 60 * 1e9);
  const ack = await wider.publishDurable('r1', 'cfg-1', enc.encode('x'));
  t.equal(ack.duplicate, false, 'and takes events');
});

t.test('bus - nats: a dedupeId published through two connections is stored once', async (t) => {
  await deleteStream(admin);
  const a = openBus(t, { servers: [server.url] }, pino({ level: 'silent' }), { name: 'dedupe-a' });
  const b = openBus(t, { servers: [server.url] }, pino({ level: 'silent' }), { name: 'dedupe-b' });
  await Promise.all([a.ready(), b.ready()]);
  const room = `r${uid()}`;
  const first = await a.publishDurable(room, 'msg-1', enc.encode('from a'));
  const second = await b.publishDurable(room, 'msg-1', enc.encode('from b'));
  t.same(first, { seq: first.seq, duplicate: false });
  t.same(second, { seq: first.seq, duplicate: true }, 'the other connection gets the first sequence, marked duplicate');
  const stored = await b.getDurable(first.seq);
  t.equal(dec.decode(stored!.data), 'from a', 'the first payload is kept');
  t.equal(stored!.dedupeId, 'msg-1');
  t.equal(stored!.headers, undefined, 'no caller headers: the message id travels as dedupeId only');
  const events: string[] = [];
  await a.replay(room, 0, (m) => events.push(dec.decode(m.data)));
  t.same(events, ['from a']);
});

t.test('bus - nats: replay reports incomplete once events at/after sinceMs aged out', async (t) => {
  await deleteStream(admin, 'CHAT_SHORT');
  await deleteStream(admin);
  t.teardown(() => deleteStream(admin, 'CHAT_SHORT'));
  const bus = openBus(t, { servers: [server.url], streamName: 'CHAT_SHORT', recoveryWindowSec: 1 }, pino({ level: 'silent' }));
  await bus.ready();
  const room = `r${uid()}`;
  const old = await bus.publishDurable(room, 'old', enc.encode('old'));
  const oldAt = (await bus.getDurable(old.seq))!.storedAt;
  await waitFor(async () => (await bus.getDurable(old.seq)) === undefined, 'the old event aged out', 15_000);
  const fresh = await bus.publishDurable(room, 'fresh', enc.encode('fresh'));
  const freshAt = (await bus.getDurable(fresh.seq))!.storedAt;
  await sleep(5);
  const newer = await bus.publishDurable(room, 'newer', enc.encode('newer'));
  const newerAt = (await bus.getDurable(newer.seq))!.storedAt;
  t.ok(newerAt > freshAt, 'precondition: the two retained events have different times');

  const seen: number[] = [];
  const fromOld = await bus.replay(room, oldAt, (m) => seen.push(m.seq));
  t.same(seen, [fresh.seq, newer.seq], 'only what is still stored');
  t.equal(fromOld.complete, false, 'an event at/after sinceMs was dropped');
  t.ok(fromOld.lastSeq >= newer.seq);
  const fromNewer = await bus.replay(room, newerAt, () => {});
  t.equal(fromNewer.complete, true, 'the oldest retained event is older than sinceMs: nothing at/after it was dropped');
  const fromFresh = await bus.replay(room, freshAt, () => {});
  t.equal(fromFresh.complete, false, 'a dropped event may share the oldest retained event\'s ms: not claimed complete');
  await waitFor(async () => (await bus.getDurable(newer.seq)) === undefined, 'the retained events aged out too', 15_000);
  const empty = await bus.replay(room, newerAt, () => t.fail('nothing to replay'));
  t.equal(empty.complete, false, 'an emptied stream cannot tell when its events were stored');
});

t.test('bus - nats: a consumer pulls at most one batch beyond the one in its handler', async (t) => {
  await deleteStream(admin);
  const bus = openBus(t, { servers: [server.url] }, pino({ level: 'silent' }));
  await bus.ready();
  const room = `r${uid()}`;
  for (let i = 0; i < 30; i++) await bus.publishDurable(room, `${room}-${i}`, enc.encode(`e${i}`));
  let release!: () => void;
  const released = new Promise<void>((resolve) => { release = resolve; });
  let inHandler = 0;
  let handled = 0;
  bus.consume({ durable: 'prefetch', maxBatch: 5, maxWaitMs: 20, ackWaitMs: 1000 }, async (batch) => {
    inHandler = batch.length;
    await released;
    for (const d of batch) d.ack();
    handled += batch.length;
  });
  await waitFor(() => inHandler > 0, 'the first batch in the handler');
  await sleep(500); // time for the puller to take what it may
  const info = await admin.consumers.info(STREAM, 'prefetch');
  t.equal(inHandler, 5, 'a full first batch');
  t.equal(info.num_ack_pending, 10, 'the batch in the handler and one more are out; the rest stays in the stream for others');
  t.equal(info.num_pending, 20);
  release();
  await waitFor(() => handled === 30, 'all handled once released');
});

t.test('bus - nats: a stream made without the republish rule fails ready() with what to do (nats-server 2.9 cannot add it)', async (t) => {
  await deleteStream(admin); // tests before this one leave the default stream on chat.durable.>
  await deleteStream(admin, 'CHAT_OLD');
  t.teardown(() => deleteStream(admin, 'CHAT_OLD'));
  await admin.streams.add({ name: 'CHAT_OLD', subjects: ['chat.durable.>'] });
  const bus = openBus(t, { servers: [server.url], streamName: 'CHAT_OLD' }, pino({ level: 'silent' }));
  const err = await bus.ready().then(() => undefined, (e: unknown) => e);
  const info = await admin.streams.info('CHAT_OLD');
  if (info.config.republish) {
    t.same(info.config.republish, { src: 'chat.durable.>', dest: 'chat.live.>' }, 'a server that can change republish got the rule');
    t.equal(err, undefined);
  } else {
    t.match(err, { name: 'ChatError', code: 'unavailable', message: /does not republish chat\.durable\.> to chat\.live\.>.*nats stream rm CHAT_OLD/ });
  }
});

t.test('bus - nats: publishes in flight when the connection drops fail with unavailable within 100 ms', async (t) => {
  const own = await startServer(t);
  const bus = openBus(t, { servers: [own.url] }, pino({ level: 'silent' }));
  await bus.ready();
  const room = `r${uid()}`;
  await bus.publishDurable(room, 'warm', enc.encode('x'));
  own.pause(); // PUBs reach its socket but nothing is answered
  await sleep(100); // SIGSTOP takes effect when the kernel next schedules it
  const pending = Array.from({ length: 50 }, (_, i) => bus.publishDurable(room, `hung-${i}`, enc.encode('x')).then(
    () => ({ at: Date.now(), code: 'ok' }), (err: unknown) => ({ at: Date.now(), code: err instanceof ChatError ? err.code : String(err) })));
  await sleep(300);
  const dropped = Date.now();
  await own.kill();
  const results = await Promise.all(pending);
  const slowest = Math.max(...results.map((r) => r.at)) - dropped;
  t.same([...new Set(results.map((r) => r.code))], ['unavailable'], 'every publish in flight failed with unavailable');
  t.ok(slowest < 100, `all within 100 ms of the drop (the last after ${slowest} ms), not after the publish timeout`);
  const started = Date.now();
  await t.rejects(bus.publishDurable(room, 'after', enc.encode('x')), { code: 'unavailable' });
  t.ok(Date.now() - started < 20, 'and a new one fails at once');
});

t.test('bus - nats: sends fail fast while NATS is down; events and consumers survive a restart', async (t) => {
  const own = await startServer(t);
  const { log, lines } = capturingLogger();
  const bus = openBus(t, { servers: [own.url] }, log);
  await bus.ready();
  const room = `r${uid()}`;
  const before = await bus.publishDurable(room, 'before', enc.encode('before'), { traceparent: '00-aa-bb-01' });

  const consumed: Array<{ seq: number; text: string; count: number }> = [];
  // a short ackWait: an ack the server had not yet written when it was killed redelivers soon
  const consumer = bus.consume({ durable: 'restart-test', maxBatch: 50, maxWaitMs: 20, ackWaitMs: 2000 }, async (batch) => {
    for (const d of batch) {
      consumed.push({ seq: d.seq, text: dec.decode(d.data), count: d.deliveryCount });
      d.ack();
    }
  });
  const live: string[] = [];
  bus.subscribe(`test.${room}.ev`, (p) => live.push(dec.decode(p)));
  await waitFor(() => consumed.length === 1, 'the first event consumed');

  await own.kill();
  let started = Date.now();
  const err = await bus.publishDurable(room, 'during-1', enc.encode('x')).then(() => undefined, (e: unknown) => e);
  const firstMs = Date.now() - started;
  t.ok(err instanceof ChatError && err.code === 'unavailable', `rejected with unavailable (${String(err)})`);
  t.ok(firstMs < 3500, `right after the crash it fails within the publish timeout (${firstMs} ms)`);
  await waitFor(() => lines.some((l) => /disconnected from NATS/.test(l.msg)), 'the disconnect was logged');
  started = Date.now();
  await t.rejects(bus.publishDurable(room, 'during-2', enc.encode('x')), { name: 'ChatError', code: 'unavailable' });
  const secondMs = Date.now() - started;
  t.ok(secondMs < 500, `once the disconnect is known it fails at once (${secondMs} ms)`);
  await t.rejects(bus.ready(), { code: 'unavailable' }, 'ready() says why');
  await t.rejects(bus.getDurable(before.seq), { code: 'unavailable' });
  t.doesNotThrow(() => bus.publish(`test.${room}.ev`, enc.encode('lost')), 'live publish does not throw while down');

  await sleep(1500); // the consumer loop sees the outage too
  await own.restart();
  await waitFor(async () => bus.ready().then(() => true, () => false), 'the bus reconnected', 30_000);

  const kept = await bus.getDurable(before.seq);
  t.equal(dec.decode(kept!.data), 'before', 'the event stored before the crash is still there');
  t.equal(kept!.headers?.traceparent, '00-aa-bb-01');
  const after = await bus.publishDurable(room, 'after', enc.encode('after'));
  t.ok(after.seq > before.seq, 'sequences continue after the restart');
  await waitFor(() => consumed.some((c) => c.seq === after.seq), 'the same consumer delivered the new event', 30_000);
  await waitFor(async () => (await consumer.pending()) === 0, 'nothing pending', 20_000);
  t.same([...new Set(consumed.map((c) => c.text))], ['before', 'after'], 'both events consumed, in order');
  const repeats = consumed.filter((c, i) => consumed.findIndex((o) => o.seq === c.seq) !== i);
  t.ok(repeats.every((c) => c.text === 'before' && c.count >= 2), 'at most the pre-crash event came again (its ack may not have reached disk), counted as a redelivery');

  bus.publish(`test.${room}.ev`, enc.encode('back'));
  await waitFor(() => live.includes('back'), 'the live subscription works again after the reconnect');
  t.same(live, ['back'], 'the publish made while down was dropped, not replayed');
  t.equal(lines.filter((l) => /disconnected from NATS/.test(l.msg)).length, 1, 'one disconnect logged for the outage');
  t.ok(lines.some((l) => /reconnected to NATS/.test(l.msg)), 'the reconnect was logged');
});

t.test('bus - nats: a lost connection reports live interrupted, then restored once subscriptions are back', async (t) => {
  const own = await startServer(t);
  const bus = openBus(t, { servers: [own.url] }, pino({ level: 'silent' }));
  await bus.ready();
  const got: string[] = [];
  bus.subscribe('chat.room.gap.ev', (p) => got.push(dec.decode(p)));
  const calls: string[] = [];
  let since = 0;
  let restored!: () => void;
  const restoredNow = new Promise<void>((resolve) => { restored = resolve; });
  const watch = bus.watchLive({
    interrupted: () => calls.push('interrupted'),
    restored: (s) => { calls.push('restored'); since = s; restored(); },
  });
  t.teardown(() => watch.unsubscribe());
  t.same(calls, [], 'a healthy connection reports nothing');

  const before = Date.now();
  await own.restart();
  await Promise.race([restoredNow, new Promise((_, reject) => setTimeout(() => reject(new Error('not restored in 15 s')), 15_000))]);
  t.same(calls, ['interrupted', 'restored'], 'one interruption, then one restore');
  t.ok(since >= before && since <= Date.now(), 'restored() names when the interruption began');

  // restored() promises the subscriptions are back at the server: a publish made right now arrives
  const nc = await connect({ servers: own.url, name: 'nats-bus test publisher' });
  nc.publish('chat.room.gap.ev', enc.encode('right after restore'));
  await nc.flush();
  await nc.close();
  for (let i = 0; i < 50 && !got.includes('right after restore'); i++) await new Promise((r) => setTimeout(r, 20));
  t.same(got, ['right after restore'], 'a publish made right after restored() arrives');

  const late: string[] = [];
  bus.watchLive({ interrupted: () => late.push('interrupted'), restored: () => late.push('restored') }).unsubscribe();
  await own.stop();
  await new Promise((r) => setTimeout(r, 200));
  t.same(late, [], 'an unsubscribed watcher hears nothing');
});

t.test('bus - nats: a cluster node leaving reports live interrupted and restored, and replays still complete', async (t) => {
  const nodes = await startNatsCluster({ size: 3 });
  t.teardown(() => Promise.all(nodes.map((n) => n.destroy())));
  // only the first node configured and no randomizing of it: the bus stays on node 1 throughout
  const bus = openBus(t, { servers: [nodes[0]!.url], replicas: 3 }, pino({ level: 'silent' }));
  await bus.ready();
  const calls: string[] = [];
  bus.watchLive({ interrupted: () => calls.push('interrupted'), restored: () => calls.push('restored') });
  const room = 'degraded';
  for (let i = 0; i < 10; i++) await bus.publishDurable(room, `before-${i}`, enc.encode(`e${i}`));
  const since = Date.now() - 60_000;
  await nodes[2]!.kill();
  for (let i = 0; i < 100 && calls.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  t.same(calls, ['interrupted', 'restored'], 'the watcher repairs as after an outage');

  // with a node away, the server may place a replay's consumer on it, where it never delivers
  for (let i = 0; ; i++) {
    try {
      await bus.publishDurable(room, 'after', enc.encode('after'));
      break;
    } catch (err) {
      if (i > 60) throw err; // the stream had a leader election to finish
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const replays: number[] = [];
  for (let i = 0; i < 8; i++) {
    let n = 0;
    await bus.replay(room, since, () => { n++; });
    replays.push(n);
  }
  t.same(replays, replays.map(() => 11), 'every replay in the degraded cluster passes on every event once');
  await nodes[2]!.restart();
  await new Promise((r) => setTimeout(r, 500));
  t.same(calls, ['interrupted', 'restored'], 'a node joining loses nothing and reports nothing');
});

t.test('bus - createBus builds the NATS bus, and fails with unavailable when NATS cannot be reached', async (t) => {
  await deleteStream(admin);
  const log = pino({ level: 'silent' });
  const bus = await createBus({ adapter: 'nats', servers: [server.url], recoveryWindowSec: 60 }, log);
  t.teardown(() => bus.close());
  t.equal(bus.kind, 'nats');
  const ack = await bus.publishDurable('r1', `e-${uid()}`, enc.encode('x'));
  t.equal(dec.decode((await bus.getDurable(ack.seq))!.data), 'x');

  const nobody = await freePort();
  const started = Date.now();
  const err = await createBus({ adapter: 'nats', servers: [`nats://127.0.0.1:${nobody}`], recoveryWindowSec: 60 }, log).catch((e: unknown) => e);
  t.ok(err instanceof ChatError, 'a ChatError');
  t.equal((err as ChatError).code, 'unavailable');
  t.match((err as ChatError).message, String(nobody), 'naming the server it tried');
  t.ok(Date.now() - started < 5000, `without waiting long (${Date.now() - started} ms)`);
});

t.test('bus - nats: contract run logged throwing subscribers and handlers, nothing unexpected', async (t) => {
  t.ok(contractLog.lines.some((l) => /live subscriber threw/.test(l.msg)), 'a throwing live subscriber is logged');
  t.ok(contractLog.lines.some((l) => /batch handler threw/.test(l.msg)), 'a throwing batch handler is logged');
  const errors = contractLog.lines.filter((l) => l.level >= 50 && !/live subscriber threw|batch handler threw/.test(l.msg));
  t.same(errors, [], 'no other errors');
});

function uid(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
