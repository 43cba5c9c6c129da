import { ChatError } from '../protocol/errors.ts';
import { encodeMsgpack } from '../protocol/codec.ts';
import type { ServerFrame } from '../protocol/frames.ts';
import { subjects, type Bus } from '../bus/bus.ts';
import type { Store } from '../store/store.ts';
import type { Presence } from '../presence/presence.ts';
import type { Principal } from '../auth/principal.ts';
import {
  DEFAULT_ROOM_SETTINGS, DIRECT_MEMBERS, GROUP_MAX_MEMBERS,
  type Role, type Room, type RoomMember, type RoomSettings, type RoomType,
} from '../domain/models.ts';
import {
  assertCanInvite, assertCanModerate, assertCanSee, assertCanSetRole, assertCanUpdateRoom, assertMember, isDiscoverable, roleRank,
} from '../domain/permissions.ts';
import { canonicalId, canonicalName } from '../domain/identity.ts';
import { checkMatchId } from '../domain/match.ts';
import type { Snowflake } from '../ids/snowflake.ts';
import type { RateLimiter, RateRule } from '../rate-limit/rate-limit.ts';
import { enforceRate } from '../rate-limit/enforce.ts';
import { keyOfRoom, roomKey, type RoomKey } from '../domain/room-key.ts';
import type { TenantQuotaReader } from './tenant-quotas.ts';

/**
 * Room and membership commands (the control plane). Written to the store directly so the caller
 * reads its own write at once, then announced as frames on the room's control subject
 * (`chat.room.<room key>.ctl`), which every gateway holding the room applies to its caches and forwards
 * to the room's sockets, and on the affected user's subject so their connections follow.
 */
export interface CreateRoomInput {
  name: string;
  description?: string;
  type: RoomType;
  roomId?: string;
  avatar?: string;
  banner?: string;
  tags?: string[];
  maxMembers?: number;
  /** Other users to add at once (group, private, direct: the other person). */
  members?: Array<{ userId: string; displayName?: string }>;
  settings?: Partial<RoomSettings>;
  allowInvites?: boolean;
}

/** A direct room opened for a match (seed 004): one per matchId in the tenant. */
export interface MatchRoomInput extends CreateRoomInput {
  matchId: string;
}

/** The caller's archive of a room: only their own room list hides an archived room. */
export interface ArchiveState {
  roomId: string;
  archived: boolean;
  archivedAt: string | null;
}

export interface UpdateRoomInput {
  name?: string;
  description?: string;
  avatar?: string;
  banner?: string;
  tags?: string[];
  maxMembers?: number;
  settings?: Partial<RoomSettings>;
}

export interface RoomCommandDeps {
  bus: Bus;
  store: Store;
  /** New members start with nothing unread. */
  presence: Presence;
  ids: Snowflake;
  now?: () => number;
  /** Per-user limits (RATE_LIMIT_ROOM_CREATE, _MEMBERSHIP, _ROOM_ADMIN); a rule left out is unlimited. */
  rates?: RoomRates;
  /** The tenants' quotas of rooms and of members per room; none: unlimited. */
  quotas?: TenantQuotaReader;
}

export interface RoomRates {
  limiter: RateLimiter;
  create?: RateRule;
  /** Joins, leaves, archives. */
  membership?: RateRule;
  /** Settings, invitations, kicks, roles, mutes, bans. */
  admin?: RateRule;
}

const RATE_NAMES = { create: 'room creations', membership: 'joins and leaves', admin: 'room changes' } as const;
/** Members read per store call while looking for the next owner. */
const HEIR_PAGE = 1000;

export class RoomCommands {
  private readonly now: () => number;

  constructor(private readonly deps: RoomCommandDeps) {
    this.now = deps.now ?? Date.now;
  }

  async create(who: Principal, input: CreateRoomInput): Promise<Room> {
    await this.limit(who, 'create');
    const name = canonicalName(input.name, 'the room name');
    const others = dedupeMembers((input.members ?? []).map(memberRef), who.userId);
    if (input.type === 'direct') {
      if (others.length !== DIRECT_MEMBERS - 1) throw new ChatError('bad_request', 'a direct room needs exactly one other member in "members"');
      const existing = await this.deps.store.findDirectRoom(who.tenant, who.userId, others[0]!.userId);
      if (existing) return existing;
    }
    const maxMembers = input.type === 'direct' ? DIRECT_MEMBERS
      : input.type === 'group' ? Math.min(input.maxMembers ?? input.settings?.maxMembers ?? GROUP_MAX_MEMBERS, GROUP_MAX_MEMBERS)
      : input.maxMembers ?? input.settings?.maxMembers ?? DEFAULT_ROOM_SETTINGS.maxMembers;
    if (input.type === 'group' && (input.maxMembers ?? 0) > GROUP_MAX_MEMBERS) {
      throw new ChatError('bad_request', `a group room holds at most ${GROUP_MAX_MEMBERS} members`);
    }
    if (others.length + 1 > maxMembers) throw new ChatError('bad_request', `too many members: the room holds ${maxMembers}`);
    await this.checkQuotas(who, others.length + 1);

    const { room, members } = this.newRoom(who, input, name, others, maxMembers);
    // the id is the tenant's: another tenant's room of the same id is another room (room-key.ts)
    await this.deps.store.createRoom(room, members);
    await this.welcome(room, members);
    return room;
  }

  /**
   * The direct room of a match between the caller and one other person: created by the first call,
   * returned by every later one (`created` tells which). The store decides atomically, so
   * simultaneous first calls from any processes make one room. A caller who is not in the match's
   * room, or who names someone else than its other member, gets conflict: the match is another
   * pair's, and its room is not shown to them.
   */
  async openMatch(who: Principal, input: MatchRoomInput): Promise<{ room: Room; created: boolean }> {
    await this.limit(who, 'create');
    const matchId = checkMatchId(input.matchId);
    if (input.type !== 'direct') throw new ChatError('bad_request', 'a match room is a direct room: "type" must be "direct"');
    const name = canonicalName(input.name, 'the room name');
    const others = dedupeMembers((input.members ?? []).map(memberRef), who.userId);
    if (others.length !== DIRECT_MEMBERS - 1) throw new ChatError('bad_request', 'a match room needs exactly one other member in "members"');
    await this.checkQuotas(who, DIRECT_MEMBERS);
    const { room, members } = this.newRoom(who, input, name, others, DIRECT_MEMBERS);
    const opened = await this.deps.store.createMatchRoom({ ...room, matchId }, members);
    if (opened.created) {
      await this.welcome(opened.room, members);
      return opened;
    }
    const key = keyOfRoom(opened.room);
    const [mine, theirs] = await Promise.all([this.deps.store.getMember(key, who.userId), this.deps.store.getMember(key, others[0]!.userId)]);
    if (!mine || mine.isBanned || !theirs || theirs.isBanned) {
      throw new ChatError('conflict', `match ${matchId} already has a room, and it is not yours with ${others[0]!.userId}`);
    }
    return opened;
  }

  /** Records (or clears) the caller's own archive of a room; a non-member gets the missing-room answer. Idempotent. */
  async setArchived(who: Principal, roomId: string, archived: boolean): Promise<ArchiveState> {
    await this.limit(who, 'membership');
    const { key } = await this.room(who, roomId);
    const member = await this.deps.store.getMember(key, who.userId);
    if (!member || member.isBanned) throw new ChatError('not_found', `room ${roomId} not found`);
    const since = await this.deps.store.archivedAt(key, who.userId);
    if (archived) {
      // archiving again keeps the first time
      if (since !== undefined) return { roomId, archived: true, archivedAt: since };
      const at = new Date(this.now()).toISOString();
      await this.deps.store.setArchived(key, who.userId, at);
      return { roomId, archived: true, archivedAt: at };
    }
    if (since !== undefined) await this.deps.store.setArchived(key, who.userId, undefined);
    return { roomId, archived: false, archivedAt: null };
  }

  /** When the caller archived the room (undefined: they did not). */
  archivedAt(who: Principal, room: Room): Promise<string | undefined> {
    return this.deps.store.archivedAt(keyOfRoom(room), who.userId);
  }

  private newRoom(
    who: Principal, input: CreateRoomInput, name: string, others: Array<{ userId: string; displayName?: string }>, maxMembers: number,
  ): { room: Room; members: RoomMember[] } {
    const at = new Date(this.now()).toISOString();
    const roomId = input.roomId ?? `room_${this.deps.ids.next()}`;
    const settings: RoomSettings = {
      ...DEFAULT_ROOM_SETTINGS,
      ...input.settings,
      ...(input.allowInvites !== undefined ? { allowInvites: input.allowInvites } : {}),
      maxMembers,
    };
    const room: Room = {
      roomId, tenant: who.tenant, name, description: input.description ?? '', type: input.type,
      ...(input.avatar ? { avatar: input.avatar } : {}), ...(input.banner ? { banner: input.banner } : {}),
      createdBy: who.userId, createdAt: at, updatedAt: at, memberCount: 1 + others.length, maxMembers,
      lastActivity: at, settings, isActive: true, tags: input.tags ?? [],
    };
    const ownerRole: Role = input.type === 'direct' ? 'member' : 'owner';
    const members: RoomMember[] = [
      { roomId, userId: who.userId, displayName: who.name, role: ownerRole, joinedAt: at, isMuted: false, isBanned: false },
      ...others.map((o): RoomMember => ({
        roomId, userId: o.userId, displayName: o.displayName ?? o.userId, role: 'member', joinedAt: at, isMuted: false, isBanned: false,
      })),
    ];
    return { room, members };
  }

  /** New members start with nothing unread, and their connections learn of the room. */
  private async welcome(room: Room, members: RoomMember[]): Promise<void> {
    const { tenant, roomId } = room;
    await Promise.all(members.map((m) => this.deps.presence.markRoomRead(tenant, roomId, m.userId)));
    for (const m of members) this.announceToUser(tenant, m.userId, { type: 'user_joined', roomId, user: { userId: m.userId, name: m.displayName }, role: m.role });
  }

  /** The room as the user may see it (private rooms are not found for non-members). */
  async get(who: Principal, roomId: string): Promise<{ room: Room; member: RoomMember | undefined }> {
    const { key, room } = await this.room(who, roomId);
    const member = await this.deps.store.getMember(key, who.userId);
    assertCanSee(room, member);
    return { room, member };
  }

  async update(who: Principal, roomId: string, patch: UpdateRoomInput): Promise<Room> {
    await this.limit(who, 'admin');
    const { key, room } = await this.room(who, roomId);
    assertCanUpdateRoom(room, await this.deps.store.getMember(key, who.userId));
    const settings = { ...room.settings, ...patch.settings };
    const maxMembers = patch.maxMembers ?? patch.settings?.maxMembers ?? room.maxMembers;
    if (room.type === 'group' && maxMembers > GROUP_MAX_MEMBERS) throw new ChatError('bad_request', `a group room holds at most ${GROUP_MAX_MEMBERS} members`);
    settings.maxMembers = maxMembers;
    const updated: Room = {
      ...room,
      ...(patch.name !== undefined ? { name: canonicalName(patch.name, 'the room name') } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.avatar !== undefined ? { avatar: patch.avatar } : {}),
      ...(patch.banner !== undefined ? { banner: patch.banner } : {}),
      ...(patch.tags !== undefined ? { tags: patch.tags } : {}),
      maxMembers, settings, updatedAt: new Date(this.now()).toISOString(),
    };
    await this.deps.store.updateRoom(updated);
    this.announce(key, { type: 'room_updated', roomId, room: publicRoom(updated) });
    return updated;
  }

  /** Joins a discoverable room (idempotent). Private, group and direct rooms are joined by invite only. */
  async join(who: Principal, roomId: string): Promise<{ room: Room; member: RoomMember; joined: boolean }> {
    await this.limit(who, 'membership');
    const { key, room } = await this.room(who, roomId);
    const existing = await this.deps.store.getMember(key, who.userId);
    if (existing?.isBanned) {
      // as get answers: a private room does not tell the banned user it still exists
      if (!isDiscoverable(room)) throw new ChatError('not_found', `room ${roomId} not found`);
      throw new ChatError('forbidden', 'you are banned from this room');
    }
    if (existing) return { room, member: existing, joined: false };
    if (!isDiscoverable(room)) throw new ChatError('not_found', `room ${roomId} not found`);
    if (room.settings.requireApproval) throw new ChatError('forbidden', 'this room requires approval: ask a moderator to invite you');
    if (room.memberCount >= room.maxMembers) throw new ChatError('conflict', `room is full (${room.maxMembers} members)`);
    await this.checkMemberQuota(who.tenant, room.memberCount + 1);
    const member: RoomMember = {
      roomId, userId: who.userId, displayName: who.name, role: 'member', joinedAt: new Date(this.now()).toISOString(), isMuted: false, isBanned: false,
    };
    await this.deps.store.putMember(key, member);
    await this.deps.presence.markRoomRead(who.tenant, roomId, member.userId);
    this.announceMember(key, room, { type: 'user_joined', roomId, user: { userId: member.userId, name: member.displayName }, role: member.role }, member.userId);
    return { room: { ...room, memberCount: room.memberCount + 1 }, member, joined: true };
  }

  /** Leaves the room. An owner leaving passes ownership to the highest-ranked, longest-standing member. */
  async leave(who: Principal, roomId: string): Promise<void> {
    await this.limit(who, 'membership');
    const { key, room } = await this.room(who, roomId);
    const member = await this.deps.store.getMember(key, who.userId);
    if (!member || member.isBanned) throw new ChatError('not_found', `you are not a member of room ${roomId}`);
    if (member.role === 'owner') await this.passOwnership(key, room, member);
    await this.deps.store.removeMember(key, who.userId);
    this.announceMember(key, room, { type: 'user_left', roomId, user: { userId: who.userId, name: member.displayName }, reason: 'left' }, who.userId);
  }

  async invite(who: Principal, roomId: string, invited: { userId: string; displayName?: string }): Promise<RoomMember> {
    const target = memberRef(invited);
    const { key, room, actor } = await this.actor(who, roomId);
    assertCanInvite(room, actor);
    const existing = await this.deps.store.getMember(key, target.userId);
    if (existing?.isBanned) throw new ChatError('forbidden', `${target.userId} is banned from this room; unban first`);
    if (existing) return existing;
    if (room.memberCount >= room.maxMembers) throw new ChatError('conflict', `room is full (${room.maxMembers} members)`);
    await this.checkMemberQuota(who.tenant, room.memberCount + 1);
    const member: RoomMember = {
      roomId, userId: target.userId, displayName: target.displayName ?? target.userId, role: 'member',
      joinedAt: new Date(this.now()).toISOString(), isMuted: false, isBanned: false,
    };
    await this.deps.store.putMember(key, member);
    await this.deps.presence.markRoomRead(who.tenant, roomId, member.userId);
    this.announceMember(key, room, { type: 'user_joined', roomId, user: { userId: member.userId, name: member.displayName }, role: 'member' }, member.userId);
    return member;
  }

  /** Removes a member; returns who was removed (the id in its canonical form). */
  async kick(who: Principal, roomId: string, rawUserId: string): Promise<RoomMember> {
    const userId = targetId(rawUserId);
    const { key, room, actor } = await this.actor(who, roomId);
    const target = await this.target(key, userId);
    assertCanModerate(room, actor, target);
    await this.deps.store.removeMember(key, userId);
    this.announceMember(key, room, { type: 'user_left', roomId, user: { userId, name: target.displayName }, reason: 'kicked' }, userId);
    return target;
  }

  async setBanned(who: Principal, roomId: string, rawUserId: string, banned: boolean): Promise<RoomMember> {
    const userId = targetId(rawUserId);
    const { key, room, actor } = await this.actor(who, roomId);
    // Banning someone who is not (or no longer) a member still keeps them out.
    const target = await this.deps.store.getMember(key, userId)
      ?? { roomId, userId, displayName: userId, role: 'member', joinedAt: new Date(this.now()).toISOString(), isMuted: false, isBanned: false };
    assertCanModerate(room, actor, target);
    if (!banned) {
      // lifting a ban removes the banned row; a member who is not banned stays a member
      if (!target.isBanned) throw new ChatError('not_found', `${userId} is not banned in this room`);
      await this.deps.store.removeMember(key, userId);
      this.announceMember(key, room, { type: 'member_updated', roomId, userId, role: target.role, isMuted: false, isBanned: false }, userId);
      return { ...target, isBanned: false };
    }
    const updated = { ...target, isBanned: true };
    await this.deps.store.putMember(key, updated);
    this.announceMember(key, room, { type: 'user_left', roomId, user: { userId, name: target.displayName }, reason: 'banned' }, userId);
    return updated;
  }

  async setMuted(who: Principal, roomId: string, rawUserId: string, muted: boolean): Promise<RoomMember> {
    const userId = targetId(rawUserId);
    const { key, room, actor } = await this.actor(who, roomId);
    const target = await this.target(key, userId);
    assertCanModerate(room, actor, target);
    const updated = { ...target, isMuted: muted };
    await this.deps.store.putMember(key, updated);
    this.announceMember(key, room, { type: 'member_updated', roomId, userId, role: updated.role, isMuted: muted, isBanned: updated.isBanned }, userId);
    return updated;
  }

  async setRole(who: Principal, roomId: string, rawUserId: string, role: Role): Promise<RoomMember> {
    const userId = targetId(rawUserId);
    const { key, room, actor } = await this.actor(who, roomId);
    const target = await this.target(key, userId);
    assertCanSetRole(room, actor, target, role);
    const updated = { ...target, role };
    await this.deps.store.putMember(key, updated);
    this.announceMember(key, room, { type: 'member_updated', roomId, userId, role, isMuted: updated.isMuted, isBanned: updated.isBanned }, userId);
    return updated;
  }

  async members(who: Principal, roomId: string, page: { limit: number; offset: number }): Promise<{ members: RoomMember[]; total: number }> {
    const { key, room } = await this.room(who, roomId);
    assertCanSee(room, await this.deps.store.getMember(key, who.userId));
    return this.deps.store.listMembers(key, page);
  }

  /** The room of that id in the caller's tenant: another tenant's room of the same id is not found. */
  private async room(who: Principal, roomId: string): Promise<{ key: RoomKey; room: Room }> {
    const key = roomKey(who.tenant, roomId);
    const room = await this.deps.store.getRoom(key);
    if (!room) throw new ChatError('not_found', `room ${roomId} not found`);
    return { key, room };
  }

  /** A change made by a member to the room or another member: each counts against RATE_LIMIT_ROOM_ADMIN. */
  private async actor(who: Principal, roomId: string): Promise<{ key: RoomKey; room: Room; actor: RoomMember }> {
    await this.limit(who, 'admin');
    const { key, room } = await this.room(who, roomId);
    const actor = await this.deps.store.getMember(key, who.userId);
    assertMember(room, actor);
    return { key, room, actor };
  }

  /**
   * The tenant's quotas for a new room of `memberCount` members. The rooms are counted before the
   * create, so simultaneous creates may pass the quota by as many as run at once: a quota is a
   * bound on use, not a uniqueness constraint.
   */
  private async checkQuotas(who: Principal, memberCount: number): Promise<void> {
    const quotas = this.deps.quotas;
    if (!quotas) return;
    await this.checkMemberQuota(who.tenant, memberCount);
    const { rooms } = await quotas.of(who.tenant);
    if (rooms <= 0) return;
    const { total } = await this.deps.store.listRooms({ tenant: who.tenant, limit: 1, offset: 0 });
    if (total >= rooms) throw quotas.exceeded(who.tenant, 'rooms', rooms, `the tenant holds ${total} rooms`);
  }

  private async checkMemberQuota(tenant: string, memberCount: number): Promise<void> {
    const quotas = this.deps.quotas;
    if (!quotas) return;
    const { membersPerRoom } = await quotas.of(tenant);
    if (membersPerRoom > 0 && memberCount > membersPerRoom) {
      throw quotas.exceeded(tenant, 'membersPerRoom', membersPerRoom, `a room of ${memberCount} members`);
    }
  }

  private async limit(who: Principal, rule: keyof typeof RATE_NAMES): Promise<void> {
    const rates = this.deps.rates;
    const r = rates?.[rule];
    if (rates === undefined || r === undefined) return;
    await enforceRate(rates.limiter, `${rule}:${who.tenant}:${who.userId}`, r, RATE_NAMES[rule]);
  }

  /** A member to act on; a banned user is no member (their row is the ban, which kick must not lift). */
  private async target(key: RoomKey, userId: string): Promise<RoomMember> {
    const target = await this.deps.store.getMember(key, userId);
    if (!target || target.isBanned) throw new ChatError('not_found', `${userId} is not a member of this room`);
    return target;
  }

  private async passOwnership(key: RoomKey, room: Room, owner: RoomMember): Promise<void> {
    // every member is a candidate, page by page (a store page holds at most HEIR_PAGE members)
    let heir: RoomMember | undefined;
    for (let offset = 0; ; offset += HEIR_PAGE) {
      const { members } = await this.deps.store.listMembers(key, { limit: HEIR_PAGE, offset });
      for (const m of members) {
        if (m.userId === owner.userId || m.isBanned) continue;
        if (!heir || roleRank(m.role) > roleRank(heir.role) || (m.role === heir.role && m.joinedAt < heir.joinedAt)) heir = m;
      }
      if (members.length < HEIR_PAGE) break;
    }
    if (!heir) return;
    const promoted = { ...heir, role: 'owner' as const };
    await this.deps.store.putMember(key, promoted);
    this.announceMember(key, room, { type: 'member_updated', roomId: room.roomId, userId: heir.userId, role: 'owner', isMuted: heir.isMuted, isBanned: false }, heir.userId);
  }

  private announce(key: RoomKey, frame: ServerFrame): void {
    this.deps.bus.publish(subjects.roomControl(key), encodeMsgpack(frame));
  }

  private announceToUser(tenant: string, userId: string, frame: ServerFrame): void {
    this.deps.bus.publish(subjects.userEvents(tenant, userId), encodeMsgpack(frame));
  }

  /** To the room's gateways and to the user's own connections (which may not be in the room yet). */
  private announceMember(key: RoomKey, room: Room, frame: ServerFrame, userId: string): void {
    const payload = encodeMsgpack(frame);
    this.deps.bus.publish(subjects.roomControl(key), payload);
    this.deps.bus.publish(subjects.userEvents(room.tenant, userId), payload);
  }
}

/**
 * A user named in a request (a member to add, invite or moderate, the other person of a direct
 * room) in canonical form, as tokens name them (domain/identity.ts): `ａｄｍｉｎ` is `admin`, and an id
 * with invisible characters is refused, so no request can name a look-alike of someone.
 */
function targetId(raw: string): string {
  return canonicalId(raw, 'the user id');
}

function memberRef(m: { userId: string; displayName?: string }): { userId: string; displayName?: string } {
  return { userId: targetId(m.userId), ...(m.displayName !== undefined ? { displayName: canonicalName(m.displayName, 'the display name') } : {}) };
}

function dedupeMembers(members: Array<{ userId: string; displayName?: string }>, self: string) {
  const seen = new Set([self]);
  return members.filter((m) => !seen.has(m.userId) && seen.add(m.userId));
}

/** The room as clients see it (no tenant). */
export function publicRoom(room: Room): Record<string, unknown> {
  const { tenant: _tenant, ...rest } = room;
  return rest;
}

