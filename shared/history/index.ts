export { HistoryWindows, storeItems, DEFAULT_REPLAY_MS, DEFAULT_RESYNC_MS, type HistoryWindowSettings, type HistoryWindowsOptions } from './history-windows.ts';
export type { HistoryItem } from './room-window.ts';
export type { RoomEventFeed, FeedSubscription } from './room-event-feed.ts';
export { durableEventFeed, busFeed } from './bus-feed.ts';
