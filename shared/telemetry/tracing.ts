import { context, propagation, trace, INVALID_SPAN_CONTEXT, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Context, type Link, type Span } from '@opentelemetry/api';
import { buildInfo } from './build-info.ts';

/**
 * Distributed tracing with OpenTelemetry. The SDK starts only when an exporter is configured with
 * the standard variables (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT, ...): without it the
 * API is a no-op, and the hot paths check `tracingEnabled()` first, so tracing costs one boolean
 * test per message by default. OTLP carries traces only: metrics are Prometheus' (/metrics) and
 * logs are pino's (stdout), each line with the trace id of the span it was written in.
 *
 * The W3C `traceparent` travels in NATS headers: the gateway or api injects it when it publishes a
 * durable event; the stream keeps it and republishes it with the event, so each gateway's fan-out
 * joins the sender's trace, and the persister extracts it from the event it consumes.
 */
export const tracer = trace.getTracer('chat-svc');

let enabled = false;

/** True once a tracer provider records spans (startTracing, or a test that registered one). */
export function tracingEnabled(): boolean {
  return enabled;
}

/** For tests that register their own tracer provider instead of calling startTracing. */
export function markTracingEnabled(on = true): void {
  enabled = on;
}

export interface Tracing {
  shutdown(): Promise<void>;
}

export function tracingConfigured(env: Record<string, string | undefined>): boolean {
  const exporter = env['OTEL_TRACES_EXPORTER'];
  if (exporter === 'none') return false;
  return Boolean(exporter || env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
}

export async function startTracing(serviceName: string, env: Record<string, string | undefined> = process.env): Promise<Tracing | undefined> {
  if (!tracingConfigured(env)) return undefined;
  // Loaded only when wanted: the SDK and its exporters are heavy.
  const { NodeSDK, resources } = await import('@opentelemetry/sdk-node');
  const build = buildInfo();
  const sdk = new NodeSDK({
    serviceName: env['OTEL_SERVICE_NAME'] ?? serviceName,
    resource: resources.defaultResource().merge(resources.resourceFromAttributes({ 'service.version': build.version, 'chat.build': build.build })),
    instrumentations: [],
    // traces only: without these the SDK would also start OTLP metric and log exporters
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  enabled = true;
  return {
    shutdown: async () => {
      enabled = false;
      await sdk.shutdown();
    },
  };
}

/** The active context as headers for a bus message; undefined when there is nothing to carry. */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> | undefined {
  if (!enabled) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier['traceparent'] ? carrier : undefined;
}

/** The context a bus message or request carried, or undefined when it carried none. */
export function contextFromHeaders(headers: Record<string, string> | undefined): Context | undefined {
  if (!headers?.['traceparent']) return undefined;
  return propagation.extract(ROOT_CONTEXT, headers);
}

/** The context of a W3C traceparent value, or undefined for none. */
export function contextFromTraceparent(traceparent: string | undefined): Context | undefined {
  if (!traceparent) return undefined;
  return propagation.extract(ROOT_CONTEXT, { traceparent });
}

/**
 * Runs `fn` in a span that records failure; the span ends when `fn` settles. Without tracing,
 * `fn` runs as is (no span, no context switch); it then gets a non-recording span.
 */
export async function inSpan<T>(name: string, kind: SpanKind, attributes: Record<string, string | number>, fn: (span: Span) => Promise<T>): Promise<T> {
  if (!enabled) return fn(NOOP_SPAN);
  return tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** What `fn` gets without tracing: every call on it does nothing. */
const NOOP_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** trace_id and span_id of the active span, for log lines; undefined outside any span. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  if (!enabled) return undefined;
  const sc = trace.getSpan(context.active())?.spanContext();
  if (sc === undefined || !trace.isSpanContextValid(sc)) return undefined;
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

export { SpanKind, SpanStatusCode, context, trace, type Context, type Link, type Span };
