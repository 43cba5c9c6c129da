import type { Message } from './models.ts';
import type { RoomKey } from './room-key.ts';

/**
 * Durable room events: everything that changes stored messages. They travel through the durable
 * stream (`chat.durable.<room key>`) and the persister applies them. Every event carries its event
 * time `at` (ms since epoch); stores apply them last-writer-wins by `at`, so applying the same
 * event twice, or two events in either order, ends in the same state.
 *
 * `id` is the event's own snowflake and is the stream's dedupe id (for `message.created` it is the
 * message id).
 *
 * `roomId` is the room's key (room-key.ts: tenant and id), which names the rows the event changes;
 * the frames made of an event show the room's id instead (eventToFrame). In the default tenant
 * the key is the bare id, so events stored before rooms were keyed by tenant read the same. A
 * created message's `message.roomId` is the room's id, as clients see it.
 */
export type DurableEvent =
  | { kind: 'message.created'; id: string; at: number; roomId: RoomKey; message: Message }
  | { kind: 'message.edited'; id: string; at: number; roomId: RoomKey; messageId: string; userId: string; content: string }
  | { kind: 'message.deleted'; id: string; at: number; roomId: RoomKey; messageId: string; userId: string }
  | { kind: 'reaction.added'; id: string; at: number; roomId: RoomKey; messageId: string; userId: string; emoji: string }
  | { kind: 'reaction.removed'; id: string; at: number; roomId: RoomKey; messageId: string; userId: string; emoji: string }
  | { kind: 'message.pinned'; id: string; at: number; roomId: RoomKey; messageId: string; userId: string }
  | { kind: 'message.unpinned'; id: string; at: number; roomId: RoomKey; messageId: string; userId: string }
  | { kind: 'read.marked'; id: string; at: number; roomId: RoomKey; userId: string; messageId: string }
  | { kind: 'message.delivered'; id: string; at: number; roomId: RoomKey; messageId: string; userId: string };

export type DurableEventKind = DurableEvent['kind'];
