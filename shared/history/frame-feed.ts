import { subjects, type Bus } from '../bus/index.ts';
import type { DurableEvent } from '../domain/events.ts';
import { decodeMsgpack, type ServerFrame } from '../protocol/index.ts';
import { busFeed } from './bus-feed.ts';
import type { RoomEventFeed } from './room-event-feed.ts';

/**
 * TEMPORARY: the window's feed until the live subjects carry the stored DurableEvents
 * (`durableEventFeed`, JetStream RePublish). Replace its one use in api/start.ts with
 * `durableEventFeed(bus, subjects.live)` when that lands, and delete this file.
 *
 * Today the command layer publishes a live frame, with the event's stream sequence, on the room's
 * subject after the stream stored the event (before the sender's ack). A `new_message` or
 * `message_deleted` frame holds all its event says; the other frames lack the event id or time,
 * so their event is read back from the stream by sequence (once per event, not per reader).
 */
export function liveFrameFeed(bus: Bus, onError: (err: unknown) => void): RoomEventFeed {
  return busFeed(bus, (roomId, onEvent) => ({
    subject: subjects.roomEvents(roomId),
    handler: (payload: Uint8Array) => {
      const frame = decodeMsgpack(payload) as ServerFrame;
      switch (frame.type) {
        case 'new_message': {
          const m = frame.message;
          onEvent({ kind: 'message.created', id: m.messageId, at: Date.parse(m.timestamp), roomId: frame.roomId, message: m }, frame.seq);
          return;
        }
        case 'message_deleted':
          onEvent({
            kind: 'message.deleted', id: '0', at: Date.parse(frame.deletedAt), roomId: frame.roomId, messageId: frame.messageId, userId: frame.userId,
          }, frame.seq);
          return;
        case 'message_updated':
        case 'reaction_updated':
        case 'message_pinned': {
          const seq = frame.seq;
          bus.getDurable(seq).then((msg) => {
            if (msg !== undefined) onEvent(decodeMsgpack(msg.data) as DurableEvent, seq);
          }, onError);
          return;
        }
        default:
      }
    },
  }));
}
