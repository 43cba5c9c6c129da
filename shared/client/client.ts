import { DEFAULT_BACKOFF } from './backoff.ts';
import { ChatConnection } from './connection.ts';
import { ChatClientError } from './errors.ts';
import { Gateways } from './gateways.ts';
import { Emitter, FRAME_EVENTS, type ChatEventName, type ConnectionState, type Listener } from './events.ts';
import type { ChatClientOptions } from './options.ts';
import { RequestQueue } from './request-queue.ts';
import { ChatRest, type FetchLike } from './rest.ts';
import { askAi, type AiAnswer, type AskOptions } from './ai.ts';
import type { Request } from './rest-commands.ts';
import { RoomCursors } from './room-cursors.ts';
import type { EventSourceConstructor, TransportKind, WebSocketConstructor } from './transport.ts';
import type { FrameOf, Message, MessagePage, PresenceStatus, SendAck, SendOptions, ServerFrame } from './types.ts';

export type { ChatClientOptions } from './options.ts';

type Welcome = FrameOf<'welcome'>;

/** Pages of history fetched to fill a gap the server could not replay, at most. */
const GAP_FILL_PAGES = 10;

/**
 * A chat connection that stays up: reconnects with jittered backoff, resumes each room where it
 * left off (the application sees every durable event once), retries requests until acked or
 * refused, and falls back to SSE + REST (then long-polling) when no WebSocket can be opened.
 *
 * This class is the application's view; the work is done by the connection (connection.ts: its
 * life, reconnects, fallback), the request queue (request-queue.ts: acks, retries) and the room
 * cursors (room-cursors.ts: what was delivered, so nothing is shown twice).
 */
export class ChatClient {
  readonly rest: ChatRest;
  /**
   * The AI assistant: `ai.ask(question, { roomId, onDelta })`. In rooms with AI enabled, messages
   * starting with `@ai` are answered in the room: listen to `ai_response` for the streamed pieces;
   * the stored answer then arrives as a `message` of type `ai_response`.
   */
  readonly ai: { ask(question: string, opts?: AskOptions): Promise<AiAnswer> };
  /** Who the server says we are (after the first `welcome`). */
  user: { userId: string; name: string; tenant: string } | undefined;

  private readonly emitter = new Emitter();
  private readonly cursors: RoomCursors;
  private readonly requests: RequestQueue;
  private readonly connection: ChatConnection;
  /** Rooms the connection receives. */
  private readonly joined = new Set<string>();

  constructor(opts: ChatClientOptions) {
    const g = globalThis as unknown as { WebSocket?: WebSocketConstructor; EventSource?: EventSourceConstructor; fetch?: FetchLike };
    const WebSocketImpl = opts.WebSocket === null ? undefined : opts.WebSocket ?? g.WebSocket;
    const EventSourceImpl = opts.EventSource === null ? undefined : opts.EventSource ?? g.EventSource;
    const f = opts.fetch ?? g.fetch;
    if (!f) throw new TypeError('no fetch: pass options.fetch');
    const fetchImpl = f.bind(globalThis);
    this.rest = new ChatRest({ baseUrl: opts.url, token: opts.token, fetch: fetchImpl });
    const rest = this.rest;
    this.ai = { ask: (question, askOpts) => askAi(rest, question, askOpts) };
    this.cursors = new RoomCursors(opts.seenPerRoom ?? 5000);
    const backoff = { ...DEFAULT_BACKOFF, ...opts.reconnect };
    const kinds = (opts.transports ?? ['websocket', 'sse', 'poll']).filter((k) => k !== 'websocket' || WebSocketImpl !== undefined);
    if (kinds.length === 0) throw new TypeError('no usable transport (no WebSocket constructor and no fallback allowed)');
    this.requests = new RequestQueue(backoff, opts.requestTimeoutMs ?? 10_000);
    this.connection = new ChatConnection({
      options: opts, rest: this.rest, fetch: fetchImpl, WebSocket: WebSocketImpl, EventSource: EventSourceImpl, kinds, backoff,
      gateways: new Gateways(opts.url, opts.gateways),
      emitter: this.emitter, requests: this.requests, cursors: this.cursors, joined: this.joined,
      onWelcome: (w) => this.onWelcome(w),
      onFrame: (frame) => this.onFrame(frame),
    });
  }

  get state(): ConnectionState {
    return this.connection.state;
  }

  /** The transport in use (or being opened). */
  get transportKind(): TransportKind {
    return this.connection.kind;
  }

  /** Rooms the connection receives events of. */
  get rooms(): string[] {
    return [...this.joined];
  }

  on<K extends ChatEventName>(event: K, fn: Listener<K>): () => void {
    return this.emitter.on(event, fn);
  }

  once<K extends ChatEventName>(event: K, fn: Listener<K>): () => void {
    return this.emitter.once(event, fn);
  }

  off<K extends ChatEventName>(event: K, fn: Listener<K>): void {
    this.emitter.off(event, fn);
  }

  /** Connects (once; later calls wait for the same connection). Resolves with the first `welcome`. */
  connect(): Promise<Welcome> {
    return this.connection.connect();
  }

  /** Disconnects for good; requests not yet acked are rejected. */
  close(): void {
    this.connection.close();
  }

  // ---- requests

  /** Sends a message; resolves once the server stored it. Retries never make a second message. */
  async send(roomId: string, content: string, opts: SendOptions = {}): Promise<SendAck> {
    const clientMsgId = opts.clientMsgId ?? newClientMsgId();
    const body = await this.request({ ...opts, type: 'send_message', roomId, content, clientMsgId });
    return { ...(body as unknown as SendAck), clientMsgId };
  }

  async join(roomId: string): Promise<{ roomId: string; joined: boolean; role: string; memberCount: number }> {
    const body = await this.request({ type: 'join_room', roomId });
    this.joined.add(roomId);
    return body as never;
  }

  async leave(roomId: string): Promise<void> {
    await this.request({ type: 'leave_room', roomId });
    this.joined.delete(roomId);
  }

  async edit(roomId: string, messageId: string, content: string): Promise<{ seq: number; editedAt: string }> {
    return this.request({ type: 'edit_message', roomId, messageId, content }) as never;
  }

  async deleteMessage(roomId: string, messageId: string): Promise<{ seq: number }> {
    return this.request({ type: 'delete_message', roomId, messageId }) as never;
  }

  async react(roomId: string, messageId: string, emoji: string, action: 'add' | 'remove' = 'add'): Promise<{ action: 'add' | 'remove'; seq: number }> {
    return this.request({ type: 'message_reaction', roomId, messageId, emoji, action }) as never;
  }

  async pin(roomId: string, messageId: string, pinned = true): Promise<{ pinned: boolean; seq: number }> {
    return this.request({ type: pinned ? 'pin_message' : 'unpin_message', roomId, messageId }) as never;
  }

  async markRead(roomId: string, messageId: string): Promise<{ seq: number }> {
    return this.request({ type: 'mark_read', roomId, messageId }) as never;
  }

  async setPresence(status: PresenceStatus, customStatus?: string): Promise<{ status: PresenceStatus }> {
    return this.request({ type: 'set_presence', status, ...(customStatus !== undefined ? { customStatus } : {}) }) as never;
  }

  /**
   * Typing is ephemeral: sent only while connected, never queued or retried. Without a WebSocket
   * there is no way to send it (the REST api has no typing route), so it is dropped.
   */
  typing(roomId: string, isTyping: boolean): void {
    this.connection.sendEphemeral({ type: isTyping ? 'typing_start' : 'typing_stop', roomId });
  }

  /**
   * A page of history (newest first). Its messages count as seen: a later replay of one of them
   * is not emitted as a `message` event, and the room resumes from the newest.
   */
  async history(roomId: string, q: { before?: string; after?: string; limit?: number } = {}): Promise<MessagePage> {
    const page = await this.rest.history(roomId, q);
    for (const m of page.messages) this.cursors.acceptMessage(m);
    return page;
  }

  private request(request: Request): Promise<Record<string, unknown>> {
    if (this.connection.state === 'closed') return Promise.reject(new ChatClientError('unavailable', 'the client was closed'));
    return this.requests.add(request);
  }

  // ---- frames

  private onWelcome(w: Welcome): void {
    this.user = { userId: w.userId, name: w.name, tenant: w.tenant };
    this.joined.clear();
    for (const roomId of w.rooms) this.joined.add(roomId);
  }

  /** Frames after `welcome`: answers settle requests, durable events are delivered once each. */
  private onFrame(f: ServerFrame): void {
    switch (f.type) {
      case 'ack':
      case 'error':
        if (f.ref !== undefined && this.requests.settle(f)) return;
        if (f.type === 'error') this.emitter.emit('error', new ChatClientError(f.code, f.message));
        return;
      case 'pong':
        return;
      case 'reconnect':
        break; // the connection acts on it (connection.ts); the application may want to know
      case 'resumed':
        for (const r of f.rooms) if (!r.recovered && this.joined.has(r.roomId)) void this.fillGap(r.roomId);
        break;
      case 'user_joined':
        if (f.user.userId === this.user?.userId) this.joined.add(f.roomId);
        break;
      case 'user_left':
        if (f.user.userId === this.user?.userId) this.joined.delete(f.roomId);
        break;
      default:
        break;
    }
    if (!this.cursors.accept(f)) return;
    this.emitter.emit('frame', f);
    const event = FRAME_EVENTS[f.type];
    if (event) this.emitter.emit(event, f as never);
  }

  /** The server could not replay this room's gap: fetch the missed messages over REST. */
  private async fillGap(roomId: string): Promise<void> {
    const after = this.connection.resume.gapStart(roomId);
    try {
      if (after !== undefined) {
        let n = 0;
        for await (const m of this.rest.historySince(roomId, after)) {
          if (this.cursors.acceptMessage(m)) this.emitMessage(m);
          if (++n >= GAP_FILL_PAGES * 100) break;
        }
      }
    } catch (err) {
      this.emitter.emit('error', err instanceof ChatClientError ? err : new ChatClientError('unavailable', String(err)));
    }
    this.emitter.emit('resync', { roomId });
  }

  /** A message learnt from history, shown as the live frame would have been (`seq` 0: not from the stream). */
  private emitMessage(message: Message): void {
    const frame: FrameOf<'new_message'> = { type: 'new_message', roomId: message.roomId, message, seq: 0 };
    this.emitter.emit('frame', frame);
    this.emitter.emit('message', frame);
  }
}

/** A random id for a send; a retry reuses it. */
export function newClientMsgId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}${Math.random().toString(36).slice(2, 12)}`;
}
