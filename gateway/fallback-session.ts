import { randomUUID } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { ChatError, ROOM_ID_PATTERN, type ServerFrame } from '../shared/protocol/index.ts';
import type { Principal } from '../shared/auth/index.ts';
import type { Bus } from '../shared/bus/index.ts';
import type { Store } from '../shared/store/index.ts';
import type { RoomGuard } from '../shared/commands/index.ts';
import { DEVICE_TYPES, roomIdOf, roomKey } from '../shared/domain/index.ts';
import { compareIds, idAtTime } from '../shared/ids/index.ts';
import type { WsConfig } from '../shared/config/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import type { LiveGapState } from './live-gap.ts';
import type { LocalUsers } from './local-users.ts';
import type { PresenceConnection, PresenceFeed } from './presence-feed.ts';
import type { StreamReceiver } from './receiver.ts';
import type { TokenExpiry } from './token-expiry.ts';
import type { RoomFanout } from './room-fanout.ts';
import { replayRooms, resumeLimits, type RoomResumed } from './resume.ts';
import { ANY_ROOM, parseResumeCursor, positionOf, type ResumeCursor } from './resume-cursor.ts';

/**
 * What SSE and long-poll share: which rooms they get (like a WebSocket at connect: every room
 * they are a member of, plus readable rooms named in `?rooms=`), the welcome frame and the replay
 * of what they missed (`?resume=` or `Last-Event-ID`, see resume-cursor.ts). Their connections
 * are receivers of the gateway's one fan-out, beside its WebSockets.
 */
export interface FallbackDeps {
  /** The WebSocket settings they share: heartbeat, resume skew, backpressure limit. */
  ws: WsConfig;
  bus: Bus;
  store: Store;
  guard: RoomGuard;
  presence: PresenceFeed;
  fanout: RoomFanout;
  users: LocalUsers;
  liveGap: LiveGapState;
  log: Logger;
  draining(): boolean;
  /** Ends streams and sessions whose token expired, as WebSockets are closed (see token-expiry.ts). */
  tokenExpiry: TokenExpiry<{ expire(): void }>;
}

/** The query both fallback routes take (the OpenAPI document lists it). */
export const FALLBACK_QUERY = {
  token: Type.Optional(Type.String({ description: 'The bearer token, for clients that cannot send an Authorization header (EventSource)' })),
  rooms: Type.Optional(Type.String({ description: 'Readable rooms to receive besides your own, comma-separated (at most 50)' })),
  resume: Type.Optional(Type.String({
    description: 'Where to resume: `room:messageId,...`, `*:messageId`, or the same as JSON; a Last-Event-ID header wins',
  })),
  device: Type.Optional(Type.String({ description: 'web, mobile or desktop, for presence' })),
};
const FallbackQuery = Type.Object(FALLBACK_QUERY);
export type FallbackQuery = Static<typeof FallbackQuery>;

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

/** Validates `rooms`, `resume` (or `Last-Event-ID`, which wins: it is newer) and `device`. */
export function readOptions(query: FallbackQuery, lastEventId: string | undefined): FallbackOptions {
  const rooms = (query.rooms ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (rooms.length > MAX_EXTRA_ROOMS) throw new ChatError('bad_request', `rooms names more than ${MAX_EXTRA_ROOMS} rooms`);
  for (const roomId of rooms) if (!ROOM_ID.test(roomId)) throw new ChatError('bad_request', `rooms: ${roomId.slice(0, 70)} is not a room id`);
  const resume = parseResumeCursor(lastEventId || (query.resume ?? ''));
  const device = query.device;
  return { rooms, resume, device: device && (DEVICE_TYPES as readonly string[]).includes(device) ? device : undefined };
}

/** New streams and sessions are refused while the gateway drains: their clients go elsewhere. */
export function refuseWhileDraining(deps: FallbackDeps, retry: string): void {
  if (deps.draining()) throw new ChatError('unavailable', `server is draining; ${retry}`);
}

/** One SSE stream or long-poll session: a stream receiver of the fan-out with a resume position. */
export class FallbackConnection implements StreamReceiver, PresenceConnection {
  readonly rooms = new Set<string>();
  readonly connectionId = randomUUID();
  /**
   * The newest message id this connection is known to have delivered, or the time it went live:
   * every durable event of its rooms before this (less the resume skew) reached it.
   */
  position: string = idAtTime(Date.now());
  /** While replaying, `position` does not move: a client cut off mid-replay must start over. */
  replaying = false;
  closed = false;

  constructor(
    /** Replaced when a long poll brings a fresh token of the same user. */
    public principal: Principal,
    readonly device: string | undefined,
    /** While the bus's live gap is repaired, `position` does not move either. */
    private readonly liveGap: LiveGapState,
    private readonly out: (frame: ServerFrame, json: string) => void,
    private readonly onReset: () => void,
  ) {}

  /** Whether `position` follows what is delivered (no replay or repair under way). */
  get moving(): boolean {
    return !this.replaying && !this.liveGap.repairing;
  }

  deliver(frame: ServerFrame, json: string): void {
    if (this.closed) return;
    if (this.moving && frame.type === 'new_message' && compareIds(frame.message.messageId, this.position) > 0) {
      this.position = frame.message.messageId;
    }
    this.out(frame, json);
  }

  reset(): void {
    if (!this.closed) this.onReset();
  }
}

/** The rooms to subscribe: the user's, then the extra ones they may read (checked here, once). */
export async function roomsFor(deps: FallbackDeps, who: Principal, extra: string[]): Promise<string[]> {
  const own = (await deps.store.roomsOfUser(who.tenant, who.userId)).slice(0, MAX_ROOMS).map(roomIdOf);
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
  deps.users.attach(conn);
  for (const roomId of roomIds) deps.fanout.add(conn, roomId);
  const welcome: ServerFrame = {
    type: 'welcome', userId: principal.userId, name: principal.name, tenant: principal.tenant, connectionId: conn.connectionId,
    serverTime: new Date().toISOString(), heartbeatMs: Math.floor((deps.ws.idleTimeoutSec * 1000) / 2), format: 'json',
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
  const refused: RoomResumed[] = [];
  const wanted = new Map<string, string>();
  for (const roomId of new Set([...conn.rooms, ...[...resume.keys()].filter((k) => k !== ANY_ROOM)])) {
    const position = positionOf(resume, roomId);
    if (position === undefined) continue;
    if (conn.rooms.has(roomId)) wanted.set(roomId, position);
    else refused.push({ roomId, recovered: false, replayed: 0 });
  }
  const replayed = await replayRooms(deps.bus, wanted, (roomId) => roomKey(conn.principal.tenant, roomId), resumeLimits(deps.ws), {
    send: (f) => conn.deliver(f, JSON.stringify(f)),
    closed: () => conn.closed,
  }, (err, roomId) => deps.log.warn({ err, roomId }, 'replay for a fallback connection failed'));
  if (conn.closed) return;
  const results = [...replayed, ...refused];
  conn.replaying = false;
  const resumed: ServerFrame = { type: 'resumed', rooms: results };
  conn.deliver(resumed, JSON.stringify(resumed));
}

/** Leaves the fan-out and goes offline (when it was the user's last connection). Idempotent. */
export function endConnection(deps: FallbackDeps, conn: FallbackConnection): void {
  if (conn.closed) return;
  conn.closed = true;
  const rooms = [...conn.rooms];
  deps.users.detach(conn);
  deps.presence.disconnected(conn, rooms).catch((err) => deps.log.warn({ err }, 'presence disconnect failed'));
}
