import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
import { ChatClientError } from './errors.ts';
import { Emitter, FRAME_EVENTS, type ChatEventName, type ConnectionState, type Listener } from './events.ts';
import { openPoll, openSse } from './fallback-transports.ts';
import { ChatRest, type FetchLike, type TokenSource } from './rest.ts';
import type { Request } from './rest-commands.ts';
import { idAt, maxId, RoomCursors } from './room-cursors.ts';
import type { EventSourceConstructor, Transport, TransportKind, WebSocketConstructor } from './transport.ts';
import type { FrameOf, Message, MessagePage, PresenceStatus, SendAck, SendOptions, ServerFrame } from './types.ts';
import { createCodec, type Codec, type WireFormat } from './wire.ts';
import { openWebSocket } from './websocket-transport.ts';

export interface ChatClientOptions {
  /** The server's HTTP base URL, e.g. `http://localhost:8080`; the WebSocket is `/chat` on it. */
  url: string;
  /** A token, or a function asked before each connection (to refresh an expiring token). */
  token: TokenSource;
  /** What the server sends on the WebSocket (default json). Fallback transports are always JSON. */
  format?: WireFormat;
  /** Default `globalThis.WebSocket` (Node 20 has none: pass `ws`'s). `null`: never use a WebSocket. */
  WebSocket?: WebSocketConstructor | null;
  /** Default `globalThis.EventSource`; without one, SSE is read with fetch. */
  EventSource?: EventSourceConstructor | null;
  fetch?: FetchLike;
  /** Transports in order of preference (default websocket, sse, poll). */
  transports?: TransportKind[];
  reconnect?: Partial<BackoffOptions>;
  /**
   * Failures to open a transport, in a row and before it ever opened, after which the next
   * transport is used, provided the server answers over HTTP (so a server that is down is waited
   * for, not fallen back from). Default 3.
   */
  fallbackAfterFailures?: number;
  /** An unanswered request is sent again after this long (same clientMsgId). Default 10 s. */
  requestTimeoutMs?: number;
  /** WebSocket liveness: a ping this often; no frame for two intervals ends the socket. Default 25 s; 0 disables. */
  pingIntervalMs?: number;
  /** Durable events remembered per room to drop repeats. Default 5000. */
  seenPerRoom?: number;
  device?: 'web' | 'mobile' | 'desktop';
  /** Long-poll hold time to ask for (seconds; the server caps it at 25). */
  pollHoldSeconds?: number;
}

type Welcome = FrameOf<'welcome'>;

/** A request waiting for its ack: queued while disconnected, retried with the same content (and clientMsgId). */
interface Pending {
  request: Request;
  resolve(body: Record<string, unknown>): void;
  reject(err: ChatClientError): void;
  /** The ref of the attempt in flight. */
  ref: string | undefined;
  /** A retry or timeout is scheduled. */
  timer: ReturnType<typeof setTimeout> | undefined;
  attempts: number;
}

/** Resume starts this much before the last moment the client knows it was live (clock estimate error). */
const RESUME_MARGIN_MS = 2000;
/** Pages of history fetched to fill a gap the server could not replay, at most. */
const GAP_FILL_PAGES = 10;
const RESUME_MAX_ROOMS = 500;

/**
 * A chat connection that stays up: reconnects with jittered backoff, resumes each room where it
 * left off (the application sees every durable event once), retries requests until acked or
 * refused, and falls back to SSE + REST (then long-polling) when no WebSocket can be opened.
 */
export class ChatClient {
  readonly rest: ChatRest;
  /** Who the server says we are (after the first `welcome`). */
  user: { userId: string; name: string; tenant: string } | undefined;

  private readonly emitter = new Emitter();
  private readonly cursors: RoomCursors;
  private readonly backoff: BackoffOptions;
  private readonly kinds: TransportKind[];
  private readonly WebSocketImpl: WebSocketConstructor | undefined;
  private readonly EventSourceImpl: EventSourceConstructor | undefined;
  private readonly fetchImpl: FetchLike;
  private codec: Codec | undefined;

  private _state: ConnectionState = 'idle';
  private mode: TransportKind;
  private transport: Transport | undefined;
  /** The current transport said welcome. */
  private welcomed = false;
  private lastWelcome: Welcome | undefined;
  private readonly everOpened = new Set<TransportKind>();
  private failures = 0;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  /** Local time of the last frame on a welcomed transport. */
  private lastFrameAt = 0;
  private serverOffsetMs = 0;
  /** Server time up to which the previous connection is known to have been live. */
  private liveUntil: number | undefined;
  /**
   * The position the server vouches for (SSE event ids): it stops moving while the server repairs
   * a gap in its live feed, which the client cannot see, so resuming never starts after it.
   */
  private serverPosition: string | undefined;
  /** Rooms the connection receives. */
  private readonly joined = new Set<string>();
  private readonly queue: Pending[] = [];
  private readonly inFlight = new Map<string, Pending>();
  private refSeq = 0;
  private waiters: Array<{ resolve(w: Welcome): void; reject(err: ChatClientError): void }> = [];

  constructor(private readonly opts: ChatClientOptions) {
    const g = globalThis as unknown as { WebSocket?: WebSocketConstructor; EventSource?: EventSourceConstructor; fetch?: FetchLike };
    this.WebSocketImpl = opts.WebSocket === null ? undefined : opts.WebSocket ?? g.WebSocket;
    this.EventSourceImpl = opts.EventSource === null ? undefined : opts.EventSource ?? g.EventSource;
    const f = opts.fetch ?? g.fetch;
    if (!f) throw new TypeError('no fetch: pass options.fetch');
    this.fetchImpl = f.bind(globalThis);
    this.rest = new ChatRest({ baseUrl: opts.url, token: opts.token, fetch: this.fetchImpl });
    this.cursors = new RoomCursors(opts.seenPerRoom ?? 5000);
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.reconnect };
    this.kinds = (opts.transports ?? ['websocket', 'sse', 'poll']).filter((k) => k !== 'websocket' || this.WebSocketImpl !== undefined);
    if (this.kinds.length === 0) throw new TypeError('no usable transport (no WebSocket constructor and no fallback allowed)');
    this.mode = this.kinds[0]!;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The transport in use (or being opened). */
  get transportKind(): TransportKind {
    return this.mode;
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
    if (this._state === 'closed') return Promise.reject(new ChatClientError('unavailable', 'the client was closed'));
    if (this._state === 'open' && this.lastWelcome) return Promise.resolve(this.lastWelcome);
    const p = new Promise<Welcome>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (this._state === 'idle') {
      this.setState('connecting');
      void this.open();
    }
    return p;
  }

  /** Disconnects for good; requests not yet acked are rejected. */
  close(): void {
    if (this._state === 'closed') return;
    this.setState('closed');
    clearTimeout(this.reconnectTimer);
    this.stopPing();
    const t = this.transport;
    this.transport = undefined;
    t?.close(1000, 'client closed');
    const err = new ChatClientError('unavailable', 'the client was closed');
    for (const p of this.queue.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.inFlight.clear();
    for (const w of this.waiters.splice(0)) w.reject(err);
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
    if (this.welcomed && this.transport?.kind === 'websocket') this.transport.send({ type: isTyping ? 'typing_start' : 'typing_stop', roomId });
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

  // ---- connection

  private setState(s: ConnectionState): void {
    if (this._state === s) return;
    this._state = s;
    this.emitter.emit('state', s);
  }

  private async open(): Promise<void> {
    let token: string;
    try {
      token = await this.rest.token();
      if (this.mode === 'websocket') this.codec ??= await createCodec(this.opts.format ?? 'json');
    } catch (err) {
      if (this._state === 'closed') return;
      this.emitter.emit('error', new ChatClientError('unauthorized', `no token: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      this.failures++;
      return this.scheduleReconnect();
    }
    if (this._state === 'closed') return;
    this.welcomed = false;
    let t: Transport | undefined = undefined;
    const handlers = {
      onOpen: () => {},
      onFrame: (f: ServerFrame) => { if (this.transport === t) this.onFrame(f); },
      onClose: (info: { code: number; reason: string; opened: boolean; error?: ChatClientError }) => {
        if (this.transport === t) this.onTransportClose(info);
      },
      onPosition: (id: string) => {
        if (this.transport === t && id.startsWith('*:')) this.serverPosition = id.slice(2);
      },
    };
    const common = { rest: this.rest, fetch: this.fetchImpl, token, resume: () => this.resumeText(), ...(this.opts.device ? { device: this.opts.device } : {}) };
    if (this.mode === 'websocket') {
      t = openWebSocket({
        WebSocket: this.WebSocketImpl!, wsUrl: this.rest.baseUrl.replace(/^http/, 'ws'), token, codec: this.codec!,
        ...(this.opts.device ? { device: this.opts.device } : {}),
      }, handlers);
    } else if (this.mode === 'sse') {
      t = openSse({ ...common, EventSource: this.EventSourceImpl }, handlers);
    } else {
      t = openPoll({ ...common, ...(this.opts.pollHoldSeconds !== undefined ? { holdSeconds: this.opts.pollHoldSeconds } : {}) }, handlers);
    }
    this.transport = t;
  }

  private onFrame(f: ServerFrame): void {
    if (f.type === 'welcome') return this.onWelcome(f);
    if (!this.welcomed) return;
    this.lastFrameAt = Date.now();
    switch (f.type) {
      case 'ack':
      case 'error':
        if (f.ref !== undefined && this.settle(f)) return;
        if (f.type === 'error') this.emitter.emit('error', new ChatClientError(f.code, f.message));
        return;
      case 'pong':
        return;
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

  private onWelcome(w: Welcome): void {
    const reconnected = this.lastWelcome !== undefined;
    this.serverOffsetMs = Date.parse(w.serverTime) - Date.now();
    this.lastFrameAt = Date.now();
    this.user = { userId: w.userId, name: w.name, tenant: w.tenant };
    this.joined.clear();
    for (const roomId of w.rooms) this.joined.add(roomId);
    this.welcomed = true;
    this.lastWelcome = w;
    this.everOpened.add(this.mode);
    this.failures = 0;
    this.attempt = 0;
    // Over SSE and long-poll the resume positions went with the request; a WebSocket asks now.
    if (reconnected && this.transport?.kind === 'websocket') {
      const rooms = w.rooms.slice(0, RESUME_MAX_ROOMS).map((roomId) => {
        const lastMessageId = this.resumePosition(roomId);
        return lastMessageId ? { roomId, lastMessageId } : { roomId };
      });
      if (rooms.length) this.transport.send({ type: 'resume', rooms, ref: `resume${++this.refSeq}` });
    }
    this.setState('open');
    this.startPing();
    this.flush();
    this.emitter.emit('connected', { transport: this.mode, welcome: w, reconnected });
    for (const waiter of this.waiters.splice(0)) waiter.resolve(w);
  }

  private onTransportClose(info: { code: number; reason: string; opened: boolean; error?: ChatClientError }): void {
    const wasOpen = this.welcomed;
    this.transport = undefined;
    this.welcomed = false;
    this.stopPing();
    if (wasOpen) this.liveUntil = this.lastFrameAt + this.serverOffsetMs;
    for (const p of this.queue) {
      clearTimeout(p.timer);
      p.timer = undefined;
      p.ref = undefined;
    }
    this.inFlight.clear();
    if (this._state === 'closed') return;
    this.setState(this.lastWelcome ? 'reconnecting' : 'connecting');
    if (wasOpen) this.emitter.emit('disconnected', { code: info.code, reason: info.reason });
    if (info.error?.code === 'unauthorized' && typeof this.opts.token !== 'function') return this.fail(info.error);
    if (wasOpen) this.failures = 0;
    else this.failures++;
    void this.maybeFallBack().then(() => this.scheduleReconnect());
  }

  /** Moves to the next transport when this one never opened, but the server answers over HTTP. */
  private async maybeFallBack(): Promise<void> {
    const limit = this.opts.fallbackAfterFailures ?? 3;
    const next = this.kinds[this.kinds.indexOf(this.mode) + 1];
    if (!next || this.failures < limit || this.everOpened.has(this.mode)) return;
    try {
      await this.rest.me();
    } catch (err) {
      const e = err as ChatClientError;
      if (e.code === 'unauthorized' && typeof this.opts.token !== 'function') this.fail(e);
      return; // down, or the token is refused: keep trying the same way
    }
    if (this._state === 'closed') return;
    this.emitter.emit('fallback', { from: this.mode, to: next });
    this.mode = next;
    this.failures = 0;
    this.attempt = 0;
  }

  private scheduleReconnect(): void {
    if (this._state === 'closed' || this.transport) return;
    const delayMs = backoffDelay(this.attempt, this.backoff);
    this.attempt++;
    this.setState(this.lastWelcome ? 'reconnecting' : 'connecting');
    this.emitter.emit('reconnecting', { attempt: this.attempt, delayMs, transport: this.mode });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.open(), delayMs);
  }

  private fail(err: ChatClientError): void {
    this.emitter.emit('error', err);
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.close();
  }

  private startPing(): void {
    const every = this.opts.pingIntervalMs ?? 25_000;
    if (every <= 0 || this.transport?.kind !== 'websocket') return;
    this.stopPing();
    this.pingTimer = setInterval(() => {
      const t = this.transport;
      if (!t || !this.welcomed) return;
      if (Date.now() - this.lastFrameAt > 2 * every) {
        // Nothing came back, not even a pong: the connection is dead without having said so.
        t.close(4000, 'no answer to ping');
        this.onTransportClose({ code: 4000, reason: 'no answer to ping', opened: true });
        return;
      }
      t.send({ type: 'ping' });
    }, every);
    (this.pingTimer as { unref?: () => void }).unref?.();
  }

  private stopPing(): void {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  // ---- resume

  /** Server time up to which everything reached us: now while connected, else when the last connection ended. */
  private liveAt(): number | undefined {
    return this.welcomed ? this.lastFrameAt + this.serverOffsetMs : this.liveUntil;
  }

  private resumePosition(roomId: string): string | undefined {
    const live = this.liveAt();
    return maxId(this.cursors.position(roomId), live === undefined ? undefined : idAt(live - RESUME_MARGIN_MS));
  }

  /** Resume positions in the fallback routes' text form: `*:<id>` covers every room of the connection. */
  private resumeText(): string {
    const live = this.liveAt();
    if (live === undefined) return '';
    const mine = idAt(live - RESUME_MARGIN_MS);
    const any = this.serverPosition !== undefined && maxId(mine, this.serverPosition) === mine ? this.serverPosition : mine;
    const rooms = [...this.joined].flatMap((roomId) => {
      const pos = this.cursors.position(roomId);
      return pos !== undefined && maxId(pos, any) === pos && pos !== any ? [`${roomId}:${pos}`] : [];
    });
    return [...rooms.slice(0, RESUME_MAX_ROOMS - 1), `*:${any}`].join(',');
  }

  /** The server could not replay this room's gap: fetch the missed messages over REST. */
  private async fillGap(roomId: string): Promise<void> {
    const after = this.cursors.position(roomId) ?? (this.liveUntil !== undefined ? idAt(this.liveUntil - RESUME_MARGIN_MS) : undefined);
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

  // ---- requests

  private request(request: Request): Promise<Record<string, unknown>> {
    if (this._state === 'closed') return Promise.reject(new ChatClientError('unavailable', 'the client was closed'));
    return new Promise((resolve, reject) => {
      const p: Pending = { request, resolve, reject, ref: undefined, timer: undefined, attempts: 0 };
      this.queue.push(p);
      if (this.welcomed) this.dispatch(p);
    });
  }

  private dispatch(p: Pending): void {
    const t = this.transport;
    if (!t || !this.welcomed) return;
    const ref = `r${++this.refSeq}`;
    p.ref = ref;
    p.attempts++;
    this.inFlight.set(ref, p);
    p.timer = setTimeout(() => {
      if (this.inFlight.get(ref) !== p) return;
      this.inFlight.delete(ref);
      p.ref = undefined;
      p.timer = undefined;
      this.dispatch(p);
    }, this.opts.requestTimeoutMs ?? 10_000);
    t.send({ ...p.request, ref });
  }

  /** In order: what was queued while disconnected goes out once, oldest first. */
  private flush(): void {
    for (const p of this.queue) if (p.ref === undefined && p.timer === undefined) this.dispatch(p);
  }

  private settle(f: FrameOf<'ack'> | FrameOf<'error'>): boolean {
    const ref = String(f.ref);
    const p = this.inFlight.get(ref);
    if (!p) return false;
    this.inFlight.delete(ref);
    clearTimeout(p.timer);
    p.timer = undefined;
    p.ref = undefined;
    if (f.type === 'ack') {
      this.dequeue(p);
      const { type: _t, ref: _r, ...body } = f;
      p.resolve(body);
      return true;
    }
    const err = new ChatClientError(f.code, f.message, f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {});
    if (err.retryable) {
      const delay = err.retryAfterMs ?? backoffDelay(p.attempts - 1, this.backoff);
      p.timer = setTimeout(() => {
        p.timer = undefined;
        this.dispatch(p);
      }, delay);
      return true;
    }
    this.dequeue(p);
    p.reject(err);
    return true;
  }

  private dequeue(p: Pending): void {
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
  }
}

/** A random id for a send; a retry reuses it. */
export function newClientMsgId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}${Math.random().toString(36).slice(2, 12)}`;
}
