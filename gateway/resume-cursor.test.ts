import t from 'tap';
import { formatResumeCursor, parseResumeCursor, positionOf } from './resume-cursor.ts';

t.test('resume cursor - text, JSON object and the resume frame shape all parse to the same positions', async (t) => {
  const expected = new Map([['room_1', '731'], ['room-2', '740']]);
  t.same(parseResumeCursor('room_1:731,room-2:740'), expected);
  t.same(parseResumeCursor('{"room_1":"731","room-2":"740"}'), expected);
  t.same(parseResumeCursor('[{"roomId":"room_1","lastMessageId":"731"},{"roomId":"room-2","lastMessageId":"740"}]'), expected);
  t.equal(formatResumeCursor(expected), 'room_1:731,room-2:740');
  t.same(parseResumeCursor(''), new Map());
  t.same(parseResumeCursor('room_3'), new Map(), 'a room without a position is not replayed');
});

t.test('resume cursor - * applies to every room not listed', async (t) => {
  const c = parseResumeCursor('room_1:731,*:900');
  t.equal(positionOf(c, 'room_1'), '731');
  t.equal(positionOf(c, 'room_9'), '900');
  t.equal(positionOf(parseResumeCursor('room_1:731'), 'room_9'), undefined);
});

t.test('resume cursor - bad input is a bad_request', async (t) => {
  for (const bad of ['room.1:5', 'room_1:12a', 'room_1:99999999999999999999', '{"room_1":5}', '{nope', `${'r'.repeat(65)}:1`]) {
    t.throws(() => parseResumeCursor(bad), { code: 'bad_request' }, bad);
  }
  t.throws(() => parseResumeCursor(Array.from({ length: 501 }, (_, i) => `r${i}:1`).join(',')), { code: 'bad_request' }, 'at most 500 rooms');
  const deep = `[{"roomId":${'['.repeat(20_000)}${']'.repeat(20_000)}}]`;
  t.throws(() => parseResumeCursor(deep), { code: 'bad_request', message: /nest/ }, 'a room id nested 20,000 deep (issue 12: String() of it overflowed the stack)');
});
