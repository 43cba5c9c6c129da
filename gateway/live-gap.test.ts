import t from 'tap';
import type { TemplatedApp } from 'uWebSockets.js';
import { createMemoryBus, subjects, type Bus, type LiveWatcher } from '../shared/bus/index.ts';
import { decodeMsgpack, encodeMsgpack } from '../shared/protocol/codec.ts';
import type { ServerFrame } from '../shared/protocol/frames.ts';
import type { DurableEvent } from '../shared/domain/events.ts';
import type { Message } from '../shared/domain/models.ts';
import { Snowflake } from '../shared/ids/snowflake.ts';
import { silentLogger } from '../shared/telemetry/logger.ts';
import { RoomFanout } from './room-fanout.ts';
import { LiveGapRepair } from './live-gap.ts';
import { LocalUsers } from './local-users.ts';
import { FallbackConnection } from './fallback-session.ts';
import { resync } from './receiver.ts';
import type { Connection, Socket } from './connection.ts';

const ROOM = 'room_1';

/**
 * The memory bus, except that the test decides when the live plane is interrupted and restored,
 * and which stored events never reach this gateway live (`event(bus, false)`).
 */
const losing = new WeakMap<Bus, { on: boolean }>();
async function controllableBus(): Promise<{ bus: Bus; watcher: () => LiveWatcher }> {
  const mem = await createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 10_000 });
  let watcher: LiveWatcher | undefined;
  const lose = { on: false };
  const bus: Bus = {
    kind: 'memory',
    publish: (s, p) => mem.publish(s, p),
    subscribe: (s, h) => mem.subscribe(s, (p, subject, seq) => { if (!lose.on) h(p, subject, seq); }),
    watchLive: (w) => { watcher = w; return { unsubscribe: () => { watcher = undefined; } }; },
    publishDurable: (r, d, p, h) => mem.publishDurable(r, d, p, h),
    getDurable: (seq) => mem.getDurable(seq),
    replay: (r, since, on) => mem.replay(r, since, on),
    consume: (o, h) => mem.consume(o, h),
    ready: () => mem.ready(),
    close: () => mem.close(),
  };
  losing.set(bus, lose);
  return { bus, watcher: () => { if (!watcher) throw new Error('nobody watches the live plane'); return watcher; } };
}

/** Stores an event; the stream's republish reaches this gateway only if `live` (else it was cut off). */
async function store(bus: Bus, roomId: string, dedupeId: string, payload: Uint8Array, live: boolean): Promise<number> {
  const lose = losing.get(bus)!;
  lose.on = !live;
  try {
    return (await bus.publishDurable(roomId, dedupeId, payload)).seq;
  } finally {
    lose.on = false;
  }
}

/** What the uWS app was asked to publish to the room's msgpack topic, as seqs (or frame types). */
function fakeApp(): { app: TemplatedApp; sent: Array<number | string> } {
  const sent: Array<number | string> = [];
  const app = {
    publish(topic: string, payload: Uint8Array) {
      if (topic !== `m:${ROOM}`) return true;
      const frame = decodeMsgpack(payload) as { type: string; seq?: number };
      sent.push(frame.seq ?? frame.type);
      return true;
    },
    numSubscribers: () => 0,
  } as unknown as TemplatedApp;
  return { app, sent };
}

function fakeSocket(): Socket {
  const conn = {
    principal: { userId: 'u1', name: 'U', tenant: 'default', roles: [], expiresAt: undefined },
    connectionId: 'c1', format: 'msgpack', legacy: false, initialRoom: undefined, device: undefined,
    rooms: new Set<string>(), typing: undefined, queue: Promise.resolve(), closed: false, welcomed: false, openedAt: Date.now(),
  } as Connection;
  return { getUserData: () => conn, subscribe: () => true, unsubscribe: () => true } as unknown as Socket;
}

/** A fan-out whose hooks do nothing: these tests look at what reaches the connections. */
function quietFanout(app: TemplatedApp, bus: Bus): RoomFanout {
  return new RoomFanout(app, bus, {
    onControl: () => {}, onDirectDelivered: () => {}, loadRoom: async () => undefined, watch: () => {}, unwatch: () => {},
  }, silentLogger());
}

let n = 0;
/** Stores an event in the stream; `live`: its republish reaches this gateway (else it was cut off). */
async function event(bus: Bus, live: boolean): Promise<number> {
  const ev: DurableEvent = { kind: 'message.deleted', id: String(++n), at: Date.now(), roomId: ROOM, messageId: '42', userId: 'u2' };
  return store(bus, ROOM, ev.id, encodeMsgpack(ev), live);
}

t.test('live gap - events missed while cut off are replayed, merged with held live frames in stream order', async (t) => {
  const { bus, watcher } = await controllableBus();
  t.teardown(() => bus.close());
  const { app, sent } = fakeApp();
  const fanout = quietFanout(app, bus);
  fanout.add(fakeSocket(), ROOM);
  const repair = new LiveGapRepair(bus, fanout, 5000, silentLogger(), () => t.fail('nothing is unrepaired'));
  repair.start();
  t.teardown(() => repair.stop());

  const s1 = await event(bus, true);
  const s2 = await event(bus, true);
  t.same(sent, [s1, s2], 'live frames go out at once');

  watcher().interrupted();
  const s3 = await event(bus, false); // published while this gateway was cut off: never arrives live
  const s4 = await event(bus, true); // arrives after the connection came back, before the repair
  bus.publish(subjects.roomEvents(ROOM), encodeMsgpack({ type: 'typing_indicator', roomId: ROOM, user: { userId: 'u2', name: 'U2' }, isTyping: true }));
  t.same(sent, [s1, s2], 'nothing goes out while the room is held');

  watcher().restored(Date.now() - 1000);
  for (let i = 0; i < 100 && sent.length < 7; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(sent, [s1, s2, s1, s2, s3, s4, 'typing_indicator'],
    'the replay (from the interruption minus the skew) and the held frames go out in seq order, each seq once, unsequenced frames last');

  const s5 = await event(bus, true);
  t.equal(sent.at(-1), s5, 'then the room is live again');
});

t.test('live gap - a second interruption during a repair takes the hold over and repairs from the first', async (t) => {
  const { bus, watcher } = await controllableBus();
  t.teardown(() => bus.close());
  const { app, sent } = fakeApp();
  const fanout = quietFanout(app, bus);
  fanout.add(fakeSocket(), ROOM);
  const repair = new LiveGapRepair(bus, fanout, 0, silentLogger(), () => t.fail('nothing is unrepaired'));
  repair.start();
  t.teardown(() => repair.stop());

  const firstDown = Date.now();
  watcher().interrupted();
  const s1 = await event(bus, false);
  watcher().restored(firstDown);
  watcher().interrupted(); // lost again before the repair's replay finished
  const s2 = await event(bus, false);
  await new Promise((r) => setTimeout(r, 50));
  t.same(sent, [], 'the first repair does not release a room the second interruption holds');
  watcher().restored(Date.now());
  for (let i = 0; i < 100 && sent.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(sent, [s1, s2], 'the second repair replays from the first interruption');
});

t.test('live gap - a room whose replay keeps failing is reported for its sockets to resume, then goes live', async (t) => {
  const { bus, watcher } = await controllableBus();
  t.teardown(() => bus.close());
  const broken: Bus = { ...bus, replay: async () => { throw new Error('JetStream is not answering'); } };
  const { app, sent } = fakeApp();
  const fanout = quietFanout(app, broken);
  fanout.add(fakeSocket(), ROOM);
  const reported: string[][] = [];
  const repair = new LiveGapRepair(broken, fanout, 0, silentLogger(), (rooms) => reported.push(rooms), 1200);
  repair.start();
  t.teardown(() => repair.stop());

  watcher().interrupted();
  await event(bus, true);
  watcher().restored(Date.now());
  await new Promise((r) => setTimeout(r, 300));
  t.same(sent, [], 'held while the replay is retried');
  for (let i = 0; i < 100 && reported.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.same(reported, [[ROOM]], 'the room is reported once the replay gave up');
  t.same(sent, [], 'what it held is dropped: its sockets resume from before the gap');
  const s2 = await event(bus, true);
  t.equal(sent.at(-1), s2, 'then it is live');
});

const ids = new Snowflake(3);

/** Stores a new message in the stream; `live`: its republish reaches this gateway (else it was cut off). */
async function send(bus: Bus, content: string, live: boolean): Promise<string> {
  const messageId = ids.next();
  const message = { messageId, roomId: ROOM, authorId: 'u2', authorName: 'U2', content, type: 'text', timestamp: new Date().toISOString() } as Message;
  const ev: DurableEvent = { kind: 'message.created', id: messageId, at: Date.now(), roomId: ROOM, message };
  await store(bus, ROOM, messageId, encodeMsgpack(ev), live);
  return messageId;
}

const contents = (frames: ServerFrame[]) => frames.flatMap((f) => (f.type === 'new_message' ? [f.message.content] : []));
const principal = (userId: string) => ({ userId, name: userId.toUpperCase(), tenant: 'default', roles: [], expiresAt: undefined });

t.test('live gap - SSE and long-poll connections get the repaired room like sockets do, and their resume position waits for the repair', async (t) => {
  const { bus, watcher } = await controllableBus();
  t.teardown(() => bus.close());
  const { app } = fakeApp();
  const fanout = quietFanout(app, bus);
  const users = new LocalUsers(bus, fanout, () => {}, silentLogger());
  const repair = new LiveGapRepair(bus, fanout, 0, silentLogger(), () => t.fail('nothing is unrepaired'));
  repair.start();
  t.teardown(() => repair.stop());
  const got: ServerFrame[] = [];
  let resets = 0;
  const conn = new FallbackConnection(principal('u1'), undefined, repair, (f) => got.push(f), () => resets++);
  users.attach(conn);
  fanout.add(conn, ROOM);

  const first = await send(bus, 'before the cut', true);
  t.same(contents(got), ['before the cut']);
  t.equal(conn.position, first, 'the position follows live delivery');

  // the repair replays from the cut's millisecond on (skew 0 here), and clients drop repeats by
  // seq; for "each once" below the message before the cut must be stored in an earlier millisecond
  await new Promise((r) => setTimeout(r, 5));
  const cutAt = Date.now();
  watcher().interrupted();
  t.equal(conn.moving, false, 'the position holds while live messages may be missing');
  await send(bus, 'missed 1', false);
  await send(bus, 'missed 2', false);
  const during = await send(bus, 'live during the cut', true);
  t.same(contents(got), ['before the cut'], 'live frames are held during the cut, as for sockets');
  t.equal(conn.position, first, 'a message that arrived during the cut does not move the position past the hole');

  watcher().restored(cutAt);
  for (let i = 0; i < 100 && repair.repairing; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(contents(got), ['before the cut', 'missed 1', 'missed 2', 'live during the cut'],
    'what the cut hid is replayed, merged with the held frames in stream order, each once');
  t.equal(conn.moving, true, 'repaired: the position moves again');
  t.equal(conn.position, first, 'the repaired frames went out while repairing: they did not move it');
  const after = await send(bus, 'after', true);
  t.equal(conn.position, after);
  t.not(during, after);
  t.equal(resets, 0);

  const late = new FallbackConnection(principal('u3'), undefined, repair, () => {}, () => resets++);
  watcher().interrupted();
  users.attach(late);
  t.equal(late.moving, false, 'a connection opened during a cut holds its position too');
});

t.test('live gap - the connections of every transport in a room that could not be repaired are ended for their clients to resume', async (t) => {
  const { bus } = await controllableBus();
  t.teardown(() => bus.close());
  const { app } = fakeApp();
  const fanout = quietFanout(app, bus);
  const users = new LocalUsers(bus, fanout, () => {}, silentLogger());
  const ended: Array<[number, string]> = [];
  const socket = { ...fakeSocket(), end: (code: number, reason: string) => { ended.push([code, reason]); } } as unknown as Socket;
  let resets = 0;
  const inRoom = new FallbackConnection(principal('u1'), undefined, { repairing: false }, () => {}, () => resets++);
  const elsewhere = new FallbackConnection(principal('u2'), undefined, { repairing: false }, () => {}, () => t.fail('not in the room'));
  for (const r of [socket, inRoom, elsewhere]) users.attach(r);
  fanout.add(socket, ROOM);
  fanout.add(inRoom, ROOM);
  fanout.add(elsewhere, 'room_2');

  for (const r of users.inRooms([ROOM])) resync(r);
  t.same(ended, [[4009, 'missed events could not be replayed; reconnect and resume']], 'the socket is closed with 4009');
  t.equal(resets, 1, 'the SSE or long-poll connection is reset');
});
