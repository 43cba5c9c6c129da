import type { BackoffOptions } from './backoff.ts';
import type { GatewayProvider } from './gateways.ts';
import type { FetchLike, TokenSource } from './rest.ts';
import type { EventSourceConstructor, TransportKind, WebSocketConstructor } from './transport.ts';
import type { WireFormat } from './wire.ts';

export interface ChatClientOptions {
  /**
   * The server's HTTP base URL, e.g. `http://localhost:8080`: REST goes there, and the realtime
   * connection too unless `gateways` says otherwise (the WebSocket is `/chat` on it).
   */
  url: string;
  /**
   * Where the realtime connection (WebSocket, SSE, long-poll) goes, when not to `url`: gateways'
   * HTTP base URLs, used in order (the first to begin with, the next after a drain or an attempt
   * that never opened, round robin), or a function asked before every attempt. REST stays on `url`.
   */
  gateways?: string[] | GatewayProvider;
  /** A token, or a function asked before each connection (to refresh an expiring token). */
  token: TokenSource;
  /** What the server sends on the WebSocket (default json). Fallback transports are always JSON. */
  format?: WireFormat;
  /** Default `globalThis.WebSocket` (Node 20 has none: pass `ws`'s). `null`: never use a WebSocket. */
  WebSocket?: WebSocketConstructor | null;
  /** Default `globalThis.EventSource`; without one, SSE is read with fetch. */
  EventSource?: EventSourceConstructor | null;
  fetch?: FetchLike;
  /** Transports in order of preference (default websocket, sse, poll). */
  transports?: TransportKind[];
  reconnect?: Partial<BackoffOptions>;
  /**
   * Failures to open a transport, in a row and before it ever opened, after which the next
   * transport is used, provided the server answers over HTTP (so a server that is down is waited
   * for, not fallen back from). Default 3.
   */
  fallbackAfterFailures?: number;
  /** An unanswered request is sent again after this long (same clientMsgId). Default 10 s. */
  requestTimeoutMs?: number;
  /** WebSocket liveness: a ping this often; no frame for two intervals ends the socket. Default 25 s; 0 disables. */
  pingIntervalMs?: number;
  /** Durable events remembered per room to drop repeats. Default 5000. */
  seenPerRoom?: number;
  device?: 'web' | 'mobile' | 'desktop';
  /** Long-poll hold time to ask for (seconds; the server caps it at 25). */
  pollHoldSeconds?: number;
}
