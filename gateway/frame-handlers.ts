import { ChatError, toChatError, type ClientFrame, type ClientFrameOf, type ServerFrame } from '../shared/protocol/index.ts';
import type { Issued, MessageCommands, RoomCommands, RoomGuard } from '../shared/commands/index.ts';
import type { Store } from '../shared/store/index.ts';
import type { Bus } from '../shared/bus/index.ts';
import type { Authenticator, Principal } from '../shared/auth/index.ts';
import { enforceRate, type RateLimiter, type RateRule } from '../shared/rate-limit/index.ts';
import type { Socket } from './connection.ts';
import type { RoomKey } from '../shared/domain/index.ts';
import type { RoomFanout } from './room-fanout.ts';
import type { TypingTracker } from './typing.ts';
import type { PresenceFeed } from './presence-feed.ts';
import type { TokenExpiry } from './token-expiry.ts';
import { replayRooms, type ResumeLimits, type RoomResumed } from './resume.ts';

export interface HandlerDeps {
  messages: MessageCommands;
  rooms: RoomCommands;
  guard: RoomGuard;
  store: Store;
  fanout: RoomFanout;
  typing: TypingTracker;
  presence: PresenceFeed;
  resume: ResumeLimits;
  /** Per-user `resume` frames (RATE_LIMIT_RESUME); none: unlimited. */
  resumeRate?: { limiter: RateLimiter; rule: RateRule };
  bus: Bus;
  /** Verifies the tokens of `auth` frames, as at upgrade. */
  authenticator: Authenticator;
  /** Closes sockets whose token expired; an `auth` frame moves the socket's expiry. */
  expiry: TokenExpiry<Socket>;
  /** The gateway's one way to write a frame to a socket (see sendFrame). */
  send(ws: Socket, frame: ServerFrame): void;
}

/** What an ack carries besides `type` and `ref`. */
export type AckBody = Record<string, unknown>;

/**
 * One handler per client frame type. Each returns the ack body or throws ChatError; the caller
 * turns that into an `ack` or `error` frame echoing `ref`. Authorization happens in the shared
 * command layer, never here. `issued` is told when a message command handed its event to the
 * stream: the socket's next frame may start then (see websocket.ts).
 */
export async function handleFrame(d: HandlerDeps, ws: Socket, frame: ClientFrame, issued?: Issued): Promise<AckBody> {
  const who = ws.getUserData().principal;
  switch (frame.type) {
    case 'join_room':
      return join(d, ws, who, frame.roomId);
    case 'leave_room': {
      await d.rooms.leave(who, frame.roomId);
      d.fanout.remove(ws, frame.roomId);
      return { roomId: frame.roomId, left: true };
    }
    case 'send_message':
      return send(d, ws, who, frame, issued);
    case 'message':
      return legacySend(d, ws, who, frame, issued);
    case 'edit_message': {
      const r = await d.messages.edit(who, frame, issued);
      return { roomId: frame.roomId, messageId: frame.messageId, seq: r.seq, editedAt: new Date(r.at).toISOString() };
    }
    case 'delete_message': {
      const r = await d.messages.delete(who, frame, issued);
      return { roomId: frame.roomId, messageId: frame.messageId, seq: r.seq };
    }
    case 'message_reaction': {
      const r = await d.messages.react(who, frame, issued);
      return { roomId: frame.roomId, messageId: frame.messageId, emoji: frame.emoji, action: r.action, seq: r.seq };
    }
    case 'pin_message':
    case 'unpin_message': {
      const pinned = frame.type === 'pin_message';
      const r = await d.messages.pin(who, { roomId: frame.roomId, messageId: frame.messageId, pinned }, issued);
      return { roomId: frame.roomId, messageId: frame.messageId, pinned, seq: r.seq };
    }
    case 'mark_read': {
      const r = await d.messages.offerReadMark(who, frame);
      return { roomId: frame.roomId, messageId: frame.messageId, ...('seq' in r ? { seq: r.seq } : { coalesced: true }) };
    }
    case 'typing_start':
    case 'typing_stop': {
      await d.guard.member(who, frame.roomId);
      if (frame.type === 'typing_start') await d.typing.start(ws.getUserData(), frame.roomId);
      else await d.typing.stop(ws.getUserData(), frame.roomId);
      return { roomId: frame.roomId };
    }
    case 'set_presence': {
      const info = await d.presence.setStatus(ws.getUserData(), frame);
      // coalesced: the status takes effect when the window ends, unless a later one replaces it
      if (info === undefined) return { status: frame.status, coalesced: true, ...(frame.customStatus ? { customStatus: frame.customStatus } : {}) };
      return { status: info.status, ...(info.customStatus ? { customStatus: info.customStatus } : {}) };
    }
    case 'resume':
      return resume(d, ws, who, frame);
    case 'ping':
      return { serverTime: new Date().toISOString() };
    case 'auth':
      return reauthenticate(d, ws, frame.token);
    default: {
      const never: never = frame;
      throw new ChatError('bad_frame', `unhandled frame ${JSON.stringify(never).slice(0, 40)}`);
    }
  }
}

async function join(d: HandlerDeps, ws: Socket, who: Principal, roomId: string): Promise<AckBody> {
  const { room, member, joined } = await d.rooms.join(who, roomId);
  d.fanout.add(ws, roomId);
  return { roomId, joined, role: member.role, memberCount: room.memberCount, roomType: room.type };
}

async function send(d: HandlerDeps, ws: Socket, who: Principal, frame: ClientFrameOf<'send_message'>, issued: Issued | undefined): Promise<AckBody> {
  // the frame is the input: the command reads the fields it knows (no copy per send)
  const roomId = frame.roomId;
  const result = await d.messages.send(who, frame, issued);
  // A message ends the sender's typing indicator in that room.
  d.typing.messageSent(ws.getUserData(), roomId);
  return {
    roomId, messageId: result.message.messageId, clientMsgId: result.message.clientMsgId, seq: result.seq,
    timestamp: result.message.timestamp, duplicate: result.duplicate,
  };
}

/** Seed 001: `{type:'message', data:{room, message}}`; joins a discoverable room on first use. */
async function legacySend(d: HandlerDeps, ws: Socket, who: Principal, frame: ClientFrameOf<'message'>, issued: Issued | undefined): Promise<AckBody> {
  const roomId = frame.data.room;
  if (!ws.getUserData().rooms.has(roomId)) await join(d, ws, who, roomId);
  const result = await d.messages.send(who, { roomId, content: frame.data.message }, issued);
  return { roomId, messageId: result.message.messageId, seq: result.seq, timestamp: result.message.timestamp };
}

/**
 * Each room once however often the frame names it (the last position given wins, as in a
 * fallback cursor), within the request's replay budget (see replayRooms).
 */
async function resume(d: HandlerDeps, ws: Socket, who: Principal, frame: ClientFrameOf<'resume'>): Promise<AckBody> {
  // Past RATE_LIMIT_RESUME the rooms are still subscribed but nothing is replayed: every room
  // answers recovered: false, so the client pages REST history and no gap is left behind.
  let limited = false;
  if (d.resumeRate) {
    try {
      await enforceRate(d.resumeRate.limiter, `resume:${who.tenant}:${who.userId}`, d.resumeRate.rule, 'resumes');
    } catch (err) {
      if (!(err instanceof ChatError && err.code === 'rate_limited')) throw err;
      limited = true;
    }
  }
  const named = new Map<string, string | undefined>();
  for (const { roomId, lastMessageId } of frame.rooms) named.set(roomId, lastMessageId || undefined);
  const refused: RoomResumed[] = [];
  const wanted = new Map<string, string | undefined>();
  const keys = new Map<string, RoomKey>();
  for (const [roomId, lastMessageId] of named) {
    try {
      keys.set(roomId, (await d.guard.member(who, roomId)).key);
    } catch (err) {
      if (err instanceof ChatError && (err.code === 'not_found' || err.code === 'forbidden')) {
        refused.push({ roomId, recovered: false, replayed: 0 });
        continue;
      }
      throw err;
    }
    // Subscribe first so nothing published during the replay is missed; the client drops repeats by seq.
    d.fanout.add(ws, roomId);
    wanted.set(roomId, lastMessageId);
  }
  const conn = ws.getUserData();
  const replayed = await replayRooms(d.bus, wanted, (roomId) => keys.get(roomId)!, limited ? { ...d.resume, maxEvents: 0 } : d.resume, {
    send: (f) => d.send(ws, f),
    closed: () => conn.closed,
    buffered: () => ws.getBufferedAmount(),
  });
  const results = [...replayed, ...refused];
  d.send(ws, { type: 'resumed', rooms: results });
  return limited ? { rooms: results, rateLimited: true } : { rooms: results };
}

/**
 * A fresh token for an open socket: verified as at upgrade, and for the same user and tenant (a
 * socket never changes hands: `forbidden` otherwise). The socket then lives until the new `exp`.
 */
async function reauthenticate(d: HandlerDeps, ws: Socket, token: string): Promise<AckBody> {
  const conn = ws.getUserData();
  let next: Principal;
  try {
    next = await d.authenticator.verify(token);
  } catch (err) {
    const e = toChatError(err);
    throw e.code === 'unauthorized' ? e : new ChatError('unauthorized', e.message, { cause: err });
  }
  const { userId, tenant } = conn.principal;
  if (next.userId !== userId || next.tenant !== tenant) throw new ChatError('forbidden', 'the token is for another user: a connection keeps the user it opened with');
  if (conn.closed) return { tokenExpiresAt: null };
  conn.principal = next;
  d.expiry.watch(ws, next.expiresAt);
  return { tokenExpiresAt: next.expiresAt === undefined ? null : new Date(next.expiresAt).toISOString() };
}
