/**
 * A circuit breaker per provider: after `failures` failures in a row it opens and the chain skips
 * the provider for `openMs`; then one request may try it (half open): success closes it, failure
 * opens it again. Keeps a dead provider from costing every request its timeout.
 */
export class CircuitBreaker {
  private consecutive = 0;
  private openUntil = 0;
  private trial = false;

  constructor(private readonly failures = 5, private readonly openMs = 30_000, private readonly now: () => number = Date.now) {}

  /** Whether a request may go to the provider now (claims the half-open trial if it is due). */
  allow(): boolean {
    if (this.consecutive < this.failures) return true;
    if (this.now() < this.openUntil || this.trial) return false;
    this.trial = true;
    return true;
  }

  success(): void {
    this.consecutive = 0;
    this.trial = false;
  }

  failure(): void {
    this.consecutive++;
    this.trial = false;
    if (this.consecutive >= this.failures) this.openUntil = this.now() + this.openMs;
  }

  get state(): 'closed' | 'open' | 'half_open' {
    if (this.consecutive < this.failures) return 'closed';
    return this.now() < this.openUntil ? 'open' : 'half_open';
  }
}
