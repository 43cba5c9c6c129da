import type { HttpResponse } from 'uWebSockets.js';
import { ChatError, type ServerFrame } from '../shared/protocol/index.ts';
import { metrics } from '../shared/telemetry/index.ts';
import { ANY_ROOM } from './resume-cursor.ts';
import {
  authenticate, corsHeaders, endConnection, FallbackConnection, readOptions, readRequest, roomsFor, startConnection, writeError,
  type FallbackDeps,
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
  aborted = false;
  private started = false;
  private ended = false;
  private finished = false;
  private lastId = '';
  /** Bytes written since uWS last reported the socket writable (approximately what it buffers). */
  private pending = 0;
  private waitingWritable = false;
  private heartbeat: NodeJS.Timeout | undefined;
  conn: FallbackConnection | undefined;

  constructor(
    private readonly res: HttpResponse,
    private readonly deps: FallbackDeps,
    private readonly origin: string,
    private readonly onEnd: (stream: SseStream) => void,
  ) {
    res.onAborted(() => {
      this.aborted = true;
      this.finish();
    });
  }

  refuse(err: unknown): void {
    if (this.aborted || this.started) return;
    this.ended = true;
    writeError(this.res, this.deps.config, this.origin, err, this.deps.log);
    this.onEnd(this);
  }

  /** Status, headers and the reconnect delay; from here on only events follow. */
  begin(): void {
    if (this.aborted || this.started) return;
    this.started = true;
    metrics.fallbackConnections.labels('sse').inc();
    this.res.cork(() => {
      this.res.writeStatus('200 OK')
        .writeHeader('content-type', 'text/event-stream')
        .writeHeader('cache-control', 'no-cache, no-transform')
        .writeHeader('x-accel-buffering', 'no');
      for (const [k, v] of corsHeaders(this.deps.config, this.origin)) this.res.writeHeader(k, v);
      this.res.write(`retry: ${RETRY_MS}\n\n`);
    });
    this.heartbeat = setInterval(() => this.write(': heartbeat\n\n'), HEARTBEAT_MS).unref();
  }

  event(_frame: ServerFrame, json: string): void {
    const conn = this.conn;
    let id = '';
    if (conn && conn.moving && conn.position !== this.lastId) {
      this.lastId = conn.position;
      id = `id: ${ANY_ROOM}:${conn.position}\n`;
    }
    // JSON.stringify leaves no raw newline in its output, so one data line holds the frame.
    this.write(`${id}data: ${json}\n\n`);
  }

  /** Ends the stream cleanly (drain): the client reconnects, elsewhere if it must, and resumes. */
  end(): void {
    if (!this.started) return this.refuse(new ChatError('unavailable', 'server is draining; reconnect'));
    if (this.ended || this.aborted) return this.finish();
    this.ended = true;
    this.res.cork(() => this.res.end());
    this.finish();
  }

  private write(chunk: string): void {
    if (this.ended || this.aborted || !this.started) return;
    this.res.cork(() => {
      if (this.res.write(chunk)) return;
      this.pending += Buffer.byteLength(chunk);
      if (!this.waitingWritable) {
        this.waitingWritable = true;
        this.res.onWritable(() => {
          this.waitingWritable = false;
          this.pending = 0;
          return true;
        });
      }
    });
    if (this.pending > this.deps.config.ws.maxBackpressureBytes) {
      // A consumer that cannot keep up is cut off rather than buffered without bound; it resumes.
      this.deps.log.info({ userId: this.conn?.principal.userId, pending: this.pending }, 'slow SSE consumer closed');
      metrics.fallbackSlowConsumers.inc();
      this.ended = true;
      this.res.close();
      this.finish();
    }
  }

  private finish(): void {
    if (this.started && !this.finished) metrics.fallbackConnections.labels('sse').dec();
    this.finished = true;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    if (this.conn) endConnection(this.deps, this.conn);
    this.onEnd(this);
  }
}

export function registerSse(deps: FallbackDeps, streams: Set<SseStream>): void {
  deps.app.get(STREAM_PATH, (res, req) => {
    const request = readRequest(req);
    const stream = new SseStream(res, deps, request.origin, (s) => streams.delete(s));
    streams.add(stream);
    if (deps.draining()) return stream.refuse(new ChatError('unavailable', 'server is draining; reconnect'));
    let options;
    try {
      options = readOptions(request);
    } catch (err) {
      return stream.refuse(err);
    }
    const opts = options;
    (async () => {
      const principal = await authenticate(deps, request);
      const roomIds = await roomsFor(deps, principal, opts.rooms);
      if (stream.aborted) return;
      if (deps.draining()) throw new ChatError('unavailable', 'server is draining; reconnect');
      const conn = new FallbackConnection(principal, opts.device, (frame, json) => stream.event(frame, json), () => stream.end());
      stream.conn = conn;
      stream.begin();
      await startConnection(deps, conn, roomIds, opts.resume);
    })().catch((err) => {
      if (stream.conn) {
        deps.log.warn({ err }, 'SSE stream failed after it started');
        stream.end();
      } else {
        stream.refuse(err);
      }
    });
  });
}
