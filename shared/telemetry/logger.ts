import { pino, type DestinationStream, type Logger } from 'pino';
import { activeTraceIds } from './tracing.ts';

export type { Logger };

const NO_TRACE = {};

/** Field names of channel credentials (the config's sections, an adapter's options) and of the secrets key. */
const CREDENTIALS = ['appSecret', 'accessToken', 'verifyToken', 'botToken', 'secretToken', 'signingSecret', 'previousKeys'];

/**
 * Where secrets could sit in what we log: AI provider keys (config sections, request headers), a
 * tenant's secrets map (a TenantRecord logged whole; the config's `secrets` section holds the
 * secrets key), channel credentials.
 * Nothing logs them on purpose; this keeps a careless `log.info({ config })` or a logged request
 * from leaking one. Paths are fixed (pino's redaction costs nothing for objects without them).
 */
export const REDACT_PATHS = [
  'apiKey', '*.apiKey', '*.*.apiKey', '*.*.*.apiKey',
  'authorization', 'headers.authorization', '*.headers.authorization',
  'headers["x-goog-api-key"]', '*.headers["x-goog-api-key"]',
  'secrets', '*.secrets', '*.*.secrets',
  ...CREDENTIALS.flatMap((name) => [name, `*.${name}`, `*.*.${name}`, `*.*.*.${name}`]),
];

/**
 * JSON logs to stdout (or `destination`); `tier` tells which tier wrote a line when all three share
 * a process. A line written inside a span carries its `trace_id` and `span_id` (the OpenTelemetry
 * log field names), so the logs of one message can be found from its trace and the other way round.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  const options = {
    level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => activeTraceIds() ?? NO_TRACE,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger that drops everything, for tests and benchmarks that don't read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
