import type { TenantQuotaReader } from '../commands/tenant-quotas.ts';
import { randomUUID } from 'node:crypto';
import { subjects, type Bus, type Subscription } from '../bus/bus.ts';
import type { AiConfig } from '../config/config.ts';
import type { AiContext, Message } from '../domain/models.ts';
import { roomKey, type RoomKey } from '../domain/room-key.ts';
import { encodeMsgpack } from '../protocol/codec.ts';
import { ChatError, toChatError } from '../protocol/errors.ts';
import type { RateLimiter } from '../rate-limit/rate-limit.ts';
import type { Store } from '../store/store.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { AiContextLine, AiPrompt } from './ai.ts';
import type { Assistant, AssistantAnswer } from './assistant.ts';
import { decodeAiRequest, encodeAiReply, type AiReply, type AskRequest, type RoomRequest } from './requests.ts';
import { parseAiCommand } from './triggers.ts';
import { TurnQueue } from './turn-queue.ts';

export interface AiWorkerDeps {
  bus: Bus;
  store: Store;
  rateLimiter: RateLimiter;
  assistant: Assistant;
  /**
   * A page of a room's history, newest first, as Store.history pages it; the api gives its history
   * windows, so what was acked a moment ago is in the assistant's context too.
   */
  /** A page of the room's history; rooms are named by key (shared/domain/room-key.ts). */
  history(room: RoomKey, q: { limit: number; before?: string }): Promise<Message[]>;
  /** Stores a finished answer in its room through the stream (MessageCommands.postAiAnswer). */
  postAnswer(input: { room: RoomKey; roomId: string; requestId: string; replyTo: string; content: string; metadata: Record<string, unknown> }): Promise<Message>;
  ai: Pick<AiConfig, 'userRate' | 'tenantRate' | 'contextTtlMs' | 'contextTurns' | 'roomContextMessages' | 'summaryMessages' | 'streamFlushMs'>;
  /** The tenants' own aiRequestsPerMinute quotas (AI_TENANT_RATE_LIMIT_PER_MINUTE their default); `ai.tenantRate` is unused with it. */
  quotas?: TenantQuotaReader;
  log: Logger;
  now?: () => number;
}

export interface AiWorkers {
  /** Leaves the queue group, then waits (up to `timeoutMs`) for the answers under way. */
  stop(timeoutMs?: number): Promise<void>;
}

export const HELP_ANSWER = 'Ask me anything after @ai. I also know: `@ai summarize` (since your last read, or `@ai summarize 20` for the last 20 messages), '
  + '`@ai translate <language>: <text>` and `@ai sentiment`.';

/**
 * The AI workers of an api process: one member of the bus's queue group `subjects.aiWorkers`, so
 * each request is served by one api process. A room request streams `ai_response` frames to the
 * room's live subject (every member's gateway forwards them as they come), then stores the whole
 * answer through the stream as an `ai_response` message and sends the `done` frame naming it; a
 * failure ends with a `done` frame carrying the error and stores nothing. An ask request streams
 * AiReply frames to the asker's reply subject.
 */
export function startAiWorkers(deps: AiWorkerDeps): AiWorkers {
  // the steps of every answer take turns with the rest of the process, one a turn
  const turns = new TurnQueue();
  const now = deps.now ?? Date.now;
  const running = new Set<Promise<void>>();
  const sub: Subscription = deps.bus.subscribe(subjects.aiRequests, (data) => {
    let req;
    try {
      req = decodeAiRequest(data);
    } catch (err) {
      deps.log.warn({ err }, 'AI worker: undecodable request dropped');
      return;
    }
    if (!req) {
      deps.log.warn('AI worker: malformed request dropped');
      return;
    }
    const work = (req.kind === 'ask' ? answerAsk(deps, req, now, turns) : answerRoom(deps, req, now, turns))
      .catch((err: unknown) => deps.log.error({ err, requestId: req.requestId }, 'AI worker failed'))
      .finally(() => running.delete(work));
    running.add(work);
  }, { queue: subjects.aiWorkers });

  return {
    async stop(timeoutMs = 10_000) {
      sub.unsubscribe();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...running]), new Promise((r) => { timer = setTimeout(r, timeoutMs); })]);
      clearTimeout(timer);
    },
  };
}

async function limited(deps: AiWorkerDeps, tenant: string, userId: string): Promise<ChatError | undefined> {
  const user = await deps.rateLimiter.take(`ai:u:${tenant}:${userId}`, deps.ai.userRate);
  if (!user.allowed) return rateLimited(user.retryAfterMs);
  if (deps.quotas) {
    try {
      await deps.quotas.takeRate(deps.rateLimiter, tenant, 'aiRequestsPerMinute', `ai:t:${tenant}`);
    } catch (err) {
      if (err instanceof ChatError && err.code === 'rate_limited') return err;
      throw err;
    }
  } else if (deps.ai.tenantRate) {
    const t = await deps.rateLimiter.take(`ai:t:${tenant}`, deps.ai.tenantRate);
    if (!t.allowed) return rateLimited(t.retryAfterMs);
  }
  return undefined;
}

function rateLimited(retryAfterMs: number): ChatError {
  return new ChatError('rate_limited', `too many AI requests; retry in ${Math.ceil(retryAfterMs)} ms`, { details: { retryAfterMs: Math.ceil(retryAfterMs) } });
}

async function answerAsk(deps: AiWorkerDeps, req: AskRequest, now: () => number, turns: TurnQueue): Promise<void> {
  const reply = (r: AiReply) => deps.bus.publish(req.replySubject, encodeAiReply(r));
  try {
    await turns.turn();
    const refused = await limited(deps, req.tenant, req.userId);
    if (refused) throw refused;
    const context = req.roomId ? undefined : await deps.store.getAiContext(req.tenant, req.userId, now());
    const prompt: AiPrompt = {
      task: 'answer', text: req.question, stream: true,
      history: (context?.messages ?? []).filter((m) => m.role !== 'system').map((m) => ({ role: m.role as 'user' | 'assistant', content: m.content })),
      room: req.roomId ? await roomLines(deps, roomKey(req.tenant, req.roomId), deps.ai.roomContextMessages) : [],
      ...(req.topic ? { topic: req.topic } : {}),
    };
    const answer = await deps.assistant.run(prompt, (text) => reply({ t: 'delta', text }));
    if (!req.roomId) await remember(deps, req, context, answer, now());
    reply({
      t: 'done', response: answer.text, sources: answer.sources, confidence: answer.confidence, responseTime: answer.responseTimeMs,
      provider: answer.provider, model: answer.model, tokens: answer.promptTokens + answer.completionTokens,
    });
  } catch (err) {
    const e = toChatError(err);
    if (e.code === 'internal') deps.log.error({ err, requestId: req.requestId }, 'AI ask failed');
    const { retryAfterMs, quota, limit } = e.details ?? {};
    reply({
      t: 'error', code: e.code, message: e.code === 'internal' ? 'internal error' : e.message, ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
      ...(typeof quota === 'string' ? { quota } : {}), ...(typeof limit === 'number' ? { limit } : {}),
    });
  }
}

/** The user's own context after this turn: the last turns, a renewed TTL, the tokens added up. */
async function remember(deps: AiWorkerDeps, req: AskRequest, before: AiContext | undefined, answer: AssistantAnswer, at: number): Promise<void> {
  const stamp = new Date(at).toISOString();
  const keep = deps.ai.contextTurns * 2;
  const messages = [
    ...(before?.messages ?? []),
    { role: 'user' as const, content: req.question, timestamp: stamp },
    { role: 'assistant' as const, content: answer.text, timestamp: stamp },
  ];
  const context: AiContext = {
    contextId: before?.contextId ?? `ctx_${randomUUID()}`,
    roomId: null,
    userId: req.userId,
    messages: keep === 0 ? [] : messages.slice(-keep),
    createdAt: before?.createdAt ?? stamp,
    updatedAt: stamp,
    expiresAt: new Date(at + deps.ai.contextTtlMs).toISOString(),
    tokensUsed: (before?.tokensUsed ?? 0) + answer.promptTokens + answer.completionTokens,
  };
  try {
    await deps.store.putAiContext(req.tenant, context);
  } catch (err) {
    // the answer stands; only the memory of it is lost
    deps.log.warn({ err, requestId: req.requestId }, 'AI context not saved');
  }
}

async function answerRoom(deps: AiWorkerDeps, req: RoomRequest, now: () => number, turns: TurnQueue): Promise<void> {
  // the request names the room as its sender did: by id, in the sender's tenant
  const key = roomKey(req.tenant, req.roomId);
  const subject = subjects.roomEvents(key);
  const frame = (chunk: string, done: boolean, extra?: { messageId?: string; error?: { code: string; message: string } }) =>
    deps.bus.publish(subject, encodeMsgpack({ type: 'ai_response', roomId: req.roomId, requestId: req.requestId, chunk, done, ...extra }));
  // pieces gathered for AI_STREAM_FLUSH_MS into one frame: each frame is a publish on every gateway of the room
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === '') return;
    frame(pending, false);
    pending = '';
  };
  const piece = (chunk: string) => {
    if (deps.ai.streamFlushMs === 0) return frame(chunk, false);
    pending += chunk;
    timer ??= setTimeout(flush, deps.ai.streamFlushMs);
    return undefined;
  };
  try {
    // the start (room, limits, context window, provider request) and the storing of the answer
    // each take a turn: answers that start or finish together do not hold the loop together
    await turns.turn();
    const room = await deps.store.getRoom(key);
    // the setting may have changed since the message was sent
    if (!room || room.tenant !== req.tenant || !room.settings.enableAI) return;
    const refused = await limited(deps, req.tenant, req.userId);
    if (refused) throw refused;
    const command = parseAiCommand(req.content);
    let answer: AssistantAnswer | undefined;
    let text: string;
    if (command.task === 'answer' && command.text === '') {
      text = HELP_ANSWER;
      frame(text, false);
    } else {
      const prompt: AiPrompt = {
        task: command.task, text: command.text, stream: true, history: [],
        room: command.task === 'summarize'
          ? await summaryLines(deps, req, key, command.count)
          : command.task === 'translate' ? [] : await roomLines(deps, key, deps.ai.roomContextMessages, req.messageId),
        ...(command.language ? { language: command.language } : {}),
      };
      answer = await deps.assistant.run(prompt, piece);
      flush();
      text = answer.text;
      await turns.turn();
    }
    const message = await deps.postAnswer({
      room: key, roomId: req.roomId, requestId: req.requestId, replyTo: req.messageId, content: text,
      metadata: answer
        ? {
          provider: answer.provider, model: answer.model, tokens: answer.promptTokens + answer.completionTokens,
          responseTime: answer.responseTimeMs, confidence: answer.confidence, replyTo: req.messageId, requestId: req.requestId,
        }
        : { provider: 'none', model: 'none', tokens: 0, responseTime: 0, replyTo: req.messageId, requestId: req.requestId },
    });
    frame('', true, { messageId: message.messageId });
  } catch (err) {
    flush();
    const e = toChatError(err);
    if (e.code === 'internal') deps.log.error({ err, requestId: req.requestId }, 'AI room answer failed');
    frame('', true, { error: { code: e.code, message: e.code === 'internal' ? 'internal error' : e.message } });
  }
}

/** The room's newest messages before `before` (exclusive), oldest first, deleted ones left out. */
async function roomLines(deps: AiWorkerDeps, room: RoomKey, limit: number, before?: string): Promise<AiContextLine[]> {
  if (limit === 0) return [];
  const page = await deps.history(room, { limit, ...(before ? { before } : {}) });
  return toLines(page);
}

/**
 * `@ai summarize N`: the last N messages; `@ai summarize`: everything since the asker's read mark
 * (at most AI_SUMMARY_MESSAGES), or the last AI_SUMMARY_MESSAGES when they have none.
 */
async function summaryLines(deps: AiWorkerDeps, req: RoomRequest, room: RoomKey, count: number | undefined): Promise<AiContextLine[]> {
  const max = deps.ai.summaryMessages;
  if (count !== undefined) return roomLines(deps, room, Math.min(Math.max(1, count), max), req.messageId);
  const mark = await deps.store.getReadState(room, req.userId);
  if (mark && BigInt(mark.lastReadId) < BigInt(req.messageId)) {
    // the newest `max` after the mark: walk back from the trigger
    const page = await deps.history(room, { limit: max, before: req.messageId });
    return toLines(page.filter((m) => BigInt(m.messageId) > BigInt(mark.lastReadId)));
  }
  return roomLines(deps, room, max, req.messageId);
}

function toLines(newestFirst: Message[]): AiContextLine[] {
  const lines: AiContextLine[] = [];
  for (let i = newestFirst.length - 1; i >= 0; i--) {
    const m = newestFirst[i]!;
    if (m.isDeleted || !m.content) continue;
    lines.push({ author: m.authorName, content: m.content, at: m.timestamp });
  }
  return lines;
}
