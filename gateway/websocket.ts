import { ChatError, CLOSE_CODES, decodeClientFrame, toChatError, type ClientFrameType } from '../shared/protocol/index.ts';
import type { Store } from '../shared/store/index.ts';
import { roomIdOf, roomKey } from '../shared/domain/index.ts';
import type { RoomCommands } from '../shared/commands/index.ts';
import type { WsConfig } from '../shared/config/index.ts';
import { context, metrics, trace, tracingEnabled, type Logger, type Span } from '../shared/telemetry/index.ts';
import { endFrameSpan, nameFrameSpan, startFrameSpan } from './frame-span.ts';
import { sendFrame, type Connection, type Socket } from './connection.ts';
import { handleFrame, type HandlerDeps } from './frame-handlers.ts';
import { framesIn } from './frame-tally.ts';
import type { LocalUsers } from './local-users.ts';
import type { PresenceFeed } from './presence-feed.ts';
import type { RoomFanout } from './room-fanout.ts';
import type { TypingTracker } from './typing.ts';
import { upgradeHandler, type UpgradeDeps } from './upgrade.ts';
import type { TokenExpiry } from './token-expiry.ts';
import { enforceRate, type RateLimiter } from '../shared/rate-limit/index.ts';

export interface WebSocketDeps extends UpgradeDeps {
  ws: WsConfig;
  store: Store;
  rooms: RoomCommands;
  fanout: RoomFanout;
  users: LocalUsers;
  typing: TypingTracker;
  presence: PresenceFeed;
  handlers: HandlerDeps;
  /** Sockets whose token expires; closed with 4401 when it does. */
  expiry: TokenExpiry<Socket>;
  /** For the per-socket ping limit (RATE_LIMIT_PING): local, a socket lives on one gateway. */
  localLimiter: RateLimiter;
  log: Logger;
}

export interface WebSockets {
  /** Open sockets' connections, for presence heartbeats. */
  connections(): Connection[];
  count(): number;
  /** Sends every socket a `reconnect` frame, each with its own delay within `spreadMs`; they keep working meanwhile. */
  announceDrain(spreadMs: number): void;
  /**
   * Refuses further frames (`unavailable`: the client sends them again on its next connection),
   * waits up to `inFlightMs` for the answers of frames already being handled, then closes every
   * socket with 1001: clients reconnect elsewhere and resume.
   */
  closeAll(inFlightMs: number): Promise<void>;
}

/**
 * Frames that change stored state run in order per socket, so a sender's messages keep their
 * order: each starts once the previous one handed its event to the stream (message commands) or
 * finished (the rest).
 */
const ORDERED: ReadonlySet<ClientFrameType> = new Set<ClientFrameType>([
  'send_message', 'message', 'edit_message', 'delete_message', 'message_reaction', 'pin_message', 'unpin_message', 'mark_read', 'join_room', 'leave_room', 'resume',
]);

/** How often a drain looks whether every frame was answered. */
const IN_FLIGHT_POLL_MS = 10;
/** Rooms subscribed at connect at most; a user in more rooms joins the rest explicitly. */
const MAX_ROOMS_AT_CONNECT = 1000;
/** Up to this many times MAX_PAYLOAD_BYTES, an oversized frame gets a `too_large` error; past it, the socket is closed with 1009. */
const SOFT_PAYLOAD_FACTOR = 4;
/**
 * What uWS reads of one frame at most: past it, uWS drops the socket itself, without a close
 * frame (1006; it cannot send 1009). It holds that much per socket while a frame arrives, so it
 * is bounded as the send side is.
 */
const HARD_PAYLOAD_FACTOR = 16;
/**
 * uWS buffers up to MAX_BACKPRESSURE_BYTES plus this much (at least as much again) per socket,
 * and drops frames beyond: a socket passes the limit between two sweeps, and the headroom keeps
 * room for the sweep's close frame, which uWS would drop too.
 */
const BACKPRESSURE_HEADROOM_BYTES = 1024 * 1024;
/** How often the sockets' send buffers are checked against MAX_BACKPRESSURE_BYTES. */
const SLOW_CONSUMER_SWEEP_MS = 250;

/**
 * The WebSocket transport (`/chat`, and `/ws` for seed-001 clients): a socket's life from open
 * (its rooms, the welcome) through its frames (acked or answered with an error, in order where
 * they change state) to its close.
 */
export function startWebSockets(deps: WebSocketDeps): WebSockets {
  const { ws: config, fanout, users, presence, log } = deps;
  const sockets = new Set<Socket>();
  /** Frames received and not yet answered (queued behind others included): a drain writes their answers before closing. */
  let inFlight = 0;
  /** After the drain grace: frames are refused, so that no answer can be cut off by the close. */
  let closing = false;
  const answered = () => { inFlight--; };

  function sendError(ws: Socket, err: unknown, ref: string | number | undefined, span?: Span): void {
    const e = toChatError(err);
    metrics.errors.labels(e.code).inc();
    if (span) endFrameSpan(span, e);
    if (e.code === 'internal') log.error({ err, userId: ws.getUserData().principal.userId }, 'frame failed');
    const retryAfterMs = e.details?.['retryAfterMs'];
    sendFrame(ws, {
      type: 'error', code: e.code, message: e.message,
      ...(ref !== undefined ? { ref } : {}),
      ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
    });
  }

  async function opened(ws: Socket): Promise<void> {
    const conn = ws.getUserData();
    const { principal } = conn;
    const keys = await deps.store.roomsOfUser(principal.tenant, principal.userId);
    if (conn.closed) return;
    for (const key of keys.slice(0, MAX_ROOMS_AT_CONNECT)) fanout.add(ws, roomIdOf(key));
    if (conn.initialRoom) await joinInitialRoom(ws, conn.initialRoom);
    if (conn.closed) return;
    const expiresAt = conn.principal.expiresAt;
    sendFrame(ws, {
      type: 'welcome', userId: principal.userId, name: principal.name, tenant: principal.tenant, connectionId: conn.connectionId,
      serverTime: new Date().toISOString(), heartbeatMs: Math.floor((config.idleTimeoutSec * 1000) / 2), format: conn.format,
      rooms: [...conn.rooms], ...(expiresAt !== undefined ? { tokenExpiresAt: new Date(expiresAt).toISOString() } : {}),
    });
    conn.welcomed = true;
    await presence.connected(conn);
  }

  /** Seed 001: `/ws?room=<id>` joins the room at connect, creating it (public) on first use. */
  async function joinInitialRoom(ws: Socket, roomId: string): Promise<void> {
    const { principal } = ws.getUserData();
    try {
      await deps.rooms.join(principal, roomId);
    } catch (err) {
      if (!(err instanceof ChatError) || err.code !== 'not_found' || await deps.store.getRoom(roomKey(principal.tenant, roomId))) throw err;
      await deps.rooms.create(principal, { roomId, name: roomId, type: 'public' }).catch(async (createErr) => {
        // Two clients creating the same room at once: the loser joins the winner's room.
        if (createErr instanceof ChatError && createErr.code === 'conflict') await deps.rooms.join(principal, roomId);
        else throw createErr;
      });
    }
    fanout.add(ws, roomId);
  }

  function message(ws: Socket, data: ArrayBuffer, isBinary: boolean): void {
    if (!tracingEnabled()) return onFrame(ws, data, isBinary, undefined);
    // the frame's span is active for all of its work: the command, the publish and the log lines join it
    const span = startFrameSpan(ws.getUserData());
    context.with(trace.setSpan(context.active(), span), () => onFrame(ws, data, isBinary, span));
  }

  function onFrame(ws: Socket, data: ArrayBuffer, isBinary: boolean, span: Span | undefined): void {
    if (data.byteLength > config.maxPayloadBytes) {
      if (data.byteLength > config.maxPayloadBytes * SOFT_PAYLOAD_FACTOR) {
        if (span) endFrameSpan(span, new ChatError('too_large', 'frame closed the socket (1009)'));
        // reasons are at most 123 bytes
        return ws.end(CLOSE_CODES.messageTooBig, `frame of ${data.byteLength} bytes; the limit is ${config.maxPayloadBytes}`);
      }
      return sendError(ws, new ChatError('too_large', `frame is ${data.byteLength} bytes; the limit is ${config.maxPayloadBytes}`), undefined, span);
    }
    let frame;
    try {
      frame = decodeClientFrame(data, isBinary);
    } catch (err) {
      const ref = err instanceof ChatError ? err.details?.['ref'] : undefined;
      return sendError(ws, err, typeof ref === 'string' || typeof ref === 'number' ? ref : undefined, span);
    }
    framesIn.count(frame.type);
    const ref = frame.ref;
    const type = frame.type;
    if (span) nameFrameSpan(span, type);
    if (type === 'ping') return void pong(ws, ref, span);
    if (closing) return sendError(ws, new ChatError('unavailable', 'server is draining; reconnect and send it again'), ref, span);
    inFlight++;
    // send -> ack is timed from here, so the wait behind the socket's earlier frames counts
    const received = performance.now();
    const run = (issued?: () => void) => handleFrame(deps.handlers, ws, frame, issued).then(
      (body) => {
        sendFrame(ws, { type: 'ack', ...(ref !== undefined ? { ref } : {}), action: type, ...body });
        if (type === 'send_message' || type === 'message') metrics.sendAck.observe((performance.now() - received) / 1000);
        if (log.isLevelEnabled('debug')) log.debug({ frame: type, ref, userId: ws.getUserData().principal.userId }, 'frame acked');
        if (span) endFrameSpan(span, undefined);
      },
      (err) => sendError(ws, err, ref, span),
    ).finally(answered);
    const conn = ws.getUserData();
    if (!ORDERED.has(type)) return void run();
    // The next ordered frame starts once this one handed its event to the stream (which keeps
    // that order), or once it is done if it has none: a sender's messages are pipelined, not
    // each waiting for the previous one's ack.
    conn.queue = conn.queue.then(() => new Promise<void>((next) => { void run(next).finally(next); }));
  }

  async function pong(ws: Socket, ref: string | number | undefined, span: Span | undefined): Promise<void> {
    const rule = config.pingRate;
    if (rule !== undefined) {
      try {
        await enforceRate(deps.localLimiter, `ping:${ws.getUserData().connectionId}`, rule, 'pings');
      } catch (err) {
        return sendError(ws, err, ref, span);
      }
    }
    sendFrame(ws, { type: 'pong', ...(ref !== undefined ? { ref } : {}), serverTime: new Date().toISOString() });
    if (span) endFrameSpan(span, undefined);
  }

  /**
   * A socket that does not read what it is sent is closed with 4008 and a reason once its send
   * buffer passes MAX_BACKPRESSURE_BYTES. Room frames reach sockets through uWS topics, which tell
   * nothing per socket, hence the sweep; uWS drops what would pass the headroom, so memory stays
   * bounded between sweeps, and the headroom leaves room for the close frame.
   */
  const sweep = setInterval(() => {
    for (const ws of sockets) {
      if (ws.getBufferedAmount() <= config.maxBackpressureBytes) continue;
      log.info({ userId: ws.getUserData().principal.userId, buffered: ws.getBufferedAmount() }, 'slow consumer closed');
      metrics.slowConsumers.labels('ws').inc();
      ws.end(CLOSE_CODES.slowConsumer, `slow consumer: over ${config.maxBackpressureBytes} bytes unread`);
    }
  }, SLOW_CONSUMER_SWEEP_MS);
  sweep.unref();

  const behavior = {
    compression: 0,
    maxPayloadLength: config.maxPayloadBytes * HARD_PAYLOAD_FACTOR,
    maxBackpressure: config.maxBackpressureBytes + Math.max(config.maxBackpressureBytes, BACKPRESSURE_HEADROOM_BYTES),
    closeOnBackpressureLimit: 0,
    idleTimeout: config.idleTimeoutSec,
    sendPingsAutomatically: true,
    upgrade: upgradeHandler(deps),
    open(ws: Socket) {
      sockets.add(ws);
      metrics.connections.inc();
      metrics.connectionsTotal.inc();
      users.attach(ws);
      deps.expiry.watch(ws, ws.getUserData().principal.expiresAt);
      opened(ws).catch((err) => {
        log.warn({ err, userId: ws.getUserData().principal.userId }, 'connection setup failed');
        sendError(ws, err instanceof ChatError ? err : new ChatError('unavailable', 'could not load your rooms; retry', { cause: err }), undefined);
      });
    },
    message,
    close(ws: Socket, code: number, message: ArrayBuffer) {
      const conn = ws.getUserData();
      conn.closed = true;
      sockets.delete(ws);
      deps.expiry.unwatch(ws);
      metrics.connections.dec();
      // uWS says why it dropped a socket itself (a frame over HARD_PAYLOAD_FACTOR, invalid UTF-8, ...) only here
      const reason = Buffer.from(message).toString('utf8');
      if (!conn.welcomed && !deps.draining()) {
        log.warn({ userId: conn.principal.userId, code, reason, openForMs: Date.now() - conn.openedAt }, 'socket closed before its welcome');
      } else if (code === 1006 && !deps.draining()) {
        log.debug({ userId: conn.principal.userId, reason }, 'socket closed abnormally');
      }
      const rooms = [...conn.rooms];
      deps.typing.stopAll(conn);
      users.detach(ws);
      presence.disconnected(conn, rooms).catch((err) => log.warn({ err }, 'presence disconnect failed'));
    },
  };
  deps.server.app.ws<Connection>('/chat', behavior);
  deps.server.app.ws<Connection>('/ws', behavior);

  return {
    connections: () => [...sockets].map((s) => s.getUserData()),
    count: () => sockets.size,
    announceDrain(spreadMs) {
      for (const ws of sockets) sendFrame(ws, { type: 'reconnect', reason: 'draining', retryAfterMs: Math.floor(Math.random() * spreadMs) });
    },
    async closeAll(inFlightMs) {
      closing = true;
      clearInterval(sweep);
      const deadline = Date.now() + inFlightMs;
      while (inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, IN_FLIGHT_POLL_MS));
      if (inFlight > 0) log.warn({ inFlight }, 'closing sockets with frames still unanswered; their clients send them again');
      for (const ws of [...sockets]) ws.end(CLOSE_CODES.goingAway, 'server draining');
    },
  };
}
