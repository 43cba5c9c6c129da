import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createParser, type ParseError } from 'eventsource-parser';
import { AiProviderError } from './ai.ts';

/**
 * POSTs JSON and hands each Server-Sent Event of the answer to `onEvent`, in order. Both remote
 * providers stream this way; `node:http` and `eventsource-parser` are all it takes, so tests fake a
 * provider with a local HTTP server speaking its wire format. A provider that sends an endless
 * line or event is cut at SSE_BUFFER_CHARS as malformed, so it cannot grow our memory.
 *
 * Not `fetch`: its body is a web ReadableStream, and each network chunk of an answer went through
 * the stream's reader, promises and an async iterator before reaching the parser, about 85 µs of
 * CPU and its garbage per chunk. With many answers streaming that work came in bursts that held the
 * event loop while ordinary messages waited (bench/results/ai-p99/README.md). A response's `data`
 * events, already decoded as UTF-8, cost a fraction of that.
 *
 * `onEvent` may throw an AiProviderError (a malformed event) to end the stream. A non-2xx answer
 * becomes `rate_limited` (429, with its Retry-After) or `http`; an abort becomes `timeout`.
 */
export async function postSse(
  url: string, headers: Record<string, string>, body: unknown, signal: AbortSignal,
  onEvent: (data: string) => void, delivered: () => number,
): Promise<void> {
  const res = await open(url, { ...headers, accept: 'text/event-stream' }, body, signal, delivered);
  let overflow: ParseError | undefined;
  const parser = createParser({
    maxBufferSize: SSE_BUFFER_CHARS,
    onEvent: (ev) => onEvent(ev.data),
    onError: (err) => { if (err.type === 'max-buffer-size-exceeded') overflow = err; },
  });
  // split multi-byte characters are joined by the response's own decoder
  res.setEncoding('utf8');
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', abort);
        res.destroy();
        reject(err);
      };
      const abort = () => fail(signal.reason);
      signal.addEventListener('abort', abort, { once: true });
      res.on('data', (text: string) => {
        if (settled) return;
        try {
          parser.feed(text);
          if (overflow) throw new AiProviderError('malformed', `an event over ${SSE_BUFFER_CHARS} characters`, delivered(), { cause: overflow });
        } catch (err) {
          fail(err);
        }
      });
      res.once('end', () => {
        if (settled) return;
        try {
          // an answer whose last event lacks its blank line still counts
          parser.reset({ consume: true });
        } catch (err) {
          fail(err);
          return;
        }
        settled = true;
        signal.removeEventListener('abort', abort);
        resolve();
      });
      res.once('error', fail);
      // the connection went away before the body ended
      res.once('close', () => fail(new Error('the response was cut off')));
    });
  } catch (err) {
    throw asProviderError(err, signal, delivered());
  }
}

/**
 * Connections to providers are kept open between answers, as fetch's pool did: a new TCP (and TLS)
 * handshake per question would add its round trips to every answer's first token.
 */
const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

/** Sends the POST and resolves with a 2xx response; other statuses become typed provider errors. */
function open(url: string, headers: Record<string, string>, body: unknown, signal: AbortSignal, delivered: () => number): Promise<IncomingMessage> {
  return new Promise<IncomingMessage>((resolve, reject) => {
    if (signal.aborted) {
      reject(asProviderError(signal.reason, signal, delivered()));
      return;
    }
    const target = new URL(url);
    const tls = target.protocol === 'https:';
    const payload = JSON.stringify(body);
    const req = (tls ? httpsRequest : httpRequest)(target, {
      method: 'POST', signal, agent: tls ? agents.https : agents.http,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
    });
    req.once('error', (err) => reject(asProviderError(err, signal, delivered())));
    req.once('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        resolve(res);
        return;
      }
      // the body is the provider's error description, small; its text is not logged (it may echo input)
      res.resume();
      if (status === 429) {
        const retryAfterMs = retryAfter(headerReader(res.headers));
        reject(new AiProviderError('rate_limited', 'the provider answered 429', 0, { status: 429, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }));
        return;
      }
      reject(new AiProviderError('http', `the provider answered ${status}`, 0, { status }));
    });
    req.end(payload);
  });
}

/** `node:http`'s header object read like fetch's Headers (the names are already lower case). */
function headerReader(headers: IncomingHttpHeaders): Pick<Headers, 'get'> {
  return {
    get(name: string) {
      const v = headers[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
    },
  };
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
export function retryAfter(headers: Pick<Headers, 'get'>, now = Date.now()): number | undefined {
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
