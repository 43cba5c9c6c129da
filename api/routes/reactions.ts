import { CHAT_PREFIX, type ApiDeps } from '../deps.ts';
import { MessageParams, ReactionBody, ReactionParams, ReactionResult } from '../schemas.ts';

const tags = ['messages'];
const path = `${CHAT_PREFIX}/rooms/:roomId/messages/:messageId/reactions`;

export function reactionRoutes({ server, messages }: ApiDeps): void {
  server.route({
    method: 'post', path, operationId: 'addReaction', tags,
    summary: 'React to a message with an emoji',
    params: MessageParams,
    body: ReactionBody,
    response: ReactionResult,
    handler: async ({ principal, params, body }) => {
      const { seq, action } = await messages.react(principal, { ...params, emoji: body.emoji, action: 'add' });
      return { ...params, emoji: body.emoji, action, seq };
    },
  });

  server.route({
    method: 'del', path: `${path}/:emoji`, operationId: 'removeReaction', tags,
    summary: 'Take your reaction back (the emoji is percent-encoded in the path)',
    params: ReactionParams,
    response: ReactionResult,
    handler: async ({ principal, params }) => {
      const { seq, action } = await messages.react(principal, { ...params, action: 'remove' });
      return { ...params, action, seq };
    },
  });
}
