import type { Bus, LiveHandler } from '../bus/index.ts';
import type { RoomKey } from '../domain/room-key.ts';
import type { DurableEvent } from '../domain/events.ts';
import { decodeMsgpack } from '../protocol/index.ts';
import type { RoomEventFeed } from './room-event-feed.ts';

/**
 * A RoomEventFeed on the bus, given how a room's live events are subscribed to: replays come from
 * the stream, continuity from the bus's live-plane watch.
 */
export function busFeed(bus: Bus, live: (roomId: RoomKey, onEvent: (event: DurableEvent, seq: number) => void) => LiveHandlerOn): RoomEventFeed {
  return {
    watch(roomId, onEvent) {
      const { subject, handler } = live(roomId, onEvent);
      return bus.subscribe(subject, handler);
    },
    async replay(roomId, sinceMs, onEvent) {
      await bus.replay(roomId, sinceMs, (msg) => onEvent(decodeMsgpack(msg.data) as DurableEvent, msg.seq));
    },
    watchContinuity(listener) {
      return bus.watchLive({ interrupted: () => listener.interrupted(), restored: () => listener.restored() });
    },
  };
}

/** The subject that carries a room's live events, and the handler that turns them into events. */
export interface LiveHandlerOn {
  subject: string;
  handler: LiveHandler;
}

/**
 * The room's stored events as the stream republishes them (docs/architecture.md, Durability): on
 * the room's live subject (`subjectOf(R)`), a message that carries a stream sequence is the
 * msgpack DurableEvent the stream stored; the others there are ephemeral frames (typing,
 * presence), which history has no use for.
 */
export function durableEventFeed(bus: Bus, subjectOf: (roomId: RoomKey) => string): RoomEventFeed {
  return busFeed(bus, (roomId, onEvent) => ({
    subject: subjectOf(roomId),
    handler: (payload: Uint8Array, _subject: string, seq?: number) => {
      if (seq !== undefined) onEvent(decodeMsgpack(payload) as DurableEvent, seq);
    },
  }));
}
