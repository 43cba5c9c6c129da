import { CLOSE_CODES } from '../shared/protocol/index.ts';
import type { Bus } from '../shared/bus/index.ts';
import type { Store } from '../shared/store/index.ts';
import type { Presence } from '../shared/presence/index.ts';
import type { Authenticator } from '../shared/auth/index.ts';
import { RoomGuard, type MessageCommands, type RoomCommands, type RoomAccess } from '../shared/commands/index.ts';
import type { WsConfig } from '../shared/config/index.ts';
import type { HttpServer } from '../shared/http/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import { createMemoryRateLimiter, type RateLimiter } from '../shared/rate-limit/index.ts';
import { sendFrame, type Socket } from './connection.ts';
import { TokenExpiry } from './token-expiry.ts';
import { controlHandler } from './control.ts';
import { startFallbackTransports } from './fallback.ts';
import { LiveGapRepair } from './live-gap.ts';
import { LocalUsers } from './local-users.ts';
import { PresenceFeed } from './presence-feed.ts';
import { resync } from './receiver.ts';
import { resumeLimits } from './resume.ts';
import { RoomFanout } from './room-fanout.ts';
import { TypingTracker } from './typing.ts';
import { startWebSockets } from './websocket.ts';

export interface GatewayDeps {
  server: HttpServer;
  /** The connection settings (WebSockets, and SSE and long-poll alike). */
  ws: WsConfig;
  bus: Bus;
  store: Store;
  presence: Presence;
  authenticator: Authenticator;
  messages: MessageCommands;
  rooms: RoomCommands;
  /** A caching access (createCachedRoomAccess): the gateway feeds it control events. */
  access: RoomAccess;
  /** For per-user frame limits (RATE_LIMIT_RESUME); none: one in this process's memory. */
  rateLimiter?: RateLimiter;
  log: Logger;
}

export interface Gateway {
  connections(): number;
  /**
   * Turns not ready and refuses new connections; tells every client to reconnect (the `reconnect`
   * frame) and keeps serving them while they go, for up to `graceMs` (default DRAIN_GRACE_MS);
   * then answers the frames already being handled and closes the rest (WebSockets with 1001), so
   * they reconnect elsewhere and resume. Resolves once the gateway holds no connection. Once.
   */
  drain(graceMs?: number): Promise<void>;
}

/** Clients told to reconnect spread their reconnects over this long at most (half the grace when shorter). */
const RECONNECT_SPREAD_MS = 1000;
/** After the grace, how long answers of frames already being handled may take before their sockets close anyway. */
const IN_FLIGHT_ANSWERS_MS = 5000;
/** How often a drain looks whether every client has gone. */
const DRAIN_POLL_MS = 50;

/**
 * The gateway: one session model for its three transports. WebSockets, SSE streams and long-poll
 * sessions are receivers of one room fan-out (one bus subscription per room) and of one user feed
 * (one per user), moved by one control path, and repaired by one live-gap repair.
 */
export function startGateway(deps: GatewayDeps): Gateway {
  const { server, ws: config, bus, store, log } = deps;
  let draining = false;
  const isDraining = () => draining;

  const fanout = new RoomFanout(server.app, bus, {
    onControl: (roomId, frame) => control(roomId, frame),
    onDirectDelivered: (roomId, messageId, userIds) => {
      for (const userId of userIds) {
        deps.messages.markDelivered(roomId, messageId, userId).catch((err) => log.warn({ err, roomId, messageId }, 'delivery status not recorded'));
      }
    },
    loadRoom: (roomId) => store.getRoom(roomId),
    watch: (roomId) => deps.access.retain(roomId),
    unwatch: (roomId) => deps.access.release(roomId),
  }, log);
  const users = new LocalUsers(bus, fanout, (roomId, frame) => control(roomId, frame), log);
  const control = controlHandler(deps.access, users, fanout);
  // a NATS outage must not leave holes in what open connections receive
  const liveGap = new LiveGapRepair(bus, fanout, config.resumeSkewMs, log, (roomIds) => {
    for (const r of users.inRooms(roomIds)) resync(r);
  });
  liveGap.start();
  const typing = new TypingTracker(bus, deps.presence, config.typingTimeoutMs, log, config.coalesceTypingMs);
  const presence = new PresenceFeed(bus, deps.presence, config.presenceTtlSec,
    () => [...websockets.connections(), ...fallback.connections()], log, config.coalescePresenceMs);
  const localLimiter = createMemoryRateLimiter();
  const limiter = deps.rateLimiter ?? localLimiter;
  const expiry = new TokenExpiry<Socket>((ws) => ws.end(CLOSE_CODES.tokenExpired, 'token expired: reconnect with a fresh token'));
  const fallbackExpiry = new TokenExpiry<{ expire(): void }>((c) => c.expire());
  presence.start();
  const guard = new RoomGuard(deps.access);

  const websockets = startWebSockets({
    server, ws: config, authenticator: deps.authenticator, store, rooms: deps.rooms,
    fanout, users, typing, presence, log, draining: isDraining, expiry, localLimiter,
    handlers: {
      messages: deps.messages, rooms: deps.rooms, guard, store, fanout, typing, presence,
      resume: resumeLimits(config), bus, send: sendFrame, authenticator: deps.authenticator, expiry,
      ...(config.resumeRate ? { resumeRate: { limiter, rule: config.resumeRate } } : {}),
    },
  });
  const fallback = startFallbackTransports(server, {
    ws: config, bus, store, guard, presence, fanout, users, liveGap, log, draining: isDraining, tokenExpiry: fallbackExpiry,
  });

  const open = () => websockets.count() + fallback.connections().length;
  let drained: Promise<void> | undefined;
  async function drain(graceMs: number): Promise<void> {
    draining = true;
    server.markNotReady('draining');
    const spreadMs = Math.min(RECONNECT_SPREAD_MS, Math.floor(graceMs / 2));
    log.info({ connections: open(), graceMs }, 'draining: clients told to reconnect elsewhere');
    websockets.announceDrain(spreadMs);
    fallback.announceDrain(spreadMs);
    const deadline = Date.now() + graceMs;
    while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    const left = open();
    if (left > 0) log.info({ connections: left }, 'drain grace over: closing the remaining connections with 1001');
    await websockets.closeAll(IN_FLIGHT_ANSWERS_MS);
    fallback.close();
    presence.stop();
    typing.close();
    expiry.close();
    fallbackExpiry.close();
    void localLimiter.close();
    liveGap.stop();
    fanout.close();
  }

  return {
    connections: () => websockets.count(),
    drain(graceMs = config.drainGraceMs) {
      drained ??= drain(graceMs);
      return drained;
    },
  };
}
