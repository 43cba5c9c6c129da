/**
 * Lets waiters through one per event-loop turn, in arrival order. The AI workers pass each step
 * of an answer that does a burst of synchronous work (starting a question: the room, the limits,
 * the context window, the provider request; storing a finished answer) through one queue, so that
 * between two such steps the loop polls I/O again and ordinary messages go out.
 *
 * Without it, answers that finish together (streams started together end together) ran all their
 * steps in one turn: 50 of them held the loop for 30-100 ms every answer length, and every message
 * of every other room that arrived meanwhile waited (bench/results/ai-p99/README.md). A step waits
 * one turn per step ahead of it: sub-millisecond turns, against answers that take seconds.
 */
export class TurnQueue {
  private readonly waiting: Array<() => void> = [];
  private scheduled = false;

  /** Resolves in a later turn, after every earlier waiter, each in a turn of its own. */
  turn(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  /** Waiters not yet let through. */
  get size(): number {
    return this.waiting.length;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // an immediate queued from an immediate runs in the next loop iteration, after its I/O poll
    setImmediate(() => {
      this.scheduled = false;
      this.waiting.shift()?.();
      if (this.waiting.length > 0) this.schedule();
    });
  }
}
