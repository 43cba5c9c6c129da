import t from 'tap';
import { RoomCursors, eventKey } from './room-cursors.ts';
import type { FrameOf, Message } from './types.ts';

const message = (roomId: string, messageId: string): Message => ({
  messageId, roomId, authorId: 'a', authorName: 'A', content: 'x', type: 'text', timestamp: new Date().toISOString(), reactions: {},
  replyTo: null, threadId: null, mentions: [], attachments: [], isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false,
});
const newMessage = (roomId: string, messageId: string, seq: number): FrameOf<'new_message'> => ({ type: 'new_message', roomId, message: message(roomId, messageId), seq });

t.test('room cursors - a replayed event is dropped, a new one passes, and the position moves forward only', async (t) => {
  const c = new RoomCursors(100);
  t.equal(c.accept(newMessage('r', '200', 5)), true);
  t.equal(c.accept(newMessage('r', '200', 5)), false, 'the same message again (a resume overlapping live delivery)');
  t.equal(c.accept(newMessage('r', '100', 4)), true, 'an older one not seen yet');
  t.equal(c.position('r'), '200', 'the position stays at the newest id');
  t.equal(c.accept(newMessage('other', '100', 4)), true, 'rooms are apart');
  t.equal(c.accept({ type: 'typing_indicator', roomId: 'r', user: { userId: 'u', name: 'U' }, isTyping: true }), true, 'ephemeral frames always pass');
  t.equal(c.accept({ type: 'typing_indicator', roomId: 'r', user: { userId: 'u', name: 'U' }, isTyping: true }), true);
});

t.test('room cursors - a stream that numbers from 1 again (in-process bus restart) does not hide new events', async (t) => {
  const c = new RoomCursors(100);
  const react = (seq: number, emoji: string) => ({ type: 'reaction_updated' as const, roomId: 'r', messageId: '200', emoji, userId: 'u', action: 'add' as const, seq });
  t.equal(c.accept(react(7, '👍')), true);
  t.equal(c.accept(react(7, '👍')), false, 'the same event');
  t.equal(c.accept(react(7, '🎉')), true, 'same seq after a restart, another event');
  t.equal(c.accept(newMessage('r', '300', 7)), true, 'a new message with a reused seq');
});

t.test('room cursors - history counts as seen; the seen-set is bounded', async (t) => {
  const c = new RoomCursors(3);
  t.equal(c.acceptMessage(message('r', '10')), true);
  t.equal(c.accept(newMessage('r', '10', 1)), false, 'a live frame for a message loaded from history is not shown twice');
  for (const id of ['11', '12', '13']) c.accept(newMessage('r', id, Number(id)));
  t.equal(c.accept(newMessage('r', '10', 1)), true, 'the oldest key was forgotten: at most 3 are kept per room');
  t.equal(c.position('r'), '13');
});

t.test('room cursors - every durable frame type has an identity; others have none', async (t) => {
  t.equal(eventKey({ type: 'message_deleted', roomId: 'r', messageId: '1', deletedAt: 'x', userId: 'u', seq: 3 }), 'd:1');
  t.match(eventKey({ type: 'read_receipt', roomId: 'r', userId: 'u', messageId: '1', readAt: 'x', seq: 3 }), /^rr:3:u:1$/);
  t.equal(eventKey({ type: 'presence_update', userId: 'u', status: 'online', lastSeen: 'x' }), undefined);
});
