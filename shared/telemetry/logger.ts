import { pino, type Logger } from 'pino';
import { activeTraceIds } from './tracing.ts';

export type { Logger };

const NO_TRACE = {};

/**
 * JSON logs to stdout; `tier` tells which tier wrote a line when all three share a process. A line
 * written inside a span carries its `trace_id` and `span_id` (the OpenTelemetry log field names),
 * so the logs of one message can be found from its trace and the other way round.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => activeTraceIds() ?? NO_TRACE,
  });
}

/** A logger that drops everything, for tests and benchmarks that don't read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
