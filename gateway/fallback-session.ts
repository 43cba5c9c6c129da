import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { ChatError, errorMapping, toChatError, ROOM_ID_PATTERN, type ServerFrame } from '../shared/protocol/index.ts';
import { extractToken, type Authenticator, type Principal } from '../shared/auth/index.ts';
import type { Bus } from '../shared/bus/index.ts';
import type { Store } from '../shared/store/index.ts';
import type { MessageCommands, RoomCommands, RoomGuard } from '../shared/commands/index.ts';
import { DEVICE_TYPES } from '../shared/domain/index.ts';
import { compareIds, idAtTime } from '../shared/ids/index.ts';
import type { Config } from '../shared/config/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import type { FallbackFanout, FallbackSink } from './fallback-fanout.ts';
import type { PresenceConnection, PresenceFeed } from './presence-feed.ts';
import { replayRoom } from './resume.ts';
import { ANY_ROOM, parseResumeCursor, positionOf, type ResumeCursor } from './resume-cursor.ts';

/**
 * What SSE and long-poll share: who is asking, which rooms they get (like a WebSocket at connect:
 * every room they are a member of, plus readable rooms named in `?rooms=`), the welcome frame and
 * the replay of what they missed (`?resume=` or `Last-Event-ID`, see resume-cursor.ts).
 */
export interface FallbackDeps {
  app: TemplatedApp;
  config: Config;
  bus: Bus;
  store: Store;
  rooms: RoomCommands;
  messages: MessageCommands;
  guard: RoomGuard;
  authenticator: Authenticator;
  presence: PresenceFeed;
  fanout: FallbackFanout;
  log: Logger;
  draining(): boolean;
}

/** The parts of a request a fallback route reads; uWS requests are gone after the first await. */
export interface FallbackRequest {
  token: string | undefined;
  query: URLSearchParams;
  lastEventId: string;
  origin: string;
}

export interface FallbackOptions {
  /** Readable rooms asked for besides the user's own. */
  rooms: string[];
  resume: ResumeCursor;
  device: string | undefined;
}

/** Rooms a fallback connection gets at most, as a WebSocket at connect. */
const MAX_ROOMS = 1000;
const MAX_EXTRA_ROOMS = 50;
const ROOM_ID = new RegExp(ROOM_ID_PATTERN);

export function readRequest(req: HttpRequest): FallbackRequest {
  const queryString = req.getQuery() ?? '';
  return {
    token: extractToken(req.getHeader('authorization') || undefined, queryString),
    query: new URLSearchParams(queryString),
    lastEventId: req.getHeader('last-event-id'),
    origin: req.getHeader('origin'),
  };
}

/** Validates `rooms`, `resume` (or `Last-Event-ID`, which wins: it is newer) and `device`. */
export function readOptions(r: FallbackRequest): FallbackOptions {
  const rooms = (r.query.get('rooms') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (rooms.length > MAX_EXTRA_ROOMS) throw new ChatError('bad_request', `rooms names more than ${MAX_EXTRA_ROOMS} rooms`);
  for (const roomId of rooms) if (!ROOM_ID.test(roomId)) throw new ChatError('bad_request', `rooms: ${roomId.slice(0, 70)} is not a room id`);
  const resume = parseResumeCursor(r.lastEventId || (r.query.get('resume') ?? ''));
  const device = r.query.get('device') ?? undefined;
  return { rooms, resume, device: device && (DEVICE_TYPES as readonly string[]).includes(device) ? device : undefined };
}

export function authenticate(deps: FallbackDeps, r: FallbackRequest): Promise<Principal> {
  if (!r.token) return Promise.reject(new ChatError('unauthorized', 'missing token (Authorization: Bearer <jwt> or ?token=)'));
  return deps.authenticator.verify(r.token);
}

/** One SSE stream or long-poll session: a sink of the fallback fan-out with a resume position. */
export class FallbackConnection implements FallbackSink, PresenceConnection {
  readonly rooms = new Set<string>();
  readonly connectionId = randomUUID();
  /**
   * The newest message id this connection is known to have delivered, or the time it went live:
   * every durable event of its rooms before this (less the resume skew) reached it.
   */
  position: string = idAtTime(Date.now());
  /** While replaying, `position` does not move: a client cut off mid-replay must start over. */
  replaying = false;
  /** The bus lost live messages that are being replayed: `position` does not move either. */
  gap = false;
  closed = false;

  constructor(
    readonly principal: Principal,
    readonly device: string | undefined,
    private readonly out: (frame: ServerFrame, json: string) => void,
    private readonly onReset: () => void,
  ) {}

  /** Whether `position` follows what is delivered (no replay or repair under way). */
  get moving(): boolean {
    return !this.replaying && !this.gap;
  }

  deliver(frame: ServerFrame, json: string): void {
    if (this.closed) return;
    if (this.moving && frame.type === 'new_message' && compareIds(frame.message.messageId, this.position) > 0) {
      this.position = frame.message.messageId;
    }
    this.out(frame, json);
  }

  liveGap(pending: boolean): void {
    this.gap = pending;
  }

  reset(): void {
    if (!this.closed) this.onReset();
  }
}

/** The rooms to subscribe: the user's, then the extra ones they may read (checked here, once). */
export async function roomsFor(deps: FallbackDeps, who: Principal, extra: string[]): Promise<string[]> {
  const own = (await deps.store.roomsOfUser(who.tenant, who.userId)).slice(0, MAX_ROOMS);
  const mine = new Set(own);
  for (const roomId of extra) {
    if (mine.has(roomId)) continue;
    await deps.guard.reader(who, roomId);
    mine.add(roomId);
  }
  return [...mine];
}

/**
 * Subscribes first and then says welcome, synchronously, so the welcome is the first frame and
 * nothing published from here on is missed; then replays the resume positions (the client drops
 * repeats by `seq`) and goes online.
 */
export async function startConnection(deps: FallbackDeps, conn: FallbackConnection, roomIds: string[], resume: ResumeCursor): Promise<void> {
  const { principal } = conn;
  conn.position = idAtTime(Date.now());
  conn.replaying = resume.size > 0;
  deps.fanout.attach(conn);
  for (const roomId of roomIds) deps.fanout.add(conn, roomId);
  const welcome: ServerFrame = {
    type: 'welcome', userId: principal.userId, name: principal.name, tenant: principal.tenant, connectionId: conn.connectionId,
    serverTime: new Date().toISOString(), heartbeatMs: Math.floor((deps.config.ws.idleTimeoutSec * 1000) / 2), format: 'json',
    rooms: [...conn.rooms],
  };
  conn.deliver(welcome, JSON.stringify(welcome));
  if (resume.size > 0) await replay(deps, conn, resume);
  if (conn.closed) return;
  await deps.presence.connected(conn).catch((err) => deps.log.warn({ err, userId: principal.userId }, 'presence connect failed'));
  // Closed while going online: endConnection's disconnect may have run first.
  if (conn.closed) await deps.presence.disconnected(conn, []).catch((err) => deps.log.warn({ err }, 'presence disconnect failed'));
}

async function replay(deps: FallbackDeps, conn: FallbackConnection, resume: ResumeCursor): Promise<void> {
  const results: Array<{ roomId: string; recovered: boolean; replayed: number }> = [];
  const roomIds = new Set([...conn.rooms, ...[...resume.keys()].filter((k) => k !== ANY_ROOM)]);
  const resend = (f: ServerFrame) => conn.deliver(f, JSON.stringify(f));
  for (const roomId of roomIds) {
    const position = positionOf(resume, roomId);
    if (position === undefined) continue;
    if (!conn.rooms.has(roomId)) {
      results.push({ roomId, recovered: false, replayed: 0 });
      continue;
    }
    try {
      results.push({ roomId, ...await replayRoom(deps.bus, roomId, position, deps.config.ws.resumeSkewMs, resend) });
    } catch (err) {
      deps.log.warn({ err, roomId }, 'replay for a fallback connection failed');
      results.push({ roomId, recovered: false, replayed: 0 });
    }
    if (conn.closed) return;
  }
  conn.replaying = false;
  const resumed: ServerFrame = { type: 'resumed', rooms: results };
  conn.deliver(resumed, JSON.stringify(resumed));
}

/** Unsubscribes and goes offline (when it was the user's last connection). Idempotent. */
export function endConnection(deps: FallbackDeps, conn: FallbackConnection): void {
  if (conn.closed) return;
  conn.closed = true;
  const rooms = [...conn.rooms];
  deps.fanout.detach(conn);
  deps.presence.disconnected(conn, rooms).catch((err) => deps.log.warn({ err }, 'presence disconnect failed'));
}

/** CORS for the fallback routes, by the same CORS_ORIGINS as the REST api. */
export function corsHeaders(config: Config, origin: string): Array<[string, string]> {
  if (!origin) return [];
  const origins = config.http.corsOrigins;
  if (origins.includes('*')) return [['Access-Control-Allow-Origin', '*']];
  return origins.includes(origin) ? [['Access-Control-Allow-Origin', origin], ['Vary', 'Origin']] : [];
}

/** An error in the REST envelope, on a response nothing was written to yet. */
export function writeError(res: HttpResponse, config: Config, origin: string, err: unknown, log: Logger): void {
  const e = toChatError(err);
  if (e.code === 'internal') log.error({ err }, 'fallback request failed');
  const status = errorMapping(e.code).http;
  res.cork(() => {
    res.writeStatus(`${status} ${STATUS_CODES[status] ?? e.code}`).writeHeader('Content-Type', 'application/json; charset=utf-8');
    for (const [k, v] of corsHeaders(config, origin)) res.writeHeader(k, v);
    if (e.code === 'unauthorized') res.writeHeader('WWW-Authenticate', 'Bearer');
    res.end(JSON.stringify({ success: false, error: { code: e.code, message: e.code === 'internal' ? 'internal error' : e.message } }));
  });
}
