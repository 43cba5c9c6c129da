/**
 * Coalescing for state that only its latest value matters for (typing, presence status, read
 * marks): per key, the first offer takes effect at once and opens a window; offers within the
 * window replace each other and only the last takes effect when it ends (which opens the next
 * window). So a flood of N offers costs at most one application per window, and the final state
 * is never lost. In one process: each gateway or api process coalesces what reaches it.
 *
 * A window of 0 applies every offer at once.
 */
export class Coalescer<T> {
  readonly #windowMs: number;
  readonly #onError: (err: unknown, key: string) => void;
  readonly #open = new Map<string, Held<T>>();

  constructor(windowMs: number, onError: (err: unknown, key: string) => void) {
    this.#windowMs = windowMs;
    this.#onError = onError;
  }

  /** Keys with an open window (for tests and bounds: each closes within one window). */
  get size(): number {
    return this.#open.size;
  }

  /**
   * Applies `value` now and returns what `apply` returns, or holds it for the end of the current
   * window and returns undefined. A held value's failure goes to `onError` (its request was
   * answered already).
   */
  offer<R>(key: string, value: T, apply: (value: T) => Promise<R>): Promise<R> | undefined {
    if (this.#windowMs <= 0) return apply(value);
    const held = this.#open.get(key);
    if (held !== undefined) {
      held.value = value;
      held.apply = apply;
      held.waiting = true;
      return undefined;
    }
    this.#startWindow(key);
    return apply(value);
  }

  /** Whether `key` has an open window (something took effect less than a window ago). */
  has(key: string): boolean {
    return this.#open.has(key);
  }

  /** Forgets what is held for `key` (its owner went away): nothing more is applied for it. */
  drop(key: string): void {
    const held = this.#open.get(key);
    if (held === undefined) return;
    clearTimeout(held.timer);
    this.#open.delete(key);
  }

  close(): void {
    for (const held of this.#open.values()) clearTimeout(held.timer);
    this.#open.clear();
  }

  #startWindow(key: string): void {
    const held: Held<T> = {
      value: undefined, apply: undefined, waiting: false,
      timer: setTimeout(() => this.#endWindow(key, held), this.#windowMs),
    };
    held.timer.unref();
    this.#open.set(key, held);
  }

  #endWindow(key: string, held: Held<T>): void {
    this.#open.delete(key);
    if (!held.waiting) return;
    this.#startWindow(key);
    held.apply!(held.value as T).catch((err: unknown) => this.#onError(err, key));
  }
}

interface Held<T> {
  value: T | undefined;
  apply: ((value: T) => Promise<unknown>) | undefined;
  /** Something arrived within the window: apply it when the window ends. */
  waiting: boolean;
  timer: NodeJS.Timeout;
}
