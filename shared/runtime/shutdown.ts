import type { Logger } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';
import type { NodeIdLease } from '../ids/node-id-lease.ts';

/**
 * Time a tier has after its drain grace to finish what is in flight (acks, a persister's batch, REST
 * requests) and close its backends; past it, the process exits with status 1.
 */
export const SHUTDOWN_MARGIN_MS = 10_000;

export interface ShutdownPlan {
  /** Marked not ready before anything else, so load balancers stop sending new work at once. */
  readiness?: { markNotReady(reason: string): void };
  /** How long the gateway waits for its clients to move (DRAIN_GRACE_MS); other tiers pass it too. */
  drainGraceMs: number;
  /** Stops taking new work, finishes what is in flight, closes backends. */
  stop(): Promise<void>;
}

/** The reason `/health/ready` gives while a process shuts down. */
export const SHUTTING_DOWN = 'shutting down';

/**
 * The one shutdown sequence of every process: on SIGTERM or SIGINT it turns not ready, runs
 * `stop` once, then exits 0. A second signal exits at once with status 1, as does a stop that takes
 * longer than the drain grace plus SHUTDOWN_MARGIN_MS (so the default stays within Kubernetes'
 * 30 s terminationGracePeriodSeconds, before its SIGKILL).
 */
export function onShutdown(log: Logger, plan: ShutdownPlan): void {
  const timeoutMs = plan.drainGraceMs + SHUTDOWN_MARGIN_MS;
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    plan.readiness?.markNotReady(SHUTTING_DOWN);
    log.info({ signal, drainGraceMs: plan.drainGraceMs }, 'shutting down: not ready from now on');
    const timer = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown timed out');
      log.flush?.();
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    plan.stop().then(
      () => { log.info('stopped'); log.flush?.(); process.exit(0); },
      (err) => { log.error({ err }, 'shutdown failed'); log.flush?.(); process.exit(1); },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** Exit status of a process whose node id lease was lost (EX_TEMPFAIL: a restart claims a new id). */
export const EXIT_NODE_ID_LOST = 75;

/**
 * A lost node id lease ends the process. Its ids already stopped (LeasedSnowflake), but a process
 * that cannot make ids cannot send, and only a fresh start may claim a new id safely; exiting
 * makes that visible to the supervisor instead of leaving a process that fails every send.
 */
export function exitOnLostNodeId(lease: NodeIdLease, log: Logger): void {
  void lease.lost.then((err) => {
    metrics.nodeIdLeaseLost.inc();
    log.fatal({ err, nodeId: lease.nodeId }, 'node id lease lost: exiting so that no id is made twice; a restart claims a new id');
    log.flush?.();
    process.exit(EXIT_NODE_ID_LOST);
  });
}
