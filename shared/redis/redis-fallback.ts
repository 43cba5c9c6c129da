import type { Logger } from 'pino';
import type { RedisClient } from './redis-client.ts';

/**
 * Runs an adapter's calls on Redis and, while Redis fails, on a per-process stand-in (`F`, for
 * example the memory adapter of the same port), so the chat path never sees a Redis error.
 *
 * An outage begins at the first failed call (or connection error): it is logged once (warn) and
 * the stand-in is created empty. During the outage every call is answered by the stand-in at once
 * and counted; calls also start a PING in the background, at most one at a time and one per
 * `probeIntervalMs` (the first after the client reconnects goes at once), so no caller waits on a
 * Redis that hangs. The first PING answered ends the outage: logged once (info), the stand-in is
 * dropped, Redis is the truth again. Only the calls in flight when Redis stops answering wait, up
 * to the client's command timeout.
 */
export interface RedisFallbackOptions<F> {
  /** Names what degrades, in the log lines ('presence', 'rate limiter'). */
  what: string;
  log: Logger;
  /** Called for each call answered by the stand-in (the degraded counter). */
  onDegraded: (op: string) => void;
  open: () => F;
  close: (standIn: F) => Promise<void>;
  probeIntervalMs?: number;
}

export const DEFAULT_PROBE_INTERVAL_MS = 1000;

interface Outage<F> {
  readonly since: number;
  readonly standIn: F;
  nextProbeAt: number;
  probing: boolean;
  failures: number;
}

export class RedisFallback<F> {
  readonly #client: RedisClient;
  readonly #opts: RedisFallbackOptions<F>;
  readonly #probeIntervalMs: number;
  #outage: Outage<F> | undefined;
  readonly #onError = (err: Error) => this.#fail(err, 'connection');
  readonly #onReady = () => {
    // the client reconnected: let the next call find out whether Redis answers
    if (this.#outage !== undefined) this.#outage.nextProbeAt = 0;
  };

  constructor(client: RedisClient, opts: RedisFallbackOptions<F>) {
    this.#client = client;
    this.#opts = opts;
    this.#probeIntervalMs = opts.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    client.on('error', this.#onError);
    client.on('ready', this.#onReady);
  }

  /** Starts an outage without a failed call, e.g. when Redis was not reachable at start. */
  markDown(reason: Error): void {
    this.#fail(reason, 'start');
  }

  async run<T>(op: string, viaRedis: () => Promise<T>, viaStandIn: (standIn: F) => Promise<T>): Promise<T> {
    const outage = this.#outage;
    if (outage !== undefined) {
      this.#probe(outage);
      return this.#degrade(op, outage, viaStandIn);
    }
    try {
      return await viaRedis();
    } catch (err) {
      return this.#degrade(op, this.#fail(err, op), viaStandIn);
    }
  }

  /** Detaches from the client and drops the stand-in. */
  async dispose(): Promise<void> {
    this.#client.off('error', this.#onError);
    this.#client.off('ready', this.#onReady);
    const outage = this.#outage;
    this.#outage = undefined;
    if (outage !== undefined) await this.#opts.close(outage.standIn);
  }

  #degrade<T>(op: string, outage: Outage<F>, viaStandIn: (standIn: F) => Promise<T>): Promise<T> {
    this.#opts.onDegraded(op);
    return viaStandIn(outage.standIn);
  }

  #probe(outage: Outage<F>): void {
    const now = Date.now();
    if (outage.probing || now < outage.nextProbeAt) return;
    outage.probing = true;
    outage.nextProbeAt = now + this.#probeIntervalMs;
    this.#client.ping().then(
      () => {
        outage.probing = false;
        if (this.#outage === outage) this.#recover(outage);
      },
      (err: unknown) => {
        outage.probing = false;
        outage.failures++;
        this.#opts.log.debug({ err }, `${this.#opts.what}: Redis still failing`);
      },
    );
  }

  #fail(err: unknown, during: string): Outage<F> {
    const current = this.#outage;
    if (current !== undefined) {
      current.failures++;
      this.#opts.log.debug({ err, during }, `${this.#opts.what}: Redis still failing`);
      return current;
    }
    const now = Date.now();
    const outage: Outage<F> = { since: now, standIn: this.#opts.open(), nextProbeAt: now + this.#probeIntervalMs, probing: false, failures: 1 };
    this.#outage = outage;
    this.#opts.log.warn(
      { err, during },
      `${this.#opts.what}: Redis unreachable; degraded to this process's own state until Redis answers again`,
    );
    return outage;
  }

  #recover(outage: Outage<F>): void {
    this.#outage = undefined;
    this.#opts.log.info(
      { downMs: Date.now() - outage.since, failures: outage.failures },
      `${this.#opts.what}: Redis answers again; back on Redis`,
    );
    this.#opts.close(outage.standIn).catch((err: unknown) => this.#opts.log.warn({ err }, `${this.#opts.what}: closing the stand-in failed`));
  }
}
