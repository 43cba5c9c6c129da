import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Bus, DurableMessage } from '../shared/bus/index.ts';
import { decodeMsgpack, eventToFrame, type ServerFrame } from '../shared/protocol/index.ts';
import { roomIdOf, type DurableEvent, type RoomKey } from '../shared/domain/index.ts';
import { idTime, isId } from '../shared/ids/index.ts';
import { DEFAULTS, type WsConfig } from '../shared/config/index.ts';

/** One room's line of the `resumed` frame. */
export interface RoomResumed { roomId: string; recovered: boolean; replayed: number }

/** Where replayed frames go: a WebSocket, an SSE stream or a long-poll session. */
export interface ReplaySink {
  send(frame: ServerFrame): void;
  /** Whether the receiver went away: the replay stops. */
  closed(): boolean;
  /** Bytes waiting to be written to a slow receiver (WebSocket backpressure); none: 0. */
  buffered?(): number;
}

export interface ResumeLimits {
  skewMs: number;
  /** Events replayed per resume request at most, over all its rooms (RESUME_MAX_EVENTS). */
  maxEvents: number;
  /** A receiver with more than this buffered waits before the next chunk (half the backpressure limit). */
  maxBufferedBytes?: number;
}

/** The limits of a replay from the connection settings. */
export function resumeLimits(ws: WsConfig): ResumeLimits {
  return { skewMs: ws.resumeSkewMs, maxEvents: ws.resumeMaxEvents ?? DEFAULTS.resumeMaxEvents, maxBufferedBytes: Math.floor(ws.maxBackpressureBytes / 2) };
}

/** A room whose replay failed: told here, it answers `recovered: false`; without it, the failure rejects the whole replay. */
export type ReplayFailed = (err: unknown, roomId: string) => void;

/**
 * Frames sent in one turn of the event loop: a replay is sent in chunks, with other sockets'
 * frames, acks and timers between them, so one big resume cannot stall its neighbours.
 */
export const REPLAY_CHUNK = 64;
/** How often a replay waiting for a slow receiver to read looks again. */
const DRAIN_POLL_MS = 20;

/**
 * Resume after reconnect, for every transport: the rooms' durable events from RESUME_SKEW before
 * the last id the client saw, as the same frames it would have received live. Ids from different
 * gateways are only roughly ordered, hence the skew window; the client drops frames (by `seq`) it
 * already has. A request replays at most `maxEvents` events over all its rooms: a room cut short,
 * and every room after the budget ran out, answer `recovered: false` and the client pages REST
 * history for the rest (the SDK does). `recovered: false` also when the stream no longer reaches
 * back that far. `rooms` is keyed by room, so each room is replayed once however often a client
 * names it; a room without a position (undefined) is not replayed: there is nothing to recover.
 */
export async function replayRooms(
  bus: Bus,
  rooms: ReadonlyMap<string, string | undefined>,
  /** The room's key (its tenant's): the stream is keyed by it. */
  keyOf: (roomId: string) => RoomKey,
  limits: ResumeLimits,
  sink: ReplaySink,
  failed?: ReplayFailed,
): Promise<RoomResumed[]> {
  const results: RoomResumed[] = [];
  let budget = limits.maxEvents;
  for (const [roomId, lastMessageId] of rooms) {
    if (sink.closed()) break;
    if (lastMessageId === undefined) {
      results.push({ roomId, recovered: true, replayed: 0 });
      continue;
    }
    if (budget <= 0 || !isId(lastMessageId)) {
      results.push({ roomId, recovered: false, replayed: 0 });
      continue;
    }
    const frames: ServerFrame[] = [];
    let complete: boolean;
    let more: boolean | undefined;
    try {
      ({ complete, more } = await bus.replay(keyOf(roomId), idTime(lastMessageId) - limits.skewMs, (msg) => {
        const frame = durableToFrame(msg);
        if (frame !== undefined) frames.push(frame);
      }, budget));
    } catch (err) {
      if (failed === undefined) throw err;
      failed(err, roomId);
      results.push({ roomId, recovered: false, replayed: 0 });
      continue;
    }
    budget -= frames.length;
    await sendChunked(frames, sink, limits.maxBufferedBytes);
    results.push({ roomId, recovered: complete && more !== true, replayed: frames.length });
  }
  return results;
}

/** Sends `frames` REPLAY_CHUNK at a time, yielding between chunks and waiting while the receiver is behind. */
async function sendChunked(frames: ServerFrame[], sink: ReplaySink, maxBuffered: number | undefined): Promise<void> {
  for (let i = 0; i < frames.length; i += REPLAY_CHUNK) {
    if (i > 0) await nextTurn();
    while (maxBuffered !== undefined && sink.buffered !== undefined && !sink.closed() && sink.buffered() > maxBuffered) {
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    if (sink.closed()) return;
    const end = Math.min(frames.length, i + REPLAY_CHUNK);
    for (let j = i; j < end; j++) sink.send(frames[j]!);
  }
}

/** A stored event as the frame sockets got live; undefined for an undecodable one. */
export function durableToFrame(msg: DurableMessage): ServerFrame | undefined {
  let event: DurableEvent;
  try {
    event = decodeMsgpack(msg.data) as DurableEvent;
  } catch {
    return undefined; // an undecodable event is the persister's dead letter to report, not the client's problem
  }
  return eventToFrame(event, msg.seq, roomIdOf(msg.roomId));
}
