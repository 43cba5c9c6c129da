import t from 'tap';
import { createMemoryBus, subjects, type Bus, type LiveWatcher } from '../shared/bus/index.ts';
import { encodeMsgpack } from '../shared/protocol/codec.ts';
import { eventToFrame } from '../shared/protocol/event-frames.ts';
import type { ServerFrame } from '../shared/protocol/frames.ts';
import type { DurableEvent } from '../shared/domain/events.ts';
import type { Message } from '../shared/domain/models.ts';
import { Snowflake } from '../shared/ids/snowflake.ts';
import { silentLogger } from '../shared/telemetry/logger.ts';
import { FallbackFanout } from './fallback-fanout.ts';
import { FallbackConnection } from './fallback-session.ts';

const ROOM = 'room_1';
const ids = new Snowflake(3);

/** The memory bus, except that the test decides when the live plane is cut and restored. */
async function controllableBus(): Promise<{ bus: Bus; watcher: () => LiveWatcher }> {
  const mem = await createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 10_000 });
  let watcher: LiveWatcher | undefined;
  const bus: Bus = {
    kind: 'memory',
    publish: (s, p) => mem.publish(s, p),
    subscribe: (s, h) => mem.subscribe(s, h),
    watchLive: (w) => { watcher = w; return { unsubscribe: () => { watcher = undefined; } }; },
    publishDurable: (r, d, p, h) => mem.publishDurable(r, d, p, h),
    getDurable: (seq) => mem.getDurable(seq),
    replay: (r, since, on) => mem.replay(r, since, on),
    consume: (o, h) => mem.consume(o, h),
    ready: () => mem.ready(),
    close: () => mem.close(),
  };
  return { bus, watcher: () => { if (!watcher) throw new Error('nobody watches the live plane'); return watcher; } };
}

/** Stores a new message in the stream; `live` also announces it, as the sending gateway would. */
async function send(bus: Bus, content: string, live: boolean): Promise<string> {
  const messageId = ids.next();
  const message = { messageId, roomId: ROOM, authorId: 'u2', authorName: 'U2', content, type: 'text', timestamp: new Date().toISOString() } as Message;
  const ev: DurableEvent = { kind: 'message.created', id: messageId, at: Date.now(), roomId: ROOM, message };
  const { seq } = await bus.publishDurable(ROOM, messageId, encodeMsgpack(ev));
  if (live) bus.publish(subjects.roomEvents(ROOM), encodeMsgpack(eventToFrame(ev, seq)));
  return messageId;
}

const contents = (frames: ServerFrame[]) => frames.flatMap((f) => (f.type === 'new_message' ? [f.message.content] : []));

t.test('fallback fan-out - a cut in the live plane is replayed from the stream, and the resume position waits for it', async (t) => {
  const { bus, watcher } = await controllableBus();
  t.teardown(() => bus.close());
  const fanout = new FallbackFanout(bus, { onDirectDelivered: () => {}, loadRoom: async () => undefined }, 0, silentLogger());
  fanout.start();
  const got: ServerFrame[] = [];
  let resets = 0;
  const conn = new FallbackConnection({ userId: 'u1', name: 'U1', tenant: 't', roles: [], expiresAt: undefined }, undefined, (f) => got.push(f), () => resets++);
  fanout.attach(conn);
  fanout.add(conn, ROOM);

  const first = await send(bus, 'before the cut', true);
  t.same(contents(got), ['before the cut']);
  t.equal(conn.position, first, 'the position follows live delivery');

  const cutAt = Date.now();
  watcher().interrupted();
  t.equal(conn.moving, false, 'the position holds while live messages may be missing');
  await send(bus, 'missed 1', false);
  await send(bus, 'missed 2', false);
  const during = await send(bus, 'live during the cut', true);
  t.same(contents(got), ['before the cut', 'live during the cut']);
  t.equal(conn.position, first, 'a message delivered during the cut does not move the position past the hole');

  watcher().restored(cutAt);
  await new Promise((r) => setTimeout(r, 50));
  t.same(contents(got).sort(), ['before the cut', 'live during the cut', 'live during the cut', 'missed 1', 'missed 2'].sort(),
    'what the cut hid is replayed (repeats are the client\'s to drop, by seq)');
  t.equal(conn.moving, true, 'repaired: the position moves again');
  const after = await send(bus, 'after', true);
  t.equal(conn.position, after);
  t.not(during, after);
  t.equal(resets, 0);

  const late = new FallbackConnection({ userId: 'u3', name: 'U3', tenant: 't', roles: [], expiresAt: undefined }, undefined, () => {}, () => resets++);
  watcher().interrupted();
  fanout.attach(late);
  t.equal(late.moving, false, 'a connection opened during a cut holds its position too');
  fanout.stop();
});
