import { Type } from '@sinclair/typebox';
import { ChatError, RoomId, toChatError } from '../../shared/protocol/index.ts';
import type { AskAnswer } from '../../shared/ai/index.ts';
import { CHAT_PREFIX, type RouteDeps } from '../deps.ts';

/** Seed 000's answer: `{response, sources, confidence, responseTime}` (ms). */
export const AskResult = Type.Object({
  response: Type.String(),
  sources: Type.Array(Type.String()),
  confidence: Type.Number({ minimum: 0, maximum: 1 }),
  responseTime: Type.Integer({ minimum: 0, description: 'ms the provider took' }),
}, { $id: 'AskResult' });

const SSE_HEADERS: Array<[string, string]> = [
  ['Content-Type', 'text/event-stream; charset=utf-8'],
  ['Cache-Control', 'no-cache, no-transform'],
  ['X-Accel-Buffering', 'no'],
];

/**
 * `POST /v1/chat/ai/ask`. The api never calls a provider itself: the question goes on the bus to
 * the AI workers (any api process's), and the answer comes back on a reply subject. Streamed as
 * Server-Sent Events (`delta`, then `done` or `error`) with `"stream": true` or
 * `Accept: text/event-stream`; the stream starts with the first piece of the answer, so a refusal
 * before it (rate limit, no provider) is still a plain error with its status.
 */
export function aiRoutes({ server, guard, asking: ai }: RouteDeps): void {
  const AskBody = Type.Object({
    question: Type.String({ minLength: 1, maxLength: ai.maxQuestionLength }),
    context: Type.Optional(Type.String({ maxLength: 200, description: 'a topic hint, seed 000\'s "software_development"' })),
    roomId: Type.Optional(RoomId),
    stream: Type.Optional(Type.Boolean()),
  }, { $id: 'AskBody' });

  server.held({
    method: 'post', path: `${CHAT_PREFIX}/ai/ask`, operationId: 'askAi', tags: ['ai'],
    summary: 'Ask the AI assistant; with roomId the room\'s recent messages are the context (members only)',
    description: 'Without roomId the caller\'s own context (their last turns, kept for AI_CONTEXT_TTL) is used. '
      + 'With "stream": true or Accept: text/event-stream the answer streams as Server-Sent Events: `delta` {text}, then '
      + '`done` {response, sources, confidence, responseTime} or `error` {code, message}. Room messages are given to the '
      + 'model as quoted data, never as instructions.',
    headers: ['accept'],
    body: AskBody,
    response: AskResult,
    handler: async ({ principal, body, headers }, res) => {
      const question = body.question.trim();
      if (question === '') throw new ChatError('bad_request', 'the question is empty');
      if (body.roomId !== undefined) await memberOf(guard, principal, body.roomId);
      const streaming = body.stream === true || (headers['accept'] ?? '').includes('text/event-stream');
      const abort = new AbortController();
      res.onAbort(() => abort.abort());
      const input = {
        tenant: principal.tenant, userId: principal.userId, userName: principal.name, question,
        ...(body.context ? { topic: body.context } : {}), ...(body.roomId ? { roomId: body.roomId } : {}),
      };
      if (!streaming) {
        const answer = await ai.asker.ask(input, undefined, abort.signal);
        res.json(JSON.stringify({ success: true, data: seedShape(answer) }));
        return;
      }
      let started = false;
      const send = (event: string, data: unknown) => {
        const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
        if (started) res.write(text);
        else {
          started = true;
          res.stream(SSE_HEADERS, text);
        }
      };
      try {
        const answer = await ai.asker.ask(input, (text) => send('delta', { text }), abort.signal);
        send('done', seedShape(answer));
      } catch (err) {
        if (!started) throw err;
        const e = toChatError(err);
        send('error', { code: e.code, message: e.code === 'internal' ? 'internal error' : e.message });
      }
      res.end();
    },
  });
}

function seedShape(a: AskAnswer) {
  return { response: a.response, sources: a.sources, confidence: a.confidence, responseTime: a.responseTime };
}

/** A room the caller is not in gets the very answer a missing room gets: its existence is not told. */
async function memberOf(guard: RouteDeps['guard'], principal: Parameters<RouteDeps['guard']['member']>[0], roomId: string): Promise<void> {
  try {
    await guard.member(principal, roomId);
  } catch (err) {
    const e = toChatError(err);
    if (e.code === 'forbidden' || e.code === 'not_found') throw new ChatError('not_found', `room ${roomId} not found`);
    throw err;
  }
}
