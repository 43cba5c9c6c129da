import t from 'tap';
import { Packr } from 'msgpackr';
import { decodeClientFrame, encodeFrame, peekMsgpackType, decodeMsgpack, encodeMsgpack } from './codec.ts';
import { ChatError } from './errors.ts';

const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

t.test('codec - JSON and msgpack client frames decode to the same frame', async (t) => {
  const frame = { type: 'send_message', roomId: 'room_1', content: 'hi', clientMsgId: 'c1', ref: 7 };
  const fromJson = decodeClientFrame(enc(frame), false);
  const fromMsgpack = decodeClientFrame(new Packr({ useRecords: false }).pack(frame), true);
  t.same(fromJson, frame);
  t.same(fromMsgpack, frame);
});

t.test('codec - bad frames throw bad_frame with a useful message', async (t) => {
  const code = (fn: () => unknown) => {
    try { fn(); return 'no error'; } catch (err) { return err instanceof ChatError ? `${err.code}: ${err.message}` : String(err); }
  };
  t.match(code(() => decodeClientFrame(new TextEncoder().encode('{oops'), false)), /^bad_frame: frame is not valid JSON/);
  t.match(code(() => decodeClientFrame(new Uint8Array([0x85, 0xa4, 0x74]), true)), /^bad_frame: frame is not valid msgpack/, 'truncated');
  t.match(code(() => decodeClientFrame(new Uint8Array([0xc1, 0xff, 0x00]), true)), /^bad_frame: /, 'reserved bytes');
  t.match(code(() => decodeClientFrame(enc([1]), false)), /^bad_frame: frame must be an object/);
  t.match(code(() => decodeClientFrame(enc({ type: 3 }), false)), /^bad_frame: frame must have a string "type"/);
  t.match(code(() => decodeClientFrame(enc({ type: 'nope' }), false)), /^bad_frame: unknown frame type "nope"/);
  t.match(code(() => decodeClientFrame(enc({ type: 'join_room' }), false)), /^bad_frame: invalid join_room/);
  t.match(code(() => decodeClientFrame(enc({ type: 'join_room', roomId: 'a.b' }), false)), /^bad_frame: invalid join_room: \/roomId/);
  t.match(code(() => decodeClientFrame(enc({ type: 'edit_message', roomId: 'r', messageId: 'x1', content: '' }), false)), /messageId/);
});

t.test('codec - the ref of an invalid frame is kept for the error reply', async (t) => {
  try {
    decodeClientFrame(enc({ type: 'join_room', ref: 'abc' }), false);
    t.fail('should throw');
  } catch (err) {
    t.equal((err as ChatError).details?.['ref'], 'abc');
  }
});

t.test('codec - server frames encode per format, and the msgpack type can be peeked', async (t) => {
  const frame = { type: 'pong' as const, serverTime: '2026-01-01T00:00:00.000Z' };
  t.equal(encodeFrame(frame, 'json'), JSON.stringify(frame));
  const bin = encodeFrame(frame, 'msgpack') as Buffer;
  t.same(decodeMsgpack(bin), frame);
  t.equal(peekMsgpackType(bin), 'pong');
  t.equal(peekMsgpackType(encodeMsgpack({ type: 'new_message', roomId: 'r' })), 'new_message');
  t.equal(peekMsgpackType(encodeMsgpack({ roomId: 'r', type: 'x' })), undefined, 'type not first: unknown');
});
