import type { Logger } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';
import type { NodeIdLease } from '../ids/node-id-lease.ts';

/**
 * Runs `stop` once on SIGTERM or SIGINT, then exits. A second signal, or a stop that takes longer
 * than `timeoutMs`, exits at once with status 1.
 */
export function onShutdown(log: Logger, stop: () => Promise<void>, timeoutMs = 20_000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown timed out');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => { log.info('stopped'); log.flush?.(); process.exit(0); },
      (err) => { log.error({ err }, 'shutdown failed'); process.exit(1); },
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
