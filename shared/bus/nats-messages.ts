import type { JsMsg, MsgHdrs, StoredMsg } from 'nats';
import { subjects, type DurableMessage } from './bus.ts';

/** `chat.durable.`: the room id follows it. */
export const DURABLE_PREFIX = subjects.durable('');
/** Every durable subject: what the stream and the consumer groups take. */
export const DURABLE_FILTER = `${DURABLE_PREFIX}>`;
/** The dedupe id travels as the JetStream message id. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

/** An event as a consumer (replay, group) received it. */
export function jsToDurable(msg: JsMsg): DurableMessage {
  return {
    seq: msg.seq,
    roomId: msg.subject.slice(DURABLE_PREFIX.length),
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
    roomId: sm.subject.slice(DURABLE_PREFIX.length),
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
