import t from 'tap';
import type { TemplatedApp } from 'uWebSockets.js';
import { createMemoryBus, subjects, type Bus } from '../shared/bus/index.ts';
import { decodeMsgpack, encodeMsgpack, type ServerFrame } from '../shared/protocol/index.ts';
import { roomKey, type Room } from '../shared/domain/index.ts';
import { silentLogger } from '../shared/telemetry/index.ts';
import type { Connection, Socket } from './connection.ts';
import { controlHandler } from './control.ts';
import { FallbackConnection } from './fallback-session.ts';
import { LocalUsers } from './local-users.ts';
import { RoomFanout } from './room-fanout.ts';

/** Connections are of a tenant other than the default one: rooms, subjects and topics go by keys, frames show ids. */
const TENANT = 'acme';
const K = (roomId: string) => roomKey(TENANT, roomId);

/** uWS topics as sets of fake sockets; what each socket receives, decoded. */
function fakeApp() {
  const topics = new Map<string, Set<{ got: unknown[] }>>();
  const published: Array<{ topic: string; message: unknown }> = [];
  const app = {
    publish(topic: string, message: unknown) {
      published.push({ topic, message });
      for (const s of topics.get(topic) ?? []) s.got.push(JSON.parse(String(message)));
      return true;
    },
    numSubscribers: (topic: string) => topics.get(topic)?.size ?? 0,
  } as unknown as TemplatedApp;
  const socket = (userId: string, tenant = TENANT) => {
    const conn = {
      principal: { userId, name: userId, tenant, roles: [], expiresAt: undefined }, connectionId: `ws-${userId}`, format: 'json',
      legacy: false, initialRoom: undefined, device: undefined, rooms: new Set<string>(), typing: undefined, queue: Promise.resolve(), closed: false, welcomed: false, openedAt: Date.now(),
    } as Connection;
    const me = {
      got: [] as ServerFrame[],
      getUserData: () => conn,
      subscribe: (topic: string) => { if (!topics.has(topic)) topics.set(topic, new Set()); topics.get(topic)!.add(me); return true; },
      unsubscribe: (topic: string) => topics.get(topic)?.delete(me) ?? false,
      cork: (fn: () => void) => fn(),
      send: (data: string) => { me.got.push(JSON.parse(data)); return 1; },
    };
    return me;
  };
  return { app, socket, published };
}

function stream(userId: string, tenant = TENANT) {
  const got: Array<{ frame: ServerFrame; json: string }> = [];
  const conn = new FallbackConnection({ userId, name: userId, tenant, roles: [], expiresAt: undefined }, undefined, { repairing: false },
    (frame, json) => got.push({ frame, json }), () => {});
  return { conn, got, frames: () => got.map((g) => g.frame) };
}

async function setup(t: { teardown(fn: () => unknown): void }, roomType: Room['type'] = 'public') {
  const bus: Bus = createMemoryBus({ recoveryWindowSec: 60, maxMessages: 1000 });
  t.teardown(() => bus.close());
  const { app, socket, published } = fakeApp();
  const delivered: Array<{ roomId: string; userIds: string[] }> = [];
  const invalidated: string[] = [];
  const access = {
    room: async () => { throw new Error('not used'); }, member: async () => undefined, retain: () => {}, release: () => {},
    invalidate: (roomId: string, userId?: string) => { invalidated.push(userId === undefined ? roomId : `${roomId}/${userId}`); },
  };
  const fanout: RoomFanout = new RoomFanout(app, bus, {
    onControl: (roomId, frame) => control(roomId, frame),
    onDirectDelivered: (roomId, _messageId, userIds) => delivered.push({ roomId, userIds }),
    loadRoom: async (roomId) => ({ roomId, type: roomType }) as Room,
    watch: () => {}, unwatch: () => {},
  }, silentLogger());
  const users = new LocalUsers(bus, fanout, (roomId, frame) => control(roomId, frame), silentLogger());
  const control = controlHandler(access, users, fanout);
  const join = (r: { getUserData(): Connection } | FallbackConnection, roomId: string) => {
    const receiver = r as Socket | FallbackConnection;
    users.attach(receiver);
    fanout.add(receiver, roomId);
  };
  await new Promise((r) => setTimeout(r, 0)); // the room type lookups
  return { bus, fanout, users, socket, join, delivered, invalidated, published };
}

const tick = () => new Promise((r) => setTimeout(r, 5));
const left = (roomId: string, userId: string): ServerFrame => ({ type: 'user_left', roomId, user: { userId, name: userId }, reason: 'kicked' });
const count = (frames: unknown[], type: string) => frames.filter((f) => (f as { type: string }).type === type).length;

for (const order of ['room subject first', 'user subject first'] as const) {
  t.test(`fan-out - a member who leaves learns of it once on every transport (${order}); the others on the room`, async (t) => {
    const h = await setup(t);
    const leaverWs = h.socket('u1');
    const leaverSse = stream('u1');
    const other = stream('u2');
    h.join(leaverWs, 'room_1');
    h.join(leaverSse.conn, 'room_1');
    h.join(other.conn, 'room_1');
    await tick();

    const payload = encodeMsgpack(left('room_1', 'u1'));
    const room = () => h.bus.publish(subjects.roomControl(K('room_1')), payload);
    const user = () => h.bus.publish(subjects.userEvents(TENANT, 'u1'), payload);
    if (order === 'room subject first') { room(); user(); } else { user(); room(); }
    await tick();

    t.equal(count(leaverWs.got, 'user_left'), 1, 'the leaver\'s socket got it once');
    t.equal(count(leaverSse.frames(), 'user_left'), 1, 'the leaver\'s SSE/long-poll connection too');
    t.equal(count(other.frames(), 'user_left'), 1, 'another member got it on the room');
    t.same([...leaverWs.getUserData().rooms, ...leaverSse.conn.rooms], [], 'the leaver\'s connections left the room');
    t.ok(h.invalidated.includes(`${K('room_1')}/u1`), 'the membership cache was told');
    h.bus.publish(subjects.roomEvents(K('room_1')), encodeMsgpack({ type: 'typing_indicator', roomId: 'room_1', user: { userId: 'u2', name: 'u2' }, isTyping: true }));
    await tick();
    t.equal(count(leaverWs.got, 'typing_indicator') + count(leaverSse.frames(), 'typing_indicator'), 0, 'and get nothing more of it');
    t.equal(count(other.frames(), 'typing_indicator'), 1);
  });
}

t.test('fan-out - JSON is stringified once per message for sockets and stream receivers; direct delivery is reported once per user', async (t) => {
  const h = await setup(t, 'direct');
  const ws = h.socket('u1');
  const sse = stream('u1');
  h.join(ws, 'dm_1');
  h.join(sse.conn, 'dm_1');
  await tick();
  const frame: ServerFrame = {
    type: 'new_message', seq: 7,
    message: { messageId: '9001', roomId: 'dm_1', authorId: 'u2', authorName: 'U2', content: 'hi', type: 'text', timestamp: new Date().toISOString() },
  } as ServerFrame;
  h.bus.publish(subjects.roomEvents(K('dm_1')), encodeMsgpack(frame));
  await tick();
  const toJson = h.published.filter((p) => p.topic === `j:${K('dm_1')}`);
  t.equal(toJson.length, 1, 'one publish to the JSON topic');
  t.equal(sse.got.length, 1);
  t.equal(sse.got[0]!.json, toJson[0]!.message, 'the stream receiver gets that same text');
  t.match(ws.got, [{ type: 'new_message', message: { content: 'hi' } }]);
  t.same(h.delivered, [{ roomId: K('dm_1'), userIds: ['u1'] }], 'u1 is reported delivered once, not once per transport');
});

t.test('fan-out - a stored event is turned into its frame once per gateway and encoded only for the encodings in the room', async (t) => {
  const h = await setup(t);
  const packed: unknown[] = [];
  const json = h.socket('u1');
  h.join(json, 'room_1');
  await tick();
  const message = { messageId: '9002', roomId: 'room_1', authorId: 'u2', authorName: 'U2', content: 'stored', type: 'text', timestamp: new Date().toISOString() };
  const event = { kind: 'message.created', id: '9002', at: Date.now(), roomId: K('room_1'), message };
  const { seq } = await h.bus.publishDurable(K('room_1'), '9002', encodeMsgpack(event));
  await tick();
  const frame = { type: 'new_message', roomId: 'room_1', message, seq };
  t.same(json.got, [frame], 'the republished event reached the JSON socket as its frame, with the stream sequence');
  t.same(h.published.map((p) => p.topic), [`j:${K('room_1')}`], 'one JSON publish and no msgpack encoding: no msgpack socket is in the room');

  const binary = h.socket('u3');
  binary.getUserData().format = 'msgpack';
  const sent: unknown[] = [];
  (binary as unknown as { subscribe(topic: string): boolean }).subscribe = (topic) => { sent.push(topic); return true; };
  h.join(binary, 'room_1');
  h.published.length = 0;
  const second = await h.bus.publishDurable(K('room_1'), '9003', encodeMsgpack({ ...event, id: '9003', message: { ...message, messageId: '9003' } }));
  await tick();
  t.same(h.published.map((p) => p.topic), [`m:${K('room_1')}`, `j:${K('room_1')}`], 'now one msgpack and one JSON publish');
  const bytes = h.published[0]!.message as Uint8Array;
  packed.push(decodeMsgpack(bytes));
  t.same(packed, [{ ...frame, message: { ...message, messageId: '9003' }, seq: second.seq }], 'the msgpack frame is the same frame');
  t.same(sent, [`m:${K('room_1')}`], 'the msgpack socket is on the msgpack topic');

  h.published.length = 0;
  await h.bus.publishDurable(K('room_1'), '9003', encodeMsgpack({ ...event, id: '9003', message: { ...message, messageId: '9003', content: 'retried' } }));
  await tick();
  t.same(h.published, [], 'a deduplicated retry is not announced, so nothing goes out');
});

t.test('fan-out - two tenants\' rooms of the same id are two rooms on one gateway: subjects, topics and frames never cross', async (t) => {
  const h = await setup(t);
  const ours = h.socket('u1');
  const theirs = h.socket('u1', 'globex');
  const theirStream = stream('u2', 'globex');
  h.join(ours, 'room_1');
  h.join(theirs, 'room_1');
  h.join(theirStream.conn, 'room_1');
  await tick();
  t.equal(h.fanout.size, 2, 'one entry per tenant');
  const message = { messageId: '9101', roomId: 'room_1', authorId: 'u9', authorName: 'U9', content: 'for acme only', type: 'text', timestamp: new Date().toISOString() };
  const { seq } = await h.bus.publishDurable(K('room_1'), '9101', encodeMsgpack({ kind: 'message.created', id: '9101', at: Date.now(), roomId: K('room_1'), message }));
  h.bus.publish(subjects.roomEvents(roomKey('globex', 'room_1')), encodeMsgpack({ type: 'typing_indicator', roomId: 'room_1', user: { userId: 'u2', name: 'u2' }, isTyping: true }));
  h.bus.publish(subjects.roomControl(K('room_1')), encodeMsgpack(left('room_1', 'u7')));
  await tick();
  t.same(ours.got.map((f) => f.type), ['new_message', 'user_left'], 'ours: its room\'s message and control frame');
  t.match(ours.got[0], { type: 'new_message', roomId: 'room_1', seq, message: { content: 'for acme only' } }, 'the frame shows the id, not the key');
  t.same(theirs.got.map((f) => f.type), ['typing_indicator'], 'theirs: only its own room\'s frames');
  t.same(theirStream.frames().map((f) => f.type), ['typing_indicator']);
  t.same(h.published.map((p) => p.topic), [`j:${K('room_1')}`, `j:${roomKey('globex', 'room_1')}`, `j:${K('room_1')}`], 'each room on its own topic');
  t.same(h.users.inRooms([K('room_1')]), [ours], 'a room\'s connections, by key (what a live gap that cannot be repaired closes)');
  t.same(h.users.inRooms([roomKey('globex', 'room_1')]), [theirs, theirStream.conn]);
  h.bus.publish(subjects.roomControl(roomKey('globex', 'room_1')), encodeMsgpack(left('room_1', 'u1')));
  await tick();
  t.same([...theirs.getUserData().rooms], [], 'globex\'s u1 left globex\'s room');
  t.same([...ours.getUserData().rooms], ['room_1'], 'acme\'s u1 is still in acme\'s');
});
