export { createLogger, silentLogger, type Logger } from './logger.ts';
export { registry, metrics, refreshOnScrape } from './metrics.ts';
export { tracer, startTracing, tracingConfigured, traceHeaders, contextFromHeaders, inSpan, SpanKind, SpanStatusCode, context, type Tracing } from './tracing.ts';
