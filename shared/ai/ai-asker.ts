import { randomUUID } from 'node:crypto';
import { subjects, type Bus } from '../bus/bus.ts';
import { ChatError, ERROR_CODES, type ErrorCode } from '../protocol/errors.ts';
import { decodeAiReply, encodeAiRequest } from './requests.ts';

export interface AskInput {
  tenant: string;
  userId: string;
  userName: string;
  question: string;
  topic?: string;
  /** The api checked that the caller is a member. */
  roomId?: string;
}

/** Seed 000's answer to `POST /v1/chat/ai/ask`, with who answered. */
export interface AskAnswer {
  response: string;
  sources: string[];
  confidence: number;
  responseTime: number;
  provider: string;
  model: string;
  tokens: number;
}

export interface AiAsker {
  /**
   * Puts the question on the bus for an AI worker and resolves with its answer; `onDelta` hears
   * each piece as it comes. Rejects with the worker's ChatError, or `unavailable` when no worker
   * answered within `waitMs`. Aborting `signal` stops listening (the worker finishes on its own).
   */
  ask(input: AskInput, onDelta?: (text: string) => void, signal?: AbortSignal): Promise<AskAnswer>;
}

/** `waitMs`: how long an answer may take at most, every provider's timeout in turn and some slack. */
export function createAiAsker(bus: Bus, waitMs: number): AiAsker {
  return {
    ask(input, onDelta, signal) {
      const requestId = randomUUID();
      const replySubject = subjects.aiReply(requestId);
      return new Promise<AskAnswer>((resolve, reject) => {
        const sub = bus.subscribe(replySubject, (data) => {
          let reply;
          try {
            reply = decodeAiReply(data);
          } catch (err) {
            return finish(new ChatError('internal', 'undecodable AI reply', { cause: err }));
          }
          if (!reply) return undefined;
          switch (reply.t) {
            case 'delta':
              onDelta?.(reply.text);
              return undefined;
            case 'done': {
              const { t: _t, ...answer } = reply;
              return finish(undefined, answer);
            }
            case 'error':
            {
              const details = {
                ...(reply.retryAfterMs !== undefined ? { retryAfterMs: reply.retryAfterMs } : {}),
                ...(typeof reply.quota === 'string' ? { quota: reply.quota } : {}),
                ...(typeof reply.limit === 'number' ? { limit: reply.limit } : {}),
              };
              return finish(new ChatError(knownCode(reply.code), reply.message, Object.keys(details).length ? { details } : undefined));
            }
            default: {
              const never: never = reply;
              return finish(new ChatError('internal', `unknown AI reply ${JSON.stringify(never)}`));
            }
          }
        });
        const timer = setTimeout(() => finish(new ChatError('unavailable', 'no AI worker answered in time')), waitMs);
        const abort = () => finish(new ChatError('unavailable', 'the request was cancelled'));
        signal?.addEventListener('abort', abort, { once: true });
        let settled = false;
        function finish(err: ChatError | undefined, answer?: AskAnswer): void {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', abort);
          sub.unsubscribe();
          if (err) reject(err);
          else resolve(answer!);
        }
        bus.publish(subjects.aiRequests, encodeAiRequest({
          kind: 'ask', requestId, replySubject, tenant: input.tenant, userId: input.userId, userName: input.userName, question: input.question,
          ...(input.topic ? { topic: input.topic } : {}), ...(input.roomId ? { roomId: input.roomId } : {}),
        }));
      });
    },
  };
}

function knownCode(code: string): ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code) ? code as ErrorCode : 'internal';
}
