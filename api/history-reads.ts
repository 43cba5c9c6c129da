import { subjects } from '../shared/bus/index.ts';
import { createCachedRoomAccess, RoomGuard, type RoomAccess } from '../shared/commands/index.ts';
import { DEFAULTS, type HistoryConfig } from '../shared/config/index.ts';
import { HistoryWindows, durableEventFeed, type FeedSubscription } from '../shared/history/index.ts';
import { decodeMsgpack, type ServerFrame } from '../shared/protocol/index.ts';
import type { ApiDeps } from './deps.ts';
import type { RoomKey } from '../shared/domain/index.ts';

/** What REST history reads from: the rooms' history windows, and who may read them. */
export interface HistoryReads {
  windows: HistoryWindows;
  /**
   * Checks readers of history: rooms and memberships of watched rooms are kept in memory and
   * invalidated by the rooms' control events (as the gateway keeps them), the others read from
   * the store each time.
   */
  guard: RoomGuard;
  close(): void;
}

const DEFAULT_SETTINGS: HistoryConfig = {
  maxMessages: DEFAULTS.historyWindowMessages, maxRooms: DEFAULTS.historyWindowRooms,
  maxBytes: DEFAULTS.historyWindowMb * 1024 * 1024, idleMs: DEFAULTS.historyWindowIdleSec * 1000,
};

export function historyReads({ store, bus, log, history }: ApiDeps): HistoryReads {
  const access = createCachedRoomAccess(store);
  const windows = new HistoryWindows({
    ...(history ?? DEFAULT_SETTINGS),
    store,
    feed: durableEventFeed(bus, subjects.roomEvents),
    onWatch: (roomId) => watchAccess(access, roomId, (handler) => bus.subscribe(subjects.roomControl(roomId), handler)),
    onError: (err, room) => log.warn({ err, room }, 'history window: a store or stream read failed (a window that cannot start leaves history to the store)'),
  });
  return { windows, guard: new RoomGuard(access), close: () => windows.close() };
}

/** Keeps the room in the access cache while it is watched, fresh by its control events. */
function watchAccess(access: RoomAccess, roomId: RoomKey, subscribe: (handler: (payload: Uint8Array) => void) => FeedSubscription): FeedSubscription {
  access.retain(roomId);
  const sub = subscribe((payload) => {
    const frame = decodeMsgpack(payload) as ServerFrame;
    access.invalidate(roomId);
    const userId = frame.type === 'user_joined' || frame.type === 'user_left' ? frame.user.userId
      : frame.type === 'member_updated' ? frame.userId : undefined;
    if (userId !== undefined) access.invalidate(roomId, userId);
  });
  return {
    unsubscribe() {
      sub.unsubscribe();
      access.release(roomId);
    },
  };
}
