import { randomUUID } from 'node:crypto';
import type { HttpRequest, HttpResponse, us_socket_context_t } from 'uWebSockets.js';
import { ChatError, CLOSE_CODES, errorMapping, toChatError, decodeClientFrame, decodeMsgpack, encodeFrame, ROOM_ID_PATTERN, type ClientFrameType, type ServerFrame } from '../shared/protocol/index.ts';
import { subjects, type Bus, type Subscription } from '../shared/bus/index.ts';
import type { Store } from '../shared/store/index.ts';
import type { Presence } from '../shared/presence/index.ts';
import { extractToken, type Authenticator, type Principal } from '../shared/auth/index.ts';
import { RoomGuard, type MessageCommands, type RoomCommands, type RoomAccess } from '../shared/commands/index.ts';
import type { Config } from '../shared/config/index.ts';
import type { HttpServer } from '../shared/http/index.ts';
import { metrics, type Logger } from '../shared/telemetry/index.ts';
import { negotiateFormat, type Connection, type Socket } from './connection.ts';
import { RoomFanout } from './room-fanout.ts';
import { LiveGapRepair } from './live-gap.ts';
import { TypingTracker } from './typing.ts';
import { PresenceFeed } from './presence-feed.ts';
import { handleFrame, type HandlerDeps } from './frame-handlers.ts';
import { startFallbackTransports } from './fallback.ts';

export interface GatewayDeps {
  server: HttpServer;
  config: Config;
  bus: Bus;
  store: Store;
  presence: Presence;
  authenticator: Authenticator;
  messages: MessageCommands;
  rooms: RoomCommands;
  /** A caching access (createCachedRoomAccess): the gateway feeds it control events. */
  access: RoomAccess;
  log: Logger;
}

export interface Gateway {
  connections(): number;
  /** Refuses new sockets and closes open ones with 1001 so clients reconnect elsewhere and resume. */
  drain(): Promise<void>;
}

/** Frames that change stored state run in order per socket, so a sender's messages keep their order. */
const ORDERED: ReadonlySet<ClientFrameType> = new Set<ClientFrameType>([
  'send_message', 'message', 'edit_message', 'delete_message', 'message_reaction', 'pin_message', 'unpin_message', 'mark_read', 'join_room', 'leave_room', 'resume',
]);

/** Rooms subscribed at connect at most; a user in more rooms joins the rest explicitly. */
const MAX_ROOMS_AT_CONNECT = 1000;
/** Frames larger than this close the socket at once (uWS); up to it, an oversized frame gets an error. */
const HARD_PAYLOAD_FACTOR = 4;

const ROOM_ID = new RegExp(ROOM_ID_PATTERN);

export function startGateway(deps: GatewayDeps): Gateway {
  const { server, config, bus, store, log } = deps;
  const { app } = server;
  const sockets = new Set<Socket>();
  /** tenant \0 userId -> the user's sockets here, and the user's bus subscription. */
  const users = new Map<string, { sockets: Set<Socket>; sub: Subscription }>();
  let draining = false;

  const fanout = new RoomFanout(app, bus, {
    onControl: (roomId, frame) => applyControl(roomId, frame),
    onDirectDelivered: (roomId, messageId, userIds) => {
      for (const userId of userIds) {
        deps.messages.markDelivered(roomId, messageId, userId).catch((err) => log.warn({ err, roomId, messageId }, 'delivery status not recorded'));
      }
    },
    loadRoom: (roomId) => store.getRoom(roomId),
    watch: (roomId) => deps.access.retain(roomId),
    unwatch: (roomId) => deps.access.release(roomId),
  }, log);
  // a NATS outage must not leave holes in what open sockets receive
  const liveGap = new LiveGapRepair(bus, fanout, config.ws.resumeSkewMs, log, (roomIds) => {
    const rooms = new Set(roomIds);
    for (const ws of [...sockets]) {
      if ([...ws.getUserData().rooms].some((r) => rooms.has(r))) ws.end(CLOSE_CODES.resync, 'missed events could not be replayed; reconnect and resume');
    }
  });
  liveGap.start();
  const typing = new TypingTracker(bus, deps.presence, config.ws.typingTimeoutMs, log);
  const presenceFeed = new PresenceFeed(bus, deps.presence, config.ws.presenceTtlSec,
    () => [...[...sockets].map((s) => s.getUserData()), ...fallback.connections()], log);
  presenceFeed.start();
  const guard = new RoomGuard(deps.access);
  const fallback = startFallbackTransports({ ...deps, app, guard, presence: presenceFeed, draining: () => draining });
  const handlerDeps: HandlerDeps = {
    messages: deps.messages, rooms: deps.rooms, guard, store, fanout, typing, presence: presenceFeed,
    resumeSkewMs: config.ws.resumeSkewMs, bus,
  };

  function send(ws: Socket, frame: ServerFrame): void {
    const conn = ws.getUserData();
    if (conn.closed) return;
    ws.cork(() => ws.send(encodeFrame(frame, conn.format), conn.format === 'msgpack'));
  }

  function sendError(ws: Socket, err: unknown, ref: string | number | undefined): void {
    const e = toChatError(err);
    metrics.errors.labels(e.code).inc();
    if (e.code === 'internal') log.error({ err, userId: ws.getUserData().principal.userId }, 'frame failed');
    const retryAfterMs = e.details?.['retryAfterMs'];
    send(ws, {
      type: 'error', code: e.code, message: e.message,
      ...(ref !== undefined ? { ref } : {}),
      ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
    });
  }

  /** Membership and settings changes: keep caches right and move this gateway's sockets. */
  function applyControl(roomId: string, frame: ServerFrame): void {
    deps.access.invalidate(roomId);
    const userId = frame.type === 'user_joined' || frame.type === 'user_left' ? frame.user.userId
      : frame.type === 'member_updated' ? frame.userId : undefined;
    if (userId === undefined) return;
    deps.access.invalidate(roomId, userId);
    if (frame.type !== 'user_left') return;
    const tenant = fanout.tenantOf(roomId);
    const entry = tenant === undefined ? undefined : users.get(`${tenant}\0${userId}`);
    for (const ws of entry?.sockets ?? []) fanout.remove(ws, ws.getUserData(), roomId);
  }

  /** Frames for one user (invited, removed, role changed), also when their sockets are not in the room. */
  function onUserFrame(key: string, payload: Uint8Array): void {
    const entry = users.get(key);
    if (!entry) return;
    let frame: ServerFrame;
    try {
      frame = decodeMsgpack(payload) as ServerFrame;
    } catch (err) {
      log.error({ err }, 'undecodable user frame dropped');
      return;
    }
    const roomId = (frame as { roomId?: unknown }).roomId;
    if (typeof roomId !== 'string') return;
    deps.access.invalidate(roomId);
    for (const ws of entry.sockets) {
      const conn = ws.getUserData();
      // Sockets in the room saw the frame on the room's topic already.
      if (conn.rooms.has(roomId)) {
        if (frame.type === 'user_left') fanout.remove(ws, conn, roomId);
        continue;
      }
      send(ws, frame);
      if (frame.type === 'user_joined') fanout.add(ws, roomId);
    }
  }

  function trackUser(ws: Socket): void {
    const { principal } = ws.getUserData();
    const key = `${principal.tenant}\0${principal.userId}`;
    let entry = users.get(key);
    if (!entry) {
      const sub = bus.subscribe(subjects.userEvents(principal.tenant, principal.userId), (payload) => onUserFrame(key, payload));
      entry = { sockets: new Set(), sub };
      users.set(key, entry);
    }
    entry.sockets.add(ws);
  }

  function untrackUser(ws: Socket, principal: Principal): void {
    const key = `${principal.tenant}\0${principal.userId}`;
    const entry = users.get(key);
    if (!entry) return;
    entry.sockets.delete(ws);
    if (entry.sockets.size === 0) {
      entry.sub.unsubscribe();
      users.delete(key);
    }
  }

  async function opened(ws: Socket): Promise<void> {
    const conn = ws.getUserData();
    const { principal } = conn;
    const roomIds = await store.roomsOfUser(principal.tenant, principal.userId);
    if (conn.closed) return;
    for (const roomId of roomIds.slice(0, MAX_ROOMS_AT_CONNECT)) fanout.add(ws, roomId);
    if (conn.initialRoom) await joinInitialRoom(ws, conn.initialRoom);
    if (conn.closed) return;
    send(ws, {
      type: 'welcome', userId: principal.userId, name: principal.name, tenant: principal.tenant, connectionId: conn.connectionId,
      serverTime: new Date().toISOString(), heartbeatMs: Math.floor((config.ws.idleTimeoutSec * 1000) / 2), format: conn.format,
      rooms: [...conn.rooms],
    });
    await presenceFeed.connected(conn);
  }

  /** Seed 001: `/ws?room=<id>` joins the room at connect, creating it (public) on first use. */
  async function joinInitialRoom(ws: Socket, roomId: string): Promise<void> {
    const { principal } = ws.getUserData();
    try {
      await deps.rooms.join(principal, roomId);
    } catch (err) {
      if (!(err instanceof ChatError) || err.code !== 'not_found' || await store.getRoom(roomId)) throw err;
      await deps.rooms.create(principal, { roomId, name: roomId, type: 'public' }).catch(async (createErr) => {
        // Two clients creating the same room at once: the loser joins the winner's room.
        if (createErr instanceof ChatError && createErr.code === 'conflict') await deps.rooms.join(principal, roomId);
        else throw createErr;
      });
    }
    fanout.add(ws, roomId);
  }

  function upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const url = req.getUrl();
    const queryString = req.getQuery() ?? '';
    const authorization = req.getHeader('authorization');
    const key = req.getHeader('sec-websocket-key');
    const offered = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    let aborted = false;
    res.onAborted(() => { aborted = true; });

    const refuse = (code: 'unauthorized' | 'unavailable' | 'bad_request', message: string) => {
      metrics.upgradesRejected.labels(code).inc();
      if (aborted) return;
      const status = errorMapping(code).http;
      res.cork(() => {
        res.writeStatus(`${status} ${code === 'unauthorized' ? 'Unauthorized' : code === 'unavailable' ? 'Service Unavailable' : 'Bad Request'}`)
          .writeHeader('content-type', 'application/json')
          .end(JSON.stringify({ success: false, error: { code, message } }));
      });
    };
    if (draining) return refuse('unavailable', 'server is draining; reconnect');

    const query = new URLSearchParams(queryString);
    const room = url === '/ws' ? query.get('room') ?? undefined : undefined;
    if (room !== undefined && !ROOM_ID.test(room)) return refuse('bad_request', 'room must match ' + ROOM_ID_PATTERN);
    const token = extractToken(authorization, queryString);
    const { format, protocol } = negotiateFormat(offered, query);
    const device = query.get('device') ?? undefined;

    deps.authenticator.verify(token ?? '').then(
      (principal) => {
        if (aborted) return;
        if (draining) return refuse('unavailable', 'server is draining; reconnect');
        const conn: Connection = {
          principal, connectionId: randomUUID(), format, legacy: room !== undefined, initialRoom: room,
          device: device && ['web', 'mobile', 'desktop'].includes(device) ? device : undefined,
          rooms: new Set(), typing: undefined, queue: Promise.resolve(), closed: false,
        };
        res.cork(() => res.upgrade(conn, key, protocol, extensions, context));
      },
      (err) => refuse('unauthorized', toChatError(err).message),
    );
  }

  function message(ws: Socket, data: ArrayBuffer, isBinary: boolean): void {
    if (data.byteLength > config.ws.maxPayloadBytes) {
      return sendError(ws, new ChatError('too_large', `frame is ${data.byteLength} bytes; the limit is ${config.ws.maxPayloadBytes}`), undefined);
    }
    let frame;
    try {
      frame = decodeClientFrame(data, isBinary);
    } catch (err) {
      const ref = err instanceof ChatError ? err.details?.['ref'] : undefined;
      return sendError(ws, err, typeof ref === 'string' || typeof ref === 'number' ? ref : undefined);
    }
    metrics.framesIn.labels(frame.type).inc();
    const ref = frame.ref;
    if (frame.type === 'ping') return send(ws, { type: 'pong', ...(ref !== undefined ? { ref } : {}), serverTime: new Date().toISOString() });
    const type = frame.type;
    const run = () => handleFrame(handlerDeps, ws, frame).then(
      (body) => send(ws, { type: 'ack', ...(ref !== undefined ? { ref } : {}), action: type, ...body }),
      (err) => sendError(ws, err, ref),
    );
    const conn = ws.getUserData();
    if (ORDERED.has(type)) conn.queue = conn.queue.then(run);
    else void run();
  }

  const behavior = {
    compression: 0,
    maxPayloadLength: config.ws.maxPayloadBytes * HARD_PAYLOAD_FACTOR,
    maxBackpressure: config.ws.maxBackpressureBytes,
    closeOnBackpressureLimit: 1,
    idleTimeout: config.ws.idleTimeoutSec,
    sendPingsAutomatically: true,
    upgrade,
    open(ws: Socket) {
      sockets.add(ws);
      metrics.connections.inc();
      metrics.connectionsTotal.inc();
      trackUser(ws);
      opened(ws).catch((err) => {
        log.warn({ err, userId: ws.getUserData().principal.userId }, 'connection setup failed');
        sendError(ws, err instanceof ChatError ? err : new ChatError('unavailable', 'could not load your rooms; retry', { cause: err }), undefined);
      });
    },
    message,
    close(ws: Socket, code: number) {
      const conn = ws.getUserData();
      conn.closed = true;
      sockets.delete(ws);
      metrics.connections.dec();
      if (code === 1006 && !draining) log.debug({ userId: conn.principal.userId }, 'socket closed abnormally');
      const rooms = [...conn.rooms];
      typing.stopAll(conn);
      fanout.removeAll(undefined, conn);
      untrackUser(ws, conn.principal);
      presenceFeed.disconnected(conn, rooms).catch((err) => log.warn({ err }, 'presence disconnect failed'));
    },
  };
  app.ws<Connection>('/chat', behavior);
  app.ws<Connection>('/ws', behavior);

  server.addReadiness('gateway', async () => {
    if (draining) throw new ChatError('unavailable', 'draining');
  });

  return {
    connections: () => sockets.size,
    async drain() {
      draining = true;
      presenceFeed.stop();
      liveGap.stop();
      for (const ws of [...sockets]) ws.end(CLOSE_CODES.goingAway, 'server shutting down');
      fallback.close();
      fanout.close();
    },
  };
}
