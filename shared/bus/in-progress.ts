/** What a batch keeps in progress: a delivery that knows whether it is settled (BusDelivery). */
export interface Holdable {
  readonly settled: boolean;
  working(): void;
}

/**
 * Keeps one batch of deliveries in progress while this process holds it: waiting for the batch
 * to fill or for the handler to be free, then in the handler. One timer per batch, first due half
 * an ack wait after the batch's first delivery arrived (the server started counting when it sent
 * it, a moment earlier), then every half ack wait; it stops once every delivery is settled or the
 * batch is released. A batch settled within half an ack wait, the usual case, sends nothing.
 */
export class InProgress<T extends Holdable> {
  readonly items: T[] = [];
  readonly #everyMs: number;
  #timer: NodeJS.Timeout | undefined;
  #released = false;

  constructor(ackWaitMs: number) {
    this.#everyMs = Math.max(1, Math.floor(ackWaitMs / 2));
  }

  hold(item: T): void {
    this.items.push(item);
    if (this.#timer === undefined && !this.#released) this.#arm();
  }

  /** The handler returned (or the batch went back): what is left unsettled ages from now on. */
  release(): void {
    this.#released = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    this.#timer = setTimeout(this.#refresh, this.#everyMs);
    // whoever waits for the batch holds the process open, not this timer
    this.#timer.unref();
  }

  readonly #refresh = (): void => {
    this.#timer = undefined;
    let unsettled = 0;
    for (const item of this.items) {
      if (item.settled) continue;
      item.working();
      unsettled++;
    }
    if (unsettled > 0 && !this.#released) this.#arm();
  };
}
