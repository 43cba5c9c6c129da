import { jwtVerify } from 'jose';
import { benchTokenKey } from '../lib/tokens.ts';

/**
 * The slice of chat-svc's JSON wire protocol the reference peers speak, so the load driver, the
 * payload and the connection shape are the same for every server: `welcome` at connect,
 * `join_room` (subscribe, `user_joined` to the room, ack), `send_message` (a `new_message` frame
 * with the same fields chat-svc sends, to every member including the sender, then an ack) and
 * `resume` (ack, nothing to replay). Tokens are verified like chat-svc does (HS256, jose).
 */
export interface ClientRequest {
  type: string;
  ref?: string | number;
  roomId?: string;
  content?: string;
  clientMsgId?: string;
  rooms?: Array<{ roomId: string }>;
}

export async function verifyToken(token: string | null | undefined): Promise<string> {
  if (!token) throw new Error('no token');
  const { payload } = await jwtVerify(token, benchTokenKey, { algorithms: ['HS256'] });
  if (typeof payload.sub !== 'string') throw new Error('token has no sub');
  return payload.sub;
}

export function tokenFromQuery(query: string): string | null {
  return new URLSearchParams(query).get('token');
}

let nextId = 0n;
let seq = 0;

/**
 * The frames a peer sends for one `send_message`: the room's `new_message` and the sender's ack,
 * as objects (Socket.IO encodes them itself; the other peers stringify each once per send).
 */
export function messageFrames(userId: string, req: ClientRequest): { broadcast: object; ack: object } {
  const messageId = String(++nextId);
  const timestamp = new Date().toISOString();
  const s = ++seq;
  return {
    broadcast: {
      type: 'new_message', roomId: req.roomId, seq: s,
      message: {
        messageId, roomId: req.roomId, authorId: userId, authorName: userId, content: req.content, type: 'text',
        ...(req.clientMsgId ? { clientMsgId: req.clientMsgId } : {}), timestamp, reactions: {}, isDeleted: false,
      },
    },
    ack: { type: 'ack', ref: req.ref, action: 'send_message', roomId: req.roomId, messageId, clientMsgId: req.clientMsgId, seq: s, timestamp, duplicate: false },
  };
}

export function welcomeFrame(userId: string, connectionId: number): object {
  return { type: 'welcome', userId, name: userId, tenant: 'default', connectionId: String(connectionId), format: 'json', rooms: [] };
}

export function joinFrames(userId: string, req: ClientRequest): { broadcast: object; ack: object } {
  return {
    broadcast: { type: 'user_joined', roomId: req.roomId, user: { userId, name: userId } },
    ack: { type: 'ack', ref: req.ref, action: 'join_room', roomId: req.roomId, joined: true, role: 'member' },
  };
}

export function resumeAck(req: ClientRequest): object {
  return { type: 'ack', ref: req.ref, action: 'resume', rooms: (req.rooms ?? []).map((r) => ({ roomId: r.roomId, recovered: false, replayed: 0 })) };
}

export function errorFrame(ref: string | number | undefined, message: string): object {
  return { type: 'error', code: 'bad_frame', message, ref };
}

/** The line the bench's process starter waits for. */
export function announce(name: string, port: number): void {
  process.stdout.write(JSON.stringify({ msg: `${name} listening`, port }) + '\n');
}

/** Peers exit on SIGTERM/SIGINT at once: there is nothing to flush. */
export function exitOnSignals(close: () => void): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      close();
      process.exit(0);
    });
  }
}
