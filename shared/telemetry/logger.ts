import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs to stdout; `tier` tells which tier wrote a line when all three share a process. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that drops everything, for tests and benchmarks that don't read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
