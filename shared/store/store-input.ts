import type { DurableEvent } from '../domain/events.ts';
import type { Room, RoomMember } from '../domain/models.ts';
import { isId } from '../ids/index.ts';
import { ChatError } from '../protocol/errors.ts';

/**
 * Checks every store adapter applies the same way to what it is given: ids (the snowflakes of
 * shared/ids: decimal strings of a non-negative signed 64-bit value), history cursors, times,
 * limits, and the error for a malformed event of a batch (its index, so the persister can retry
 * the rest one by one).
 */

/** The largest id `isId` accepts: the open upper bound of an unbounded history page. */
export const MAX_ID = (1n << 63n) - 1n;

/** Limits, offsets and caps are cut to this, which every backend takes as an integer. */
const MAX_BOUND = 2 ** 31 - 1;

export function parseId(value: unknown): bigint | undefined {
  return typeof value === 'string' && isId(value) ? BigInt(value) : undefined;
}

export function badEvent(index: number, e: DurableEvent, why: string): ChatError {
  return new ChatError('bad_request', `event ${index} (${String(e.kind)} ${String(e.id)}): ${why}`, {
    details: { index, eventId: e.id, kind: e.kind },
  });
}

/** The error for event `index` of a batch whose kind no store knows (a newer producer, a bad payload). */
export function unknownKind(index: number, e: never): ChatError {
  const { kind, id } = e as { kind?: unknown; id?: unknown };
  return new ChatError('bad_request', `event ${index}: unknown kind ${String(kind)}`, { details: { index, eventId: id, kind } });
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

/** An ISO time as ms; `what` names it in the error. */
export function parseTime(value: string, what: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new ChatError('bad_request', `${what} ${JSON.stringify(value)} is not a time`);
  return ms;
}

/** A limit, offset or cap: a non-negative integer (NaN and negatives are 0). */
export function bound(n: number): number {
  return n > 0 ? Math.min(Math.trunc(n), MAX_BOUND) : 0;
}

/** createRoom's members must all be of the room being created. */
export function checkMembersOf(room: Room, members: readonly RoomMember[]): void {
  for (const m of members) {
    if (m.roomId !== room.roomId) throw new ChatError('bad_request', `member ${m.userId} belongs to room ${m.roomId}, not ${room.roomId}`);
  }
}
