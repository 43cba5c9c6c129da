import t from 'tap';
import { decodeMsgpack, encodeMsgpack } from './codec.ts';
import { eventToFrame } from './event-frames.ts';
import { newMessageFrameMsgpack } from './message-frame-splice.ts';
import type { DurableEvent } from '../domain/events.ts';
import type { Message } from '../domain/models.ts';
import { roomIdOf, roomKey } from '../domain/room-key.ts';

const message = (over: Partial<Message> = {}): Message => ({
  messageId: '387297813947060224', roomId: 'room_1', authorId: 'u1', authorName: 'Ünïcødé 👋', content: 'hello', type: 'text',
  timestamp: '2026-12-04T18:00:00.000Z', reactions: {}, replyTo: null, threadId: null, mentions: ['u2'], attachments: [],
  isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false, ...over,
});
const created = (m: Message, at = Date.now()): DurableEvent => ({ kind: 'message.created', id: m.messageId, at, roomId: m.roomId, message: m });

t.test('message frame splice - the same bytes as decoding, framing and encoding again', async (t) => {
  const cases: Array<[string, DurableEvent, number]> = [
    ['a small message, a small seq', created(message()), 7],
    ['seq over 127, 255, 65535', created(message()), 300],
    ['seq of 16 bits', created(message()), 65_000],
    ['seq of 32 bits', created(message()), 4_000_000_000],
    ['seq past 32 bits', created(message()), 2 ** 32 + 5],
    ['a long room id (str8)', created(message({ roomId: 'r'.repeat(64) })), 9],
    ['a 5000-character message (str16 content, map16 not needed)', created(message({ content: 'x'.repeat(5000), clientMsgId: 'c-1', metadata: { n: 1.5, ok: true } })), 42],
    ['an old event time', created(message(), 1), 1],
    ['attachments and an avatar', created(message({ authorAvatar: 'https://a/b.png', attachments: [{ id: 'a1', type: 'image', url: 'https://x/y.png', fileSize: 1234 }] })), 12],
    ['a room of another tenant: the event names its key, the frame its id', { ...created(message()), roomId: roomKey('acme.example', 'room_1') }, 77],
  ];
  for (const [what, event, seq] of cases) {
    const bytes = encodeMsgpack(event);
    const roomId = roomIdOf(event.roomId);
    const spliced = newMessageFrameMsgpack(bytes, seq, encodeMsgpack(roomId));
    const encoded = encodeMsgpack(eventToFrame(decodeMsgpack(bytes) as DurableEvent, seq, roomId));
    t.ok(spliced, `${what}: spliced`);
    t.same(Buffer.from(spliced!).toString('hex'), Buffer.from(encoded).toString('hex'), `${what}: byte for byte`);
    t.same(decodeMsgpack(spliced!), eventToFrame(event, seq, roomId), `${what}: decodes to the frame`);
    t.equal((decodeMsgpack(spliced!) as { roomId: string }).roomId, event.kind === 'message.created' ? event.message.roomId : '', `${what}: the frame shows the room id`);
  }
});

t.test('message frame splice - anything else is left to the decoding path', async (t) => {
  const ROOM = encodeMsgpack('room_1');
  const m = message();
  const other: DurableEvent = { kind: 'message.deleted', id: '5', at: Date.now(), roomId: 'room_1', messageId: m.messageId, userId: 'u1' };
  t.equal(newMessageFrameMsgpack(encodeMsgpack(other), 1, ROOM), undefined, 'another kind');
  const reordered = { id: m.messageId, kind: 'message.created', at: 1, roomId: 'room_1', message: m };
  t.equal(newMessageFrameMsgpack(encodeMsgpack(reordered), 1, ROOM), undefined, 'another key order');
  const extra = { ...created(m), more: 1 };
  t.equal(newMessageFrameMsgpack(encodeMsgpack(extra), 1, ROOM), undefined, 'an extra entry');
  const bytes = encodeMsgpack(created(m));
  t.equal(newMessageFrameMsgpack(bytes.subarray(0, 40), 1, ROOM), undefined, 'truncated');
  t.equal(newMessageFrameMsgpack(bytes, -1, ROOM), undefined, 'a negative seq');
  t.equal(newMessageFrameMsgpack(new TextEncoder().encode('not msgpack at all, just some text of a decent length........'), 1, ROOM), undefined, 'garbage');
});
