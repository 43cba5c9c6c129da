import type { DurableEvent } from '../domain/events.ts';
import type { ServerFrame } from './frames.ts';

/**
 * The live frame clients see for a durable event. Used when the event is first published and
 * again when it is replayed on resume, so both paths show clients the same thing. `roomId` is the
 * room's id as clients know it (the event names the room by its key, shared/domain/room-key.ts).
 */
export function eventToFrame(ev: DurableEvent, seq: number, roomId: string): ServerFrame {
  const at = new Date(ev.at).toISOString();
  switch (ev.kind) {
    case 'message.created':
      return { type: 'new_message', roomId, message: ev.message, seq };
    case 'message.edited':
      return { type: 'message_updated', roomId, messageId: ev.messageId, content: ev.content, editedAt: at, userId: ev.userId, seq };
    case 'message.deleted':
      return { type: 'message_deleted', roomId, messageId: ev.messageId, deletedAt: at, userId: ev.userId, seq };
    case 'reaction.added':
    case 'reaction.removed':
      return {
        type: 'reaction_updated', roomId, messageId: ev.messageId, emoji: ev.emoji, userId: ev.userId,
        action: ev.kind === 'reaction.added' ? 'add' : 'remove', seq,
      };
    case 'message.pinned':
    case 'message.unpinned':
      return { type: 'message_pinned', roomId, messageId: ev.messageId, pinned: ev.kind === 'message.pinned', userId: ev.userId, seq };
    case 'read.marked':
      return { type: 'read_receipt', roomId, userId: ev.userId, messageId: ev.messageId, readAt: at, seq };
    case 'message.delivered':
      return { type: 'message_status', roomId, messageId: ev.messageId, userId: ev.userId, status: 'delivered', at, seq };
    default: {
      const never: never = ev;
      throw new Error(`no frame for event ${JSON.stringify(never)}`);
    }
  }
}
