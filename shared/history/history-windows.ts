import type { Message } from '../domain/models.ts';
import type { RoomKey } from '../domain/room-key.ts';
import type { HistoryQuery, Store } from '../store/index.ts';
import type { FeedSubscription, RoomEventFeed } from './room-event-feed.ts';
import { RoomWindow, type ByteBudget, type HistoryItem } from './room-window.ts';

export interface HistoryWindowSettings {
  /** Messages kept per room; 0 turns the windows off (every read goes to the store). */
  maxMessages: number;
  /** Rooms watched at once; past it, the least recently read room is dropped. */
  maxRooms: number;
  /** Bytes all windows may hold (approximately); past it, least recently read rooms are dropped. */
  maxBytes: number;
  /** A room not read for this long is dropped. */
  idleMs: number;
}

/** Rooms are named by their key (shared/domain/room-key.ts): windows, feeds and store reads alike. */
export interface HistoryWindowsOptions extends HistoryWindowSettings {
  store: Pick<Store, 'history' | 'getMessage'>;
  feed: RoomEventFeed;
  /**
   * How far back (stream time) a room's events are replayed when it starts being watched, so
   * that events stored before the watch began and not yet written to the store are in it: more
   * than the persister's lag.
   */
  replayMs?: number;
  /**
   * How often (at most) a room being read joins the store's newest page in again, for what the
   * replay could not reach: events stored more than `replayMs` before the watch began that the
   * persister had not written yet.
   */
  resyncMs?: number;
  /** Called when a room starts being watched; the returned subscription ends when it stops. */
  onWatch?: (roomId: RoomKey) => FeedSubscription;
  /** Hears of a failed read of the store or the stream (a watch that could not start: reads go to the store). */
  onError?: (err: unknown, roomId: RoomKey) => void;
  now?: () => number;
}

/** Default `replayMs`: well past a persister batch, and past a persister takeover. */
export const DEFAULT_REPLAY_MS = 10_000;
export const DEFAULT_RESYNC_MS = 30_000;

interface Watched {
  window: RoomWindow;
  /** Until the first store read and the replay are applied; undefined once ready. */
  loading: Promise<boolean> | undefined;
  lastRead: number;
  /** When the store's newest page was last joined in. */
  syncedAt: number;
  subscriptions: FeedSubscription[];
}

/**
 * History that reads its own writes: the newest part of each room that is being read, kept in
 * memory and current from the room's event feed, so that a message is in history as soon as it
 * is stored (in the embedded mode, before its sender is acknowledged), whether or not the
 * persister has written it yet. A read returns what `Store.history` returns once the persister
 * caught up with every event the feed delivered (RoomWindow says how).
 *
 * A room starts being watched at its first read: subscribe to its feed, read the store's newest
 * page, replay the stream's recent events over it. It is dropped when not read for `idleMs`,
 * when the bounds need the room, or, for every room, when the feed may have lost events (then
 * reads go to the store until the feed is whole again).
 */
export class HistoryWindows {
  private readonly rooms = new Map<RoomKey, Watched>();
  private readonly budget: ByteBudget = { used: 0 };
  private readonly now: () => number;
  private readonly replayMs: number;
  private readonly resyncMs: number;
  private readonly continuity: FeedSubscription;
  private readonly sweeper: NodeJS.Timeout | undefined;
  private live = true;
  /** The room read last, already at the end of `rooms`. */
  private lastRoom: RoomKey | undefined;

  constructor(private readonly opts: HistoryWindowsOptions) {
    this.now = opts.now ?? Date.now;
    this.replayMs = opts.replayMs ?? DEFAULT_REPLAY_MS;
    this.resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.continuity = opts.feed.watchContinuity({
      interrupted: () => {
        this.live = false;
        this.dropAll();
      },
      restored: () => {
        this.live = true;
      },
    });
    if (opts.maxMessages > 0) {
      this.sweeper = setInterval(() => this.dropIdle(), Math.max(1000, Math.min(opts.idleMs, 60_000)));
      this.sweeper.unref();
    }
  }

  /** Rooms watched now. */
  get size(): number {
    return this.rooms.size;
  }

  /** Bytes the windows hold now (approximately). */
  get bytes(): number {
    return this.budget.used;
  }

  /** A page of the room's history with Store.history's rules; thread pages go to the store. */
  async history(roomId: RoomKey, q: HistoryQuery): Promise<HistoryItem[]> {
    if (q.threadId !== undefined || this.opts.maxMessages === 0 || !this.live) return storeItems(await this.opts.store.history(roomId, q));
    let w = this.rooms.get(roomId);
    if (w === undefined) w = this.watch(roomId);
    else if (this.lastRoom !== roomId) {
      // most recently read last: the bounds drop from the front
      this.rooms.delete(roomId);
      this.rooms.set(roomId, w);
    }
    this.lastRoom = roomId;
    w.lastRead = this.now();
    if (w.loading !== undefined && !(await w.loading && this.rooms.get(roomId) === w)) {
      return storeItems(await this.opts.store.history(roomId, q));
    }
    if (w.lastRead - w.syncedAt >= this.resyncMs) this.resync(roomId, w);
    const items = await w.window.read(q, (sq) => this.opts.store.history(roomId, sq));
    if (this.budget.used > this.opts.maxBytes) this.fit(w);
    return items;
  }

  /**
   * One message as Store.getMessage returns it, including what the room's window holds that the
   * persister has not written yet. Does not start watching the room.
   */
  async message(roomId: RoomKey, messageId: string): Promise<Message | undefined> {
    const w = this.rooms.get(roomId);
    if (w === undefined || w.loading !== undefined) return this.opts.store.getMessage(roomId, messageId);
    return w.window.message(messageId, () => this.opts.store.getMessage(roomId, messageId));
  }

  /** Stops watching every room. */
  close(): void {
    clearInterval(this.sweeper);
    this.continuity.unsubscribe();
    this.dropAll();
  }

  private watch(roomId: RoomKey): Watched {
    while (this.rooms.size >= this.opts.maxRooms) this.drop(this.rooms.keys().next().value!);
    const window = new RoomWindow(roomId, this.opts.maxMessages, this.budget);
    const w: Watched = { window, loading: undefined, lastRead: this.now(), syncedAt: this.now(), subscriptions: [] };
    this.rooms.set(roomId, w);
    w.subscriptions.push(this.opts.feed.watch(roomId, (event) => {
      window.apply(event);
      if (this.budget.used > this.opts.maxBytes) this.fit(w);
    }));
    if (this.opts.onWatch) w.subscriptions.push(this.opts.onWatch(roomId));
    w.loading = this.load(roomId, w);
    return w;
  }

  /** Resolves false (and drops the room) when the store or the stream could not be read. */
  private async load(roomId: RoomKey, w: Watched): Promise<boolean> {
    try {
      const max = this.opts.maxMessages;
      const rows = await this.opts.store.history(roomId, { limit: max });
      w.window.seed(rows, rows.length < max);
      await this.opts.feed.replay(roomId, this.now() - this.replayMs, (event) => w.window.apply(event));
      w.loading = undefined;
      return true;
    } catch (err) {
      this.opts.onError?.(err, roomId);
      if (this.rooms.get(roomId) === w) this.drop(roomId);
      return false;
    }
  }

  /** Joins the store's newest page in again, in the background (a failure only waits for the next try). */
  private resync(roomId: RoomKey, w: Watched): void {
    w.syncedAt = w.lastRead;
    this.opts.store.history(roomId, { limit: this.opts.maxMessages }).then((rows) => {
      if (this.rooms.get(roomId) === w) w.window.refresh(rows);
    }, (err: unknown) => this.opts.onError?.(err, roomId));
  }

  /** Drops least recently read rooms until the windows fit their byte bound (`keep` last of all). */
  private fit(keep: Watched): void {
    for (const [roomId, w] of this.rooms) {
      if (this.budget.used <= this.opts.maxBytes) return;
      if (w !== keep) this.drop(roomId);
    }
    if (this.budget.used > this.opts.maxBytes) this.drop(keep.window.roomId);
  }

  private dropIdle(): void {
    const cutoff = this.now() - this.opts.idleMs;
    for (const [roomId, w] of this.rooms) {
      if (w.lastRead >= cutoff) return;
      this.drop(roomId);
    }
  }

  private drop(roomId: RoomKey): void {
    const w = this.rooms.get(roomId);
    if (w === undefined) return;
    this.rooms.delete(roomId);
    for (const s of w.subscriptions) s.unsubscribe();
    w.window.clear();
  }

  private dropAll(): void {
    for (const roomId of [...this.rooms.keys()]) this.drop(roomId);
  }
}

/** A store page as history items. */
export function storeItems(messages: Message[]): HistoryItem[] {
  return messages.map((m) => ({ messageId: m.messageId, json: JSON.stringify(m) }));
}
