import { hostname } from 'node:os';
import type { Logger } from 'pino';
import {
  AckPolicy, ConsumerEvents, DeliverPolicy, DiscardPolicy, ErrorCode, Events, DebugEvents, RetentionPolicy, StorageType,
  connect, headers as natsHeaders, nanos,
  type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, type JetStreamClient, type JetStreamManager,
  type JsMsg, type MsgHdrs, type NatsConnection, type StoredMsg, type StreamConfig, type StreamState,
  type Subscription as NatsSubscription,
} from 'nats';
import { ChatError } from '../protocol/errors.ts';
import {
  subjects,
  type BatchHandler, type Bus, type ConsumeOptions, type Consumer, type Delivery, type DurableAck, type DurableMessage,
  type LiveHandler, type LiveWatcher, type Subscription,
} from './bus.ts';

/**
 * The bus over NATS: the live plane is core NATS, the durable plane a JetStream stream
 * (`chat.durable.>`, file storage, limits retention by age) with a durable pull consumer per
 * consumer group.
 *
 * Behaviour callers may notice (none of it contradicts the port):
 * - live publishes made while disconnected are dropped (at most once), not buffered, so a long
 *   outage cannot grow the process; live handlers run asynchronously, after `publish` returned;
 * - a live payload is written to the socket on the next microtask: don't change it right after
 *   `publish` (encode into a fresh buffer);
 * - the dedupe id is the JetStream message id (`Nats-Msg-Id`), which the stream stores with the
 *   event; it is not repeated in `headers`;
 * - `replay` and `consume` see the server's clock: storedAt is the stream's time, not ours.
 */
export interface NatsBusConfig {
  servers: string[];
  recoveryWindowSec: number;
  /** Default DEFAULT_STREAM. */
  streamName?: string;
  /** Default 1. */
  replicas?: number;
  /** Default DEFAULT_DUPLICATE_WINDOW_SEC, capped at recoveryWindowSec. */
  duplicateWindowSec?: number;
}

export interface NatsBusOptions {
  /** Connection name the server shows (default `chat-svc <host> <pid>`). */
  name?: string;
  /** How long publishDurable waits for the stream's ack. */
  publishTimeoutMs?: number;
  /** How long a JetStream API request (stream/consumer info, get, create) may take. */
  apiTimeoutMs?: number;
  /** Pause between reconnect attempts. */
  reconnectWaitMs?: number;
}

export const DEFAULT_STREAM = 'CHAT';
export const DEFAULT_DUPLICATE_WINDOW_SEC = 120;
export const DEFAULT_ACK_WAIT_MS = 30_000;
export const PUBLISH_TIMEOUT_MS = 2500;
export const API_TIMEOUT_MS = 5000;
export const RECONNECT_WAIT_MS = 1000;
/** Redelivery delay after a throwing handler or a nak without delay: doubles per try up to the max. */
export const RETRY_BASE_MS = 200;
export const RETRY_MAX_MS = 5000;

const DURABLE_PREFIX = subjects.durable('');
const DURABLE_FILTER = `${DURABLE_PREFIX}>`;
const MSG_ID_HEADER = 'Nats-Msg-Id';
/** Room ids become one subject token (`chat.durable.<roomId>`), so they obey the token rules. */
const ROOM_TOKEN = /^[^\s.*>]+$/;
/** JetStream names (stream, consumer) may not hold these. */
const BAD_NAME = /[\s.*>/\\]/;
/** Pull request lifetime of a consumer; also paces its heartbeat checks and retries after an outage. */
const CONSUME_EXPIRES_MS = 5000;
const CONSUMER_RETRY_MS = 1000;
/** Enough deliveries in flight for several processes of a group, each holding a batch and a prefetched one. */
const MIN_MAX_ACK_PENDING = 20_000;
const REPLAY_BATCH = 256;
/** A replay consumer that delivers nothing for this long while events are still due is replaced. */
const REPLAY_IDLE_MS = 5000;
/** The first event is due as soon as the consumer exists: waiting longer only delays the replacement (nats.js: >= 1000). */
const REPLAY_FIRST_EVENT_MS = 1500;
const REPLAY_ATTEMPTS = 10;
const REPLAY_CREATE_TIMEOUT_MS = 2000;
const REPLAY_INACTIVE_MS = 30_000;
const DRAIN_TIMEOUT_MS = 5000;
const BACKGROUND_ENSURE_INTERVAL_MS = 5000;
/** JetStream API error codes (err_code) this adapter tells apart. */
const JS_NO_MESSAGE = 10037;
const JS_STREAM_NOT_FOUND = 10059;
const JS_CONSUMER_NOT_FOUND = 10014;
const JS_STREAM_NAME_IN_USE = 10058;

export function createNatsBus(cfg: NatsBusConfig, log: Logger, opts: NatsBusOptions = {}): Bus {
  return new NatsBus(cfg, log, opts);
}

function retryDelayMs(deliveryCount: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, deliveryCount - 1));
}

interface LiveSub {
  readonly subject: string;
  readonly handler: LiveHandler;
  nats: NatsSubscription | undefined;
}

interface Connected {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** For replay consumers: a create that is not answered soon went to a server that is gone. */
  replayJsm: JetStreamManager;
}

class NatsBus implements Bus {
  readonly kind = 'nats' as const;

  readonly #servers: string[];
  readonly #stream: string;
  readonly #streamConfig: Partial<StreamConfig> & { name: string };
  readonly #log: Logger;
  readonly #name: string;
  readonly #publishTimeoutMs: number;
  readonly #apiTimeoutMs: number;
  readonly #reconnectWaitMs: number;

  #conn: Connected | undefined;
  /** Tracks the connection's status events; false while nats.js reconnects. */
  #connected = false;
  #closed = false;
  #lastError = 'not connected yet';
  /** Settles once the first connection attempt succeeded or failed. */
  #firstAttempt: Promise<void>;
  #ensuring: Promise<void> | undefined;
  #droppingLive = false;
  #lastBackgroundEnsure = 0;
  readonly #liveSubs = new Set<LiveSub>();
  readonly #liveWatchers = new Set<LiveWatcher>();
  /** When live delivery stopped (connection lost), until it works again. */
  #liveDownSince: number | undefined;
  readonly #consumers = new Set<NatsConsumer>();

  constructor(cfg: NatsBusConfig, log: Logger, opts: NatsBusOptions) {
    if (!cfg.servers.length) throw new ChatError('bad_request', 'nats bus: servers must not be empty');
    if (!(cfg.recoveryWindowSec > 0)) throw new ChatError('bad_request', `nats bus: recoveryWindowSec must be > 0, got ${cfg.recoveryWindowSec}`);
    const stream = cfg.streamName ?? DEFAULT_STREAM;
    if (stream === '' || BAD_NAME.test(stream)) throw new ChatError('bad_request', `nats bus: invalid stream name "${stream}"`);
    const replicas = cfg.replicas ?? 1;
    if (!(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) throw new ChatError('bad_request', `nats bus: replicas must be 1..5, got ${replicas}`);
    const dupSec = Math.min(cfg.duplicateWindowSec ?? DEFAULT_DUPLICATE_WINDOW_SEC, cfg.recoveryWindowSec);
    if (!(dupSec > 0)) throw new ChatError('bad_request', `nats bus: duplicateWindowSec must be > 0, got ${dupSec}`);

    this.#servers = [...cfg.servers];
    this.#stream = stream;
    this.#streamConfig = {
      name: stream,
      subjects: [DURABLE_FILTER],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(cfg.recoveryWindowSec * 1000),
      duplicate_window: nanos(dupSec * 1000),
      num_replicas: replicas,
    };
    this.#log = log;
    this.#name = opts.name ?? `chat-svc ${hostname()} ${process.pid}`;
    this.#publishTimeoutMs = opts.publishTimeoutMs ?? PUBLISH_TIMEOUT_MS;
    this.#apiTimeoutMs = opts.apiTimeoutMs ?? API_TIMEOUT_MS;
    this.#reconnectWaitMs = opts.reconnectWaitMs ?? RECONNECT_WAIT_MS;
    let firstSettled!: () => void;
    this.#firstAttempt = new Promise<void>((resolve) => { firstSettled = resolve; });
    void this.#connectLoop(firstSettled);
  }

  // ---- connection ----

  /**
   * Connects, retrying until it works or the bus closes. Once connected, nats.js reconnects by
   * itself forever; this loop only runs again if the connection closes for good.
   */
  async #connectLoop(firstSettled: () => void): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      let nc: NatsConnection | undefined;
      try {
        nc = await connect({
          servers: this.#servers,
          name: this.#name,
          maxReconnectAttempts: -1,
          reconnectTimeWait: this.#reconnectWaitMs,
          timeout: this.#apiTimeoutMs,
          pingInterval: 10_000,
          maxPingOut: 3,
        });
        if (this.#closed) {
          await nc.close();
          break;
        }
        const jsm = await nc.jetstreamManager({ timeout: this.#apiTimeoutMs, checkAPI: false });
        const replayJsm = await nc.jetstreamManager({ timeout: Math.min(this.#apiTimeoutMs, REPLAY_CREATE_TIMEOUT_MS), checkAPI: false });
        this.#attach({ nc, js: nc.jetstream({ timeout: this.#publishTimeoutMs }), jsm, replayJsm });
        if (failures > 0) this.#log.info({ servers: this.#servers, failures }, 'nats bus: connected after failed attempts');
        firstSettled();
        return;
      } catch (err) {
        this.#lastError = describe(err);
        if (failures++ === 0) this.#log.warn({ err, servers: this.#servers }, 'nats bus: cannot connect to NATS; retrying');
        if (nc !== undefined && !nc.isClosed()) {
          await nc.close().catch((closeErr: unknown) => this.#log.debug({ err: closeErr }, 'nats bus: closing a half-set-up connection failed'));
        }
        firstSettled();
        await sleep(this.#reconnectWaitMs);
      }
    }
    firstSettled();
  }

  #attach(conn: Connected): void {
    this.#conn = conn;
    this.#connected = true;
    this.#droppingLive = false;
    this.#log.info({ server: conn.nc.getServer(), name: this.#name }, 'nats bus: connected');
    for (const sub of this.#liveSubs) this.#natsSubscribe(conn.nc, sub);
    void this.#watch(conn.nc);
    this.#ensureStreamInBackground();
    // a connection that replaces one closed for good: its subscriptions are new, so live is back
    void this.#liveRestored(conn.nc);
    void conn.nc.closed().then((err) => {
      if (this.#conn === conn) {
        this.#conn = undefined;
        this.#connected = false;
      }
      if (this.#closed) return;
      this.#liveInterrupted();
      // only a fatal error (e.g. authorization) closes a connection that reconnects forever
      this.#lastError = err ? describe(err) : 'connection closed';
      this.#log.error({ err }, 'nats bus: connection closed for good; connecting again');
      for (const sub of this.#liveSubs) sub.nats = undefined;
      void this.#connectLoop(() => {});
    });
  }

  async #watch(nc: NatsConnection): Promise<void> {
    let peers = new Set(nc.info?.connect_urls ?? []);
    for await (const s of nc.status()) {
      switch (s.type) {
        case Events.Update: {
          // A cluster node left. Live messages other processes published through it just before
          // it died were never routed on to our server, and our connection did not drop, so
          // nothing else would tell us: watchers repair as after an outage of our own.
          const now = new Set(nc.info?.connect_urls ?? []);
          const gone = [...peers].filter((url) => !now.has(url));
          peers = now;
          if (gone.length && this.#connected && this.#liveDownSince === undefined) {
            this.#log.warn({ gone }, 'nats bus: a server left the cluster; live messages routed through it may be lost');
            this.#liveInterrupted();
            void this.#liveRestored(nc);
          }
          break;
        }
        case Events.Disconnect:
          this.#connected = false;
          this.#lastError = `disconnected from ${String(s.data)}`;
          this.#log.warn({ server: s.data }, 'nats bus: disconnected from NATS; reconnecting');
          this.#liveInterrupted();
          break;
        case Events.Reconnect:
          peers = new Set(nc.info?.connect_urls ?? []);
          this.#connected = true;
          this.#droppingLive = false;
          this.#log.info({ server: s.data }, 'nats bus: reconnected to NATS');
          // a server that lost its storage comes back without the stream
          this.#ensureStreamInBackground();
          void this.#liveRestored(nc);
          break;
        case Events.LDM:
          this.#log.warn({ server: s.data }, 'nats bus: server entering lame duck mode; will move to another');
          break;
        case Events.Error:
          this.#log.warn({ err: s.data }, 'nats bus: asynchronous error from NATS');
          break;
        case DebugEvents.StaleConnection:
          this.#log.warn('nats bus: connection stale (pings unanswered); reconnecting');
          break;
        default:
          break;
      }
    }
  }

  /** The connection, or an `unavailable` error saying why there is none right now. */
  #require(): Connected {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
    const conn = this.#conn;
    if (conn === undefined) throw new ChatError('unavailable', `not connected to NATS at ${this.#servers.join(',')}: ${this.#lastError}`);
    if (!this.#connected) throw new ChatError('unavailable', `NATS connection lost (${this.#lastError}); reconnecting`);
    return conn;
  }

  /** Creates the stream, or updates what we own of its config; concurrent callers share one run. */
  #ensureStream(): Promise<void> {
    this.#ensuring ??= this.#doEnsureStream().finally(() => { this.#ensuring = undefined; });
    return this.#ensuring;
  }

  #ensureStreamInBackground(throttled = false): void {
    // failing publishes ask for this too: at most one of theirs per interval
    const now = Date.now();
    if (throttled && now - this.#lastBackgroundEnsure < BACKGROUND_ENSURE_INTERVAL_MS) return;
    this.#lastBackgroundEnsure = now;
    this.#ensureStream().catch((err: unknown) => {
      this.#log.warn({ err, stream: this.#stream }, 'nats bus: could not check the stream (will retry on ready())');
    });
  }

  async #doEnsureStream(): Promise<void> {
    const { jsm } = this.#require();
    const want = this.#streamConfig;
    let info;
    try {
      info = await jsm.streams.info(this.#stream);
    } catch (err) {
      if (jsErrCode(err) !== JS_STREAM_NOT_FOUND) throw this.#unavailable(err, `stream ${this.#stream}: info`);
      try {
        await jsm.streams.add(want);
        this.#log.info({ stream: this.#stream, subjects: want.subjects, replicas: want.num_replicas }, 'nats bus: created the stream');
        return;
      } catch (addErr) {
        // another process created it first: check its config like any existing stream
        if (jsErrCode(addErr) !== JS_STREAM_NAME_IN_USE) throw this.#unavailable(addErr, `stream ${this.#stream}: create`);
        info = await jsm.streams.info(this.#stream).catch((e: unknown) => { throw this.#unavailable(e, `stream ${this.#stream}: info`); });
      }
    }
    const have = info.config;
    if (have.storage !== want.storage) {
      this.#log.warn({ stream: this.#stream, storage: have.storage }, 'nats bus: the stream is not file-backed; storage cannot be changed in place');
    }
    const changed: string[] = [];
    if (!have.subjects.includes(DURABLE_FILTER)) changed.push('subjects');
    if (have.max_age !== want.max_age) changed.push('max_age');
    if (have.duplicate_window !== want.duplicate_window) changed.push('duplicate_window');
    if (have.num_replicas !== want.num_replicas) changed.push('num_replicas');
    if (have.discard !== want.discard) changed.push('discard');
    if (changed.length === 0) return;
    try {
      await jsm.streams.update(this.#stream, {
        subjects: have.subjects.includes(DURABLE_FILTER) ? have.subjects : [...have.subjects, DURABLE_FILTER],
        max_age: want.max_age!,
        duplicate_window: want.duplicate_window!,
        num_replicas: want.num_replicas!,
        discard: want.discard!,
      });
      this.#log.info({ stream: this.#stream, changed }, 'nats bus: updated the stream config');
    } catch (err) {
      throw this.#unavailable(err, `stream ${this.#stream}: update ${changed.join(', ')}`);
    }
  }

  #unavailable(err: unknown, what: string): ChatError {
    if (err instanceof ChatError) return err;
    return new ChatError('unavailable', `${what}: ${describe(err)}`, { cause: err });
  }

  // ---- live plane ----

  publish(subject: string, payload: Uint8Array): void {
    if (this.#closed) return;
    const conn = this.#conn;
    if (conn === undefined || !this.#connected) {
      if (!this.#droppingLive) {
        this.#droppingLive = true;
        this.#log.warn({ subject }, 'nats bus: not connected; live publishes are dropped until NATS is back');
      }
      return;
    }
    try {
      conn.nc.publish(subject, payload);
    } catch (err) {
      this.#log.warn({ err, subject }, 'nats bus: live publish failed');
    }
  }

  subscribe(subject: string, handler: LiveHandler): Subscription {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
    checkSubject(subject);
    const sub: LiveSub = { subject, handler, nats: undefined };
    this.#liveSubs.add(sub);
    if (this.#conn !== undefined) this.#natsSubscribe(this.#conn.nc, sub);
    return {
      unsubscribe: () => {
        if (!this.#liveSubs.delete(sub)) return;
        const natsSub = sub.nats;
        sub.nats = undefined;
        if (natsSub !== undefined && !natsSub.isClosed()) natsSub.unsubscribe();
      },
    };
  }

  watchLive(watcher: LiveWatcher): Subscription {
    this.#liveWatchers.add(watcher);
    if (this.#liveDownSince !== undefined) this.#tell(watcher, 'interrupted');
    return { unsubscribe: () => { this.#liveWatchers.delete(watcher); } };
  }

  #liveInterrupted(): void {
    if (this.#closed || this.#liveDownSince !== undefined) return;
    this.#liveDownSince = Date.now();
    for (const w of this.#liveWatchers) this.#tell(w, 'interrupted');
  }

  /**
   * nats.js re-sends our subscriptions when it reconnects; once a round trip came back the server
   * has them, so everything published from then on reaches us again.
   */
  async #liveRestored(nc: NatsConnection): Promise<void> {
    if (this.#liveDownSince === undefined) return;
    await this.flush();
    // lost again meanwhile: the next reconnect restores it, from the first interruption
    if (this.#closed || this.#conn?.nc !== nc || !this.#connected || this.#liveDownSince === undefined) return;
    const since = this.#liveDownSince;
    this.#liveDownSince = undefined;
    this.#log.info({ downMs: Date.now() - since }, 'nats bus: live delivery restored');
    for (const w of this.#liveWatchers) this.#tell(w, 'restored', since);
  }

  #tell(watcher: LiveWatcher, what: 'interrupted' | 'restored', since = 0): void {
    try {
      if (what === 'interrupted') watcher.interrupted();
      else watcher.restored(since);
    } catch (err) {
      this.#log.error({ err, what }, 'nats bus: live watcher threw');
    }
  }

  #natsSubscribe(nc: NatsConnection, sub: LiveSub): void {
    const { handler, subject } = sub;
    const log = this.#log;
    // one closure per subscription, none per message
    sub.nats = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null) {
          log.error({ err, subject }, 'nats bus: subscription failed');
          return;
        }
        try {
          handler(msg.data, msg.subject);
        } catch (handlerErr) {
          log.error({ err: handlerErr, subject: msg.subject }, 'nats bus: live subscriber threw');
        }
      },
    });
  }

  // ---- durable plane ----

  async publishDurable(roomId: string, dedupeId: string, payload: Uint8Array, headers?: Record<string, string>): Promise<DurableAck> {
    if (!ROOM_TOKEN.test(roomId)) throw new ChatError('bad_request', `invalid room id for a subject token: "${roomId}"`);
    if (dedupeId === '') throw new ChatError('bad_request', 'dedupeId must not be empty');
    // fail fast while disconnected: nats.js would buffer the request until its timeout
    const { js } = this.#require();
    let hdrs: MsgHdrs | undefined;
    if (headers !== undefined) {
      hdrs = natsHeaders();
      try {
        for (const key in headers) hdrs.set(key, headers[key]!);
      } catch (err) {
        throw new ChatError('bad_request', `invalid header for a NATS message: ${describe(err)}`, { cause: err });
      }
    }
    try {
      const pa = await js.publish(DURABLE_PREFIX + roomId, payload, { msgID: dedupeId, headers: hdrs, timeout: this.#publishTimeoutMs });
      return { seq: pa.seq, duplicate: pa.duplicate };
    } catch (err) {
      throw this.#publishError(err, roomId);
    }
  }

  #publishError(err: unknown, roomId: string): ChatError {
    const code = (err as { code?: unknown }).code;
    if (code === ErrorCode.MaxPayloadExceeded) {
      return new ChatError('too_large', `event for room ${roomId} is larger than the NATS max payload`, { cause: err });
    }
    if (code === ErrorCode.Timeout) {
      return new ChatError('unavailable', `the stream did not confirm the event for room ${roomId} within ${this.#publishTimeoutMs} ms`, { cause: err });
    }
    if (code === ErrorCode.NoResponders) {
      this.#ensureStreamInBackground(true);
      return new ChatError('unavailable', `no JetStream stream takes ${DURABLE_PREFIX}${roomId} (is ${this.#stream} there?)`, { cause: err });
    }
    return this.#unavailable(err, `publishing the event for room ${roomId}`);
  }

  async getDurable(seq: number): Promise<DurableMessage | undefined> {
    const { jsm } = this.#require();
    if (!(Number.isSafeInteger(seq) && seq >= 1)) return undefined;
    try {
      return storedToDurable(await jsm.streams.getMessage(this.#stream, { seq }));
    } catch (err) {
      if (jsErrCode(err) === JS_NO_MESSAGE) return undefined;
      throw this.#unavailable(err, `reading event ${seq}`);
    }
  }

  /**
   * `lastSeq` is the stream's last sequence when the replay started (or the room's last event if
   * that is later): every event of the room up to it, stored at or after sinceMs, was passed on.
   */
  async replay(roomId: string, sinceMs: number, onEvent: (msg: DurableMessage) => void): Promise<{ complete: boolean; lastSeq: number }> {
    if (!ROOM_TOKEN.test(roomId)) throw new ChatError('bad_request', `invalid room id for a subject token: "${roomId}"`);
    const { js, jsm, replayJsm } = this.#require();
    // storedAt is whole ms: "stored at or after 10.5" means from 11
    const since = Math.max(0, Math.ceil(sinceMs));
    const subject = DURABLE_PREFIX + roomId;

    let state: StreamState;
    let last: StoredMsg | undefined;
    try {
      state = (await jsm.streams.info(this.#stream)).state;
      last = await jsm.streams.getMessage(this.#stream, { last_by_subj: subject }).catch((err: unknown) => {
        if (jsErrCode(err) === JS_NO_MESSAGE) return undefined;
        throw err;
      });
    } catch (err) {
      throw this.#unavailable(err, `replay of room ${roomId}`);
    }
    const lastSeq = Math.max(state.last_seq, last?.seq ?? 0);
    if (last === undefined || Date.parse(last.timestamp) < since) return { complete: covers(state, since), lastSeq };

    const reachedTarget = await this.#replayUntil(js, replayJsm, roomId, subject, since, last.seq, onEvent);
    if (reachedTarget) return { complete: covers(state, since), lastSeq };
    // the room's last event aged out while we read: judge by what the stream holds now
    const now = await jsm.streams.info(this.#stream).catch((err: unknown) => { throw this.#unavailable(err, `replay of room ${roomId}`); });
    return { complete: covers(now.state, since), lastSeq };
  }

  /**
   * Reads the room's events from `since` until event `target`; resolves false if the stream ran
   * out before it (target dropped meanwhile).
   *
   * Each attempt is an ephemeral, unacknowledged consumer read with bounded fetches. One that
   * delivers nothing while events are due is deleted and replaced, continuing after the last
   * event passed on: in a cluster that lost a node, the server can place the (single-replica)
   * consumer on the dead node, where it never delivers (for seconds after the loss, most
   * replays). nats.js's ordered consumer is not used because it re-creates a stalled consumer
   * by itself, forever, even after it was stopped and the connection closed.
   */
  async #replayUntil(js: JetStreamClient, jsm: JetStreamManager, roomId: string, subject: string, since: number, target: number, onEvent: (msg: DurableMessage) => void): Promise<boolean> {
    let after = 0;
    for (let attempt = 1; ; attempt++) {
      const r = await this.#replayAttempt(js, jsm, roomId, subject, after === 0 ? { since } : { fromSeq: after + 1 }, target, (msg) => {
        onEvent(msg);
        after = msg.seq;
      });
      if (r !== 'stalled') return r;
      if (attempt >= REPLAY_ATTEMPTS) {
        throw new ChatError('unavailable', `replay of room ${roomId} stalled ${attempt} times before event ${target} (last passed on: ${after || 'none'})`);
      }
      this.#log.debug({ roomId, attempt, after, target }, 'nats bus: replay consumer stalled; replacing it');
    }
  }

  async #replayAttempt(
    js: JetStreamClient, jsm: JetStreamManager, roomId: string, subject: string, start: { since: number } | { fromSeq: number }, target: number,
    onEvent: (msg: DurableMessage) => void,
  ): Promise<boolean | 'stalled'> {
    let name: string;
    let consumer;
    try {
      name = (await jsm.consumers.add(this.#stream, {
        ack_policy: AckPolicy.None,
        filter_subject: subject, // filter_subjects (plural) is ignored by servers before 2.10
        ...('since' in start
          ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(start.since).toISOString() }
          : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start.fromSeq }),
        inactive_threshold: nanos(REPLAY_INACTIVE_MS),
        mem_storage: true,
        num_replicas: 1,
      })).name;
      consumer = await js.consumers.get(this.#stream, name);
    } catch (err) {
      if ((err as { code?: unknown }).code === ErrorCode.Timeout && this.#connected) return 'stalled';
      throw this.#unavailable(err, `replay of room ${roomId}`);
    }
    try {
      for (let first = true; ; first = false) {
        let got = 0;
        let inHandler = false;
        try {
          const batch = await consumer.fetch({ max_messages: REPLAY_BATCH, expires: first ? REPLAY_FIRST_EVENT_MS : REPLAY_IDLE_MS });
          for await (const msg of batch) {
            got++;
            if (msg.seq > target) return true;
            inHandler = true;
            onEvent(jsToDurable(msg));
            inHandler = false;
            if (msg.seq === target) return true;
            if (msg.info.pending === 0) return false;
          }
        } catch (err) {
          if (inHandler) throw err;
          if (!this.#connected) throw this.#unavailable(err, `replay of room ${roomId}`);
          // missed heartbeats of a consumer that is not there: replace it
          this.#log.debug({ err, roomId }, 'nats bus: replay fetch failed');
          return 'stalled';
        }
        if (got === 0) return 'stalled';
      }
    } finally {
      jsm.consumers.delete(this.#stream, name).catch((err: unknown) => {
        this.#log.debug({ err, roomId }, 'nats bus: could not delete a replay consumer (it expires by itself)');
      });
    }
  }

  consume(options: ConsumeOptions, handler: BatchHandler): Consumer {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
    const { durable, maxBatch, maxWaitMs } = options;
    const ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
    if (durable === '' || BAD_NAME.test(durable)) throw new ChatError('bad_request', `consume: invalid durable name "${durable}"`);
    if (!(Number.isInteger(maxBatch) && maxBatch > 0)) throw new ChatError('bad_request', `consume: maxBatch must be a positive integer, got ${maxBatch}`);
    if (!(maxWaitMs >= 0)) throw new ChatError('bad_request', `consume: maxWaitMs must be >= 0, got ${maxWaitMs}`);
    if (!(ackWaitMs > 0)) throw new ChatError('bad_request', `consume: ackWaitMs must be > 0, got ${ackWaitMs}`);
    const consumer = new NatsConsumer(this, this.#log, { durable, maxBatch, maxWaitMs, ackWaitMs }, handler);
    this.#consumers.add(consumer);
    return consumer;
  }

  async ready(): Promise<void> {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
    await this.#firstAttempt;
    this.#require();
    await this.#ensureStream();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#consumers].map((c) => c.stop()));
    this.#consumers.clear();
    this.#liveSubs.clear();
    const conn = this.#conn;
    if (conn === undefined || conn.nc.isClosed()) return;
    // drain flushes what was published and lets subscriptions finish; it cannot while disconnected
    let timer: NodeJS.Timeout | undefined;
    try {
      if (this.#connected) {
        await Promise.race([
          conn.nc.drain(),
          new Promise<void>((resolve) => { timer = setTimeout(resolve, DRAIN_TIMEOUT_MS); }),
        ]);
      }
    } catch (err) {
      this.#log.warn({ err }, 'nats bus: drain failed; closing');
    } finally {
      clearTimeout(timer);
      if (!conn.nc.isClosed()) await conn.nc.close();
    }
  }

  // ---- used by consumers ----

  get closed(): boolean {
    return this.#closed;
  }

  connection(): Connected {
    return this.#require();
  }

  get streamName(): string {
    return this.#stream;
  }

  /** Round trip to the server, so it has processed everything sent before; bounded, never throws. */
  async flush(): Promise<void> {
    const conn = this.#conn;
    if (conn === undefined || !this.#connected || conn.nc.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([conn.nc.flush(), new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#apiTimeoutMs); })]);
    } catch (err) {
      this.#log.debug({ err }, 'nats bus: flush failed (connection lost)');
    } finally {
      clearTimeout(timer);
    }
  }

  removeConsumer(consumer: NatsConsumer): void {
    this.#consumers.delete(consumer);
  }

  /** The group's consumer, created if missing; `update` also brings its ack wait in line. */
  async ensureConsumer(durable: string, ackWaitMs: number, maxBatch: number, update: boolean): Promise<ConsumerInfo> {
    const { jsm } = this.#require();
    const maxAckPending = Math.max(MIN_MAX_ACK_PENDING, maxBatch * 8);
    try {
      const info = await jsm.consumers.info(this.#stream, durable);
      if (update && (info.config.ack_wait !== nanos(ackWaitMs) || (info.config.max_ack_pending ?? 0) < maxAckPending)) {
        return await jsm.consumers.update(this.#stream, durable, { ack_wait: nanos(ackWaitMs), max_ack_pending: Math.max(maxAckPending, info.config.max_ack_pending ?? 0) });
      }
      return info;
    } catch (err) {
      if (jsErrCode(err) !== JS_CONSUMER_NOT_FOUND) throw this.#unavailable(err, `consumer ${durable}`);
    }
    const config: Partial<ConsumerConfig> = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(ackWaitMs),
      // the persister dead-letters by deliveryCount itself
      max_deliver: -1,
      max_ack_pending: maxAckPending,
      deliver_policy: DeliverPolicy.All,
      filter_subject: DURABLE_FILTER,
    };
    try {
      return await jsm.consumers.add(this.#stream, config);
    } catch (err) {
      throw this.#unavailable(err, `consumer ${durable}: create`);
    }
  }
}

interface ConsumerSettings {
  durable: string;
  maxBatch: number;
  maxWaitMs: number;
  ackWaitMs: number;
}

const STOP = Symbol('stop');
const TIMEOUT = Symbol('timeout');

/**
 * One process's share of a consumer group: pulls with nats.js `consume()` (which re-pulls,
 * watches heartbeats and re-pulls after a reconnect) and cuts the stream of messages into
 * batches. Messages are taken from the iterator only as batches are built, so nats.js keeps at
 * most about one batch prefetched while the handler runs.
 */
class NatsConsumer implements Consumer {
  readonly #bus: NatsBus;
  readonly #log: Logger;
  readonly #s: ConsumerSettings;
  readonly #handler: BatchHandler;
  #stopping = false;
  readonly #stopSignal: Promise<typeof STOP>;
  #signalStop!: () => void;
  readonly #loop: Promise<void>;

  constructor(bus: NatsBus, log: Logger, settings: ConsumerSettings, handler: BatchHandler) {
    this.#bus = bus;
    this.#log = log.child({ durable: settings.durable });
    this.#s = settings;
    this.#handler = handler;
    this.#stopSignal = new Promise((resolve) => { this.#signalStop = () => resolve(STOP); });
    this.#loop = this.#run();
  }

  async pending(): Promise<number> {
    const info = await this.#bus.ensureConsumer(this.#s.durable, this.#s.ackWaitMs, this.#s.maxBatch, false);
    return info.num_pending + info.num_ack_pending;
  }

  async stop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#signalStop();
    }
    await this.#loop;
    this.#bus.removeConsumer(this);
  }

  async #run(): Promise<void> {
    let failing = false;
    while (!this.#stopping) {
      let messages: ConsumerMessages | undefined;
      try {
        await this.#bus.ensureConsumer(this.#s.durable, this.#s.ackWaitMs, this.#s.maxBatch, true);
        const { js } = this.#bus.connection();
        const consumer = await js.consumers.get(this.#bus.streamName, this.#s.durable);
        if (this.#stopping) break;
        messages = await consumer.consume({ max_messages: this.#s.maxBatch, expires: CONSUME_EXPIRES_MS });
        void this.#watch(messages);
        if (failing) {
          this.#log.info('nats bus: consumer fetching again');
          failing = false;
        }
        await this.#batches(messages);
        if (!this.#stopping) this.#log.warn('nats bus: consumer message stream ended; starting it again');
      } catch (err) {
        if (this.#stopping) break;
        if (!failing) {
          failing = true;
          this.#log.warn({ err }, 'nats bus: consumer cannot fetch; retrying until it can');
        }
      } finally {
        messages?.stop();
      }
      if (!this.#stopping) await Promise.race([sleep(CONSUMER_RETRY_MS), this.#stopSignal]);
    }
    // once stop() resolves, the server must know our pull requests are gone (no interest left),
    // or it could still hand them an event another consumer of the group should get
    await this.#bus.flush();
  }

  /** nats.js keeps retrying a consumer that is gone; we end the stream so `#run` re-creates it. */
  async #watch(messages: ConsumerMessages): Promise<void> {
    for await (const s of await messages.status()) {
      if (s.type === ConsumerEvents.ConsumerNotFound || s.type === ConsumerEvents.ConsumerDeleted || s.type === ConsumerEvents.StreamNotFound) {
        this.#log.warn({ event: s.type }, 'nats bus: consumer or stream missing; re-creating');
        messages.stop();
        return;
      }
    }
  }

  async #batches(messages: ConsumerMessages): Promise<void> {
    const { maxBatch, maxWaitMs } = this.#s;
    const it = messages[Symbol.asyncIterator]();
    let next = it.next();
    let batch: JsMsg[] = [];
    try {
      for (;;) {
        // checked first: once both are settled, race() would pick the message and start a batch
        if (this.#stopping) return;
        const first = await Promise.race([next, this.#stopSignal]);
        if (first === STOP || first.done) return;
        batch.push(first.value);
        next = it.next();
        let ended = false;
        if (batch.length < maxBatch) {
          let timer: NodeJS.Timeout | undefined;
          const deadline = new Promise<typeof TIMEOUT>((resolve) => { timer = setTimeout(resolve, maxWaitMs, TIMEOUT); });
          while (batch.length < maxBatch) {
            const r = await Promise.race([next, deadline, this.#stopSignal]);
            if (r === TIMEOUT) break;
            if (r === STOP || this.#stopping) {
              if (r !== STOP && !r.done) {
                batch.push(r.value);
                next = it.next();
              }
              clearTimeout(timer);
              return;
            }
            if (r.done) {
              ended = true;
              break;
            }
            batch.push(r.value);
            next = it.next();
          }
          clearTimeout(timer);
        }
        if (this.#stopping) return;
        const handing = batch;
        batch = [];
        await this.#handle(handing);
        if (ended) return;
      }
    } finally {
      // stopping: what was taken but not handed over, and what nats.js still holds, goes back
      // to the group at once
      for (const msg of batch) msg.nak();
      messages.stop();
      try {
        for (;;) {
          const r = await next;
          if (r.done) break;
          r.value.nak();
          next = it.next();
        }
      } catch (err) {
        this.#log.warn({ err }, 'nats bus: consumer message stream failed while stopping; its prefetched events redeliver after ackWait');
      }
    }
  }

  async #handle(msgs: JsMsg[]): Promise<void> {
    const deliveries = msgs.map((m) => new NatsDelivery(m));
    try {
      await this.#handler(deliveries);
    } catch (err) {
      this.#log.error({ err, size: deliveries.length }, 'nats bus: batch handler threw; its unsettled events are redelivered');
      for (const d of deliveries) d.retryIfUnsettled();
    }
  }
}

class NatsDelivery implements Delivery {
  readonly seq: number;
  readonly roomId: string;
  readonly dedupeId: string;
  readonly storedAt: number;
  readonly data: Uint8Array;
  readonly headers: Record<string, string> | undefined;
  readonly deliveryCount: number;
  readonly #msg: JsMsg;
  #settled = false;

  constructor(msg: JsMsg) {
    this.#msg = msg;
    this.seq = msg.seq;
    this.roomId = msg.subject.slice(DURABLE_PREFIX.length);
    this.dedupeId = msg.headers?.get(MSG_ID_HEADER) ?? '';
    this.storedAt = jsStoredAt(msg);
    this.data = msg.data;
    this.headers = userHeaders(msg.headers);
    this.deliveryCount = msg.info.deliveryCount;
  }

  ack(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#msg.ack();
  }

  nak(delayMs?: number): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#msg.nak(delayMs ?? retryDelayMs(this.deliveryCount));
  }

  term(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#msg.term();
  }

  retryIfUnsettled(): void {
    this.nak(retryDelayMs(this.deliveryCount));
  }
}

// ---- conversions ----

function jsToDurable(msg: JsMsg): DurableMessage {
  return {
    seq: msg.seq,
    roomId: msg.subject.slice(DURABLE_PREFIX.length),
    dedupeId: msg.headers?.get(MSG_ID_HEADER) ?? '',
    storedAt: jsStoredAt(msg),
    data: msg.data,
    headers: userHeaders(msg.headers),
  };
}

function storedToDurable(sm: StoredMsg): DurableMessage {
  const hdrs = sm.header;
  return {
    seq: sm.seq,
    roomId: sm.subject.slice(DURABLE_PREFIX.length),
    dedupeId: hdrs.get(MSG_ID_HEADER),
    storedAt: Date.parse(sm.timestamp),
    data: sm.data,
    headers: userHeaders(hdrs),
  };
}

/**
 * The stream time in whole ms. `info.timestampNanos` is a double, which cannot hold today's
 * nanosecond times exactly (rounding can move it across a ms boundary), so the ack subject's
 * decimal token is cut instead when it is there. Layouts: $JS.ACK.<stream>.<consumer>.<n>.<sseq>.
 * <dseq>.<ts>.<pending> or $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<n>.<sseq>.<dseq>.<ts>.<pending>[.<token>].
 */
function jsStoredAt(msg: JsMsg): number {
  const reply = (msg as unknown as { msg?: { reply?: string } }).msg?.reply;
  if (reply !== undefined) {
    const tokens = reply.split('.');
    const ts = tokens.length === 9 ? tokens[7] : tokens[9];
    if (ts !== undefined && ts.length > 6 && /^\d+$/.test(ts)) return Number(ts.slice(0, -6));
  }
  return Math.floor(msg.info.timestampNanos / 1e6);
}

/** The caller's headers: everything but the message id, which travels as `dedupeId`. */
function userHeaders(hdrs: MsgHdrs | undefined): Record<string, string> | undefined {
  if (hdrs === undefined) return undefined;
  let out: Record<string, string> | undefined;
  for (const key of hdrs.keys()) {
    if (key === MSG_ID_HEADER) continue;
    (out ??= {})[key] = hdrs.get(key);
  }
  return out;
}

/**
 * Whether every event stored at or after `since` is still in the stream. Events leave from the
 * head in stream order, and stream times grow with sequence, so the dropped ones are no newer than
 * the oldest retained event: if that one is older than `since`, nothing at/after `since` left.
 */
function covers(state: StreamState, since: number): boolean {
  if (state.first_seq <= 1) return true; // nothing ever dropped
  if (state.messages === 0) return false; // everything dropped: no way to tell when
  return Date.parse(state.first_ts) < since;
}

function checkSubject(subject: string): void {
  const tokens = subject.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok === '' || /\s/.test(tok) || (tok === '>' && i !== tokens.length - 1)) {
      throw new ChatError('bad_request', `invalid subject "${subject}": empty token, whitespace or '>' before the last token`);
    }
  }
}

function jsErrCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return code !== undefined && code !== err.message ? `${err.message} (${String(code)})` : err.message;
  }
  return String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
