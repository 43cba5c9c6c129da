import t from 'tap';
import { createMemoryBus, subjects } from '../bus/index.ts';
import type { DurableEvent } from '../domain/events.ts';
import { encodeMsgpack } from '../protocol/index.ts';
import { durableEventFeed } from './bus-feed.ts';

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

t.test('history feed - the stream republishes each stored event with its sequence; ephemeral frames are skipped', async (t) => {
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: 1000 });
  t.teardown(() => bus.close());
  const feed = durableEventFeed(bus, subjects.roomEvents);
  const got: Array<[DurableEvent, number]> = [];
  const sub = feed.watch('r1', (e, seq) => got.push([e, seq]));
  const seqs: number[] = [];
  for (const e of events) seqs.push((await bus.publishDurable(e.roomId, e.id, encodeMsgpack(e))).seq);
  await bus.publishDurable('r1', events[1]!.id, encodeMsgpack(events[1])); // a deduplicated retry is not republished
  await bus.publishDurable('r2', 'other-room', encodeMsgpack({ ...events[2]!, roomId: 'r2' }));
  bus.publish(subjects.roomEvents('r1'), encodeMsgpack({ type: 'typing_indicator', roomId: 'r1', user: { userId: 'bob', name: 'Bob' }, isTyping: true }));
  await new Promise((r) => setImmediate(r));
  t.strictSame(got, events.map((e, i) => [e, seqs[i]]), 'every stored event of the room once, in order, with its sequence');
  sub.unsubscribe();
  await bus.publishDurable('r1', '300000000000000009', encodeMsgpack({ ...events[1]!, id: '300000000000000009' }));
  await new Promise((r) => setImmediate(r));
  t.equal(got.length, events.length, 'nothing after the subscription ended');

  const replayed: DurableEvent[] = [];
  await feed.replay('r1', 0, (e) => replayed.push(e));
  t.equal(replayed.length, events.length + 1, 'replays come from the stream');
  t.strictSame(replayed[0], events[0]);
});
