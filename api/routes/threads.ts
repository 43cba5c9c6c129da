import { ChatError } from '../../shared/protocol/index.ts';
import { metrics } from '../../shared/telemetry/index.ts';
import { CHAT_PREFIX, type RouteDeps } from '../deps.ts';
import { cursorPage } from '../cursor-page.ts';
import { CursorQuery, MessageParams, SendResultSchema, ThreadPage, ThreadReplyBody } from '../schemas.ts';
import { sendInput } from './messages.ts';

const tags = ['threads'];
const path = `${CHAT_PREFIX}/rooms/:roomId/threads/:messageId`;

export function threadRoutes({ server, store, messages, guard, reads }: RouteDeps): void {
  server.route({
    method: 'get', path, operationId: 'getThread', tags,
    summary: 'A thread: its root message and a page of replies, newest first',
    params: MessageParams,
    query: CursorQuery,
    response: ThreadPage,
    handler: async ({ principal, params, query }) => {
      const { key } = await guard.reader(principal, params.roomId);
      const root = await reads.windows.message(key, params.messageId);
      if (!root) throw new ChatError('not_found', `message ${params.messageId} not found in room ${params.roomId}`);
      const page = await cursorPage((q) => store.history(key, { ...q, threadId: params.messageId }), query);
      return { root, replies: page.messages, pagination: page.pagination };
    },
  });

  server.route({
    method: 'post', path, operationId: 'replyInThread', tags, status: 201,
    summary: 'Reply in a thread (same rules and result as sending a message)',
    params: MessageParams,
    body: ThreadReplyBody,
    response: SendResultSchema,
    handler: async ({ principal, params, body, setStatus }) => {
      const started = performance.now();
      const result = await messages.send(principal, sendInput(params.roomId, body, params.messageId));
      if (result.duplicate) setStatus(200);
      metrics.sendAck.observe((performance.now() - started) / 1000);
      return result;
    },
  });
}
