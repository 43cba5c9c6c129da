import type { Room, RoomMember } from '../domain/models.ts';
import { keyOfRoom, roomIdOf } from '../domain/room-key.ts';
import { ChatError } from '../protocol/errors.ts';
import type { SqliteContext } from './sqlite-context.ts';
import { bound, checkMembersOf, parseTime } from './store-input.ts';
import type { ListRoomsQuery, Store } from './store.ts';

/** The control plane of the SQLite store: rooms and their members. */
export type RoomMethods = Pick<Store,
  'createRoom' | 'createMatchRoom' | 'getRoom' | 'updateRoom' | 'listRooms' | 'findDirectRoom' | 'touchRoom'
  | 'putMember' | 'getMember' | 'removeMember' | 'listMembers' | 'roomsOfUser' | 'setArchived' | 'archivedAt'>;

/**
 * memberCount is kept in the rooms row by every member write, in the write's transaction, so
 * listing rooms never counts members. Banned members do not count.
 */
export function sqliteRooms({ db, s, run }: SqliteContext): RoomMethods {
  const createRoomTx = db.transaction((room: Room, members: RoomMember[]) => {
    const key = keyOfRoom(room);
    if (s.insertRoom.run(roomParams(room)).changes === 0) {
      throw new ChatError('conflict', `room ${room.roomId} already exists`);
    }
    checkMembersOf(room, members);
    for (const m of members) s.upsertMember.run(memberParams(key, m));
    s.recountMembers.run(key);
  });

  // one transaction: the match lookup and the insert see the same rows, and the unique index
  // (tenant, match_id) refuses a second room of the match even from another connection to the file
  const createMatchRoomTx = db.transaction((room: Room, members: RoomMember[]): { room: Room; created: boolean } => {
    if (!room.matchId) throw new ChatError('bad_request', `room ${room.roomId} has no matchId`);
    const existing = s.matchRoom.get(room.tenant, room.matchId) as RoomRow | undefined;
    if (existing !== undefined) return { room: toRoom(existing), created: false };
    createRoomTx(room, members);
    return { room: toRoom(s.getRoom.get(keyOfRoom(room)) as RoomRow), created: true };
  });

  const putMemberTx = db.transaction((key: string, m: RoomMember) => {
    if (m.roomId !== roomIdOf(key)) throw new ChatError('bad_request', `member ${m.userId} belongs to room ${m.roomId}, not ${roomIdOf(key)}`);
    if (s.roomExists.get(key) === undefined) throw new ChatError('not_found', `room ${m.roomId} does not exist`);
    const old = s.memberBanned.get(key, m.userId) as { is_banned: number } | undefined;
    s.upsertMember.run(memberParams(key, m));
    const delta = (m.isBanned ? 0 : 1) - (old === undefined || old.is_banned ? 0 : 1);
    if (delta !== 0) s.addMemberCount.run(delta, key);
  });

  const removeMemberTx = db.transaction((roomId: string, userId: string) => {
    s.deleteArchive.run(roomId, userId);
    const old = s.memberBanned.get(roomId, userId) as { is_banned: number } | undefined;
    if (old === undefined) return;
    s.deleteMember.run(roomId, userId);
    if (!old.is_banned) s.addMemberCount.run(-1, roomId);
  });

  return {
    createRoom: (room, members) => run('createRoom', () => createRoomTx.immediate(room, members)),

    createMatchRoom: (room, members) => run('createMatchRoom', () => createMatchRoomTx.immediate(room, members)),

    getRoom: (roomId) => run('getRoom', () => {
      const row = s.getRoom.get(roomId) as RoomRow | undefined;
      return row === undefined ? undefined : toRoom(row);
    }),

    updateRoom: (room) => run('updateRoom', () => {
      const r = s.updateRoom.run({
        roomId: keyOfRoom(room), name: room.name, description: room.description, avatar: room.avatar ?? null,
        banner: room.banner ?? null, settings: JSON.stringify(room.settings), tags: JSON.stringify(room.tags),
        maxMembers: room.maxMembers, updatedAt: room.updatedAt,
      });
      if (r.changes === 0) throw new ChatError('not_found', `room ${room.roomId} does not exist`);
    }),

    listRooms: (q: ListRoomsQuery) => run('listRooms', () => {
      const params = {
        tenant: q.tenant, type: q.type ?? null, memberOf: q.memberOf ?? null, discoverable: q.discoverable ? 1 : 0,
        archiveUser: q.archive?.userId ?? null, archived: q.archive?.archived ? 1 : 0,
        limit: bound(q.limit), offset: bound(q.offset),
      };
      const [list, count] = q.memberOf === undefined ? [s.listRooms, s.countRooms] : [s.listRoomsOf, s.countRoomsOf];
      const rooms = (list.all(params) as RoomRow[]).map(toRoom);
      const { n } = count.get(params) as { n: number };
      return { rooms, total: n };
    }),

    findDirectRoom: (tenant, userA, userB) => run('findDirectRoom', () => {
      const row = s.findDirectRoom.get({ tenant, userA, userB }) as RoomRow | undefined;
      return row === undefined ? undefined : toRoom(row);
    }),

    touchRoom: (roomId, at) => run('touchRoom', () => {
      const ms = parseTime(at, 'touchRoom:');
      s.touchRoom.run({ roomId, ms, iso: at });
    }),

    putMember: (key, member) => run('putMember', () => putMemberTx.immediate(key, member)),

    getMember: (roomId, userId) => run('getMember', () => {
      const row = s.getMember.get(roomId, userId) as MemberRow | undefined;
      return row === undefined ? undefined : toMember(row);
    }),

    removeMember: (roomId, userId) => run('removeMember', () => removeMemberTx.immediate(roomId, userId)),

    listMembers: (roomId, page) => run('listMembers', () => {
      const rows = s.listMembers.all(roomId, bound(page.limit), bound(page.offset)) as MemberRow[];
      const { n } = s.countMembers.get(roomId) as { n: number };
      return { members: rows.map(toMember), total: n };
    }),

    roomsOfUser: (tenant, userId) => run('roomsOfUser', () =>
      (s.roomsOfUser.all(userId, tenant) as Array<{ room_id: string }>).map((r) => r.room_id)),

    setArchived: (roomId, userId, archivedAt) => run('setArchived', () => {
      if (archivedAt === undefined) s.deleteArchive.run(roomId, userId);
      else s.putArchive.run(roomId, userId, archivedAt);
    }),

    archivedAt: (roomId, userId) => run('archivedAt', () =>
      (s.getArchive.get(roomId, userId) as { archived_at: string } | undefined)?.archived_at),
  };
}

interface RoomRow {
  room_id: string; tenant: string; name: string; description: string; type: Room['type'];
  avatar: string | null; banner: string | null; created_by: string; created_at: string; updated_at: string;
  member_count: number; max_members: number; last_activity: string; settings: string; is_active: number; tags: string;
  match_id: string | null;
}

interface MemberRow {
  room_id: string; user_id: string; display_name: string; avatar: string | null; role: RoomMember['role'];
  joined_at: string; is_muted: number; is_banned: number;
}

function roomParams(r: Room) {
  const lastActivityMs = parseTime(r.lastActivity, `room ${r.roomId}: lastActivity`);
  return {
    roomId: keyOfRoom(r), tenant: r.tenant, name: r.name, description: r.description, type: r.type,
    avatar: r.avatar ?? null, banner: r.banner ?? null, createdBy: r.createdBy, createdAt: r.createdAt,
    updatedAt: r.updatedAt, maxMembers: r.maxMembers, lastActivity: r.lastActivity, lastActivityMs,
    settings: JSON.stringify(r.settings), isActive: r.isActive ? 1 : 0, tags: JSON.stringify(r.tags),
    matchId: r.matchId ?? null,
  };
}

function toRoom(row: RoomRow): Room {
  const room: Room = {
    roomId: roomIdOf(row.room_id),
    tenant: row.tenant,
    name: row.name,
    description: row.description,
    type: row.type,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    memberCount: row.member_count,
    maxMembers: row.max_members,
    lastActivity: row.last_activity,
    settings: JSON.parse(row.settings) as Room['settings'],
    isActive: row.is_active === 1,
    tags: JSON.parse(row.tags) as string[],
  };
  if (row.avatar !== null) room.avatar = row.avatar;
  if (row.banner !== null) room.banner = row.banner;
  if (row.match_id !== null) room.matchId = row.match_id;
  return room;
}

function memberParams(key: string, m: RoomMember) {
  return {
    roomId: key, userId: m.userId, displayName: m.displayName, avatar: m.avatar ?? null, role: m.role,
    joinedAt: m.joinedAt, isMuted: m.isMuted ? 1 : 0, isBanned: m.isBanned ? 1 : 0,
  };
}

function toMember(row: MemberRow): RoomMember {
  const m: RoomMember = {
    roomId: roomIdOf(row.room_id),
    userId: row.user_id,
    displayName: row.display_name,
    role: row.role,
    joinedAt: row.joined_at,
    isMuted: row.is_muted === 1,
    isBanned: row.is_banned === 1,
  };
  if (row.avatar !== null) m.avatar = row.avatar;
  return m;
}
