/**
 * The msgpack `new_message` frame of a stored `message.created` event, made from the event's
 * bytes without decoding them: a gateway whose room has msgpack sockets forwards the message as
 * stored, not decoded and encoded again.
 *
 * The command layer encodes the event as the map { kind, id, at, roomId, message } (in that
 * order), and `eventToFrame` makes { type: 'new_message', roomId, message, seq } of it, with the
 * room's id in place of the event's room key: so the frame is a 4-entry map of three fixed keys,
 * the room's id (`roomIdPacked`, its msgpack string, made once per room by the caller), the
 * event's `message` value byte for byte, and the seq. The result is the bytes
 * `encodeMsgpack(eventToFrame(event, seq, roomId))` gives.
 * Anything laid out otherwise (another kind, another encoder's key order) returns undefined and
 * the caller takes the decoding path.
 */
export function newMessageFrameMsgpack(event: Uint8Array, seq: number, roomIdPacked: Uint8Array): Uint8Array | undefined {
  // fixmap of 5 entries, first key "kind"
  if (event.length < 64 || event[0] !== 0x85 || !matches(event, 1, KIND_KEY)) return undefined;
  let pos = 1 + KIND_KEY.length;
  if (!matches(event, pos, CREATED_VALUE)) return undefined;
  pos += CREATED_VALUE.length;
  if (!matches(event, pos, ID_KEY)) return undefined;
  pos = skipString(event, pos + ID_KEY.length);
  if (pos < 0 || !matches(event, pos, AT_KEY)) return undefined;
  pos = skipNumber(event, pos + AT_KEY.length);
  if (pos < 0 || !matches(event, pos, ROOM_KEY)) return undefined;
  const roomStart = pos + ROOM_KEY.length;
  const roomEnd = skipString(event, roomStart);
  if (roomEnd < 0 || !matches(event, roomEnd, MESSAGE_KEY)) return undefined;
  const messageStart = roomEnd + MESSAGE_KEY.length;
  // the message is the last value: a map running to the end
  const first = event[messageStart];
  if (first === undefined || !((first & 0xf0) === 0x80 || first === 0xde || first === 0xdf)) return undefined;

  const seqBytes = uintBytes(seq);
  if (seqBytes === undefined) return undefined;
  const roomLen = roomIdPacked.length;
  const messageLen = event.length - messageStart;
  const out = Buffer.allocUnsafe(FRAME_HEAD.length + roomLen + MESSAGE_KEY.length + messageLen + SEQ_KEY.length + seqBytes.length);
  let o = 0;
  out.set(FRAME_HEAD, o); o += FRAME_HEAD.length;
  out.set(roomIdPacked, o); o += roomLen;
  out.set(MESSAGE_KEY, o); o += MESSAGE_KEY.length;
  out.set(event.subarray(messageStart), o); o += messageLen;
  out.set(SEQ_KEY, o); o += SEQ_KEY.length;
  out.set(seqBytes, o);
  return out;
}

/** A msgpack fixstr. */
function fixstr(s: string): Uint8Array {
  const bytes = Buffer.from(s, 'utf8');
  return Uint8Array.from([0xa0 | bytes.length, ...bytes]);
}

const KIND_KEY = fixstr('kind');
const CREATED_VALUE = fixstr('message.created');
const ID_KEY = fixstr('id');
const AT_KEY = fixstr('at');
const ROOM_KEY = fixstr('roomId');
const MESSAGE_KEY = fixstr('message');
const SEQ_KEY = fixstr('seq');
/** fixmap of 4, "type": "new_message", "roomId" (its value follows). */
const FRAME_HEAD = Uint8Array.from([0x84, ...fixstr('type'), ...fixstr('new_message'), ...ROOM_KEY]);

function matches(bytes: Uint8Array, at: number, want: Uint8Array): boolean {
  if (at + want.length > bytes.length) return false;
  for (let i = 0; i < want.length; i++) if (bytes[at + i] !== want[i]) return false;
  return true;
}

/** The position after the string at `at`, or -1 if it is not a string. */
function skipString(b: Uint8Array, at: number): number {
  const h = b[at];
  if (h === undefined) return -1;
  let end: number;
  if ((h & 0xe0) === 0xa0) end = at + 1 + (h & 0x1f);
  else if (h === 0xd9) end = at + 2 + (b[at + 1] ?? 0);
  else if (h === 0xda) end = at + 3 + (((b[at + 1] ?? 0) << 8) | (b[at + 2] ?? 0));
  else if (h === 0xdb) end = at + 5 + ((((b[at + 1] ?? 0) << 24) >>> 0) + ((b[at + 2] ?? 0) << 16) + ((b[at + 3] ?? 0) << 8) + (b[at + 4] ?? 0));
  else return -1;
  return end <= b.length ? end : -1;
}

/** The position after the number at `at`, or -1 if it is not a number. */
function skipNumber(b: Uint8Array, at: number): number {
  const h = b[at];
  if (h === undefined) return -1;
  if (h <= 0x7f || h >= 0xe0) return at + 1;
  switch (h) {
    case 0xcc: case 0xd0: return at + 2;
    case 0xcd: case 0xd1: return at + 3;
    case 0xca: case 0xce: case 0xd2: return at + 5;
    case 0xcb: case 0xcf: case 0xd3: return at + 9;
    default: return -1;
  }
}

/** A non-negative integer as msgpackr encodes it (smallest form; float64 past 32 bits). */
function uintBytes(n: number): Uint8Array | undefined {
  if (!Number.isSafeInteger(n) || n < 0) return undefined;
  if (n < 0x80) return Uint8Array.of(n);
  if (n < 0x100) return Uint8Array.of(0xcc, n);
  if (n < 0x10000) return Uint8Array.of(0xcd, n >> 8, n & 0xff);
  if (n < 0x100000000) return Uint8Array.of(0xce, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const out = new Uint8Array(9);
  out[0] = 0xcb;
  new DataView(out.buffer).setFloat64(1, n);
  return out;
}
