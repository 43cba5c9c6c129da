import type { Room, RoomKey } from '../../shared/domain/index.ts';
import type { Store } from '../../shared/store/index.ts';

/** Rooms remembered at most, and for how long (a rename shows in notifications after this). */
const MAX_ROOMS = 10_000;
const TTL_MS = 60_000;

/**
 * The rooms the notifier looks at, remembered for a minute: every created message needs its
 * room's type (a direct room notifies without a mention), and reading it from the store for each
 * active room in every collapse window would cost a read per room every few seconds. Missing
 * rooms are not remembered (a room created a moment ago may not be visible yet).
 */
export class RoomCache {
  readonly #store: Store;
  readonly #rooms = new Map<RoomKey, { room: Room; until: number }>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** The room if it is remembered and fresh, without reading the store. */
  peek(key: RoomKey, now: number): Room | undefined {
    const hit = this.#rooms.get(key);
    return hit !== undefined && hit.until > now ? hit.room : undefined;
  }

  async get(key: RoomKey, now: number): Promise<Room | undefined> {
    const fresh = this.peek(key, now);
    if (fresh !== undefined) return fresh;
    const room = await this.#store.getRoom(key);
    this.#rooms.delete(key);
    if (room === undefined) return undefined;
    // a Map iterates in insertion order: the first key is the one used longest ago
    if (this.#rooms.size >= MAX_ROOMS) this.#rooms.delete(this.#rooms.keys().next().value!);
    this.#rooms.set(key, { room, until: now + TTL_MS });
    return room;
  }
}
