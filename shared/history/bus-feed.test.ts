import t from 'tap';
import { createMemoryBus, subjects } from '../bus/index.ts';
import type { DurableEvent } from '../domain/events.ts';
import { encodeMsgpack, eventToFrame } from '../protocol/index.ts';
import { durableEventFeed } from './bus-feed.ts';
import { liveFrameFeed } from './frame-feed.ts';

const message = {
  messageId: '300000000000000001', roomId: 'r1', authorId: 'alice', authorName: 'Alice', content: 'hi', type: 'text' as const,
  timestamp: new Date(1767225600000).toISOString(), reactions: {}, replyTo: null, threadId: null, mentions: [], attachments: [],
  isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false,
};
const events: DurableEvent[] = [
  { kind: 'message.created', id: message.messageId, at: 1767225600000, roomId: 'r1', message },
  { kind: 'message.edited', id: '300000000000000002', at: 1767225601000, roomId: 'r1', messageId: message.messageId, userId: 'alice', content: 'hello' },
  { kind: 'reaction.added', id: '300000000000000003', at: 1767225602000, roomId: 'r1', messageId: message.messageId, userId: 'bob', emoji: '👍' },
  { kind: 'message.pinned', id: '300000000000000004', at: 1767225603000, roomId: 'r1', messageId: message.messageId, userId: 'alice' },
  { kind: 'message.deleted', id: '300000000000000005', at: 1767225604000, roomId: 'r1', messageId: message.messageId, userId: 'alice' },
];

/** Stores the event and announces it as the command layer does today (the live frame with its seq). */
async function emit(bus: ReturnType<typeof createMemoryBus>, e: DurableEvent): Promise<number> {
  const { seq } = await bus.publishDurable(e.roomId, e.id, encodeMsgpack(e));
  bus.publish(subjects.roomEvents(e.roomId), encodeMsgpack(eventToFrame(e, seq)));
  return seq;
}

t.test('history feed - the live frames of today give back the stored events', async (t) => {
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 1000 });
  t.teardown(() => bus.close());
  const errors: unknown[] = [];
  const feed = liveFrameFeed(bus, (err) => errors.push(err));
  const seen: Array<[string, number]> = [];
  const got: DurableEvent[] = [];
  const sub = feed.watch('r1', (e, seq) => { got.push(e); seen.push([e.kind, seq]); });
  const seqs: number[] = [];
  for (const e of events) seqs.push(await emit(bus, e));
  bus.publish(subjects.roomEvents('r1'), encodeMsgpack({ type: 'typing', roomId: 'r1', userId: 'bob', isTyping: true }));
  await new Promise((r) => setImmediate(r));
  t.strictSame(seen.map(([, seq]) => seq).sort(), seqs, 'every event with its sequence');
  const byKind = new Map(got.map((e) => [e.kind, e]));
  t.strictSame(byKind.get('message.created'), events[0]);
  t.strictSame(byKind.get('message.edited'), events[1], 'read back from the stream: with its id');
  t.strictSame(byKind.get('reaction.added'), events[2]);
  t.strictSame(byKind.get('message.pinned'), events[3]);
  t.match(byKind.get('message.deleted'), { kind: 'message.deleted', at: events[4]!.at, messageId: message.messageId, roomId: 'r1' });
  t.strictSame(errors, []);
  sub.unsubscribe();
  await emit(bus, { ...events[1]!, id: '300000000000000009' });
  await new Promise((r) => setImmediate(r));
  t.equal(got.length, 5, 'nothing after the subscription ended');

  const replayed: DurableEvent[] = [];
  await feed.replay('r1', 0, (e) => replayed.push(e));
  t.equal(replayed.length, 6, 'replays come from the stream');
  t.strictSame(replayed[0], events[0]);
});

t.test('history feed - the republished events (RePublish) are decoded as they are', async (t) => {
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 1000 });
  t.teardown(() => bus.close());
  const feed = durableEventFeed(bus, (roomId) => `chat.live.${roomId}`);
  const got: Array<[DurableEvent, number]> = [];
  feed.watch('r1', (e, seq) => got.push([e, seq]));
  bus.publish('chat.live.r1', encodeMsgpack(events[1]));
  bus.publish('chat.live.r2', encodeMsgpack(events[2]));
  t.strictSame(got, [[events[1], 0]], 'the sequence is 0 until the bus hands it over');
});
