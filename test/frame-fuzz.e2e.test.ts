import t from 'tap';
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { startChatProcess, removeDir, type ChatProcess } from './support/chat-process.ts';
import { TestClient, type Frame } from './support/ws-client.ts';
import { restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';

/**
 * Issue 12: a seeded fuzz of the frame decoder against a real `chat all`. One socket sends at
 * least 20,000 frames (random bytes, random text and JSON, hostile msgpack: deep nesting, 64-bit
 * integers, huge declared lengths, extension types; and every field of every frame type given a
 * value of the wrong type), pipelined, while two neighbours chat in a room on other sockets.
 * Every frame must get exactly one reply (ack, error or pong), none of them `internal`, the
 * process must live, and the neighbours must stay connected and hear every message.
 *
 * A frame that carries a usable `ref` is answered with it; one that cannot (not an object, not
 * decodable, over the size limit) gets one error without a ref. So frames are tagged `f<n>` when
 * they can carry a tag, and the untagged ones are counted.
 *
 * Replay a failure with FUZZ_SEED=<seed printed below>; FUZZ_FRAMES changes the count.
 */
const SEED = Number(process.env['FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const FRAMES = Math.max(20_000, Number(process.env['FUZZ_FRAMES'] ?? 20_000));
const MAX_PAYLOAD = 64 * 1024;
/** Frames sent but not yet answered, at most: pipelined, but the socket's buffers stay small. */
const WINDOW = 200;
const NEIGHBOUR_EVERY_MS = 40;

t.comment(`frame fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED})`);

/** sfc32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = 0x9e3779b9, b = 0x243f6a88, c = 0xb7e15162, d = seed >>> 0;
  const next = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const r = (a + b + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + r) >>> 0;
    return r / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}
const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const bytes = (n: number) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = int(256); return b; };

/** A value already encoded both ways, for what a JS value cannot say (NaN in JSON, a uint64, a deep tree). */
class Raw {
  constructor(readonly json: string, readonly msgpack: Uint8Array, readonly what: string) {}
}

const packr = new Packr({ useRecords: false, variableMapSize: true });
const deepJson = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
const deepMsgpack = (n: number) => Buffer.concat([Buffer.alloc(n, 0x91), Buffer.from([0x01])]);
const RAWS: Raw[] = [
  new Raw(deepJson(5000), Buffer.concat([Buffer.from(Array.from({ length: 5000 }, () => [0x81, 0xa1, 0x61]).flat()), Buffer.from([0x01])]), 'map 5000 deep'),
  new Raw(`${'['.repeat(8000)}${']'.repeat(8000)}`, deepMsgpack(8000), 'array 8000 deep'),
  new Raw(deepJson(33), deepMsgpack(33), '33 deep'),
  new Raw('18446744073709551615', Buffer.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 'uint64 max'),
  new Raw('-9223372036854775808', Buffer.from([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]), 'int64 min'),
  new Raw('9007199254740993', Buffer.from([0xcf, 0, 0x20, 0, 0, 0, 0, 0, 0x01]), '2^53 + 1'),
  new Raw('1e400', Buffer.from([0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0]), 'Infinity'),
  new Raw('-1e400', Buffer.from([0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]), 'NaN'),
  new Raw('"\\ud800"', Buffer.from([0xa3, 0xed, 0xa0, 0x80]), 'lone surrogate'),
  new Raw('{"__proto__":{"admin":true}}', Buffer.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa5, ...Buffer.from('admin'), 0xc3]), '__proto__ key'),
  new Raw('"x"', Buffer.from([0xd6, 0xff, 0, 0, 0, 1]), 'timestamp ext'),
  new Raw('"x"', Buffer.from([0xd4, 0x05, 0x00]), 'fixext 1'),
  new Raw('"x"', Buffer.from([0xc7, 0x03, 0x73, 0x91, 0x01, 0x02]), 'ext 8 "s"'),
  new Raw('"x"', Buffer.from([0xd5, 0x65, 0xa1, 0x61]), 'fixext 2 "e"'),
  new Raw('"x"', Buffer.from([0xd4, 0x78, 0xa1]), 'fixext 1 "x"'),
  new Raw('"x"', Buffer.from([0xc4, 0x03, 1, 2, 3]), 'bin 8'),
  new Raw('"x"', Buffer.from([0xd4, 0x00, 0x00]), 'undefined ext'),
  new Raw('{"1":2}', Buffer.from([0x81, 0x01, 0x02]), 'integer map key'),
  new Raw('{"a":1}', Buffer.from([0x81, 0x91, 0x01, 0x02]), 'array map key'),
];

const HOSTILE: readonly unknown[] = [
  null, true, false, 0, -1, 1.5, -0, 2 ** 31, 2 ** 53 - 1, 1e308, -1e-308,
  '', 'x'.repeat(70), 'y'.repeat(3000), '\u0000', '\u202e', '\u200b', 'a.b', '../x', '*', '>', 'chat.>', '99999999999999999999999', '-1', '1e9',
  [], [1, 'a'], [[[]]], {}, { a: 1 }, { type: 'ping' }, Array.from({ length: 600 }, (_, i) => ({ roomId: `r${i}` })),
  ...RAWS,
];

/** What the fuzz socket's user knows to name: its room, the neighbours' room, a message, and some that are not. */
const known = { rooms: [] as string[], messages: [] as string[] };
const roomId = () => (rand() < 0.8 ? pick(known.rooms) : pick(['nope', 'room_1', 'a'.repeat(64), 'r-_']));
// ids of the future or of a moment ago make a command wait for the persister (once, 250 ms): rare here, or the ordered frames queue up
const messageId = () => (rand() < 0.8 ? pick(known.messages) : pick(['1', '0', '9223372036854775808', '00000000000000000001']));
const text = () => pick(['hi', 'hello @nina', '', ' ', 'x'.repeat(int(300)), '\u202eevil', 'é'.repeat(int(20)), '@ａｄｍｉｎ']);
const plainMetadata = (): Record<string, unknown> => ({ k: int(100), s: text(), n: { a: [1, 2, { b: null }] } });

/** A valid frame of each type: the fuzz replaces one field at a time with a hostile value. */
const TEMPLATES: Record<string, () => Record<string, unknown>> = {
  join_room: () => ({ type: 'join_room', roomId: roomId() }),
  leave_room: () => ({ type: 'leave_room', roomId: pick(known.rooms.slice(1)) }),
  send_message: () => ({
    type: 'send_message', roomId: roomId(), content: text() || 'x', ...(rand() < 0.5 ? { clientMsgId: `c${int(50)}` } : {}),
    ...(rand() < 0.3 ? { metadata: plainMetadata() } : {}), ...(rand() < 0.2 ? { mentions: ['nina', 'ｏｔｔｏ'] } : {}),
    ...(rand() < 0.1 ? { replyTo: messageId() } : {}), ...(rand() < 0.1 ? { threadId: messageId() } : {}),
    ...(rand() < 0.1 ? { attachments: [{ id: 'a1', type: 'image', url: 'https://example.test/a.png', fileSize: 10 }], messageType: 'image' } : {}),
    ...(rand() < 0.1 ? { isAnonymous: true } : {}),
  }),
  edit_message: () => ({ type: 'edit_message', roomId: roomId(), messageId: messageId(), content: text() || 'x' }),
  delete_message: () => ({ type: 'delete_message', roomId: roomId(), messageId: messageId() }),
  typing_start: () => ({ type: 'typing_start', roomId: roomId() }),
  typing_stop: () => ({ type: 'typing_stop', roomId: roomId() }),
  message_reaction: () => ({ type: 'message_reaction', roomId: roomId(), messageId: messageId(), emoji: pick(['👍', '🎉', 'x']), action: rand() < 0.9 ? 'add' : 'remove' }),
  pin_message: () => ({ type: 'pin_message', roomId: roomId(), messageId: messageId() }),
  unpin_message: () => ({ type: 'unpin_message', roomId: roomId(), messageId: messageId() }),
  mark_read: () => ({ type: 'mark_read', roomId: roomId(), messageId: messageId() }),
  set_presence: () => ({ type: 'set_presence', status: pick(['online', 'away', 'busy', 'offline']), customStatus: text().slice(0, 140), device: { type: 'web', platform: 'x', version: '1' } }),
  // no lastMessageId older than the newest: replaying a room thousands of times is finding 1's business, not this test's
  resume: () => ({ type: 'resume', rooms: [{ roomId: roomId() }, { roomId: roomId(), lastMessageId: '9223372036854775807' }] }),
  ping: () => ({ type: 'ping' }),
  message: () => ({ type: 'message', data: { room: roomId(), message: text() || 'x', username: 'who' } }),
};
const TYPES = Object.keys(TEMPLATES);
const FULL_SEND = {
  messageType: 'image', clientMsgId: 'c1', replyTo: '1', threadId: '1', mentions: ['nina'], isAnonymous: false, metadata: { k: 1 },
  attachments: [{ id: 'a1', type: 'image', url: 'https://example.test/a.png', thumbnailUrl: 'https://example.test/t.png', fileName: 'a.png', fileSize: 10, mimeType: 'image/png' }],
};

/** Every field of the frame, nested ones too, as paths. */
function fieldPaths(v: unknown, prefix: string[] = []): string[][] {
  if (v === null || typeof v !== 'object') return [prefix];
  const out: string[][] = prefix.length ? [prefix] : [];
  for (const [k, child] of Object.entries(v)) out.push(...fieldPaths(child, [...prefix, k]));
  return out;
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let at: any = obj;
  for (const k of path.slice(0, -1)) at = at[k];
  at[path.at(-1)!] = value;
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.json;
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

function toMsgpack(v: unknown): Buffer {
  if (v instanceof Raw) return Buffer.from(v.msgpack);
  if (Array.isArray(v)) return Buffer.concat([arrayHeader(v.length), ...v.map(toMsgpack)]);
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v);
    return Buffer.concat([mapHeader(entries.length), ...entries.flatMap(([k, x]) => [packr.pack(k), toMsgpack(x)])]);
  }
  return packr.pack(v);
}
const arrayHeader = (n: number) => (n < 16 ? Buffer.from([0x90 | n]) : Buffer.from([0xdc, n >> 8, n & 0xff]));
const mapHeader = (n: number) => (n < 16 ? Buffer.from([0x80 | n]) : Buffer.from([0xde, n >> 8, n & 0xff]));

/** Whole frames that are broken below the value level: truncations, lengths that lie, reserved bytes. */
function brokenMsgpack(): Buffer {
  switch (int(9)) {
    case 0: return Buffer.from([0x81, 0xa4, ...Buffer.from('type'), 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61, 0x62]);
    case 1: return Buffer.from([0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01]);
    case 2: return Buffer.from([0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 0x61]);
    case 3: return Buffer.from([0xc6, 0xff, 0xff, 0xff, 0xff, 0x00]);
    case 4: return Buffer.from([0xc9, 0xff, 0xff, 0xff, 0xff, 0x05, 0x00]);
    case 5: return Buffer.concat([Buffer.alloc(50_000, 0x91), Buffer.from([0xc0])]);
    case 6: return Buffer.from([0xc1]);
    case 7: return Buffer.concat([toMsgpack(TEMPLATES[pick(TYPES)]!()).subarray(0, 1 + int(20)), bytes(int(8))]);
    default: return Buffer.concat([Buffer.from([0x80 | int(16)]), bytes(int(64))]);
  }
}

function randomJson(depth = 0): unknown {
  switch (depth > 4 ? int(4) : int(7)) {
    case 0: return int(2) ? null : rand() < 0.5;
    case 1: return pick([0, -1, rand() * 1e6, 2 ** 53, -(2 ** 60), 1e-300]);
    case 2: return text();
    case 3: return pick(TYPES);
    case 4: return Array.from({ length: int(4) }, () => randomJson(depth + 1));
    default: return Object.fromEntries(Array.from({ length: int(5) }, () => [pick(['type', 'roomId', 'ref', 'content', 'data', 'x', 'rooms', '__proto__', 'constructor']), randomJson(depth + 1)]));
  }
}

/**
 * `tag`: the frame carries one. `mustEcho`: it decodes for certain, so the reply must carry it; a
 * msgpack frame with a hostile value may not decode at all (msgpackr refuses unknown extensions;
 * nesting is refused before decoding), and then its error cannot carry the tag.
 */
interface Fuzzed { data: string | Buffer; tag: string | undefined; mustEcho: boolean; what: string }

/** `frame` with the field at `path` set to `value`, tagged unless the field is the ref itself. */
function mutated(frame: Record<string, unknown>, path: string[], value: unknown, tag: string, asMsgpack: boolean): Fuzzed {
  const type = String(frame['type']);
  setPath(frame, path, value);
  const tagged = path[0] !== 'ref';
  if (tagged) frame['ref'] = tag;
  return {
    data: asMsgpack ? toMsgpack(frame) : toJson(frame), tag: tagged ? tag : undefined, mustEcho: tagged && !(asMsgpack && value instanceof Raw),
    what: `${asMsgpack ? 'msgpack' : 'JSON'} ${type} with ${path.join('.')} = ${value instanceof Raw ? value.what : toJson(value).slice(0, 40)}`,
  };
}

/**
 * The sweep that starts every run, whatever the seed: every field of every frame type (and an
 * unknown one, and the ref) given each hostile value, in JSON and in msgpack by turns.
 */
function sweep(): Array<(tag: string) => Fuzzed> {
  const out: Array<(tag: string) => Fuzzed> = [];
  for (const type of TYPES) {
    // every optional field present, so that each is swept
    const base = type === 'send_message' ? { ...TEMPLATES[type]!(), ...FULL_SEND } : TEMPLATES[type]!();
    for (const path of [...fieldPaths(base), ['extra'], ['ref']]) {
      for (const value of HOSTILE) {
        const asMsgpack = out.length % 2 === 1;
        out.push((tag) => mutated(structuredClone(base), path, value, tag, asMsgpack));
      }
    }
  }
  return out;
}

/** The i-th fuzzed frame: what to send, and its tag when it can carry one. */
function fuzzFrame(i: number, swept: Array<(tag: string) => Fuzzed>): Fuzzed {
  const tag = `f${i}`;
  if (i < swept.length) return swept[i]!(tag);
  const roll = rand();
  if (roll < 0.1) return { data: bytes(int(200)), tag: undefined, mustEcho: false, what: 'random bytes' };
  if (roll < 0.15) return { data: Array.from({ length: int(100) }, () => String.fromCodePoint(int(0xd7ff))).join(''), tag: undefined, mustEcho: false, what: 'random text' };
  if (roll < 0.25) return { data: brokenMsgpack(), tag: undefined, mustEcho: false, what: 'broken msgpack' };
  if (roll < 0.35) {
    const value = randomJson();
    const tagged = value !== null && typeof value === 'object' && !Array.isArray(value);
    if (tagged) (value as Record<string, unknown>)['ref'] = tag;
    const asMsgpack = rand() < 0.5;
    return { data: asMsgpack ? toMsgpack(value) : toJson(value), tag: tagged ? tag : undefined, mustEcho: tagged, what: `random ${asMsgpack ? 'msgpack' : 'JSON'} ${toJson(value).slice(0, 80)}` };
  }
  const type = pick(TYPES);
  const frame = TEMPLATES[type]!();
  // mostly broken frames: a valid one runs a command (a store read or write), which is not what is fuzzed here
  if (roll < 0.96) {
    const path = rand() < 0.85 ? pick(fieldPaths(frame)) : pick([['metadata'], ['extra'], ['ref']]);
    return mutated(frame, path, pick(HOSTILE), tag, rand() < 0.5);
  }
  frame['ref'] = tag;
  const asMsgpack = rand() < 0.5;
  return { data: asMsgpack ? toMsgpack(frame) : toJson(frame), tag, mustEcho: true, what: `${asMsgpack ? 'msgpack' : 'JSON'} valid ${type}` };
}

let srv: ChatProcess;
const clients: TestClient[] = [];
t.teardown(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await srv?.kill();
  if (srv) removeDir(srv.dataDir);
});

t.test('fuzz - every fuzzed frame gets exactly one reply, never internal, while the neighbours chat on', async (t) => {
  srv = await startChatProcess({
    env: { MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD), RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000', TYPING_TIMEOUT: '600' },
  });
  const fuzzToken = await devToken('fuzzer');
  const fuzzRest = restClient(srv.http, fuzzToken);
  const nina = await TestClient.connect(`${srv.ws}/chat`, { token: await devToken('nina') });
  const otto = await TestClient.connect(`${srv.ws}/chat`, { token: await devToken('otto'), format: 'msgpack' });
  clients.push(nina, otto);
  await Promise.all([nina.next((f) => f.type === 'welcome'), otto.next((f) => f.type === 'welcome')]);
  const lobby = (await restClient(srv.http, await devToken('nina'))('POST', '/v1/chat/rooms', { name: 'Lobby', type: 'public' })).body.data.roomId as string;
  t.equal((await nina.request({ type: 'join_room', roomId: lobby })).type, 'ack');
  t.equal((await otto.request({ type: 'join_room', roomId: lobby })).type, 'ack');
  const own = (await fuzzRest('POST', '/v1/chat/rooms', { name: 'Fuzz', type: 'public' })).body.data.roomId as string;
  const first = await fuzzRest('POST', `/v1/chat/rooms/${own}/messages`, { content: 'react to me' });
  known.rooms.push(own, lobby);
  known.messages.push(first.body.data.message.messageId);

  // the neighbours: nina talks in the lobby, otto listens, all through the fuzz
  const heard = new Set<string>();
  const said: string[] = [];
  otto.ws.on('message', () => {
    for (const f of otto.frames.splice(0)) if (f.type === 'new_message' && f.message.authorId === 'nina') heard.add(f.message.messageId);
  });
  let fuzzing = true;
  const chatting = (async () => {
    for (let n = 0; fuzzing; n++) {
      const reply = await nina.request({ type: 'send_message', roomId: lobby, content: `neighbour ${n}`, clientMsgId: `n${n}` }, 30_000);
      if (reply.type !== 'ack') throw new Error(`neighbour send refused: ${JSON.stringify(reply)}`);
      said.push(reply.messageId);
      nina.frames.splice(0);
      await new Promise((r) => setTimeout(r, NEIGHBOUR_EVERY_MS));
    }
  })();

  // the fuzz socket: raw, so it can send anything
  const ws = new WebSocket(`${srv.ws}/chat?token=${fuzzToken}`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let closed: string | undefined;
  ws.on('close', (code, reason) => { closed = `${code} ${reason.toString()}`; });
  const answers = new Map<string, number>();
  const internal: Frame[] = [];
  let untaggedReplies = 0;
  let replies = 0;
  let wake = () => {};
  ws.on('message', (data: Buffer) => {
    const f = JSON.parse(data.toString('utf8')) as Frame;
    if (f.type !== 'ack' && f.type !== 'error' && f.type !== 'pong') return;
    replies++;
    if (f.type === 'error' && f.code === 'internal') internal.push(f);
    if (typeof f.ref === 'string' && /^f\d+$/.test(f.ref)) answers.set(f.ref, (answers.get(f.ref) ?? 0) + 1);
    else untaggedReplies++;
    wake();
  });
  const caughtUp = (sent: number, slack: number, timeoutMs: number) => new Promise<void>((resolve, reject) => {
    if (replies >= sent - slack) return resolve();
    const timer = setTimeout(() => reject(new Error(`seed ${SEED}: ${replies} replies to ${sent} frames after ${timeoutMs} ms (closed: ${closed})`)), timeoutMs);
    wake = () => { if (replies >= sent - slack) { clearTimeout(timer); wake = () => {}; resolve(); } };
  });
  await new Promise<void>((r) => setTimeout(r, 50));

  const tagged = new Map<string, string>();
  const mustEcho = new Set<string>();
  const swept = sweep();
  const started = Date.now();
  for (let i = 0; i < FRAMES; i++) {
    const f = fuzzFrame(i, swept);
    const size = typeof f.data === 'string' ? Buffer.byteLength(f.data) : f.data.byteLength;
    if (f.tag) tagged.set(f.tag, f.what);
    // over the payload limit the gateway answers before decoding, so without the ref
    if (f.tag && f.mustEcho && size <= MAX_PAYLOAD) mustEcho.add(f.tag);
    ws.send(f.data, { binary: typeof f.data !== 'string' });
    if (i % 50 === 49) await caughtUp(i + 1, WINDOW, 60_000);
  }
  await caughtUp(FRAMES, 0, 60_000);
  // one more, ordered after everything ordered before it: any late or second reply would be in by its answer
  ws.send(JSON.stringify({ type: 'join_room', roomId: own, ref: 'sentinel' }));
  await caughtUp(FRAMES + 1, 0, 30_000);
  const fuzzMs = Date.now() - started;
  fuzzing = false;
  await chatting;

  t.ok(swept.length < FRAMES / 2, `the sweep (${swept.length} frames) leaves room for the random ones`);
  t.comment(`seed ${SEED}: ${FRAMES} frames (${swept.length} of the sweep, ${tagged.size} tagged, ${mustEcho.size} answered with the tag for certain) in ${fuzzMs} ms; neighbour sent ${said.length} messages`);
  t.equal(closed, undefined, `seed ${SEED}: the fuzz socket stays open`);
  t.same(internal.slice(0, 5), [], `seed ${SEED}: no frame is answered with internal`);
  const missing = [...mustEcho].filter((tag) => !answers.has(tag));
  const twice = [...answers].filter(([, n]) => n !== 1).map(([tag]) => tag);
  const strays = [...answers.keys()].filter((tag) => !tagged.has(tag));
  t.same(missing.slice(0, 5).map((tag) => `${tag}: ${tagged.get(tag)}`), [], `seed ${SEED}: every frame that decodes was answered with its tag`);
  t.same(twice.slice(0, 5).map((tag) => `${tag}: ${tagged.get(tag)}`), [], `seed ${SEED}: no frame was answered twice`);
  t.same(strays.slice(0, 5), [], `seed ${SEED}: no reply carries a tag that was not sent`);
  t.equal(answers.size + untaggedReplies, FRAMES + 1, `seed ${SEED}: as many replies as frames (and the sentinel)`);

  t.equal(srv.child.exitCode, null, 'the server lives');
  t.equal((await fetch(`${srv.http}/health`)).status, 200);
  t.equal(nina.closed, undefined, 'the neighbours stay connected');
  t.equal(otto.closed, undefined);
  t.ok(said.length > 0, 'the neighbour chatted during the fuzz');
  for (const until = Date.now() + 10_000; said.some((id) => !heard.has(id)) && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
  t.same(said.filter((id) => !heard.has(id)), [], 'the listening neighbour heard every message');
  ws.close();
});
