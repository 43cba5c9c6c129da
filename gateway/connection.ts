import type { WebSocket } from 'uWebSockets.js';
import type { Principal } from '../shared/auth/index.ts';
import { encodeFrame, type ServerFrame, type WireFormat } from '../shared/protocol/index.ts';

/** What a socket carries (uWS user data). Kept small: idle connections are most of the memory. */
export interface Connection {
  principal: Principal;
  connectionId: string;
  format: WireFormat;
  /** Seed 001 client (`/ws?room=`): also receives `{type:'message'}` frames. */
  legacy: boolean;
  /** Room joined at connect by `/ws?room=`. */
  initialRoom: string | undefined;
  device: string | undefined;
  /** Rooms whose topics this socket is subscribed to. */
  rooms: Set<string>;
  /** Typing expiry timers by room; created on first typing_start. */
  typing: Map<string, NodeJS.Timeout> | undefined;
  /** Frames that change stored state start one after another (websocket.ts), so each sender's order is kept. */
  queue: Promise<void>;
  closed: boolean;
  /** The welcome was sent: a close before it is logged at warn. */
  welcomed: boolean;
  /** When the socket opened (ms since epoch), for that log. */
  openedAt: number;
}

export type Socket = WebSocket<Connection>;

/**
 * The one way a frame reaches one WebSocket (acks, errors, user frames, replays): in the socket's
 * encoding, corked (it may run after an await), never after the socket closed. Room frames do not
 * come this way: the fan-out publishes them to uWS topics.
 */
export function sendFrame(ws: Socket, frame: ServerFrame): void {
  const conn = ws.getUserData();
  if (conn.closed) return;
  ws.cork(() => ws.send(encodeFrame(frame, conn.format), conn.format === 'msgpack'));
}

export const SUBPROTOCOL_MSGPACK = 'chat.v1.msgpack';
export const SUBPROTOCOL_JSON = 'chat.v1.json';

/**
 * Picks the outbound encoding: a subprotocol the client offered wins, then `?format=`, then JSON
 * (so a plain `new WebSocket(url)` with JSON.stringify works). Returns the subprotocol to echo.
 */
export function negotiateFormat(offered: string, query: URLSearchParams): { format: WireFormat; protocol: string } {
  const protocols = offered ? offered.split(',').map((p) => p.trim()) : [];
  if (protocols.includes(SUBPROTOCOL_MSGPACK)) return { format: 'msgpack', protocol: SUBPROTOCOL_MSGPACK };
  if (protocols.includes(SUBPROTOCOL_JSON)) return { format: 'json', protocol: SUBPROTOCOL_JSON };
  return { format: query.get('format') === 'msgpack' ? 'msgpack' : 'json', protocol: '' };
}
