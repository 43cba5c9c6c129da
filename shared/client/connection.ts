import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { ChatClientError } from './errors.ts';
import type { ConnectionState, Emitter } from './events.ts';
import { openPoll, openSse } from './fallback-transports.ts';
import type { GatewayChoice, Gateways } from './gateways.ts';
import type { ChatClientOptions } from './options.ts';
import type { RequestQueue } from './request-queue.ts';
import type { ChatRest, FetchLike } from './rest.ts';
import { RESUME_MAX_ROOMS, ResumeState } from './resume-state.ts';
import type { RoomCursors } from './room-cursors.ts';
import type { CloseInfo, EventSourceConstructor, Transport, TransportKind, WebSocketConstructor } from './transport.ts';
import type { FrameOf, ServerFrame } from './types.ts';
import { createCodec, type Codec } from './wire.ts';
import { openWebSocket } from './websocket-transport.ts';

type Welcome = FrameOf<'welcome'>;

/** Refs of the SDK's own `auth` frames (token refresh). */
const AUTH_REF = 'sdk-auth-';
/** A token is refreshed at most this long before it expires. */
const REFRESH_LEAD_MAX_MS = 60_000;
/** WebSocket close code 1001: the server is going away (draining). */
const CLOSE_GOING_AWAY = 1001;
/** A `reconnect` frame's delay is honoured up to this (the server's grace is longer). */
const MAX_DRAIN_DELAY_MS = 5000;

export interface ConnectionDeps {
  options: ChatClientOptions;
  rest: ChatRest;
  fetch: FetchLike;
  /** Resolved from the options and the globals; undefined: none to use. */
  WebSocket: WebSocketConstructor | undefined;
  EventSource: EventSourceConstructor | undefined;
  /** Transports to try, in order; never empty. */
  kinds: TransportKind[];
  backoff: BackoffOptions;
  /** Where each connection attempt goes. */
  gateways: Gateways;
  emitter: Emitter;
  requests: RequestQueue;
  cursors: RoomCursors;
  /** Rooms the connection receives (kept by the client from welcome, acks and membership frames). */
  joined: ReadonlySet<string>;
  /** A `welcome` arrived, before the connection counts as open. */
  onWelcome(w: Welcome): void;
  /** Every later frame of the welcomed transport. */
  onFrame(f: ServerFrame): void;
}

/**
 * The connection's life: opens a transport, waits for its `welcome`, asks to resume after a
 * reconnect, watches a WebSocket with pings, and when a transport ends opens the next one after a
 * jittered backoff, falling back to the next kind of transport when one never opens although the
 * server answers over HTTP. A refused token ends it, unless the token comes from a function (which
 * may return a fresh one next time).
 */
export class ChatConnection {
  readonly resume: ResumeState;

  private _state: ConnectionState = 'idle';
  private mode: TransportKind;
  private transport: Transport | undefined;
  /** The current transport said welcome. */
  private welcomed = false;
  private lastWelcome: Welcome | undefined;
  private codec: Codec | undefined;
  private readonly everOpened = new Set<TransportKind>();
  private failures = 0;
  private authRefs = 0;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private waiters: Array<{ resolve(w: Welcome): void; reject(err: ChatClientError): void }> = [];
  /** Why the next attempt is made, which decides the gateway it goes to. */
  private reason: GatewayChoice = 'connect';
  /** Leaves a draining gateway once its `reconnect` frame's delay has passed. */
  private drainTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly d: ConnectionDeps) {
    this.mode = d.kinds[0]!;
    this.resume = new ResumeState(d.cursors, d.joined, () => this.welcomed);
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The transport in use (or being opened). */
  get kind(): TransportKind {
    return this.mode;
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
    clearTimeout(this.drainTimer);
    this.stopPing();
    clearTimeout(this.refreshTimer);
    const t = this.transport;
    this.transport = undefined;
    t?.close(1000, 'client closed');
    const err = new ChatClientError('unavailable', 'the client was closed');
    this.d.requests.rejectAll(err);
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /** A frame that is never queued or retried (typing): sent only while a WebSocket is open. */
  sendEphemeral(frame: { type: string; roomId: string }): void {
    if (this.welcomed && this.transport?.kind === 'websocket') this.transport.send(frame);
  }

  private setState(s: ConnectionState): void {
    if (this._state === s) return;
    this._state = s;
    this.d.emitter.emit('state', s);
  }

  private async open(): Promise<void> {
    const { options, emitter } = this.d;
    let token: string;
    let base: string;
    try {
      token = await this.d.rest.token();
      if (this.mode === 'websocket') this.codec ??= await createCodec(options.format ?? 'json');
    } catch (err) {
      if (this._state === 'closed') return;
      emitter.emit('error', new ChatClientError('unauthorized', `no token: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      this.failures++;
      return this.scheduleReconnect();
    }
    try {
      base = await this.d.gateways.next(this.reason);
    } catch (err) {
      if (this._state === 'closed') return;
      emitter.emit('error', new ChatClientError('unavailable', `no gateway: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      this.failures++;
      return this.scheduleReconnect();
    }
    if (this._state === 'closed') return;
    this.welcomed = false;
    let t: Transport | undefined = undefined;
    const handlers = {
      onOpen: () => {},
      onFrame: (f: ServerFrame) => { if (this.transport === t) this.onFrame(f); },
      onClose: (info: CloseInfo) => {
        if (this.transport === t) this.onTransportClose(info);
      },
      onPosition: (id: string) => {
        if (this.transport === t && id.startsWith('*:')) this.resume.vouched(id.slice(2));
      },
    };
    const device = options.device ? { device: options.device } : {};
    const common = { rest: this.d.rest, baseUrl: base, fetch: this.d.fetch, token, resume: () => this.resume.text(), ...device };
    if (this.mode === 'websocket') {
      t = openWebSocket({
        WebSocket: this.d.WebSocket!, wsUrl: base.replace(/^http/, 'ws'), token, codec: this.codec!, ...device,
      }, handlers);
    } else if (this.mode === 'sse') {
      t = openSse({ ...common, EventSource: this.d.EventSource }, handlers);
    } else {
      t = openPoll({ ...common, ...(options.pollHoldSeconds !== undefined ? { holdSeconds: options.pollHoldSeconds } : {}) }, handlers);
    }
    this.transport = t;
  }

  private onFrame(f: ServerFrame): void {
    if (f.type === 'welcome') return this.onWelcome(f);
    if (!this.welcomed) return;
    if (f.type === 'ack' && f['action'] === 'auth') return this.scheduleRefresh(f['tokenExpiresAt']);
    if (f.type === 'error' && typeof f.ref === 'string' && f.ref.startsWith(AUTH_REF)) {
      // the socket lives until the old token expires (4401), then reconnects with a token asked anew
      this.d.emitter.emit('error', new ChatClientError('unauthorized', `token refresh refused: ${f.message}`));
      return;
    }
    this.resume.heard();
    if (f.type === 'reconnect') this.leaveAfter(f.retryAfterMs);
    this.d.onFrame(f);
  }

  /**
   * The gateway is draining: keep using it for the delay it gave (so clients of one gateway do not
   * all arrive at the next at once), then close it and connect elsewhere at once. Requests in
   * flight go out again on the next connection, sends with the same clientMsgId.
   */
  private leaveAfter(retryAfterMs: number): void {
    const t = this.transport;
    if (!t || this.drainTimer !== undefined) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined;
      if (this.transport !== t) return;
      t.close(1000, 'reconnecting: server draining');
      this.onTransportClose({ code: CLOSE_GOING_AWAY, reason: 'server draining', opened: true }, true);
    }, Math.max(0, Math.min(retryAfterMs, MAX_DRAIN_DELAY_MS)));
  }

  private onWelcome(w: Welcome): void {
    const reconnected = this.lastWelcome !== undefined;
    this.resume.welcomed(w.serverTime);
    this.d.onWelcome(w);
    this.welcomed = true;
    this.lastWelcome = w;
    this.everOpened.add(this.mode);
    this.failures = 0;
    this.attempt = 0;
    // Over SSE and long-poll the resume positions went with the request; a WebSocket asks now.
    if (reconnected && this.transport?.kind === 'websocket') {
      const rooms = w.rooms.slice(0, RESUME_MAX_ROOMS).map((roomId) => {
        const lastMessageId = this.resume.position(roomId);
        return lastMessageId ? { roomId, lastMessageId } : { roomId };
      });
      if (rooms.length) this.transport.send({ type: 'resume', rooms, ref: this.d.requests.nextRef('resume') });
    }
    this.setState('open');
    this.startPing();
    this.scheduleRefresh(w.tokenExpiresAt);
    // A `state` listener may have closed the client meanwhile: then there is no transport to send on.
    const t = this.transport;
    if (t) this.d.requests.online((request) => t.send(request));
    this.d.emitter.emit('connected', { transport: this.mode, welcome: w, reconnected });
    for (const waiter of this.waiters.splice(0)) waiter.resolve(w);
  }

  private onTransportClose(info: CloseInfo, leftDraining = false): void {
    const wasOpen = this.welcomed;
    this.transport = undefined;
    this.welcomed = false;
    this.stopPing();
    clearTimeout(this.refreshTimer);
    clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    this.reason = leftDraining || info.code === CLOSE_GOING_AWAY ? 'draining' : wasOpen ? 'lost' : 'failed';
    if (wasOpen) this.resume.lost();
    this.d.requests.offline();
    if (this._state === 'closed') return;
    this.setState(this.lastWelcome ? 'reconnecting' : 'connecting');
    if (wasOpen) this.d.emitter.emit('disconnected', { code: info.code, reason: info.reason });
    if (info.error?.code === 'unauthorized' && typeof this.d.options.token !== 'function') return this.fail(info.error);
    if (wasOpen) this.failures = 0;
    else this.failures++;
    // it waited the delay the gateway gave already: no backoff on top
    if (leftDraining) return this.scheduleReconnect(0);
    void this.maybeFallBack().then(() => this.scheduleReconnect());
  }

  /** Moves to the next transport when this one never opened, but the server answers over HTTP. */
  private async maybeFallBack(): Promise<void> {
    const limit = this.d.options.fallbackAfterFailures ?? 3;
    const next = this.d.kinds[this.d.kinds.indexOf(this.mode) + 1];
    if (!next || this.failures < limit || this.everOpened.has(this.mode)) return;
    try {
      await this.d.rest.me();
    } catch (err) {
      const e = err as ChatClientError;
      if (e.code === 'unauthorized' && typeof this.d.options.token !== 'function') this.fail(e);
      return; // down, or the token is refused: keep trying the same way
    }
    if (this._state === 'closed') return;
    this.d.emitter.emit('fallback', { from: this.mode, to: next });
    this.mode = next;
    this.failures = 0;
    this.attempt = 0;
  }

  private scheduleReconnect(delayMs = backoffDelay(this.attempt, this.d.backoff)): void {
    if (this._state === 'closed' || this.transport) return;
    this.attempt++;
    this.setState(this.lastWelcome ? 'reconnecting' : 'connecting');
    this.d.emitter.emit('reconnecting', { attempt: this.attempt, delayMs, transport: this.mode });
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.open(), delayMs);
  }

  private fail(err: ChatClientError): void {
    this.d.emitter.emit('error', err);
    for (const w of this.waiters.splice(0)) w.reject(err);
    this.close();
  }

  /**
   * With a token function, an open WebSocket gets a fresh token (`auth` frame) before the one it
   * connected with expires, so the server does not close it (4401): a third of the time left
   * before `exp`, at most a minute before. SSE and long-poll reconnect with a fresh token instead.
   */
  private scheduleRefresh(expiresAt: unknown): void {
    clearTimeout(this.refreshTimer);
    if (typeof expiresAt !== 'string' || typeof this.d.options.token !== 'function' || this.transport?.kind !== 'websocket') return;
    const left = Date.parse(expiresAt) - Date.now();
    if (!Number.isFinite(left)) return;
    const t = this.transport;
    this.refreshTimer = setTimeout(() => {
      void this.d.rest.token().then((token) => {
        if (this.transport === t && this.welcomed) t.send({ type: 'auth', token, ref: `${AUTH_REF}${++this.authRefs}` });
      }, (err: unknown) => this.d.emitter.emit('error', new ChatClientError('unauthorized', `no token to refresh with: ${(err as Error)?.message ?? String(err)}`, { cause: err })));
    }, Math.max(0, left - Math.min(REFRESH_LEAD_MAX_MS, left / 3)));
    (this.refreshTimer as { unref?: () => void }).unref?.();
  }

  private startPing(): void {
    const every = this.d.options.pingIntervalMs ?? 25_000;
    if (every <= 0 || this.transport?.kind !== 'websocket') return;
    this.stopPing();
    this.pingTimer = setInterval(() => {
      const t = this.transport;
      if (!t || !this.welcomed) return;
      if (Date.now() - this.resume.lastFrameAt > 2 * every) {
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
}
