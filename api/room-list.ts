import type { Principal } from '../shared/auth/index.ts';
import type { Room, RoomType } from '../shared/domain/index.ts';
import type { Store } from '../shared/store/index.ts';
import type { Presence } from '../shared/presence/index.ts';
import { publicRoom } from '../shared/commands/index.ts';
import { roomIdOf } from '../shared/domain/index.ts';

export type RoomScope = 'all' | 'joined' | 'discover';

export interface RoomListQuery {
  scope: RoomScope;
  type?: RoomType;
  /** false: the rooms the reader has not archived; true: only those they archived. */
  archived: boolean;
  limit: number;
  offset: number;
}

export type RoomListItem = Omit<Room, 'tenant'> & { isJoined: boolean; unreadCount: number; isArchived: boolean };

/**
 * GET /v1/chat/rooms. `joined` and `discover` are one store query each. `all` is their union,
 * which the store port cannot express in one query (memberOf and discoverable intersect), so
 * both lists are read up to offset+limit, merged in the store's order (newest activity first,
 * then room id) and cut: every room of the union's window is within the window of its own list.
 * The total subtracts the rooms counted twice. The reader's archived rooms are left out, or with
 * `archived` only they are listed (archives are the reader's own: setArchived).
 */
export async function listRooms(store: Store, presence: Presence, who: Principal, q: RoomListQuery) {
  // the archive filter applies to each list alike, so the union's arithmetic below still holds
  const base = { tenant: who.tenant, ...(q.type ? { type: q.type } : {}), archive: { userId: who.userId, archived: q.archived } };
  let page: Room[];
  let total: number;
  // the tenant's rooms: ids are unique within it
  const joinedIds = new Set((await store.roomsOfUser(who.tenant, who.userId)).map(roomIdOf));
  if (q.scope === 'joined' || q.scope === 'discover') {
    const filter = q.scope === 'joined' ? { memberOf: who.userId } : { discoverable: true };
    ({ rooms: page, total } = await store.listRooms({ ...base, ...filter, limit: q.limit, offset: q.offset }));
  } else {
    const window = q.offset + q.limit;
    const [joined, discoverable, both] = await Promise.all([
      store.listRooms({ ...base, memberOf: who.userId, limit: window, offset: 0 }),
      store.listRooms({ ...base, discoverable: true, limit: window, offset: 0 }),
      store.listRooms({ ...base, memberOf: who.userId, discoverable: true, limit: 1, offset: 0 }),
    ]);
    const merged = new Map<string, Room>();
    for (const room of [...joined.rooms, ...discoverable.rooms]) merged.set(room.roomId, room);
    page = [...merged.values()].sort(byActivity).slice(q.offset, window);
    total = joined.total + discoverable.total - both.total;
  }
  // Unread counts come from presence (O(1) per room), not from counting stored messages.
  const unread = await presence.unreadCounts(who.tenant, who.userId, page.filter((r) => joinedIds.has(r.roomId)).map((r) => r.roomId));
  const rooms: RoomListItem[] = page.map((room) => {
    const isJoined = joinedIds.has(room.roomId);
    return { ...(publicRoom(room) as Omit<Room, 'tenant'>), isJoined, unreadCount: unread.get(room.roomId) ?? 0, isArchived: q.archived };
  });
  return { rooms, pagination: { total, limit: q.limit, offset: q.offset, hasMore: q.offset + rooms.length < total } };
}

function byActivity(a: Room, b: Room): number {
  const t = Date.parse(b.lastActivity) - Date.parse(a.lastActivity);
  if (t !== 0) return t;
  return a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : 0;
}
