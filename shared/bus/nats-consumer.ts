import type { Logger } from 'pino';
import {
  AckPolicy, ConsumerEvents, DeliverPolicy, nanos,
  type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, type JsMsg,
} from 'nats';
import type { BatchHandler, Consumer } from './bus.ts';
import type { ConsumerSettings } from './consume-options.ts';
import { BusDelivery, type Settler } from './delivery.ts';
import type { NatsBusConnection } from './nats-connection.ts';
import { JS_CONSUMER_NOT_FOUND, jsErrCode, unavailable } from './nats-errors.ts';
import { DURABLE_FILTER, jsToDurable } from './nats-messages.ts';

/** Pull request lifetime of a consumer; also paces its heartbeat checks and retries after an outage. */
const CONSUME_EXPIRES_MS = 5000;
const CONSUMER_RETRY_MS = 1000;
/** Enough deliveries in flight for several processes of a group, each holding a batch and a prefetched one. */
const MIN_MAX_ACK_PENDING = 20_000;

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
};

const STOP = Symbol('stop');
const TIMEOUT = Symbol('timeout');

/**
 * One process's share of a consumer group: pulls with nats.js `consume()` (which re-pulls,
 * watches heartbeats and re-pulls after a reconnect) and cuts the stream of messages into
 * batches. Messages are taken from the iterator only as batches are built, so nats.js keeps at
 * most about one batch prefetched while the handler runs.
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
    }
    await this.#loop;
    this.#deps.stopped(this);
  }

  async #run(): Promise<void> {
    let failing = false;
    while (!this.#stopping) {
      let messages: ConsumerMessages | undefined;
      try {
        await this.#ensureConsumer(true);
        const { js } = this.#deps.connection.require();
        const consumer = await js.consumers.get(this.#deps.stream, this.#s.durable);
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
      if (!this.#stopping) await Promise.race([new Promise((resolve) => setTimeout(resolve, CONSUMER_RETRY_MS)), this.#stopSignal]);
    }
    // once stop() resolves, the server must know our pull requests are gone (no interest left),
    // or it could still hand them an event another consumer of the group should get
    await this.#deps.connection.flush();
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
    const deliveries = msgs.map((m) => new BusDelivery(jsToDurable(m), m.info.deliveryCount, settleInStream, m));
    try {
      await this.#handler(deliveries);
    } catch (err) {
      this.#log.error({ err, size: deliveries.length }, 'nats bus: batch handler threw; its unsettled events are redelivered');
      for (const d of deliveries) d.retryIfUnsettled();
    }
  }
}
