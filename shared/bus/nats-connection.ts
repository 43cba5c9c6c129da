import type { Logger } from 'pino';
import { DebugEvents, Events, connect, type JetStreamClient, type JetStreamManager, type NatsConnection } from 'nats';
import { ChatError } from '../protocol/errors.ts';
import { describe } from './nats-errors.ts';

/** How long close() lets a drain flush what was published before closing anyway. */
const DRAIN_TIMEOUT_MS = 5000;

/** A live connection and the JetStream handles made on it. */
export interface Connected {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** For replay consumers: a create that is not answered soon went to a server that is gone. */
  replayJsm: JetStreamManager;
}

export interface ConnectionSettings {
  servers: string[];
  /** Connection name the server shows. */
  name: string;
  publishTimeoutMs: number;
  apiTimeoutMs: number;
  /** The API timeout of `replayJsm`. */
  replayApiTimeoutMs: number;
  reconnectWaitMs: number;
}

/**
 * What the rest of the bus hears from the connection, in the order it happens. `nc` is the
 * connection the event is about: a newer one may have replaced it by the time a handler awaits.
 */
export interface ConnectionEvents {
  /** A new connection is up: the first one, or one replacing a connection closed for good. */
  attached(nc: NatsConnection): void;
  /** nats.js lost the server and is reconnecting. */
  disconnected(): void;
  /** nats.js is back (it re-sent the subscriptions). */
  reconnected(nc: NatsConnection): void;
  /** Servers of the cluster left it while our own connection stayed up. */
  serversLeft(nc: NatsConnection, gone: string[]): void;
  /** The connection closed for good (a fatal error); a new one is being made. */
  lost(): void;
}

/**
 * The bus's one NATS connection: connects (retrying until it works), lets nats.js reconnect,
 * tracks whether it is usable and why not, and tells the other parts through `ConnectionEvents`.
 */
export class NatsBusConnection {
  readonly #s: ConnectionSettings;
  readonly #log: Logger;
  #events: ConnectionEvents | undefined;
  #conn: Connected | undefined;
  /** Tracks the connection's status events; false while nats.js reconnects. */
  #connected = false;
  #closed = false;
  #lastError = 'not connected yet';
  /** Settles once the first connection attempt succeeded or failed. */
  #firstAttempt: Promise<void> | undefined;

  constructor(settings: ConnectionSettings, log: Logger) {
    this.#s = settings;
    this.#log = log;
  }

  /** Starts connecting; `events` hears of everything that happens to the connection from now on. */
  start(events: ConnectionEvents): void {
    this.#events = events;
    let firstSettled!: () => void;
    this.#firstAttempt = new Promise<void>((resolve) => { firstSettled = resolve; });
    void this.#connectLoop(firstSettled);
  }

  /** Resolves once the first attempt to connect succeeded or failed (`require` says which). */
  async firstAttempt(): Promise<void> {
    await this.#firstAttempt;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the connection is up (false while nats.js reconnects). */
  get connected(): boolean {
    return this.#connected;
  }

  /** The connection, if one was made, whether or not it is up right now. */
  get current(): Connected | undefined {
    return this.#conn;
  }

  /** The connection, or an `unavailable` error saying why there is none right now. */
  require(): Connected {
    if (this.#closed) throw new ChatError('unavailable', 'the bus is closed');
    const conn = this.#conn;
    if (conn === undefined) throw new ChatError('unavailable', `not connected to NATS at ${this.#s.servers.join(',')}: ${this.#lastError}`);
    if (!this.#connected) throw new ChatError('unavailable', `NATS connection lost (${this.#lastError}); reconnecting`);
    return conn;
  }

  /** Round trip to the server, so it has processed everything sent before; bounded, never throws. */
  async flush(): Promise<void> {
    const conn = this.#conn;
    if (conn === undefined || !this.#connected || conn.nc.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([conn.nc.flush(), new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#s.apiTimeoutMs); })]);
    } catch (err) {
      this.#log.debug({ err }, 'nats bus: flush failed (connection lost)');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Marks the bus closed (every later `require` fails); false if it already was. */
  markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** After `markClosed`: drains (flushing what was published) within a bound, then closes. */
  async disconnect(): Promise<void> {
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

  /**
   * Connects, retrying until it works or the bus closes. Once connected, nats.js reconnects by
   * itself forever; this loop only runs again if the connection closes for good.
   */
  async #connectLoop(firstSettled: () => void): Promise<void> {
    const s = this.#s;
    let failures = 0;
    while (!this.#closed) {
      let nc: NatsConnection | undefined;
      try {
        nc = await connect({
          servers: s.servers,
          name: s.name,
          maxReconnectAttempts: -1,
          reconnectTimeWait: s.reconnectWaitMs,
          timeout: s.apiTimeoutMs,
          pingInterval: 10_000,
          maxPingOut: 3,
        });
        if (this.#closed) {
          await nc.close();
          break;
        }
        const jsm = await nc.jetstreamManager({ timeout: s.apiTimeoutMs, checkAPI: false });
        const replayJsm = await nc.jetstreamManager({ timeout: s.replayApiTimeoutMs, checkAPI: false });
        this.#attach({ nc, js: nc.jetstream({ timeout: s.publishTimeoutMs }), jsm, replayJsm });
        if (failures > 0) this.#log.info({ servers: s.servers, failures }, 'nats bus: connected after failed attempts');
        firstSettled();
        return;
      } catch (err) {
        this.#lastError = describe(err);
        if (failures++ === 0) this.#log.warn({ err, servers: s.servers }, 'nats bus: cannot connect to NATS; retrying');
        if (nc !== undefined && !nc.isClosed()) {
          await nc.close().catch((closeErr: unknown) => this.#log.debug({ err: closeErr }, 'nats bus: closing a half-set-up connection failed'));
        }
        firstSettled();
        await new Promise((resolve) => setTimeout(resolve, s.reconnectWaitMs));
      }
    }
    firstSettled();
  }

  #attach(conn: Connected): void {
    this.#conn = conn;
    this.#connected = true;
    this.#log.info({ server: conn.nc.getServer(), name: this.#s.name }, 'nats bus: connected');
    void this.#watch(conn.nc);
    this.#events!.attached(conn.nc);
    void conn.nc.closed().then((err) => {
      if (this.#conn === conn) {
        this.#conn = undefined;
        this.#connected = false;
      }
      if (this.#closed) return;
      this.#events!.lost();
      // only a fatal error (e.g. authorization) closes a connection that reconnects forever
      this.#lastError = err ? describe(err) : 'connection closed';
      this.#log.error({ err }, 'nats bus: connection closed for good; connecting again');
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
          // nothing else would tell us.
          const now = new Set(nc.info?.connect_urls ?? []);
          const gone = [...peers].filter((url) => !now.has(url));
          peers = now;
          if (gone.length) this.#events!.serversLeft(nc, gone);
          break;
        }
        case Events.Disconnect:
          this.#connected = false;
          this.#lastError = `disconnected from ${String(s.data)}`;
          this.#log.warn({ server: s.data }, 'nats bus: disconnected from NATS; reconnecting');
          this.#events!.disconnected();
          break;
        case Events.Reconnect:
          peers = new Set(nc.info?.connect_urls ?? []);
          this.#connected = true;
          this.#log.info({ server: s.data }, 'nats bus: reconnected to NATS');
          this.#events!.reconnected(nc);
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
}
