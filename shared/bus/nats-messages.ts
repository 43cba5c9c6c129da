import type { JsMsg, Msg, MsgHdrs, StoredMsg } from 'nats';
import type { RoomKey } from '../domain/room-key.ts';
import { subjects, type DurableMessage } from './bus.ts';

/** `chat.durable.`: the room key follows it. */
export const DURABLE_PREFIX = subjects.durable('' as RoomKey);
/** Every durable subject: what the stream and the consumer groups take. */
export const DURABLE_FILTER = `${DURABLE_PREFIX}>`;
/** `chat.live.`: where the stream republishes what it stored under DURABLE_PREFIX. */
export const LIVE_PREFIX = subjects.roomEvents('' as RoomKey);
/** The stream's RePublish rule: every stored event, on the room's live subject. */
export const REPUBLISH = { src: DURABLE_FILTER, dest: `${LIVE_PREFIX}>` } as const;
/** The dedupe id travels as the JetStream message id. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

/** An event as a consumer (replay, group) received it. */
export function jsToDurable(msg: JsMsg): DurableMessage {
  return {
    seq: msg.seq,
    roomId: msg.subject.slice(DURABLE_PREFIX.length) as RoomKey,
    dedupeId: msg.headers?.get(MSG_ID_HEADER) ?? '',
    storedAt: jsStoredAt(msg),
    data: msg.data,
    headers: userHeaders(msg.headers),
  };
}

/** An event as the stream's direct get returned it. */
export function storedToDurable(sm: StoredMsg): DurableMessage {
  const hdrs = sm.header;
  return {
    seq: sm.seq,
    roomId: sm.subject.slice(DURABLE_PREFIX.length) as RoomKey,
    dedupeId: hdrs.get(MSG_ID_HEADER),
    storedAt: Date.parse(sm.timestamp),
    data: sm.data,
    headers: userHeaders(hdrs),
  };
}

/**
 * The stream time in whole ms. `info.timestampNanos` is a double, which cannot hold today's
 * nanosecond times exactly (rounding can move it across a ms boundary), so the ack subject's
 * decimal token is cut instead when it is there. Layouts: $JS.ACK.<stream>.<consumer>.<n>.<sseq>.
 * <dseq>.<ts>.<pending> or $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<n>.<sseq>.<dseq>.<ts>.<pending>[.<token>].
 */
function jsStoredAt(msg: JsMsg): number {
  const reply = (msg as unknown as { msg?: { reply?: string } }).msg?.reply;
  if (reply !== undefined) {
    const tokens = reply.split('.');
    const ts = tokens.length === 9 ? tokens[7] : tokens[9];
    if (ts !== undefined && ts.length > 6 && /^\d+$/.test(ts)) return Number(ts.slice(0, -6));
  }
  return Math.floor(msg.info.timestampNanos / 1e6);
}

/** The caller's headers: everything but the message id, which travels as `dedupeId`. */
function userHeaders(hdrs: MsgHdrs | undefined): Record<string, string> | undefined {
  if (hdrs === undefined) return undefined;
  let out: Record<string, string> | undefined;
  for (const key of hdrs.keys()) {
    if (key === MSG_ID_HEADER) continue;
    (out ??= {})[key] = hdrs.get(key);
  }
  return out;
}

/** Set by the stream on what it republishes: the event's stream sequence. */
const SEQUENCE_HEADER = 'Nats-Sequence';
const SEQUENCE_KEY = Buffer.from(`${SEQUENCE_HEADER}:`, 'latin1');
/** The raw message nats.js keeps inside a Msg: `hdr` is the header block's length (-1: none). */
interface RawMsg { _msg?: { hdr?: number }; _rdata?: Uint8Array }

/**
 * The stream sequence of a live message the stream republished; undefined for one a process
 * published itself (those carry no headers). This runs for every live message a gateway gets, so
 * it reads the header block's bytes where nats.js keeps them instead of having nats.js decode
 * every header into a map: the stream appends its headers last (`Nats-Stream`, `Nats-Subject`,
 * `Nats-Sequence`, `Nats-Last-Sequence`), so the lines are scanned from the end. If nats.js
 * stops keeping them there, the decoded headers serve (slower, same answer).
 */
export function republishedSeq(msg: Msg): number | undefined {
  const raw = msg as unknown as RawMsg;
  const hdrLen = raw._msg?.hdr;
  const bytes = raw._rdata;
  if (hdrLen === undefined || bytes === undefined) {
    const value = msg.headers?.get(SEQUENCE_HEADER);
    return value ? Number(value) : undefined;
  }
  if (hdrLen < 0) return undefined;
  // lines end with CRLF and the block with an empty line: walk back from the last line's CR
  let end = hdrLen - 4;
  while (end > 0) {
    let start = end;
    while (start > 0 && bytes[start - 1] !== 0x0a) start--;
    if (startsWithKey(bytes, start, end)) return parseDigits(bytes, start + SEQUENCE_KEY.length, end);
    end = start - 2;
  }
  return undefined;
}

function startsWithKey(bytes: Uint8Array, start: number, end: number): boolean {
  if (end - start <= SEQUENCE_KEY.length) return false;
  for (let i = 0; i < SEQUENCE_KEY.length; i++) if (bytes[start + i] !== SEQUENCE_KEY[i]) return false;
  return true;
}

function parseDigits(bytes: Uint8Array, from: number, end: number): number | undefined {
  let i = from;
  while (i < end && bytes[i] === 0x20) i++;
  if (i === end) return undefined;
  let n = 0;
  for (; i < end; i++) {
    const d = bytes[i]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return n;
}
