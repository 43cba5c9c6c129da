import type { ChatError } from '../shared/protocol/index.ts';
import { SpanKind, SpanStatusCode, tracer, type Span } from '../shared/telemetry/index.ts';
import type { Connection } from './connection.ts';

/**
 * The span of one WebSocket frame, from its receipt to its ack or error: the root of a message's
 * trace (the command, the stream publish, every gateway's fan-out and the persister's write are
 * its descendants). Only made while tracing is on.
 */
export function startFrameSpan(conn: Connection): Span {
  return tracer.startSpan('chat.ws.frame', {
    kind: SpanKind.SERVER,
    attributes: { 'chat.user_id': conn.principal.userId, 'chat.tenant': conn.principal.tenant, 'chat.connection_id': conn.connectionId },
  });
}

/** Frame types are a closed set, so they may name spans. */
export function nameFrameSpan(span: Span, type: string): void {
  span.updateName(`chat.ws ${type}`);
  span.setAttribute('chat.frame_type', type);
}

export function endFrameSpan(span: Span, error: ChatError | undefined): void {
  if (error) {
    span.setAttribute('chat.error_code', error.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  }
  span.end();
}
