import { ChatClientError } from './errors.ts';
import { unwrap, type ChatRest } from './rest.ts';
import { SseParser } from './sse-parser.ts';

export interface AskOptions {
  /** Ask about a room you are in: its recent messages are the context. */
  roomId?: string;
  /** A topic hint (seed 000's `context`, e.g. "software_development"). */
  context?: string;
  /** Hear the answer as it is written: the request then streams (Server-Sent Events). */
  onDelta?: (text: string) => void;
  signal?: AbortSignal;
}

/** Seed 000's answer. */
export interface AiAnswer {
  response: string;
  sources: string[];
  confidence: number;
  /** ms the provider took. */
  responseTime: number;
}

/**
 * `POST /v1/chat/ai/ask`. With `onDelta` the answer streams and each piece is handed over as it
 * arrives (the promise still resolves with the whole answer). Failures throw ChatClientError with
 * the server's code, also when the stream ends with an `error` event.
 */
export async function askAi(rest: ChatRest, question: string, opts: AskOptions = {}): Promise<AiAnswer> {
  const body = { question, ...(opts.roomId ? { roomId: opts.roomId } : {}), ...(opts.context ? { context: opts.context } : {}) };
  const path = '/v1/chat/ai/ask';
  if (!opts.onDelta) return rest.request<AiAnswer>('POST', path, body, opts.signal);
  const res = await rest.send('POST', path, { ...body, stream: true }, { accept: 'text/event-stream' }, opts.signal);
  if (!res.ok || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return unwrap<AiAnswer>(res, `POST ${path}`);
  let answer: AiAnswer | undefined;
  let failure: ChatClientError | undefined;
  const parser = new SseParser((ev) => {
    const data = JSON.parse(ev.data) as Record<string, unknown>;
    if (ev.event === 'delta') opts.onDelta!(String(data['text'] ?? ''));
    else if (ev.event === 'done') answer = data as unknown as AiAnswer;
    else if (ev.event === 'error') failure = new ChatClientError(String(data['code'] ?? 'internal'), String(data['message'] ?? 'the answer failed'), { status: res.status });
  });
  const stream = res.body as ReadableStream<Uint8Array> | undefined;
  if (!stream?.getReader) {
    parser.push(await res.text());
  } else {
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch (err) {
      throw new ChatClientError('unavailable', 'the answer stream broke off', { cause: err });
    }
    parser.push(decoder.decode() + '\n\n');
  }
  if (failure) throw failure;
  if (!answer) throw new ChatClientError('unavailable', 'the answer stream ended without an answer');
  return answer;
}
