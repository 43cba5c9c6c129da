/**
 * Lets the retries of deliveries end when the notifier stops: their waits resolve at once and
 * `running()` turns false, so no new try starts and the event is redelivered by the stream.
 */
export class StopSignal {
  #running = true;
  readonly #waiting = new Set<() => void>();

  running(): boolean {
    return this.#running;
  }

  sleep(ms: number): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.add(done);
    });
  }

  stop(): void {
    this.#running = false;
    for (const wake of [...this.#waiting]) wake();
  }
}
