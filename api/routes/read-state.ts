import { ChatError } from '../../shared/protocol/index.ts';
import type { MessageStatus } from '../../shared/domain/index.ts';
import { isId } from '../../shared/ids/index.ts';
import { CHAT_PREFIX, type RouteDeps } from '../deps.ts';
import { MessageParams, MessageStatusResult, ReadBody, ReadResult, RoomIdParams } from '../schemas.ts';

const tags = ['read state'];

/** Members listed per direct room: both people. */
const DIRECT_MEMBER_PAGE = { limit: 2, offset: 0 };

export function readStateRoutes({ server, store, rooms, messages, guard, reads }: RouteDeps): void {
  server.route({
    method: 'post', path: `${CHAT_PREFIX}/rooms/:roomId/read`, operationId: 'markRead', tags,
    summary: 'Mark the room read up to a message (marks only move forward)',
    params: RoomIdParams,
    body: ReadBody,
    response: ReadResult,
    handler: async ({ principal, params, body }) => {
      // The id schema admits 20 digits; one past int64 would be stored in the stream and then
      // refused by the store, holding up the persister's batch until it is dead-lettered.
      if (!isId(body.messageId)) throw new ChatError('bad_request', `messageId ${body.messageId} is not a message id`);
      const r = await messages.offerReadMark(principal, { roomId: params.roomId, messageId: body.messageId });
      const readAt = new Date(r.at).toISOString();
      return 'seq' in r ? { roomId: params.roomId, messageId: body.messageId, readAt, seq: r.seq } : { roomId: params.roomId, messageId: body.messageId, readAt, coalesced: true };
    },
  });

  server.route({
    method: 'get', path: `${CHAT_PREFIX}/rooms/:roomId/messages/:messageId/status`, operationId: 'messageStatus', tags,
    summary: 'Delivery and read status of a message per recipient',
    description: 'Direct rooms list the other person always (sent, delivered or read). Other rooms list the members '
      + 'who have read up to the message (delivery is tracked in direct rooms only).',
    params: MessageParams,
    response: MessageStatusResult,
    handler: async ({ principal, params }) => {
      const { key, room } = await guard.member(principal, params.roomId);
      const message = await reads.windows.message(key, params.messageId);
      if (!message) throw new ChatError('not_found', `message ${params.messageId} not found in room ${params.roomId}`);
      const recorded = new Map((await store.messageStatus(key, params.messageId)).map((s) => [s.userId, s]));
      if (room.type === 'direct') {
        const { members } = await rooms.members(principal, params.roomId, DIRECT_MEMBER_PAGE);
        for (const m of members) {
          if (m.userId !== message.authorId && !recorded.has(m.userId)) recorded.set(m.userId, { messageId: params.messageId, userId: m.userId });
        }
      }
      return { ...params, statuses: [...recorded.values()].map(statusView) };
    },
  });
}

function statusView(s: MessageStatus) {
  return {
    userId: s.userId,
    status: s.readAt ? 'read' as const : s.deliveredAt ? 'delivered' as const : 'sent' as const,
    ...(s.deliveredAt ? { deliveredAt: s.deliveredAt } : {}),
    ...(s.readAt ? { readAt: s.readAt } : {}),
  };
}
