import type { ServerFrame } from '../protocol/frames.ts';
import { ChatClientError } from './errors.ts';
import { unwrap, type ChatRest, type FetchLike } from './rest.ts';
import { requestOverRest, type Request } from './rest-commands.ts';
import { SseParser } from './sse-parser.ts';
import type { EventSourceConstructor, Transport, TransportHandlers, TransportKind } from './transport.ts';

interface FallbackOptions {
  rest: ChatRest;
  /** The gateway's HTTP base URL (the streams are there; requests go over `rest`). */
  baseUrl: string;
  fetch: FetchLike;
  token: string;
  /** Resume positions in the server's text form (`room:id,...,*:id`), read at each (re)open. */
  resume: () => string;
  device?: string;
}

/**
 * Requests over REST, answered as the WebSocket would answer them (ack or error frames), so the
 * client's retry logic is the same on every transport.
 */
function restSender(kind: TransportKind, rest: ChatRest, h: TransportHandlers, isDone: () => boolean): Pick<Transport, 'kind' | 'send'> {
  return {
    kind,
    send(request: Request) {
      const ref = request.ref;
      requestOverRest(rest, request).then(
        (body) => { if (!isDone()) h.onFrame({ type: 'ack', ...(ref !== undefined ? { ref } : {}), action: request.type, ...body }); },
        (err: unknown) => {
          if (isDone()) return;
          const e = err instanceof ChatClientError ? err : new ChatClientError('unavailable', String(err));
          h.onFrame({
            type: 'error', code: e.code, message: e.message, ...(ref !== undefined ? { ref } : {}),
            ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
          });
        },
      );
    },
  };
}

function streamQuery(o: FallbackOptions, withToken: boolean): string {
  const params = [
    withToken ? `token=${encodeURIComponent(o.token)}` : '',
    o.resume() ? `resume=${encodeURIComponent(o.resume())}` : '',
    o.device ? `device=${o.device}` : '',
  ].filter(Boolean);
  return params.length ? `?${params.join('&')}` : '';
}

/**
 * Receiving over Server-Sent Events (`/v1/chat/stream`): EventSource when there is one (token in
 * the query: EventSource cannot set headers), else fetch reading the stream. The client reconnects
 * by itself, with fresh resume positions, so EventSource's own retry is stopped at the first error.
 */
export function openSse(o: FallbackOptions & { EventSource: EventSourceConstructor | undefined }, h: TransportHandlers): Transport {
  let done = false;
  let opened = false;
  const finish = (code: number, reason: string, error?: ChatClientError) => {
    if (done) return;
    done = true;
    h.onClose({ code, reason, opened, ...(error ? { error } : {}) });
  };
  const onData = (data: string) => {
    if (done) return;
    let frame: ServerFrame;
    try {
      frame = JSON.parse(data) as ServerFrame;
    } catch {
      return; // not a frame of ours
    }
    h.onFrame(frame);
  };
  const url = `${o.baseUrl}/v1/chat/stream`;
  let stop: () => void;

  if (o.EventSource) {
    const es = new o.EventSource(url + streamQuery(o, true));
    es.onopen = () => {
      opened = true;
      if (!done) h.onOpen();
    };
    es.onmessage = (ev) => {
      if (ev.lastEventId && !done) h.onPosition?.(ev.lastEventId);
      onData(ev.data);
    };
    es.onerror = () => {
      es.close();
      finish(0, 'event stream error');
    };
    stop = () => es.close();
  } else {
    const abort = new AbortController();
    stop = () => abort.abort();
    (async () => {
      const res = await o.fetch(url + streamQuery(o, false), {
        headers: { authorization: `Bearer ${o.token}`, accept: 'text/event-stream' }, signal: abort.signal, cache: 'no-store',
      });
      if (!res.ok) {
        const error = await unwrap(res, 'GET /v1/chat/stream').then(() => undefined, (e: ChatClientError) => e);
        return finish(res.status, error?.message ?? `HTTP ${res.status}`, error);
      }
      const body = res.body as ReadableStream<Uint8Array> | undefined;
      if (!body) return finish(0, 'this fetch cannot read a response stream');
      opened = true;
      h.onOpen();
      const parser = new SseParser((ev) => {
        if (parser.lastEventId && !done) h.onPosition?.(parser.lastEventId);
        onData(ev.data);
      });
      const reader = body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end || done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
      finish(0, 'event stream ended');
    })().catch((err: unknown) => finish(0, (err as Error)?.message ?? 'event stream failed'));
  }
  return {
    ...restSender('sse', o.rest, h, () => done),
    close() {
      done = true;
      stop();
    },
  };
}

/**
 * Long-polling (`/v1/chat/poll`): one request at a time, each answered with the frames since the
 * cursor (or empty after the server's hold time); the next poll carries the new cursor. Resume
 * positions go with every poll: a server that lost the session starts a new one from them.
 */
export function openPoll(o: FallbackOptions & { holdSeconds?: number }, h: TransportHandlers): Transport {
  let done = false;
  let opened = false;
  const abort = new AbortController();
  const finish = (code: number, reason: string, error?: ChatClientError) => {
    if (done) return;
    done = true;
    h.onClose({ code, reason, opened, ...(error ? { error } : {}) });
  };
  (async () => {
    let cursor = '';
    while (!done) {
      const params = [
        cursor ? `cursor=${encodeURIComponent(cursor)}` : '',
        o.resume() ? `resume=${encodeURIComponent(o.resume())}` : '',
        o.device ? `device=${o.device}` : '',
        o.holdSeconds !== undefined ? `timeout=${o.holdSeconds}` : '',
      ].filter(Boolean);
      const res = await o.fetch(`${o.baseUrl}/v1/chat/poll${params.length ? `?${params.join('&')}` : ''}`, {
        headers: { authorization: `Bearer ${o.token}` }, signal: abort.signal, cache: 'no-store',
      });
      let data: { cursor: string; frames: ServerFrame[] };
      try {
        data = await unwrap(res, 'GET /v1/chat/poll');
      } catch (err) {
        const e = err as ChatClientError;
        return finish(res.status, e.message, e);
      }
      if (done) return;
      if (!opened) {
        opened = true;
        h.onOpen();
      }
      cursor = data.cursor;
      for (const frame of data.frames) {
        if (done) return;
        h.onFrame(frame);
      }
    }
  })().catch((err: unknown) => finish(0, (err as Error)?.message ?? 'poll failed'));
  return {
    ...restSender('poll', o.rest, h, () => done),
    close() {
      done = true;
      abort.abort();
    },
  };
}
