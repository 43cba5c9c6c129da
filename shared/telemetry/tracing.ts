import { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Context, type Span } from '@opentelemetry/api';

/**
 * Distributed tracing with OpenTelemetry. The SDK starts only when an exporter is configured with
 * the standard variables (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT, ...): without it the
 * API is a no-op, so tracing costs nothing by default.
 *
 * The W3C `traceparent` travels in NATS headers: the gateway injects it when it publishes a
 * durable event, the persister extracts it, so one trace shows send -> stream -> store write.
 */
export const tracer = trace.getTracer('chat-svc');

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
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName: env['OTEL_SERVICE_NAME'] ?? serviceName, instrumentations: [] });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}

/** The active context as headers for a bus message; undefined when there is nothing to carry. */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier['traceparent'] ? carrier : undefined;
}

/** The context a bus message carried, or undefined when it carried none. */
export function contextFromHeaders(headers: Record<string, string> | undefined): Context | undefined {
  if (!headers?.['traceparent']) return undefined;
  return propagation.extract(ROOT_CONTEXT, headers);
}

/** Runs `fn` in a span that records failure; the span ends when `fn` settles. */
export async function inSpan<T>(name: string, kind: SpanKind, attributes: Record<string, string | number>, fn: (span: Span) => Promise<T>): Promise<T> {
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

export { SpanKind, SpanStatusCode, context };
