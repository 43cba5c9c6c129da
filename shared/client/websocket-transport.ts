import type { Codec } from './wire.ts';
import type { Transport, TransportHandlers, WebSocketConstructor, WebSocketLike } from './transport.ts';

export const SUBPROTOCOL = { json: 'chat.v1.json', msgpack: 'chat.v1.msgpack' } as const;

/**
 * A WebSocket to `/chat`. The token goes in `?token=` (browsers cannot set headers on the
 * upgrade); the encoding is chosen by subprotocol.
 */
export function openWebSocket(
  opts: { WebSocket: WebSocketConstructor; wsUrl: string; token: string; codec: Codec; device?: string },
  h: TransportHandlers,
): Transport {
  const url = `${opts.wsUrl}/chat?token=${encodeURIComponent(opts.token)}${opts.device ? `&device=${opts.device}` : ''}`;
  let opened = false;
  let done = false;
  let ws: WebSocketLike;
  const finish = (code: number, reason: string) => {
    if (done) return;
    done = true;
    h.onClose({ code, reason, opened });
  };
  try {
    ws = new opts.WebSocket(url, [SUBPROTOCOL[opts.codec.format]]);
  } catch (err) {
    // A constructor that throws (bad URL, a blocked scheme) is a failure before open.
    queueMicrotask(() => finish(1006, (err as Error)?.message ?? 'WebSocket failed'));
    return { kind: 'websocket', send() {}, close() { done = true; } };
  }
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    opened = true;
    if (!done) h.onOpen();
  };
  ws.onmessage = (ev) => {
    if (done) return;
    let frame;
    try {
      frame = opts.codec.decode(ev.data);
    } catch {
      return; // not a frame of ours; the server never sends one
    }
    h.onFrame(frame);
  };
  ws.onerror = () => {}; // a close event follows with the code
  ws.onclose = (ev) => finish(ev.code, ev.reason);
  return {
    kind: 'websocket',
    send(request) {
      if (!done) ws.send(opts.codec.encode(request));
    },
    close(code = 1000, reason = '') {
      if (done) return;
      done = true;
      try {
        ws.close(code, reason);
      } catch {
        ws.close(); // a code the implementation refuses: close anyway
      }
    },
  };
}
