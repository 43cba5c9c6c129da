import type { DurableEvent } from '../domain/events.ts';
import { ChatError } from '../protocol/errors.ts';

/**
 * Checks every store adapter applies the same way to what it is given: ids (signed 64-bit
 * decimal strings), history cursors, and the error for a malformed event of a batch (its index,
 * so the persister can retry the rest one by one).
 */
export const MAX_ID = (1n << 63n) - 1n;

const ID_RE = /^[0-9]{1,19}$/;

export function parseId(value: unknown): bigint | undefined {
  if (typeof value !== 'string' || !ID_RE.test(value)) return undefined;
  const n = BigInt(value);
  return n <= MAX_ID ? n : undefined;
}

export function badEvent(index: number, e: DurableEvent, why: string): ChatError {
  return new ChatError('bad_request', `event ${index} (${String(e.kind)} ${String(e.id)}): ${why}`, {
    details: { index, eventId: e.id, kind: e.kind },
  });
}

/** An id inside event `index` of a batch; a bad one rejects the event. */
export function eventId(value: string, index: number, e: DurableEvent): bigint {
  const n = parseId(value);
  if (n === undefined) throw badEvent(index, e, `${JSON.stringify(value)} is not an id`);
  return n;
}

/** A `before`/`after` history cursor. */
export function cursor(value: string, name: string): bigint {
  const n = parseId(value);
  if (n === undefined) throw new ChatError('bad_request', `${name}: ${JSON.stringify(value)} is not a message id`);
  return n;
}
