import { ChatClientError } from './errors.ts';
import type {
  ArchiveState, CreateRoomInput, Me, MemberWithPresence, Message, MessagePage, MessageStatusView, OffsetPage, Presence, PresenceStatus, RoomDetails,
  RoomListItem, RoomType, SendOptions,
} from './types.ts';

export type FetchLike = (input: string, init?: {
  method?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal; cache?: 'no-store';
}) => Promise<{ ok: boolean; status: number; headers: { get(name: string): string | null }; text(): Promise<string>; body?: unknown }>;

/** Where the token comes from: a string, or a function asked before each connection and request. */
export type TokenSource = string | (() => string | Promise<string>);

export interface RestOptions {
  /** The server's HTTP base, e.g. `http://localhost:8080` (no trailing slash). */
  baseUrl: string;
  token: TokenSource;
  fetch?: FetchLike;
}

/**
 * The REST api under /v1/chat, unwrapped from its `{success, data}` envelope. Failures throw
 * ChatClientError with the server's code (or `unavailable` when the server was not reached).
 */
export class ChatRest {
  readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;

  constructor(private readonly opts: RestOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    const f = opts.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f) throw new TypeError('no fetch: pass options.fetch');
    this.fetchImpl = f.bind(globalThis);
  }

  async token(): Promise<string> {
    return typeof this.opts.token === 'function' ? this.opts.token() : this.opts.token;
  }

  /** One call; `path` is under the base URL (`/v1/chat/...`). */
  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return unwrap<T>(await this.send(method, path, body, {}, signal), `${method} ${path}`);
  }

  /** One call whose answer the caller reads itself (a stream); a network failure is `unavailable`. */
  async send(method: string, path: string, body: unknown, headers: Record<string, string>, signal?: AbortSignal): Promise<Awaited<ReturnType<FetchLike>>> {
    const token = await this.token();
    try {
      return await this.fetchImpl(this.baseUrl + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new ChatClientError('unavailable', `${method} ${path}: ${(err as Error)?.message ?? 'network error'}`, { cause: err });
    }
  }

  me(): Promise<Me> {
    return this.request('GET', '/v1/chat/me');
  }

  /** Your rooms and discoverable ones, without those you archived; `archived: true` lists only those. */
  listRooms(q: { scope?: 'all' | 'joined' | 'discover'; type?: RoomType; archived?: boolean; limit?: number; offset?: number } = {}): Promise<{ rooms: RoomListItem[]; pagination: OffsetPage }> {
    const { archived, ...rest } = q;
    return this.request('GET', `/v1/chat/rooms${query({ ...rest, archived: archived === undefined ? undefined : String(archived) })}`);
  }

  /** Archives the room for you alone: your list hides it, other members' lists do not change. */
  archiveRoom(roomId: string): Promise<ArchiveState> {
    return this.request('POST', `/v1/chat/rooms/${enc(roomId)}/archive`);
  }

  unarchiveRoom(roomId: string): Promise<ArchiveState> {
    return this.request('POST', `/v1/chat/rooms/${enc(roomId)}/unarchive`);
  }

  createRoom(input: CreateRoomInput): Promise<RoomDetails> {
    return this.request('POST', '/v1/chat/rooms', input);
  }

  getRoom(roomId: string): Promise<RoomDetails> {
    return this.request('GET', `/v1/chat/rooms/${enc(roomId)}`);
  }

  joinRoom(roomId: string): Promise<{ roomId: string; joined: true; role: string; memberCount: number }> {
    return this.request('POST', `/v1/chat/rooms/${enc(roomId)}/join`);
  }

  leaveRoom(roomId: string): Promise<{ roomId: string; left: true }> {
    return this.request('DELETE', `/v1/chat/rooms/${enc(roomId)}/leave`);
  }

  members(roomId: string, page: { limit?: number; offset?: number } = {}): Promise<{ members: MemberWithPresence[]; pagination: OffsetPage }> {
    return this.request('GET', `/v1/chat/rooms/${enc(roomId)}/members${query(page)}`);
  }

  invite(roomId: string, userId: string, displayName?: string): Promise<unknown> {
    return this.request('POST', `/v1/chat/rooms/${enc(roomId)}/members`, { userId, ...(displayName ? { displayName } : {}) });
  }

  /** Newest first. `before` pages back in time; `after` alone pages forward. */
  history(roomId: string, q: { before?: string; after?: string; limit?: number } = {}): Promise<MessagePage> {
    return this.request('GET', `/v1/chat/rooms/${enc(roomId)}/messages${query(q)}`);
  }

  /** Every message of a room newer than `after`, oldest first, walking pages forward. */
  async *historySince(roomId: string, after: string, pageSize = 100): AsyncGenerator<Message> {
    let cursor = after;
    for (;;) {
      const page = await this.history(roomId, { after: cursor, limit: pageSize });
      for (const m of [...page.messages].reverse()) yield m;
      if (!page.pagination.hasMore || !page.pagination.after) return;
      cursor = page.pagination.after;
    }
  }

  getMessage(roomId: string, messageId: string): Promise<Message> {
    return this.request('GET', `/v1/chat/rooms/${enc(roomId)}/messages/${enc(messageId)}`);
  }

  search(q: string, opts: { roomId?: string; limit?: number } = {}): Promise<{ query: string; messages: Message[] }> {
    return this.request('GET', `/v1/chat/search${query({ q, ...opts })}`);
  }

  presence(userIds: string[]): Promise<{ presence: Presence[] }> {
    return this.request('GET', `/v1/chat/presence${query({ userIds: userIds.join(',') })}`);
  }

  messageStatus(roomId: string, messageId: string): Promise<MessageStatusView> {
    return this.request('GET', `/v1/chat/rooms/${enc(roomId)}/messages/${enc(messageId)}/status`);
  }

  // Writes. The ChatClient uses these when it runs without a WebSocket.

  sendMessage(roomId: string, content: string, opts: SendOptions = {}): Promise<{ message: Message; seq: number; duplicate: boolean }> {
    return this.request('POST', `/v1/chat/rooms/${enc(roomId)}/messages`, { content, ...opts });
  }

  editMessage(roomId: string, messageId: string, content: string): Promise<{ seq: number; editedAt: string }> {
    return this.request('PATCH', `/v1/chat/rooms/${enc(roomId)}/messages/${enc(messageId)}`, { content });
  }

  deleteMessage(roomId: string, messageId: string): Promise<{ seq: number }> {
    return this.request('DELETE', `/v1/chat/rooms/${enc(roomId)}/messages/${enc(messageId)}`);
  }

  react(roomId: string, messageId: string, emoji: string, action: 'add' | 'remove' = 'add'): Promise<{ action: 'add' | 'remove'; seq: number }> {
    const path = `/v1/chat/rooms/${enc(roomId)}/messages/${enc(messageId)}/reactions`;
    return action === 'add' ? this.request('POST', path, { emoji }) : this.request('DELETE', `${path}/${enc(emoji)}`);
  }

  pin(roomId: string, messageId: string, pinned: boolean): Promise<{ pinned: boolean; seq: number }> {
    return this.request(pinned ? 'POST' : 'DELETE', `/v1/chat/rooms/${enc(roomId)}/messages/${enc(messageId)}/pin`);
  }

  markRead(roomId: string, messageId: string): Promise<{ seq: number; readAt: string }> {
    return this.request('POST', `/v1/chat/rooms/${enc(roomId)}/read`, { messageId });
  }

  setPresence(status: PresenceStatus, customStatus?: string): Promise<Presence> {
    return this.request('PUT', '/v1/chat/presence', { status, ...(customStatus !== undefined ? { customStatus } : {}) });
  }
}

/** The envelope's data, or a ChatClientError with the envelope's code. */
export async function unwrap<T>(res: Awaited<ReturnType<FetchLike>>, what: string): Promise<T> {
  const text = await res.text();
  let body: { success?: boolean; data?: unknown; error?: { code?: string; message?: string; details?: { retryAfterMs?: unknown } } } | undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (res.ok && body?.success) return body.data as T;
  const retryAfter = Number(res.headers.get('retry-after'));
  const detailMs = body?.error?.details?.retryAfterMs;
  throw new ChatClientError(body?.error?.code ?? httpCode(res.status), body?.error?.message ?? `${what}: HTTP ${res.status}`, {
    status: res.status,
    ...(typeof detailMs === 'number' ? { retryAfterMs: detailMs } : retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
  });
}

function httpCode(status: number): string {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'unavailable';
  return 'bad_request';
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function query(q: Record<string, string | number | undefined>): string {
  const parts = Object.entries(q).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}
