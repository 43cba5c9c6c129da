import type { HttpServer } from '../shared/http/index.ts';
import type { ServerFrame } from '../shared/protocol/index.ts';
import type { FallbackConnection, FallbackDeps } from './fallback-session.ts';
import { registerSse, type SseStream } from './sse.ts';
import { registerLongPoll, type PollSession } from './long-poll.ts';

export interface FallbackTransports {
  /** Open SSE streams and long-poll sessions, for presence heartbeats. */
  connections(): FallbackConnection[];
  /**
   * Sends every stream and session a `reconnect` frame (a held poll is answered with it at once),
   * each with its own delay within `spreadMs`.
   */
  announceDrain(spreadMs: number): void;
  /** Ends every stream and session: their clients reconnect (elsewhere) and resume. */
  close(): void;
}

/** SSE (`/v1/chat/stream`) and long-polling (`/v1/chat/poll`), held routes of the gateway's HTTP server. */
export function startFallbackTransports(server: HttpServer, deps: FallbackDeps): FallbackTransports {
  const streams = new Set<SseStream>();
  const sessions = new Map<string, PollSession>();
  registerSse(server, deps, streams);
  registerLongPoll(server, deps, sessions);
  const transports: FallbackTransports = {
    connections() {
      const out: FallbackConnection[] = [];
      for (const s of streams) if (!s.conn.closed) out.push(s.conn);
      for (const s of sessions.values()) if (!s.ended) out.push(s.conn);
      return out;
    },
    announceDrain(spreadMs) {
      for (const conn of transports.connections()) {
        const frame: ServerFrame = { type: 'reconnect', reason: 'draining', retryAfterMs: Math.floor(Math.random() * spreadMs) };
        conn.deliver(frame, JSON.stringify(frame));
      }
    },
    close() {
      for (const s of [...streams]) s.end();
      for (const s of [...sessions.values()]) s.end();
    },
  };
  return transports;
}
