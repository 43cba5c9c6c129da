import { decodeMsgpack, encodeMsgpack } from '../protocol/codec.ts';

/**
 * What travels on the bus between whoever asks (the api's `/v1/chat/ai/ask`, the message commands
 * when a room message addresses the assistant) and the AI workers of the api tier, which serve
 * `subjects.aiRequests` in the queue group `subjects.aiWorkers`: each request is answered by one
 * worker of any api process. Core pub/sub, at most once: a request published while no worker
 * runs is lost (the asker times out with `unavailable`; a room trigger gets no answer).
 */
export type AiRequest = AskRequest | RoomRequest;

interface Asker {
  requestId: string;
  tenant: string;
  userId: string;
  userName: string;
}

/** `/v1/chat/ai/ask`: the answer goes to `replySubject` as AiReply frames. Room membership was checked by the api. */
export interface AskRequest extends Asker {
  kind: 'ask';
  question: string;
  topic?: string;
  roomId?: string;
  replySubject: string;
}

/** A room message addressed to the assistant: the answer is streamed into the room and stored there. */
export interface RoomRequest extends Asker {
  kind: 'room';
  roomId: string;
  /** The triggering message. */
  messageId: string;
  content: string;
}

export type AiReply =
  | { t: 'delta'; text: string }
  | { t: 'done'; response: string; sources: string[]; confidence: number; responseTime: number; provider: string; model: string; tokens: number }
  | { t: 'error'; code: string; message: string; retryAfterMs?: number; /** the tenant quota that refused it, and its limit */ quota?: string; limit?: number };

export function encodeAiRequest(req: AiRequest): Uint8Array {
  return encodeMsgpack(req);
}

export function decodeAiRequest(data: Uint8Array): AiRequest | undefined {
  const req = decodeMsgpack(data) as Partial<AiRequest> | undefined;
  if (!req || typeof req !== 'object' || typeof req.requestId !== 'string' || typeof req.tenant !== 'string' || typeof req.userId !== 'string') return undefined;
  if (req.kind === 'ask' && typeof req.question === 'string' && typeof req.replySubject === 'string') return req as AskRequest;
  if (req.kind === 'room' && typeof req.roomId === 'string' && typeof req.messageId === 'string' && typeof req.content === 'string') return req as RoomRequest;
  return undefined;
}

export function encodeAiReply(reply: AiReply): Uint8Array {
  return encodeMsgpack(reply);
}

export function decodeAiReply(data: Uint8Array): AiReply | undefined {
  const r = decodeMsgpack(data) as Partial<AiReply> | undefined;
  if (!r || typeof r !== 'object') return undefined;
  if (r.t === 'delta' || r.t === 'done' || r.t === 'error') return r as AiReply;
  return undefined;
}
