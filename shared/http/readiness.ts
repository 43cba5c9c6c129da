import { ChatError } from '../protocol/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';

/** A server a tier depends on, as named on /health/detailed and in chat_dependency_up. */
export type Dependency = 'nats' | 'redis' | 'cassandra' | 'sqlite';

export interface CheckResult {
  name: string;
  dependency: Dependency | undefined;
  ok: boolean;
  /** How long the check took (the timeout when it did not answer). */
  latencyMs: number;
  /** Why it failed. */
  error: string | undefined;
}

interface Check {
  run: () => Promise<void>;
  dependency: Dependency | undefined;
}

/**
 * The process's readiness: the checks `/health/ready` runs, the one place that decides whether
 * the process is ready. Every run (a probe, /health/detailed, a metrics scrape) also updates
 * chat_ready{tier} and the chat_dependency_* gauges, and logs a check whose outcome changed.
 */
export class Readiness {
  readonly #checks = new Map<string, Check>();
  /** Outcome of each check's last run, to log changes rather than every failed probe. */
  readonly #last = new Map<string, boolean>();

  constructor(private readonly tier: string | undefined, private readonly timeoutMs: number, private readonly log: Logger) {}

  add(name: string, run: () => Promise<void>, dependency?: Dependency): void {
    this.#checks.set(name, { run, dependency });
  }

  async run(): Promise<{ ready: boolean; checks: CheckResult[] }> {
    const checks = await Promise.all([...this.#checks].map(([name, c]) => this.#runOne(name, c)));
    const ready = checks.every((c) => c.ok);
    if (this.tier !== undefined) metrics.ready.set({ tier: this.tier }, ready ? 1 : 0);
    for (const c of checks) {
      if (c.dependency === undefined) continue;
      metrics.dependencyUp.set({ dependency: c.dependency }, c.ok ? 1 : 0);
      metrics.dependencyLatency.set({ dependency: c.dependency }, c.latencyMs / 1000);
    }
    return { ready, checks };
  }

  async #runOne(name: string, check: Check): Promise<CheckResult> {
    const started = performance.now();
    let error: string | undefined;
    try {
      await withTimeout(check.run(), this.timeoutMs, name);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      if (this.#last.get(name) !== false) this.log.warn({ err, check: name }, 'readiness check failed');
    }
    const ok = error === undefined;
    if (ok && this.#last.get(name) === false) this.log.info({ check: name }, 'readiness check passes again');
    this.#last.set(name, ok);
    return { name, dependency: check.dependency, ok, latencyMs: Math.round((performance.now() - started) * 1000) / 1000, error };
  }
}

async function withTimeout(work: Promise<void>, ms: number, name: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ChatError('timeout', `${name} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
