import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { ChatError } from '../protocol/errors.ts';
import type {
  BatchHandler, Bus, ConsumeOptions, Consumer, DurableAck, DurableMessage, ReplayResult, LiveHandler, SubscribeOptions, LiveWatcher, Subscription,
} from './bus.ts';
import { consumerSettings } from './consume-options.ts';
import { NatsBusConnection } from './nats-connection.ts';
import { NatsConsumer, type ConsumerDeps } from './nats-consumer.ts';
import { NatsDurablePublisher } from './nats-publisher.ts';
import { NatsLivePlane } from './nats-live.ts';
import { NatsStreamReader, REPLAY_CREATE_TIMEOUT_MS } from './nats-replay.ts';
import { NatsStreamSetup, isJetStreamName, wantedStream, type StreamSettings } from './nats-stream.ts';

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
 * - the stream republishes what it stores (JetStream RePublish, `chat.durable.>` to
 *   `chat.live.>`); a live subscriber may get an event before its publisher got the PubAck;
 * - durable publishes are pipelined (`nats-publisher.ts`): many in flight, failed all at once
 *   with `unavailable` as soon as the connection drops;
 * - `replay` and `consume` see the server's clock: storedAt is the stream's time, not ours.
 */
export interface NatsBusConfig extends StreamSettings {
  servers: string[];
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

export const PUBLISH_TIMEOUT_MS = 2500;
export const API_TIMEOUT_MS = 5000;
export const RECONNECT_WAIT_MS = 1000;

export function createNatsBus(cfg: NatsBusConfig, log: Logger, opts: NatsBusOptions = {}): Bus {
  return new NatsBus(cfg, log, opts);
}

/**
 * Assembles the parts around one connection: stream setup, durable publish, the live plane,
 * stream reads and consumer groups. Each part gets only the few things of the connection it uses.
 */
class NatsBus implements Bus {
  readonly kind = 'nats' as const;

  readonly #connection: NatsBusConnection;
  readonly #stream: NatsStreamSetup;
  readonly #live: NatsLivePlane;
  readonly #publisher: NatsDurablePublisher;
  readonly #reader: NatsStreamReader;
  readonly #consumers = new Set<NatsConsumer>();
  readonly #consumerDeps: ConsumerDeps;

  constructor(cfg: NatsBusConfig, log: Logger, opts: NatsBusOptions) {
    if (!cfg.servers.length) throw new ChatError('bad_request', 'nats bus: servers must not be empty');
    if (!(cfg.recoveryWindowSec > 0)) throw new ChatError('bad_request', `nats bus: recoveryWindowSec must be > 0, got ${cfg.recoveryWindowSec}`);
    const want = wantedStream(cfg);
    const apiTimeoutMs = opts.apiTimeoutMs ?? API_TIMEOUT_MS;
    const publishTimeoutMs = opts.publishTimeoutMs ?? PUBLISH_TIMEOUT_MS;

    const connection = this.#connection = new NatsBusConnection({
      servers: [...cfg.servers],
      name: opts.name ?? `chat-svc ${hostname()} ${process.pid}`,
      publishTimeoutMs,
      apiTimeoutMs,
      replayApiTimeoutMs: Math.min(apiTimeoutMs, REPLAY_CREATE_TIMEOUT_MS),
      reconnectWaitMs: opts.reconnectWaitMs ?? RECONNECT_WAIT_MS,
    }, log);
    const stream = this.#stream = new NatsStreamSetup(want, connection, log);
    const live = this.#live = new NatsLivePlane(connection, log);
    const publisher = this.#publisher = new NatsDurablePublisher(connection, stream, publishTimeoutMs, log);
    this.#reader = new NatsStreamReader(connection, stream.name, log);
    this.#consumerDeps = { connection, stream: stream.name, log, stopped: (c) => this.#consumers.delete(c) };

    connection.start({
      attached(nc) {
        live.attached(nc);
        stream.ensureInBackground();
        // a connection that replaces one closed for good: its subscriptions are new, so live is back
        void live.restored(nc);
      },
      disconnected() {
        live.interrupted();
        publisher.failAll('the NATS connection was lost');
      },
      reconnected(nc) {
        live.reconnected();
        // a server that lost its storage comes back without the stream
        stream.ensureInBackground();
        void live.restored(nc);
      },
      serversLeft: (nc, gone) => live.serversLeft(nc, gone),
      lost() {
        live.lost();
        publisher.failAll('the NATS connection closed');
        publisher.detach();
      },
    });
  }

  publish(subject: string, payload: Uint8Array): void {
    this.#live.publish(subject, payload);
  }

  subscribe(subject: string, handler: LiveHandler, options?: SubscribeOptions): Subscription {
    return this.#live.subscribe(subject, handler, options?.queue);
  }

  watchLive(watcher: LiveWatcher): Subscription {
    return this.#live.watchLive(watcher);
  }

  publishDurable(roomId: string, dedupeId: string, payload: Uint8Array, headers?: Record<string, string>): Promise<DurableAck> {
    return this.#publisher.publish(roomId, dedupeId, payload, headers);
  }

  getDurable(seq: number): Promise<DurableMessage | undefined> {
    return this.#reader.get(seq);
  }

  replay(roomId: string, sinceMs: number, onEvent: (msg: DurableMessage) => void, limit?: number): Promise<ReplayResult> {
    return this.#reader.replay(roomId, sinceMs, onEvent, limit);
  }

  consume(options: ConsumeOptions, handler: BatchHandler): Consumer {
    if (this.#connection.closed) throw new ChatError('unavailable', 'the bus is closed');
    const settings = consumerSettings(options);
    if (!isJetStreamName(settings.durable)) throw new ChatError('bad_request', `consume: invalid durable name "${settings.durable}"`);
    const consumer = new NatsConsumer(this.#consumerDeps, settings, handler);
    this.#consumers.add(consumer);
    return consumer;
  }

  async ready(): Promise<void> {
    if (this.#connection.closed) throw new ChatError('unavailable', 'the bus is closed');
    await this.#connection.firstAttempt();
    this.#connection.require();
    await this.#stream.ensure();
  }

  async close(): Promise<void> {
    if (!this.#connection.markClosed()) return;
    await Promise.all([...this.#consumers].map((c) => c.stop()));
    this.#consumers.clear();
    this.#live.clear();
    await this.#connection.disconnect();
    this.#publisher.failAll('the bus closed');
  }
}
