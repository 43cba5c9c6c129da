import { contextFromTraceparent, SpanKind, SpanStatusCode, tracer, type Span } from '../telemetry/tracing.ts';

/** Tag of the built-in routes (health, metrics, OpenAPI), which are not traced. */
export const OPERATIONS_TAG = 'operations';

/**
 * The span of one REST request, named by its route pattern (never the concrete path, which would
 * make a name per room); it continues the caller's trace when the request carries a traceparent.
 */
export function startRouteSpan(method: string, route: string, traceparent: string): Span {
  const m = method.toUpperCase();
  return tracer.startSpan(`${m} ${route}`, {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': m, 'http.route': route },
  }, contextFromTraceparent(traceparent || undefined));
}

/** 5xx marks the span failed; 4xx is the caller's error, not the server's (OpenTelemetry's HTTP conventions). */
export function endRouteSpan(span: Span, status: number): void {
  span.setAttribute('http.response.status_code', status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
