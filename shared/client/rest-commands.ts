import type { ChatRest } from './rest.ts';
import { ChatClientError } from './errors.ts';

/** A client request as the client sends it on a WebSocket (type, fields, ref). */
export type Request = { type: string; ref?: string | number; [field: string]: unknown };

/**
 * A client request carried over REST, for connections without a WebSocket (SSE, long-poll).
 * Resolves with what the WebSocket `ack` would carry besides `type` and `ref`, so the client
 * treats both transports alike. Typing has no REST route: it is dropped (resolves empty).
 */
export async function requestOverRest(rest: ChatRest, f: Request): Promise<Record<string, unknown>> {
  const roomId = f['roomId'] as string;
  const messageId = f['messageId'] as string;
  switch (f.type) {
    case 'join_room':
      return { ...await rest.joinRoom(roomId) };
    case 'leave_room':
      return { ...await rest.leaveRoom(roomId) };
    case 'send_message': {
      const { type: _t, ref: _r, roomId: _room, content, ...opts } = f;
      const r = await rest.sendMessage(roomId, content as string, opts);
      return {
        roomId, messageId: r.message.messageId, clientMsgId: r.message.clientMsgId, seq: r.seq, timestamp: r.message.timestamp, duplicate: r.duplicate,
      };
    }
    case 'edit_message':
      return { roomId, messageId, ...await rest.editMessage(roomId, messageId, f['content'] as string) };
    case 'delete_message':
      return { roomId, messageId, ...await rest.deleteMessage(roomId, messageId) };
    case 'message_reaction':
      return { roomId, messageId, emoji: f['emoji'], ...await rest.react(roomId, messageId, f['emoji'] as string, (f['action'] as 'add' | 'remove' | undefined) ?? 'add') };
    case 'pin_message':
    case 'unpin_message':
      return { roomId, messageId, ...await rest.pin(roomId, messageId, f.type === 'pin_message') };
    case 'mark_read':
      return { roomId, messageId, ...await rest.markRead(roomId, messageId) };
    case 'set_presence':
      return { ...await rest.setPresence(f['status'] as never, f['customStatus'] as string | undefined) };
    case 'typing_start':
    case 'typing_stop':
    case 'ping':
      return {};
    default:
      throw new ChatClientError('bad_request', `${f.type} cannot be sent without a WebSocket`);
  }
}
