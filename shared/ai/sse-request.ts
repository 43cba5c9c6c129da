import { createParser, type ParseError } from 'eventsource-parser';
import { AiProviderError } from './ai.ts';

/**
 * POSTs JSON and hands each Server-Sent Event of the answer to `onEvent`, in order. Both remote
 * providers stream this way; a plain fetch and `eventsource-parser` are all it takes, so tests
 * fake a provider with a local HTTP server speaking its wire format. A provider that sends an
 * endless line or event is cut at SSE_BUFFER_CHARS as malformed, so it cannot grow our memory.
 *
 * `onEvent` may throw an AiProviderError (a malformed event) to end the stream. A non-2xx answer
 * becomes `rate_limited` (429, with its Retry-After) or `http`; an abort becomes `timeout`.
 */
export async function postSse(
  url: string, headers: Record<string, string>, body: unknown, signal: AbortSignal,
  onEvent: (data: string) => void, delivered: () => number,
): Promise<void> {
  const res = await post(url, { ...headers, accept: 'text/event-stream' }, body, signal, delivered);
  let overflow: ParseError | undefined;
  const parser = createParser({
    maxBufferSize: SSE_BUFFER_CHARS,
    onEvent: (ev) => onEvent(ev.data),
    onError: (err) => { if (err.type === 'max-buffer-size-exceeded') overflow = err; },
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      if (overflow) throw new AiProviderError('malformed', `an event over ${SSE_BUFFER_CHARS} characters`, delivered(), { cause: overflow });
    }
    parser.feed(decoder.decode());
    // an answer whose last event lacks its blank line still counts
    parser.reset({ consume: true });
  } catch (err) {
    throw asProviderError(err, signal, delivered());
  }
}

/** Longest line or event a provider may send: far above any chunk of a streamed answer. */
const SSE_BUFFER_CHARS = 1024 * 1024;

/** POSTs JSON and returns the parsed JSON answer. */
export async function postJson(url: string, headers: Record<string, string>, body: unknown, signal: AbortSignal): Promise<unknown> {
  const res = await post(url, { ...headers, accept: 'application/json' }, body, signal, () => 0);
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw asProviderError(err, signal, 0);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new AiProviderError('malformed', 'the answer is not JSON', 0, { cause: err });
  }
}

async function post(url: string, headers: Record<string, string>, body: unknown, signal: AbortSignal, delivered: () => number): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), signal });
  } catch (err) {
    throw asProviderError(err, signal, delivered());
  }
  if (res.ok) return res;
  // the body is the provider's error description, small; its text is not logged (it may echo input)
  await res.body?.cancel().catch(() => undefined);
  if (res.status === 429) {
    const retryAfterMs = retryAfter(res.headers);
    throw new AiProviderError('rate_limited', 'the provider answered 429', 0, { status: 429, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
  }
  throw new AiProviderError('http', `the provider answered ${res.status}`, 0, { status: res.status });
}

/** Retry-After in seconds or as an HTTP date; `retry-after-ms` (OpenAI) when present. */
export function retryAfter(headers: Headers, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms));
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.ceil(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function asProviderError(err: unknown, signal: AbortSignal, deltas: number): AiProviderError {
  if (err instanceof AiProviderError) return err;
  if (signal.aborted) return new AiProviderError('timeout', 'the provider did not finish in time', deltas, { cause: err });
  return new AiProviderError('network', 'the provider could not be reached', deltas, { cause: err });
}
