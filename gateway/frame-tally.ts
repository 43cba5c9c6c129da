import type { Counter } from 'prom-client';
import { metrics, refreshOnScrape } from '../shared/telemetry/index.ts';

/** How often the counts reach the counter between scrapes (a scrape flushes them too). */
const FLUSH_MS = 1000;

/**
 * Counts frames by type on the hot path with a plain increment, and hands the counts to a
 * Prometheus counter once a second. prom-client's `labels(type).inc()` hashes and validates the
 * labels and allocates on every call, once per message per gateway (and per client frame).
 */
export class FrameTally {
  readonly #counts = new Map<string, { n: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly counter: Counter<'type'>) {
    // a scrape sees every frame counted so far, not the counts of the last flush
    refreshOnScrape(async () => this.flush());
  }

  count(type: string): void {
    let c = this.#counts.get(type);
    if (c === undefined) {
      this.#counts.set(type, c = { n: 0 });
      this.#timer ??= setInterval(() => this.flush(), FLUSH_MS).unref();
    }
    c.n++;
  }

  flush(): void {
    for (const [type, c] of this.#counts) {
      if (c.n === 0) continue;
      this.counter.inc({ type }, c.n);
      c.n = 0;
    }
  }

}

/** The gateway's frame counters (chat_frames_in_total, chat_frames_out_total). */
export const framesIn = new FrameTally(metrics.framesIn);
export const framesOut = new FrameTally(metrics.framesOut);
