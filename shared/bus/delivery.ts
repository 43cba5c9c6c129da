import { redeliveryDelayMs } from '../retry/index.ts';
import type { Delivery, DurableMessage } from './bus.ts';

/**
 * How an adapter carries out a settlement. `handle` is what the adapter keeps per delivery (the
 * NATS message, the memory consumer group): one settler object serves every delivery, so no
 * closure is made per event.
 */
export interface Settler<H> {
  ack(handle: H, delivery: BusDelivery<H>): void;
  nak(handle: H, delivery: BusDelivery<H>, delayMs: number): void;
  term(handle: H, delivery: BusDelivery<H>): void;
  /** Restart the delivery's ack wait; only called while it is unsettled. */
  working(handle: H, delivery: BusDelivery<H>): void;
}

/**
 * A delivery of every adapter. It is settled once: the first ack, nak or term decides and later
 * calls are ignored, so a handler that naks and then acks by mistake keeps the retry it asked for.
 * A nak without a delay, and an event its handler left unsettled by throwing, come back after the
 * redelivery backoff.
 */
export class BusDelivery<H> implements Delivery {
  readonly seq: number;
  readonly roomId: string;
  readonly dedupeId: string;
  readonly storedAt: number;
  readonly data: Uint8Array;
  readonly headers: Record<string, string> | undefined;
  readonly deliveryCount: number;
  readonly #settler: Settler<H>;
  readonly #handle: H;
  readonly #decode: (data: Uint8Array) => unknown;
  #settled = false;

  constructor(msg: DurableMessage, deliveryCount: number, settler: Settler<H>, handle: H, decode: (data: Uint8Array) => unknown) {
    this.seq = msg.seq;
    this.roomId = msg.roomId;
    this.dedupeId = msg.dedupeId;
    this.storedAt = msg.storedAt;
    this.data = msg.data;
    this.headers = msg.headers;
    this.deliveryCount = deliveryCount;
    this.#settler = settler;
    this.#handle = handle;
    this.#decode = decode;
  }

  decoded(): unknown {
    return this.#decode(this.data);
  }

  ack(): void {
    if (this.#settle()) this.#settler.ack(this.#handle, this);
  }

  nak(delayMs?: number): void {
    if (this.#settle()) this.#settler.nak(this.#handle, this, delayMs ?? redeliveryDelayMs(this.deliveryCount));
  }

  term(): void {
    if (this.#settle()) this.#settler.term(this.#handle, this);
  }

  working(): void {
    if (!this.#settled) this.#settler.working(this.#handle, this);
  }

  /** Acked, nak'd or term'd: nothing more to keep in progress. */
  get settled(): boolean {
    return this.#settled;
  }

  /** The batch handler threw: an event it did not settle comes back after the redelivery backoff. */
  retryIfUnsettled(): void {
    this.nak();
  }

  #settle(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    return true;
  }
}
