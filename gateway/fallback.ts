import { FallbackFanout } from './fallback-fanout.ts';
import type { FallbackConnection, FallbackDeps } from './fallback-session.ts';
import { registerSse, type SseStream } from './sse.ts';
import { registerLongPoll, type PollSession } from './long-poll.ts';

export interface FallbackTransports {
  /** Open SSE streams and long-poll sessions, for presence heartbeats. */
  connections(): FallbackConnection[];
  /** Ends every stream and session: their clients reconnect (elsewhere) and resume. */
  close(): void;
}

/** SSE (`/v1/chat/stream`) and long-polling (`/v1/chat/poll`) on the gateway's HTTP server. */
export function startFallbackTransports(deps: Omit<FallbackDeps, 'fanout'>): FallbackTransports {
  const fanout = new FallbackFanout(deps.bus, {
    onDirectDelivered: (roomId, messageId, userIds) => {
      for (const userId of userIds) {
        deps.messages.markDelivered(roomId, messageId, userId).catch((err) => deps.log.warn({ err, roomId, messageId }, 'delivery status not recorded'));
      }
    },
    loadRoom: (roomId) => deps.store.getRoom(roomId),
  }, deps.config.ws.resumeSkewMs, deps.log);
  fanout.start();
  const full: FallbackDeps = { ...deps, fanout };
  const streams = new Set<SseStream>();
  const sessions = new Map<string, PollSession>();
  registerSse(full, streams);
  registerLongPoll(full, sessions);
  return {
    connections() {
      const out: FallbackConnection[] = [];
      for (const s of streams) if (s.conn && !s.conn.closed) out.push(s.conn);
      for (const s of sessions.values()) if (!s.ended) out.push(s.conn);
      return out;
    },
    close() {
      fanout.stop();
      for (const s of [...streams]) s.end();
      for (const s of [...sessions.values()]) s.end();
    },
  };
}
