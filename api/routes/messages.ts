import { ChatError } from '../../shared/protocol/index.ts';
import { metrics } from '../../shared/telemetry/index.ts';
import type { SendInput } from '../../shared/commands/index.ts';
import type { Static } from '@sinclair/typebox';
import { JsonText } from '../../shared/http/index.ts';
import { CHAT_PREFIX, type RouteDeps } from '../deps.ts';
import { cursorPage } from '../cursor-page.ts';
import {
  CursorQuery, DeleteResult, EditBody, EditResult, MessageParams, MessagePage, MessageSchema, RoomIdParams, SendMessageBody, SendResultSchema,
} from '../schemas.ts';

const tags = ['messages'];
const path = `${CHAT_PREFIX}/rooms/:roomId/messages`;

/** The REST body as the shared send command's input (`type` is seed 000's name for `messageType`). */
export function sendInput(roomId: string, body: Static<typeof SendMessageBody>, threadId?: string): SendInput {
  const { type, messageType, ...rest } = body;
  const kind = messageType ?? type;
  return { ...rest, roomId, ...(kind ? { messageType: kind } : {}), ...(threadId ? { threadId } : {}) };
}

export function messageRoutes({ server, messages, guard, reads }: RouteDeps): void {
  server.route({
    method: 'get', path, operationId: 'listMessages', tags,
    summary: 'History of the room\'s main timeline, newest first',
    description: 'Cursor paging by message id: `before` walks back, `after` walks forward. Members read their rooms; '
      + 'public and announcement rooms are readable by anyone of the tenant who is not banned. A message is in history '
      + 'as soon as its send is acknowledged, and so are edits, deletes, reactions and pins (on one process at once; '
      + 'across processes within the time the event takes to reach this one).',
    params: RoomIdParams,
    query: CursorQuery,
    response: MessagePage,
    handler: async ({ principal, params, query }) => {
      const { key } = await reads.guard.reader(principal, params.roomId);
      const page = await cursorPage((q) => reads.windows.history(key, q), query);
      let list = '';
      for (const m of page.messages) list += list === '' ? m.json : ',' + m.json;
      return new JsonText<Static<typeof MessagePage>>(`{"messages":[${list}],"pagination":${JSON.stringify(page.pagination)}}`);
    },
  });

  server.route({
    method: 'post', path, operationId: 'sendMessage', tags, status: 201,
    summary: 'Send a message; a retry with the same clientMsgId returns the first one (200, duplicate: true)',
    params: RoomIdParams,
    body: SendMessageBody,
    response: SendResultSchema,
    handler: async ({ principal, params, body, setStatus }) => {
      const started = performance.now();
      const result = await messages.send(principal, sendInput(params.roomId, body));
      if (result.duplicate) setStatus(200);
      metrics.sendAck.observe((performance.now() - started) / 1000);
      return result;
    },
  });

  server.route({
    method: 'get', path: `${path}/:messageId`, operationId: 'getMessage', tags,
    summary: 'One message',
    params: MessageParams,
    response: MessageSchema,
    handler: async ({ principal, params }) => {
      const { key } = await guard.reader(principal, params.roomId);
      const message = await reads.windows.message(key, params.messageId);
      if (!message) throw new ChatError('not_found', `message ${params.messageId} not found in room ${params.roomId}`);
      return message;
    },
  });

  server.route({
    method: 'patch', path: `${path}/:messageId`, operationId: 'editMessage', tags,
    summary: 'Edit your own message',
    params: MessageParams,
    body: EditBody,
    response: EditResult,
    handler: async ({ principal, params, body }) => {
      const { seq, at } = await messages.edit(principal, { ...params, content: body.content });
      return { ...params, content: body.content, editedAt: new Date(at).toISOString(), seq };
    },
  });

  server.route({
    method: 'del', path: `${path}/:messageId`, operationId: 'deleteMessage', tags,
    summary: 'Delete a message: your own, or anyone\'s as a moderator (soft delete)',
    params: MessageParams,
    response: DeleteResult,
    handler: async ({ principal, params }) => {
      const { seq, at } = await messages.delete(principal, params);
      return { ...params, deleted: true as const, deletedAt: new Date(at).toISOString(), seq };
    },
  });
}
