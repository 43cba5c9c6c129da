import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { ChatError } from '../shared/protocol/index.ts';
import type { HeldResponse, HttpServer } from '../shared/http/index.ts';
import { metrics } from '../shared/telemetry/index.ts';
import type { Principal } from '../shared/auth/index.ts';
import {
  endConnection, FALLBACK_QUERY, FallbackConnection, readOptions, refuseWhileDraining, roomsFor, startConnection,
  type FallbackDeps, type FallbackQuery,
} from './fallback-session.ts';

export const POLL_PATH = '/v1/chat/poll';

/** A poll is answered after this long without frames (`?timeout=` seconds may shorten it). */
export const POLL_HOLD_MS = 25_000;
/** A session nobody polled for this long ends (the client starts a new one and resumes). */
const SESSION_TTL_MS = 60_000;
/** Frames a session keeps for its client; past that it has lost some and must resume. */
const BUFFER_MAX = 1000;
const FRAMES_PER_RESPONSE = 500;
const SESSIONS_PER_USER = 8;
/** Frames published together (a burst) go out in one response. */
const BATCH_WAIT_MS = 10;

const PollQuery = Type.Object({
  ...FALLBACK_QUERY,
  cursor: Type.Optional(Type.String({ description: 'The cursor of the previous answer (`<sessionId>.<n>`); none opens a session' })),
  timeout: Type.Optional(Type.String({ description: `Seconds to wait for news, at most ${POLL_HOLD_MS / 1000} (the default)` })),
});

const PollAnswer = Type.Object({
  cursor: Type.String({ description: 'Send it back with the next poll: it acknowledges these frames' }),
  frames: Type.Array(Type.Unknown(), { description: 'Server frames, as a JSON WebSocket gets them' }),
});

/**
 * `GET /v1/chat/poll`: long-polling for clients that can use neither WebSocket nor SSE.
 *
 * The first poll (no `cursor`) opens a session on this gateway: it is subscribed like an SSE
 * stream and answers at once with `welcome` (and, with `?resume=`, the replay and `resumed`).
 * Every answer is `{success: true, data: {cursor, frames}}`; the next poll sends that cursor back,
 * which also acknowledges the frames received. A poll with nothing new waits up to 25 s.
 *
 * Cursor format: `<sessionId>.<n>`, where n numbers the last frame received in that session. A
 * cursor this gateway does not know (expired session, another gateway, a restart), or one whose
 * frames were already dropped, starts a new session replaying from `?resume=`: clients send their
 * resume positions on every poll so that no round trip is lost to it.
 */
interface PendingPoll {
  res: HeldResponse;
  timer: NodeJS.Timeout | undefined;
}

export class PollSession {
  readonly id = randomBytes(12).toString('base64url');
  readonly conn: FallbackConnection;
  private buffer: Array<{ n: number; json: string }> = [];
  private last = 0;
  /** Frames were dropped before the client acknowledged them. */
  private lost = false;
  private waiter: PendingPoll | undefined;
  private flush: NodeJS.Timeout | undefined;
  private expiry: NodeJS.Timeout | undefined;

  constructor(readonly deps: FallbackDeps, principal: Principal, device: string | undefined, private readonly onEnd: (s: PollSession) => void) {
    this.conn = new FallbackConnection(principal, device, deps.liveGap, (_frame, json) => this.push(json), () => this.end());
    metrics.fallbackConnections.labels('poll').inc();
    this.touch();
  }

  get ended(): boolean {
    return this.conn.closed;
  }

  owner(): string {
    return `${this.conn.principal.tenant}\0${this.conn.principal.userId}`;
  }

  /** Whether a cursor at `n` can be served: nothing after it was dropped. */
  covers(n: number): boolean {
    if (this.lost || n > this.last || n < 0) return false;
    const first = this.buffer[0]?.n ?? this.last + 1;
    return n >= first - 1;
  }

  /** Answers now when frames after `n` exist, else holds the poll until some arrive or `holdMs` passes. */
  poll(pending: PendingPoll, n: number, holdMs: number): void {
    this.acknowledge(n);
    this.answer(this.waiter, true); // one waiter per session: the older poll returns empty
    clearTimeout(this.expiry);
    this.expiry = undefined;
    if (this.buffer.length > 0 || holdMs <= 0) return this.answer(pending);
    pending.timer = setTimeout(() => this.answer(pending), holdMs);
    this.waiter = pending;
  }

  /** The client went away mid-poll. */
  abandon(pending: PendingPoll): void {
    clearTimeout(pending.timer);
    if (this.waiter === pending) {
      this.waiter = undefined;
      this.touch();
    }
  }

  /** A poll brought a fresh token for the session's user: the session lives until it expires. */
  renew(principal: Principal): void {
    this.conn.principal = principal;
    this.deps.tokenExpiry.watch(this, principal.expiresAt);
  }

  /** The token expired: a waiting poll is answered `unauthorized` and the session ends. */
  expire(): void {
    this.end(new ChatError('unauthorized', 'token expired: poll again with a fresh token'));
  }

  end(reason: ChatError = new ChatError('unavailable', 'server is draining; poll again')): void {
    if (this.conn.closed) return;
    this.deps.tokenExpiry.unwatch(this);
    metrics.fallbackConnections.labels('poll').dec();
    clearTimeout(this.expiry);
    clearTimeout(this.flush);
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.res.fail(reason);
    }
    endConnection(this.deps, this.conn);
    this.onEnd(this);
  }

  private push(json: string): void {
    this.buffer.push({ n: ++this.last, json });
    if (this.buffer.length > BUFFER_MAX) {
      this.buffer.shift();
      this.lost = true;
    }
    if (this.waiter && !this.flush) {
      this.flush = setTimeout(() => {
        this.flush = undefined;
        this.answer(this.waiter);
      }, BATCH_WAIT_MS);
    }
  }

  private acknowledge(n: number): void {
    let drop = 0;
    while (drop < this.buffer.length && this.buffer[drop]!.n <= n) drop++;
    if (drop) this.buffer.splice(0, drop);
  }

  private answer(pending: PendingPoll | undefined, empty = false): void {
    if (!pending) return;
    if (this.waiter === pending) this.waiter = undefined;
    clearTimeout(pending.timer);
    this.touch();
    if (pending.res.closed) return;
    const batch = empty ? [] : this.buffer.slice(0, FRAMES_PER_RESPONSE);
    // An empty answer leaves the client where it was: before the first frame still buffered.
    const n = batch.length ? batch[batch.length - 1]!.n : (this.buffer[0]?.n ?? this.last + 1) - 1;
    pending.res.json(`{"success":true,"data":{"cursor":"${this.id}.${n}","frames":[${batch.map((f) => f.json).join(',')}]}}`, [['Cache-Control', 'no-store']]);
  }

  /** Restarts the idle clock: a session lives SESSION_TTL_MS after its last answer. */
  private touch(): void {
    clearTimeout(this.expiry);
    this.expiry = setTimeout(() => {
      if (!this.waiter) this.end();
    }, SESSION_TTL_MS).unref();
  }
}

export function registerLongPoll(server: HttpServer, deps: FallbackDeps, sessions: Map<string, PollSession>): void {
  const byUser = new Map<string, PollSession[]>();
  const forget = (s: PollSession) => {
    sessions.delete(s.id);
    const list = byUser.get(s.owner())?.filter((x) => x !== s) ?? [];
    if (list.length) byUser.set(s.owner(), list);
    else byUser.delete(s.owner());
  };

  async function open(query: FallbackQuery, lastEventId: string | undefined, principal: Principal): Promise<PollSession> {
    const opts = readOptions(query, lastEventId);
    const roomIds = await roomsFor(deps, principal, opts.rooms);
    const session = new PollSession(deps, principal, opts.device, forget);
    sessions.set(session.id, session);
    deps.tokenExpiry.watch(session, principal.expiresAt);
    const list = byUser.get(session.owner()) ?? [];
    list.push(session);
    byUser.set(session.owner(), list);
    // A client that keeps opening sessions (and never polls them) ends its oldest ones.
    while (list.length > SESSIONS_PER_USER) list[0]!.end();
    await startConnection(deps, session.conn, roomIds, opts.resume);
    return session;
  }

  server.held({
    method: 'get', path: POLL_PATH, operationId: 'chatPoll', tags: ['realtime'],
    summary: 'Long-polling: the frames a JSON WebSocket gets, for clients that can use neither WebSocket nor SSE',
    description: 'The first poll (no cursor) opens a session and answers with `welcome` (and the replay from `resume`). '
      + 'Each answer carries a cursor; the next poll sends it back, which acknowledges the frames. A poll with nothing new '
      + 'waits up to 25 s. An unknown or lost cursor opens a new session replaying from `resume`.',
    tokenInQuery: true, query: PollQuery, headers: ['last-event-id'], response: PollAnswer,
    handler: async ({ principal, query, headers }, res) => {
      const holdMs = query.timeout === undefined ? POLL_HOLD_MS : Math.min(POLL_HOLD_MS, Math.max(0, Number(query.timeout) * 1000 || 0));
      const cursor = parseCursor(query.cursor);
      if (cursor === null) throw new ChatError('bad_request', 'cursor must be <sessionId>.<n> as returned by the previous poll');
      const pending: PendingPoll = { res, timer: undefined };
      let session: PollSession | undefined;
      res.onAbort(() => session?.abandon(pending));

      const known = cursor ? sessions.get(cursor.session) : undefined;
      if (known && known.owner() === `${principal.tenant}\0${principal.userId}` && !known.ended) {
        if (known.covers(cursor!.n)) {
          session = known;
          // each poll carries a token: the session lives as long as the newest one
          if (principal.expiresAt !== known.conn.principal.expiresAt) known.renew(principal);
          return known.poll(pending, cursor!.n, holdMs);
        }
        known.end(); // it lost frames this client had not received: start over with a resume
      }
      // A draining gateway still answers its sessions' polls (they fetch the `reconnect` frame), but opens none
      refuseWhileDraining(deps, 'poll again');
      const fresh = await open(query, headers['last-event-id'], principal);
      if (res.closed) return; // the session stays for the client's next poll, or expires
      session = fresh;
      fresh.poll(pending, 0, 0);
    },
  });
}

/** undefined: no cursor (a new session); null: malformed. */
function parseCursor(text: string | undefined): { session: string; n: number } | undefined | null {
  if (text === undefined || text === '') return undefined;
  const m = /^([A-Za-z0-9_-]{1,64})\.(\d{1,15})$/.exec(text);
  return m ? { session: m[1]!, n: Number(m[2]) } : null;
}
