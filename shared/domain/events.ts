import type { Message } from './models.ts';

/**
 * Durable room events: everything that changes stored messages. They travel through the durable
 * stream (`chat.durable.<roomId>`) and the persister applies them. Every event carries its event
 * time `at` (ms since epoch); stores apply them last-writer-wins by `at`, so applying the same
 * event twice, or two events in either order, ends in the same state.
 *
 * `id` is the event's own snowflake and is the stream's dedupe id (for `message.created` it is the
 * message id).
 */
export type DurableEvent =
  | { kind: 'message.created'; id: string; at: number; roomId: string; message: Message }
  | { kind: 'message.edited'; id: string; at: number; roomId: string; messageId: string; userId: string; content: string }
  | { kind: 'message.deleted'; id: string; at: number; roomId: string; messageId: string; userId: string }
  | { kind: 'reaction.added'; id: string; at: number; roomId: string; messageId: string; userId: string; emoji: string }
  | { kind: 'reaction.removed'; id: string; at: number; roomId: string; messageId: string; userId: string; emoji: string }
  | { kind: 'message.pinned'; id: string; at: number; roomId: string; messageId: string; userId: string }
  | { kind: 'message.unpinned'; id: string; at: number; roomId: string; messageId: string; userId: string }
  | { kind: 'read.marked'; id: string; at: number; roomId: string; userId: string; messageId: string }
  | { kind: 'message.delivered'; id: string; at: number; roomId: string; messageId: string; userId: string };

export type DurableEventKind = DurableEvent['kind'];
