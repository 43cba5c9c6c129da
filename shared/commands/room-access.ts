import { ChatError } from '../protocol/errors.ts';
import type { Room, RoomMember } from '../domain/models.ts';
import { roomIdOf, type RoomKey } from '../domain/room-key.ts';
import type { Store } from '../store/store.ts';

/**
 * Reads a room and a user's membership for authorization, by the room's key (tenant and id: a
 * caller never reaches a room of another tenant, whatever id it names). The store is the truth; a caching
 * access keeps rooms it was told to `retain` (the gateway retains rooms whose control subject it
 * listens to) and relies on `invalidate` calls from control events to stay fresh. Rooms not
 * retained are read from the store every time, so nothing is served stale without a feed.
 */
export interface RoomAccess {
  /** The room, or ChatError('not_found') when it does not exist. */
  room(key: RoomKey): Promise<Room>;
  member(key: RoomKey, userId: string): Promise<RoomMember | undefined>;
  retain(key: RoomKey): void;
  release(key: RoomKey): void;
  invalidate(key: RoomKey, userId?: string): void;
}

export function createStoreRoomAccess(store: Store): RoomAccess {
  return {
    async room(key) {
      const room = await store.getRoom(key);
      if (!room) throw notFound(key);
      return room;
    },
    member: (roomId, userId) => store.getMember(roomId, userId),
    retain() {},
    release() {},
    invalidate() {},
  };
}

interface CachedRoom {
  refs: number;
  room: Room | undefined;
  members: Map<string, RoomMember | null>;
  /**
   * Counts invalidations. A store read keeps its answer only if none arrived while it was in
   * flight: the invalidation may be for a change the read did not see yet.
   */
  roomChanges: number;
  memberChanges: number;
}

/** Per-room member entries kept at most; beyond that the oldest entries are dropped. */
const MAX_MEMBERS_CACHED = 20_000;

export function createCachedRoomAccess(store: Store): RoomAccess {
  const rooms = new Map<RoomKey, CachedRoom>();
  return {
    async room(roomId) {
      const entry = rooms.get(roomId);
      let room = entry?.room;
      if (!room) {
        const changes = entry?.roomChanges;
        room = await store.getRoom(roomId);
        if (room && entry && rooms.get(roomId) === entry && entry.roomChanges === changes) entry.room = room;
      }
      if (!room) throw notFound(roomId);
      return room;
    },
    async member(roomId, userId) {
      const entry = rooms.get(roomId);
      if (entry) {
        const cached = entry.members.get(userId);
        if (cached !== undefined) return cached ?? undefined;
      }
      const changes = entry?.memberChanges;
      const member = await store.getMember(roomId, userId);
      const now = rooms.get(roomId);
      if (now && now === entry && now.memberChanges === changes) {
        if (now.members.size >= MAX_MEMBERS_CACHED) now.members.delete(now.members.keys().next().value!);
        now.members.set(userId, member ?? null);
      }
      return member;
    },
    retain(roomId) {
      const entry = rooms.get(roomId);
      if (entry) entry.refs++;
      else rooms.set(roomId, { refs: 1, room: undefined, members: new Map(), roomChanges: 0, memberChanges: 0 });
    },
    release(roomId) {
      const entry = rooms.get(roomId);
      if (entry && --entry.refs <= 0) rooms.delete(roomId);
    },
    invalidate(roomId, userId) {
      const entry = rooms.get(roomId);
      if (!entry) return;
      if (userId === undefined) {
        entry.room = undefined;
        entry.roomChanges++;
      } else {
        entry.members.delete(userId);
        entry.memberChanges++;
      }
    },
  };
}

function notFound(key: RoomKey): ChatError {
  return new ChatError('not_found', `room ${roomIdOf(key)} not found`);
}
