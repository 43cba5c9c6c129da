import type cassandra from 'cassandra-driver';
import type { Room, RoomMember } from '../domain/models.ts';
import { keyOfRoom, roomIdOf } from '../domain/room-key.ts';
import { ChatError } from '../protocol/errors.ts';
import { addStatement, type Statement, type StatementGroups } from './cassandra-batches.ts';
import type { CassandraSession } from './cassandra-session.ts';
import { msTs } from './cassandra-write-time.ts';
import { bound, checkMembersOf, parseTime } from './store-input.ts';
import type { ListRoomsQuery, Store } from './store.ts';

type Row = cassandra.types.Row;

/** How long a call that lost a match's claim waits for the claimer's room, and how often it looks. */
const MATCH_WAIT_MS = 5000;
const MATCH_POLL_MS = 25;
/** A claimed match whose room id is not even claimed after this long lost its claimer: the waiter writes the room. */
const MATCH_ADOPT_MS = 1000;

/** Room ids per `IN` query. */
const ID_IN_CHUNK = 100;
const ROLE_RANK: Record<RoomMember['role'], number> = { owner: 0, admin: 1, moderator: 2, member: 3 };

export interface RoomFacts { tenant: string; type: Room['type'] }

/**
 * The tenant and type of rooms (by key), which never change: remembered once seen, so writes that must
 * also go to the tenant's or a user's room list (activity, members) do not read the room each time.
 */
export class RoomKeys {
  private readonly known = new Map<string, RoomFacts>();

  constructor(private readonly db: CassandraSession) {}

  /** Undefined when the room does not exist (or is claimed and not yet written). */
  async of(op: string, roomId: string): Promise<RoomFacts | undefined> {
    const known = this.known.get(roomId);
    if (known) return known;
    const row = (await this.db.exec(op, this.db.q.roomKey, [roomId])).first();
    if (!row || row.get('tenant') == null || row.get('name') == null) return undefined;
    const key = { tenant: row.get('tenant') as string, type: row.get('type') as Room['type'] };
    if (this.known.size > 100_000) this.known.clear();
    this.known.set(roomId, key);
    return key;
  }
}

/** lastActivity lives with the room and in its tenant's list. */
export function activityStatements(groups: StatementGroups, db: CassandraSession, roomId: string, tenant: string, ms: number): void {
  addStatement(groups, `room\0${roomId}`, { query: db.q.roomActivity, params: [msTs(ms), BigInt(ms), roomId] });
  addStatement(groups, `tenant\0${tenant}`, { query: db.q.tenantActivity, params: [msTs(ms), BigInt(ms), tenant, roomId] });
}

/**
 * The control plane of the Cassandra store: rooms and their members, written at the configured
 * consistency with the writing process's clock. A room id is claimed with a lightweight
 * transaction. memberCount is recounted from the members partition after every member change and
 * written with the time the recount started, so of concurrent recounts the one that saw the most
 * wins.
 */
export function cassandraRooms(db: CassandraSession, keys: RoomKeys): Pick<Store,
  'createRoom' | 'createMatchRoom' | 'getRoom' | 'updateRoom' | 'listRooms' | 'findDirectRoom' | 'touchRoom'
  | 'putMember' | 'getMember' | 'removeMember' | 'listMembers' | 'roomsOfUser' | 'setArchived' | 'archivedAt'> {
  const { q } = db;

  async function getRoom(roomId: string): Promise<Room | undefined> {
    const row = (await db.exec('getRoom', q.getRoom, [roomId])).first();
    return row ? toRoom(row) : undefined;
  }

  function memberStatements(key: string, m: RoomMember, tenant: string, roomType: string, ts: bigint): [Statement, Statement] {
    return [
      { query: q.putMember, params: [key, m.userId, m.displayName, m.avatar ?? null, m.role, m.joinedAt, m.isMuted, m.isBanned, ts] },
      { query: q.putUserRoom, params: [m.userId, key, tenant, roomType, m.isBanned, ts] },
    ];
  }

  async function recountMembers(roomId: string): Promise<void> {
    const startedAt = db.clock.now();
    const rows = await db.all('memberCount', q.memberBans, [roomId]);
    let n = 0;
    for (const r of rows) if (r.get('is_banned') !== true) n++;
    await db.exec('memberCount', q.memberCount, [startedAt, n, roomId]);
  }

  async function createRoom(room: Room, members: RoomMember[]): Promise<void> {
    checkMembersOf(room, members);
    const key = keyOfRoom(room);
    const lastActivity = parseTime(room.lastActivity, `room ${room.roomId}: lastActivity`);
    // Not idempotent: a retried claim would find its own first attempt and report a conflict.
    const claim = await db.exec('createRoom', q.claimRoom, [key], { isIdempotent: false });
    if (!claim.wasApplied()) throw new ChatError('conflict', `room ${room.roomId} already exists`);
    const ts = db.clock.now();
    const groups: StatementGroups = new Map();
    const add = (key: string, s: Statement) => addStatement(groups, key, s);
    add(`room\0${key}`, {
      query: q.writeRoom,
      params: [ts, room.tenant, room.name, room.description, room.type, room.avatar, room.banner, room.createdBy, room.createdAt,
        room.updatedAt, room.maxMembers, JSON.stringify(room.settings), room.isActive, JSON.stringify(room.tags), room.matchId, key],
    });
    add(`room\0${key}`, { query: q.roomActivity, params: [msTs(lastActivity), BigInt(lastActivity), key] });
    add(`tenant\0${room.tenant}`, { query: q.tenantRoom, params: [room.tenant, key, room.type, ts] });
    add(`tenant\0${room.tenant}`, { query: q.tenantActivity, params: [msTs(lastActivity), BigInt(lastActivity), room.tenant, key] });
    for (const m of members) {
      const [member, userRoom] = memberStatements(key, m, room.tenant, room.type, ts);
      add(`member\0${key}`, member);
      add(`user\0${m.userId}`, userRoom);
    }
    await db.write('createRoom', groups);
    await recountMembers(key);
  }

  /**
   * The room a match's claim points at, once it is whole: createRoom writes member_count last
   * (after the room and its members), so a room with a member count is readable with its members.
   * The claimer may have stopped between claiming the match and claiming the room: after a grace
   * time the waiter writes the room itself under the claimed id (one of any such waiters wins the
   * room's own claim; the rest keep waiting).
   */
  async function matchRoom(claimedKey: string, room: Room, members: RoomMember[]): Promise<{ room: Room; created: boolean }> {
    const started = Date.now();
    for (;;) {
      const row = (await db.exec('createMatchRoom', q.getRoom, [claimedKey])).first();
      const whole = row && row.get('member_count') != null ? toRoom(row) : undefined;
      if (whole) {
        if (whole.matchId !== room.matchId) throw new ChatError('conflict', `match ${room.matchId} points at room ${whole.roomId} of another match`);
        return { room: whole, created: false };
      }
      const waited = Date.now() - started;
      if (!row && waited >= MATCH_ADOPT_MS) {
        const roomId = roomIdOf(claimedKey);
        try {
          await createRoom({ ...room, roomId }, members.map((m) => ({ ...m, roomId })));
          const adopted = await getRoom(claimedKey);
          if (adopted) return { room: adopted, created: true };
        } catch (err) {
          if (!(err instanceof ChatError && err.code === 'conflict')) throw err;
        }
      }
      if (waited >= MATCH_WAIT_MS) throw new ChatError('unavailable', `the room of match ${room.matchId} is still being created: retry`);
      await new Promise((resolve) => setTimeout(resolve, MATCH_POLL_MS));
    }
  }

  return {
    createRoom,

    async createMatchRoom(room, members) {
      if (!room.matchId) throw new ChatError('bad_request', `room ${room.roomId} has no matchId`);
      checkMembersOf(room, members);
      const key = keyOfRoom(room);
      // Not idempotent, as the room claim: a retry would find its own first attempt.
      const claim = await db.exec('createMatchRoom', q.claimMatch, [room.tenant, room.matchId, key], { isIdempotent: false });
      if (claim.wasApplied()) {
        try {
          await createRoom(room, members);
        } catch (err) {
          // the room id is another room's: free the match for a call with a free id
          if (err instanceof ChatError && err.code === 'conflict') {
            await db.exec('createMatchRoom', q.releaseMatch, [room.tenant, room.matchId, key], { isIdempotent: false });
          }
          throw err;
        }
        const created = await getRoom(key);
        if (!created) throw new ChatError('internal', `room ${room.roomId} of match ${room.matchId} is not readable after its creation`);
        return { room: created, created: true };
      }
      return matchRoom(claim.first().get('room_id') as string, room, members);
    },

    getRoom,

    async updateRoom(room) {
      const key = keyOfRoom(room);
      if (!(await keys.of('updateRoom', key))) throw new ChatError('not_found', `room ${room.roomId} does not exist`);
      await db.exec('updateRoom', q.updateRoom, [
        db.clock.now(), room.name, room.description, room.avatar ?? null, room.banner ?? null, JSON.stringify(room.settings),
        JSON.stringify(room.tags), room.maxMembers, room.updatedAt, key,
      ]);
    },

    async listRooms(query: ListRoomsQuery) {
      let entries: Row[];
      if (query.memberOf === undefined) {
        entries = await db.all('listRooms', q.tenantRooms, [query.tenant]);
      } else {
        const mine = (await db.all('listRooms', q.userRooms, [query.memberOf]))
          .filter((r) => r.get('tenant') === query.tenant && r.get('is_banned') !== true)
          .map((r) => r.get('room_id') as string);
        const chunks: string[][] = [];
        for (let i = 0; i < mine.length; i += ID_IN_CHUNK) chunks.push(mine.slice(i, i + ID_IN_CHUNK));
        entries = (await Promise.all(chunks.map((ids) => db.all('listRooms', q.tenantRoomsIn, [query.tenant, ids])))).flat();
      }
      const archive = query.archive;
      const archived = archive === undefined ? undefined
        : new Set((await db.all('listRooms', q.userArchives, [archive.userId])).map((r) => r.get('room_id') as string));
      const matching = entries
        .map((r) => ({ roomId: r.get('room_id') as string, type: r.get('type') as string, activity: Number(r.get('last_activity') ?? 0n) }))
        .filter((r) => (query.type === undefined || r.type === query.type) && (!query.discoverable || r.type === 'public' || r.type === 'announcement'))
        .filter((r) => archived === undefined || archived.has(r.roomId) === archive!.archived)
        .sort((a, b) => b.activity - a.activity || cmp(a.roomId, b.roomId));
      const offset = bound(query.offset);
      const page = matching.slice(offset, offset + bound(query.limit));
      const rooms = (await Promise.all(page.map((r) => getRoom(r.roomId)))).filter((r): r is Room => r !== undefined);
      return { rooms, total: matching.length };
    },

    async findDirectRoom(tenant, userA, userB) {
      const candidates = (await db.all('findDirectRoom', q.userRooms, [userA]))
        .filter((r) => r.get('tenant') === tenant && r.get('room_type') === 'direct')
        .map((r) => r.get('room_id') as string);
      const withB = await Promise.all(candidates.map(async (roomId) =>
        (await db.exec('findDirectRoom', q.getMember, [roomId, userB])).rowLength > 0));
      const roomId = candidates.find((_, i) => withB[i]);
      return roomId === undefined ? undefined : getRoom(roomId);
    },

    async touchRoom(roomId, at) {
      const ms = parseTime(at, 'touchRoom:');
      const key = await keys.of('touchRoom', roomId);
      if (!key) return;
      const groups: StatementGroups = new Map();
      activityStatements(groups, db, roomId, key.tenant, ms);
      await db.write('touchRoom', groups);
    },

    async putMember(roomKey, member) {
      if (member.roomId !== roomIdOf(roomKey)) {
        throw new ChatError('bad_request', `member ${member.userId} belongs to room ${member.roomId}, not ${roomIdOf(roomKey)}`);
      }
      const facts = await keys.of('putMember', roomKey);
      if (!facts) throw new ChatError('not_found', `room ${member.roomId} does not exist`);
      const groups: StatementGroups = new Map();
      const [m, u] = memberStatements(roomKey, member, facts.tenant, facts.type, db.clock.now());
      addStatement(groups, 'member', m);
      addStatement(groups, 'user', u);
      await db.write('putMember', groups);
      await recountMembers(roomKey);
    },

    async getMember(roomId, userId) {
      const row = (await db.exec('getMember', q.getMember, [roomId, userId])).first();
      return row ? toMember(row) : undefined;
    },

    async removeMember(roomId, userId) {
      const key = await keys.of('removeMember', roomId);
      const ts = db.clock.now();
      const groups: StatementGroups = new Map();
      addStatement(groups, 'member', { query: q.deleteMember, params: [ts, roomId, userId] });
      addStatement(groups, 'user', { query: q.deleteUserRoom, params: [ts, userId, roomId] });
      addStatement(groups, 'archive', { query: q.deleteArchive, params: [ts, userId, roomId] });
      await db.write('removeMember', groups);
      if (key) await recountMembers(roomId);
    },

    async listMembers(roomId, page) {
      const members = (await db.all('listMembers', q.members, [roomId])).map(toMember);
      members.sort((a, b) => cmp(a.joinedAt, b.joinedAt) || ROLE_RANK[a.role] - ROLE_RANK[b.role] || cmp(a.userId, b.userId));
      const offset = bound(page.offset);
      return { members: members.slice(offset, offset + bound(page.limit)), total: members.length };
    },

    async roomsOfUser(tenant, userId) {
      return (await db.all('roomsOfUser', q.userRooms, [userId]))
        .filter((r) => r.get('tenant') === tenant && r.get('is_banned') !== true)
        .map((r) => r.get('room_id') as string);
    },

    async setArchived(roomId, userId, archivedAt) {
      const ts = db.clock.now();
      if (archivedAt === undefined) await db.exec('setArchived', q.deleteArchive, [ts, userId, roomId]);
      else await db.exec('setArchived', q.putArchive, [userId, roomId, archivedAt, ts]);
    },

    async archivedAt(roomId, userId) {
      const row = (await db.exec('archivedAt', q.getArchive, [userId, roomId])).first();
      return (row?.get('archived_at') as string | null | undefined) ?? undefined;
    },
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function toRoom(row: Row): Room | undefined {
  if (row.get('name') == null || row.get('tenant') == null) return undefined; // claimed, not yet written
  const room: Room = {
    roomId: roomIdOf(row.get('room_id') as string),
    tenant: row.get('tenant') as string,
    name: row.get('name') as string,
    description: row.get('description') as string,
    type: row.get('type') as Room['type'],
    createdBy: row.get('created_by') as string,
    createdAt: row.get('created_at') as string,
    updatedAt: row.get('updated_at') as string,
    memberCount: (row.get('member_count') as number | null) ?? 0,
    maxMembers: row.get('max_members') as number,
    lastActivity: row.get('last_activity') == null
      ? (row.get('created_at') as string)
      : new Date(Number(row.get('last_activity') as bigint)).toISOString(),
    settings: JSON.parse(row.get('settings') as string) as Room['settings'],
    isActive: row.get('is_active') === true,
    tags: JSON.parse(row.get('tags') as string) as string[],
  };
  if (row.get('avatar') != null) room.avatar = row.get('avatar') as string;
  if (row.get('banner') != null) room.banner = row.get('banner') as string;
  if (row.get('match_id') != null) room.matchId = row.get('match_id') as string;
  return room;
}

function toMember(row: Row): RoomMember {
  const m: RoomMember = {
    roomId: roomIdOf(row.get('room_id') as string),
    userId: row.get('user_id') as string,
    displayName: row.get('display_name') as string,
    role: row.get('role') as RoomMember['role'],
    joinedAt: row.get('joined_at') as string,
    isMuted: row.get('is_muted') === true,
    isBanned: row.get('is_banned') === true,
  };
  if (row.get('avatar') != null) m.avatar = row.get('avatar') as string;
  return m;
}
