import { Type } from '@sinclair/typebox';
import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import { MessageParams, MessageSchema, PinResult, RoomIdParams } from '../schemas.ts';

const tags = ['messages'];

export function pinRoutes({ server, store, messages, guard }: ApiDeps): void {
  for (const pinned of [true, false]) {
    server.route({
      method: pinned ? 'post' : 'del', path: `${CHAT_PREFIX}/rooms/:roomId/messages/:messageId/pin`,
      operationId: pinned ? 'pinMessage' : 'unpinMessage', tags,
      summary: pinned ? 'Pin a message (moderators; anyone in direct and group rooms)' : 'Unpin a message',
      params: MessageParams,
      response: PinResult,
      handler: async ({ principal, params }) => {
        const { seq } = await messages.pin(principal, { ...params, pinned });
        return { ...params, pinned, seq };
      },
    });
  }

  server.route({
    method: 'get', path: `${CHAT_PREFIX}/rooms/:roomId/pins`, operationId: 'listPins', tags,
    summary: 'Pinned messages, most recently pinned first',
    params: RoomIdParams,
    response: Type.Object({ messages: Type.Array(MessageSchema) }),
    handler: async ({ principal, params }) => {
      const { key } = await guard.reader(principal, params.roomId);
      return { messages: await store.pinned(key) };
    },
  });
}
