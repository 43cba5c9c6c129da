/**
 * Ends connections whose token expired: WebSockets (closed with 4401 unless an `auth` frame
 * extended them), SSE streams and long-poll sessions alike. Connections are kept in one bucket
 * per second of expiry and one timer looks at the due buckets every second, so a gateway holding
 * many connections keeps no timer per connection; one is ended within two seconds after its `exp`.
 */
export class TokenExpiry<T> {
  readonly #buckets = new Map<number, Set<T>>();
  readonly #bucketOf = new Map<T, number>();
  readonly #expired: (item: T) => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  /** Every bucket before this second was handled. */
  #checkedUpTo: number;

  constructor(expired: (item: T) => void, now: () => number = Date.now) {
    this.#expired = expired;
    this.#now = now;
    this.#checkedUpTo = Math.floor(now() / 1000);
  }

  get size(): number {
    return this.#bucketOf.size;
  }

  /** Watches `item` until `expiresAt` (ms); undefined (a token without exp) unwatches it. */
  watch(item: T, expiresAt: number | undefined): void {
    this.unwatch(item);
    if (expiresAt === undefined) return;
    // a token valid until 10.2 s is expired from 10.2 s on: its bucket is second 10, checked once 11 begins
    const second = Math.max(Math.floor(expiresAt / 1000), this.#checkedUpTo);
    let bucket = this.#buckets.get(second);
    if (bucket === undefined) this.#buckets.set(second, bucket = new Set());
    bucket.add(item);
    this.#bucketOf.set(item, second);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), 1000);
      this.#timer.unref();
    }
  }

  unwatch(item: T): void {
    const second = this.#bucketOf.get(item);
    if (second === undefined) return;
    this.#bucketOf.delete(item);
    const bucket = this.#buckets.get(second);
    bucket?.delete(item);
    if (bucket?.size === 0) this.#buckets.delete(second);
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#buckets.clear();
    this.#bucketOf.clear();
  }

  #tick(): void {
    const now = this.#now();
    const current = Math.floor(now / 1000);
    // the current second's bucket holds tokens expiring later within it: next time
    for (let second = this.#checkedUpTo; second < current; second++) {
      const bucket = this.#buckets.get(second);
      if (bucket === undefined) continue;
      for (const item of [...bucket]) {
        this.unwatch(item);
        this.#expired(item);
      }
    }
    this.#checkedUpTo = current;
    if (this.#bucketOf.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
