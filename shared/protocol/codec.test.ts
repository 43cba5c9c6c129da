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

/** msgpack of `frame` with `value` (raw msgpack bytes) as its metadata: lets a test nest deeper than an encoder would. */
function withRawMetadata(frame: Record<string, unknown>, value: Uint8Array): Uint8Array {
  const keys = Object.keys(frame).length;
  const head = new Packr({ useRecords: false, variableMapSize: true }).pack(frame);
  if ((head[0]! & 0xf0) !== 0x80 || keys >= 15) throw new Error('a small frame packs as a fixmap');
  const key = new Packr({ useRecords: false }).pack('metadata');
  return Buffer.concat([Buffer.from([0x80 | (keys + 1)]), head.subarray(1), key, value]);
}

const errorOf = (fn: () => unknown): ChatError => {
  try { fn(); } catch (err) { if (err instanceof ChatError) return err; throw err; }
  throw new Error('expected a ChatError');
};

t.test('codec - hostile nesting, bigints and numbers beyond ±2^53 are bad_frame (issue 12: they were internal errors downstream)', async (t) => {
  const base = { type: 'send_message', roomId: 'r1', content: 'hi', ref: 'x1' };
  const deepJson = `{"type":"send_message","roomId":"r1","content":"hi","ref":"x1","metadata":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
  const deep = errorOf(() => decodeClientFrame(new TextEncoder().encode(deepJson), false));
  t.match(deep, { code: 'bad_frame', message: /nest at most 32 levels/ }, 'JSON metadata 5,000 deep');
  t.same(deep.details, { ref: 'x1' }, 'the error answers the frame\'s ref');
  const deepArrays = Buffer.concat([Buffer.alloc(5000, 0x91), Buffer.from([0x01])]);
  // measured before msgpackr, whose recursion would run out of stack a few thousand levels down
  t.match(errorOf(() => decodeClientFrame(withRawMetadata(base, Buffer.concat([Buffer.from([0x81, 0xa1, 0x61]), deepArrays])), true)), { code: 'bad_frame', message: /nest at most 32 levels/ }, 'msgpack metadata 5,000 deep');
  t.match(errorOf(() => decodeClientFrame(withRawMetadata(base, Buffer.concat([Buffer.alloc(40, 0x91), Buffer.from([0x01])])), true)), { code: 'bad_frame', message: /nest at most 32 levels/ }, 'msgpack metadata 40 deep');
  t.match(errorOf(() => decodeClientFrame(Buffer.concat([Buffer.alloc(60_000, 0x91), Buffer.from([0xc0])]), true)), { code: 'bad_frame', message: /nest at most 32 levels/ }, '60,000 levels');
  t.same(decodeClientFrame(new Packr({ useRecords: false }).pack(base), true), base, 'the decoder works after them');

  const uint64 = Buffer.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  const big = errorOf(() => decodeClientFrame(withRawMetadata(base, Buffer.concat([Buffer.from([0x81, 0xa1, 0x6e]), uint64])), true));
  t.match(big, { code: 'bad_frame', message: /64-bit integers/ }, 'a msgpack uint64 beyond 2^53');
  t.same(big.details, { ref: 'x1' });
  const smallInt64 = withRawMetadata(base, Buffer.from([0x81, 0xa1, 0x6e, 0xd3, 0, 0, 0, 0, 0, 0, 0, 7]));
  t.same(decodeClientFrame(smallInt64, true), { ...base, metadata: { n: 7 } }, 'an int64 within 2^53 is a number (other encoders write small values that way)');

  const bigJson = '{"type":"send_message","roomId":"r1","content":"hi","metadata":{"n":18446744073709551615}}';
  t.match(errorOf(() => decodeClientFrame(new TextEncoder().encode(bigJson), false)), { code: 'bad_frame', message: /whole numbers/ }, 'a JSON number beyond 2^53 would not come back as sent');
  t.match(errorOf(() => decodeClientFrame(new TextEncoder().encode('{"type":"ping","ref":1e400}'), false)), { code: 'bad_frame', message: /finite/ }, 'a JSON number that parses to Infinity');
  const fine = { ...base, metadata: { f: 0.1, n: -9007199254740991, deep: { a: { b: [[1]] } } } };
  t.same(decodeClientFrame(enc(fine), false), fine, 'fractions, the largest exact integers and modest nesting pass');
});

t.test('codec - msgpack types JSON does not have are bad_frame: binary, extensions, non-finite floats', async (t) => {
  const base = { type: 'send_message', roomId: 'r1', content: 'hi', ref: 'x2' };
  const cases: Array<[string, number[]]> = [
    ['bin 8', [0xc4, 0x02, 0x01, 0x02]],
    ['fixext 1 of an application type', [0xd4, 0x05, 0x00]],
    ['ext 8 of an application type', [0xc7, 0x03, 0x2a, 0x01, 0x02, 0x03]],
    ['float NaN', [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]],
    ['float Infinity', [0xca, 0x7f, 0x80, 0x00, 0x00]],
  ];
  for (const [what, bytes] of cases) {
    const err = errorOf(() => decodeClientFrame(withRawMetadata(base, Buffer.concat([Buffer.from([0x81, 0xa1, 0x76]), Buffer.from(bytes)])), true));
    t.equal(err.code, 'bad_frame', what);
  }
});

t.test('codec - an error answers the frame\'s ref whenever it has a usable one', async (t) => {
  t.same(errorOf(() => decodeClientFrame(enc({ type: 'nope', ref: 'r9' }), false)).details, { ref: 'r9' }, 'unknown type');
  t.same(errorOf(() => decodeClientFrame(enc({ type: 7, ref: 3 }), false)).details, { ref: 3 }, 'type not a string');
  t.equal(errorOf(() => decodeClientFrame(enc({ type: 'nope', ref: 'x'.repeat(65) }), false)).details, undefined, 'a ref too long to be one');
  t.equal(errorOf(() => decodeClientFrame(enc({ type: 'nope', ref: { a: 1 } }), false)).details, undefined, 'a ref of the wrong type');
});

t.test('codec - what a JS encoder writes for undefined and dates means what it means in JSON', async (t) => {
  const at = new Date(Date.UTC(2026, 0, 2));
  const packed = new Packr({ useRecords: false, variableMapSize: true }).pack({ type: 'send_message', roomId: 'r1', content: 'x', replyTo: undefined, metadata: { at }, ref: 1 });
  t.same(decodeClientFrame(packed, true), { type: 'send_message', roomId: 'r1', content: 'x', metadata: { at: '2026-01-02T00:00:00.000Z' }, ref: 1 });
});
