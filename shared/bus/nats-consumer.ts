import type { Logger } from 'pino';
import { performance } from 'node:perf_hooks';
import {
  AckPolicy, DeliverPolicy, nanos,
  type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, type JsMsg,
} from 'nats';
import type { BatchHandler, Consumer } from './bus.ts';
import type { ConsumerSettings } from './consume-options.ts';
import { decodeMsgpack } from '../protocol/codec.ts';
import { BusDelivery, type Settler } from './delivery.ts';
import { InProgress } from './in-progress.ts';
import type { NatsBusConnection } from './nats-connection.ts';
import { JS_CONSUMER_NOT_FOUND, jsErrCode, unavailable } from './nats-errors.ts';
import { DURABLE_FILTER, jsToDurable } from './nats-messages.ts';

/** Pull request lifetime; also paces heartbeat checks. */
const FETCH_EXPIRES_MS = 5000;
const CONSUMER_RETRY_MS = 1000;
/** Enough deliveries in flight for several processes of a group, each holding a batch and the next one. */
const MIN_MAX_ACK_PENDING = 20_000;

type NatsDelivery = BusDelivery<JsMsg>;
type Batch = InProgress<NatsDelivery>;

/** What a consumer needs of the rest of the bus. */
export interface ConsumerDeps {
  connection: Pick<NatsBusConnection, 'require' | 'flush'>;
  stream: string;
  log: Logger;
  /** Called once the consumer stopped. */
  stopped(consumer: NatsConsumer): void;
}

/** One settler for every delivery of the NATS bus: the JetStream message is the handle. */
const settleInStream: Settler<JsMsg> = {
  ack: (msg) => msg.ack(),
  nak: (msg, _delivery, delayMs) => msg.nak(delayMs),
  term: (msg) => msg.term(),
  working: (msg) => msg.working(),
};

const STOP = Symbol('stop');

/**
 * One process's share of a consumer group, in two loops. The puller sends pull requests (nats.js
 * `fetch`) for at most one batch beyond the one in the handler, and files every event into a batch
 * the moment it arrives; the dispatcher hands a batch to the handler once it is full or
 * `maxWaitMs` old. Each batch is kept in progress from its first event until its handler returns
 * (in-progress.ts), so an event waiting behind a slow write is never taken over by another
 * process, and a dead process's events move after one ack wait. (nats.js `consume()` would
 * prefetch into a buffer we cannot see, where events age towards the ack wait unseen.)
 */
export class NatsConsumer implements Consumer {
  readonly #deps: ConsumerDeps;
  readonly #log: Logger;
  readonly #s: ConsumerSettings;
  readonly #handler: BatchHandler;
  #stopping = false;
  readonly #stopSignal: Promise<typeof STOP>;
  #signalStop!: () => void;
  readonly #loop: Promise<void>;
  /** The batch being filled, and since when (monotonic ms of its first event). */
  #filling: Batch | undefined;
  #fillingSince = 0;
  /** Full batches the handler has not taken yet. */
  readonly #full: Batch[] = [];
  /** Events received and not yet handed to the handler: what the puller may still ask for is maxBatch minus this. */
  #waiting = 0;
  #fetch: ConsumerMessages | undefined;
  #wakeDispatcher: (() => void) | undefined;
  #wakePuller: (() => void) | undefined;

  constructor(deps: ConsumerDeps, settings: ConsumerSettings, handler: BatchHandler) {
    this.#deps = deps;
    this.#log = deps.log.child({ durable: settings.durable });
    this.#s = settings;
    this.#handler = handler;
    this.#stopSignal = new Promise((resolve) => { this.#signalStop = () => resolve(STOP); });
    this.#loop = this.#run();
  }

  async pending(): Promise<number> {
    const info = await this.#ensureConsumer(false);
    return info.num_pending + info.num_ack_pending;
  }

  async stop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#signalStop();
      this.#wakeDispatcher?.();
      this.#wakePuller?.();
      // what nats.js still holds is yielded before the end and goes back (#receive)
      this.#fetch?.stop();
    }
    await this.#loop;
    this.#deps.stopped(this);
  }

  async #run(): Promise<void> {
    await Promise.all([this.#pull(), this.#dispatch()]);
    // stopping: what was received but not handed over goes back to the group at once
    const left = [...this.#full, ...(this.#filling ? [this.#filling] : [])];
    this.#full.length = 0;
    this.#filling = undefined;
    for (const batch of left) {
      batch.release();
      for (const d of batch.items) d.nak(0);
    }
    // once stop() resolves, the server must know our pull requests are gone (no interest left),
    // or it could still hand them an event another consumer of the group should get
    await this.#deps.connection.flush();
  }

  /** Keeps a pull request out while there is room, until stopped; rebuilds the consumer after a failure. */
  async #pull(): Promise<void> {
    let failing = false;
    while (!this.#stopping) {
      try {
        await this.#ensureConsumer(true);
        const { js } = this.#deps.connection.require();
        const consumer = await js.consumers.get(this.#deps.stream, this.#s.durable);
        while (!this.#stopping) {
          const room = this.#s.maxBatch - this.#waiting;
          if (room <= 0) {
            await new Promise<void>((resolve) => { this.#wakePuller = resolve; });
            this.#wakePuller = undefined;
            continue;
          }
          const started = performance.now();
          const messages = await consumer.fetch({ max_messages: room, expires: FETCH_EXPIRES_MS });
          if (this.#stopping) {
            // not iterated: its pull request was never sent
            messages.stop();
            break;
          }
          this.#fetch = messages;
          let received = 0;
          try {
            for await (const msg of messages) {
              this.#receive(msg);
              received++;
            }
          } finally {
            this.#fetch = undefined;
          }
          if (failing) {
            this.#log.info('nats bus: consumer fetching again');
            failing = false;
          }
          // a pull that ends at once with nothing (the server refusing it) must not spin
          if (received === 0 && performance.now() - started < FETCH_EXPIRES_MS / 2) await this.#pause();
        }
      } catch (err) {
        if (this.#stopping) break;
        if (!failing) {
          failing = true;
          this.#log.warn({ err }, 'nats bus: consumer cannot fetch; retrying until it can');
        }
        await this.#pause();
      }
    }
  }

  #pause(): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([new Promise((resolve) => { timer = setTimeout(resolve, CONSUMER_RETRY_MS); }), this.#stopSignal])
      .finally(() => clearTimeout(timer));
  }

  /** Files an event into the batch being filled; that batch is kept in progress from now on. */
  #receive(msg: JsMsg): void {
    const d = new BusDelivery(jsToDurable(msg), msg.info.deliveryCount, settleInStream, msg, decodeMsgpack);
    if (this.#stopping) {
      d.nak(0);
      return;
    }
    let batch = this.#filling;
    if (batch === undefined) {
      batch = this.#filling = new InProgress(this.#s.ackWaitMs);
      this.#fillingSince = performance.now();
    }
    batch.hold(d);
    this.#waiting++;
    const size = batch.items.length;
    if (size >= this.#s.maxBatch) {
      this.#full.push(batch);
      this.#filling = undefined;
    }
    // the dispatcher waits for a first event (to start its maxWaitMs) or a full batch, nothing in between
    if (size === 1 || size >= this.#s.maxBatch) this.#wakeDispatcher?.();
  }

  /** Hands batches to the handler one at a time, until stopped. */
  async #dispatch(): Promise<void> {
    while (!this.#stopping) {
      const batch = this.#takeDue();
      if (batch === undefined) {
        await this.#untilDue();
        continue;
      }
      try {
        await this.#handler(batch.items);
      } catch (err) {
        this.#log.error({ err, size: batch.items.length }, 'nats bus: batch handler threw; its unsettled events are redelivered');
        for (const d of batch.items) d.retryIfUnsettled();
      } finally {
        batch.release();
      }
    }
  }

  /** A full batch, or the one filling once it is maxWaitMs old. */
  #takeDue(): Batch | undefined {
    let batch = this.#full.shift();
    if (batch === undefined && this.#filling !== undefined && performance.now() >= this.#fillingSince + this.#s.maxWaitMs) {
      batch = this.#filling;
      this.#filling = undefined;
    }
    if (batch !== undefined) {
      this.#waiting -= batch.items.length;
      this.#wakePuller?.();
    }
    return batch;
  }

  /** Resolves when a batch may be due: a first event, a full batch, the filling one's deadline, or stop. */
  #untilDue(): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      this.#wakeDispatcher = () => {
        clearTimeout(timer);
        this.#wakeDispatcher = undefined;
        resolve();
      };
      if (this.#filling !== undefined) {
        timer = setTimeout(this.#wakeDispatcher, Math.max(0, this.#fillingSince + this.#s.maxWaitMs - performance.now()));
      }
    });
  }

  /** The group's consumer, created if missing; `update` also brings its ack wait in line. */
  async #ensureConsumer(update: boolean): Promise<ConsumerInfo> {
    const { jsm } = this.#deps.connection.require();
    const { stream } = this.#deps;
    const { durable, ackWaitMs, maxBatch } = this.#s;
    const maxAckPending = Math.max(MIN_MAX_ACK_PENDING, maxBatch * 8);
    try {
      const info = await jsm.consumers.info(stream, durable);
      if (update && (info.config.ack_wait !== nanos(ackWaitMs) || (info.config.max_ack_pending ?? 0) < maxAckPending)) {
        return await jsm.consumers.update(stream, durable, { ack_wait: nanos(ackWaitMs), max_ack_pending: Math.max(maxAckPending, info.config.max_ack_pending ?? 0) });
      }
      return info;
    } catch (err) {
      if (jsErrCode(err) !== JS_CONSUMER_NOT_FOUND) throw unavailable(err, `consumer ${durable}`);
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
      return await jsm.consumers.add(stream, config);
    } catch (err) {
      throw unavailable(err, `consumer ${durable}: create`);
    }
  }
}
