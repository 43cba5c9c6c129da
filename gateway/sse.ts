import { Type } from '@sinclair/typebox';
import type { ServerFrame } from '../shared/protocol/index.ts';
import type { Principal } from '../shared/auth/index.ts';
import type { HeldResponse, HttpServer } from '../shared/http/index.ts';
import { metrics } from '../shared/telemetry/index.ts';
import { ANY_ROOM } from './resume-cursor.ts';
import {
  endConnection, FALLBACK_QUERY, FallbackConnection, readOptions, refuseWhileDraining, roomsFor, startConnection, type FallbackDeps,
} from './fallback-session.ts';

export const STREAM_PATH = '/v1/chat/stream';

/** Comment lines keep proxies and the client's read timeout from closing an idle stream. */
const HEARTBEAT_MS = 15_000;
/** How long EventSource waits before reconnecting by itself. */
const RETRY_MS = 2000;

/**
 * `GET /v1/chat/stream`: Server-Sent Events for clients that cannot open a WebSocket. Each event's
 * data is one server frame as JSON (the same frames a JSON WebSocket gets); events that move the
 * resume position carry `id: *:<messageId>`, so EventSource's automatic `Last-Event-ID` resumes
 * without a gap. Sends go over REST.
 */
export class SseStream {
  private ended = false;
  private finished = false;
  private lastId = '';
  /** Bytes written since uWS last reported the socket writable (approximately what it buffers). */
  private pending = 0;
  private waitingWritable = false;
  private heartbeat: NodeJS.Timeout | undefined;
  readonly conn: FallbackConnection;

  constructor(
    private readonly res: HeldResponse,
    private readonly deps: FallbackDeps,
    principal: Principal,
    device: string | undefined,
    private readonly onEnd: (stream: SseStream) => void,
  ) {
    this.conn = new FallbackConnection(principal, device, deps.liveGap, (frame, json) => this.event(frame, json), () => this.end());
    res.onAbort(() => this.finish());
  }

  /** Status, headers and the reconnect delay; from here on only events follow. */
  begin(): void {
    metrics.fallbackConnections.labels('sse').inc();
    this.res.stream([['content-type', 'text/event-stream'], ['cache-control', 'no-cache, no-transform'], ['x-accel-buffering', 'no']], `retry: ${RETRY_MS}\n\n`);
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), HEARTBEAT_MS).unref();
  }

  event(_frame: ServerFrame, json: string): void {
    const conn = this.conn;
    let id = '';
    if (conn.moving && conn.position !== this.lastId) {
      this.lastId = conn.position;
      id = `id: ${ANY_ROOM}:${conn.position}\n`;
    }
    // JSON.stringify leaves no raw newline in its output, so one data line holds the frame.
    this.write(`${id}data: ${json}\n\n`);
  }

  /** The token expired: an `unauthorized` error event says so, and the stream ends (the client reconnects with a fresh token). */
  expire(): void {
    const frame = { type: 'error', code: 'unauthorized', message: 'token expired: reconnect with a fresh token' } as const;
    this.event(frame, JSON.stringify(frame));
    this.end();
  }

  /** Ends the stream cleanly (drain, reset): the client reconnects, elsewhere if it must, and resumes. */
  end(): void {
    if (!this.ended) {
      this.ended = true;
      this.res.end();
    }
    this.finish();
  }

  private write(chunk: string): void {
    if (this.ended || this.res.closed) return;
    if (!this.res.write(chunk)) {
      this.pending += Buffer.byteLength(chunk);
      if (!this.waitingWritable) {
        this.waitingWritable = true;
        this.res.onWritable(() => {
          this.waitingWritable = false;
          this.pending = 0;
          return true;
        });
      }
    }
    if (this.pending > this.deps.ws.maxBackpressureBytes) {
      // A consumer that cannot keep up is cut off rather than buffered without bound; it resumes.
      this.deps.log.info({ userId: this.conn.principal.userId, pending: this.pending }, 'slow SSE consumer closed');
      metrics.slowConsumers.labels('sse').inc();
      this.ended = true;
      this.res.close();
      this.finish();
    }
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.deps.tokenExpiry.unwatch(this);
    metrics.fallbackConnections.labels('sse').dec();
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    endConnection(this.deps, this.conn);
    this.onEnd(this);
  }
}

export function registerSse(server: HttpServer, deps: FallbackDeps, streams: Set<SseStream>): void {
  server.held({
    method: 'get', path: STREAM_PATH, operationId: 'chatStream', tags: ['realtime'],
    summary: 'Server-Sent Events: the frames a JSON WebSocket gets, for clients that cannot open one',
    description: 'Each event is one server frame as JSON. Events that move the resume position carry `id: *:<messageId>`, '
      + 'so a reconnect with Last-Event-ID resumes without a gap. Sends go over REST.',
    tokenInQuery: true, query: Type.Object(FALLBACK_QUERY), headers: ['last-event-id'], contentType: 'text/event-stream',
    handler: async ({ principal, query, headers }, res) => {
      refuseWhileDraining(deps, 'reconnect');
      const opts = readOptions(query, headers['last-event-id']);
      const roomIds = await roomsFor(deps, principal, opts.rooms);
      if (res.closed) return;
      refuseWhileDraining(deps, 'reconnect');
      const stream = new SseStream(res, deps, principal, opts.device, (s) => streams.delete(s));
      streams.add(stream);
      deps.tokenExpiry.watch(stream, principal.expiresAt);
      stream.begin();
      await startConnection(deps, stream.conn, roomIds, opts.resume).catch((err) => {
        deps.log.warn({ err }, 'SSE stream failed after it started');
        stream.end();
      });
    },
  });
}
