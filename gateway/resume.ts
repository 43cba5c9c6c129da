import type { Bus, DurableMessage } from '../shared/bus/index.ts';
import { decodeMsgpack, eventToFrame, type ServerFrame } from '../shared/protocol/index.ts';
import { roomIdOf, type DurableEvent, type RoomKey } from '../shared/domain/index.ts';
import { idTime, isId } from '../shared/ids/index.ts';

/**
 * Resume after reconnect: the room's durable events from RESUME_SKEW before the last id the
 * client saw, as the same frames it would have received live. Ids from different gateways are
 * only roughly ordered, hence the skew window; the client drops frames (by `seq`) it already has.
 * `recovered: false` when the stream no longer reaches back that far: the client reloads history.
 */
export async function replayRoom(
  bus: Bus,
  room: RoomKey,
  lastMessageId: string,
  skewMs: number,
  send: (frame: ServerFrame) => void,
): Promise<{ recovered: boolean; replayed: number }> {
  if (!isId(lastMessageId)) return { recovered: false, replayed: 0 };
  const since = idTime(lastMessageId) - skewMs;
  let replayed = 0;
  const { complete } = await bus.replay(room, since, (msg) => {
    const frame = durableToFrame(msg);
    if (frame === undefined) return;
    send(frame);
    replayed++;
  });
  return { recovered: complete, replayed };
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
