export { createLogger, silentLogger, type Logger } from './logger.ts';
export { registry, metrics, metricsText, refreshOnScrape } from './metrics.ts';
export {
  tracer, startTracing, tracingConfigured, tracingEnabled, markTracingEnabled, traceHeaders, contextFromHeaders, contextFromTraceparent,
  inSpan, activeTraceIds, SpanKind, SpanStatusCode, context, trace, type Tracing, type Context, type Link, type Span,
} from './tracing.ts';
export { buildInfo, type BuildInfo } from './build-info.ts';
