import type { DurableEvent } from '../domain/events.ts';
import type { RoomKey } from '../domain/room-key.ts';

/**
 * Where a history window learns of a room's stored events. The contract a feed keeps:
 * - `watch`: from the moment it returns, every durable event stored for the room is passed to
 *   `onEvent` with its stream sequence, as soon as it is stored (in the embedded mode, before the
 *   sender is acknowledged), at most once per subscription and sequence (a repeat is harmless:
 *   windows apply events idempotently), until the subscription is ended;
 * - `replay`: the room's stored events from stream time `sinceMs` on, in stream order; resolves
 *   when done; rejects when the stream cannot be read;
 * - `watchContinuity`: `interrupted` when events may have been stored without reaching the
 *   watchers (the live connection dropped), `restored` once they reach them again. Calls
 *   alternate, starting with `interrupted`; a feed that cannot lose events never calls either.
 */
export interface RoomEventFeed {
  watch(roomId: RoomKey, onEvent: (event: DurableEvent, seq: number) => void): FeedSubscription;
  replay(roomId: RoomKey, sinceMs: number, onEvent: (event: DurableEvent, seq: number) => void): Promise<void>;
  watchContinuity(listener: { interrupted(): void; restored(): void }): FeedSubscription;
}

export interface FeedSubscription {
  unsubscribe(): void;
}
