import { ChatError } from '../protocol/errors.ts';
import type { Role, Room, RoomMember } from './models.ts';

/**
 * Who may do what in a room. Every WebSocket frame and REST request goes through these checks,
 * in the shared command layer, exactly once. Each check throws ChatError('forbidden') with a
 * reason a client can show, or ChatError('not_found') when revealing the room would leak it.
 */

const RANK: Record<Role, number> = { owner: 3, admin: 2, moderator: 1, member: 0 };

export function roleRank(role: Role): number {
  return RANK[role];
}

export function atLeast(role: Role, min: Role): boolean {
  return RANK[role] >= RANK[min];
}

/** Public and announcement rooms are listed and readable by everyone in the tenant. */
export function isDiscoverable(room: Room): boolean {
  return room.type === 'public' || room.type === 'announcement';
}

/** Rooms where any member may pin and where member management is flat (small private rooms). */
function isSmallRoom(room: Room): boolean {
  return room.type === 'direct' || room.type === 'group';
}

/** Room visible to the user at all? Private rooms look absent to non-members. */
export function assertCanSee(room: Room, member: RoomMember | undefined): void {
  if (isDiscoverable(room)) return;
  if (!member || member.isBanned) throw new ChatError('not_found', `room ${room.roomId} not found`);
}

/** Reading history: members of private rooms; anyone not banned in discoverable rooms. */
export function assertCanRead(room: Room, member: RoomMember | undefined): void {
  assertCanSee(room, member);
  if (member?.isBanned) throw new ChatError('forbidden', 'you are banned from this room');
}

export function assertMember(room: Room, member: RoomMember | undefined): asserts member is RoomMember {
  assertCanSee(room, member);
  if (!member) throw new ChatError('forbidden', 'you are not a member of this room');
  if (member.isBanned) throw new ChatError('forbidden', 'you are banned from this room');
}

export function assertCanPost(room: Room, member: RoomMember | undefined): asserts member is RoomMember {
  assertMember(room, member);
  if (member.isMuted) throw new ChatError('forbidden', 'you are muted in this room');
  if (room.type === 'announcement' && !atLeast(member.role, 'moderator')) {
    throw new ChatError('forbidden', 'only the owner, admins and moderators post in an announcement room');
  }
  if (!room.isActive) throw new ChatError('forbidden', 'this room is archived');
}

/** Reactions and read marks: any member who is not banned or muted. */
export function assertCanReact(room: Room, member: RoomMember | undefined): asserts member is RoomMember {
  assertMember(room, member);
  if (member.isMuted) throw new ChatError('forbidden', 'you are muted in this room');
}

export function assertCanEdit(authorId: string, member: RoomMember): void {
  if (authorId !== member.userId) throw new ChatError('forbidden', 'only the author may edit a message');
  if (member.isMuted) throw new ChatError('forbidden', 'you are muted in this room');
}

export function assertCanDelete(authorId: string, member: RoomMember): void {
  if (authorId === member.userId) return;
  if (!atLeast(member.role, 'moderator')) throw new ChatError('forbidden', "only moderators may delete other people's messages");
}

export function assertCanPin(room: Room, member: RoomMember): void {
  if (isSmallRoom(room)) return;
  if (!atLeast(member.role, 'moderator')) throw new ChatError('forbidden', 'only moderators and above may pin messages');
}

export function assertCanInvite(room: Room, member: RoomMember): void {
  if (room.type === 'direct') throw new ChatError('forbidden', 'direct rooms have exactly two members');
  if (atLeast(member.role, 'moderator')) return;
  if (!room.settings.allowInvites) throw new ChatError('forbidden', 'invites are disabled in this room');
}

/** Kick, mute, ban: a moderator or above, over a strictly lower role. */
export function assertCanModerate(room: Room, actor: RoomMember, target: RoomMember): void {
  if (room.type === 'direct') throw new ChatError('forbidden', 'direct rooms have no moderation');
  if (actor.userId === target.userId) throw new ChatError('forbidden', 'you cannot moderate yourself');
  if (!atLeast(actor.role, 'moderator')) throw new ChatError('forbidden', 'only moderators and above may do this');
  if (RANK[actor.role] <= RANK[target.role]) throw new ChatError('forbidden', `a ${actor.role} cannot act on a ${target.role}`);
}

/** Setting roles: admins and the owner, to roles below their own; only the owner makes admins. */
export function assertCanSetRole(room: Room, actor: RoomMember, target: RoomMember, role: Role): void {
  if (room.type === 'direct') throw new ChatError('forbidden', 'direct rooms have no roles');
  if (role === 'owner') throw new ChatError('forbidden', 'ownership cannot be assigned; the owner leaving passes it on');
  if (!atLeast(actor.role, 'admin')) throw new ChatError('forbidden', 'only admins and the owner may set roles');
  if (actor.userId === target.userId) throw new ChatError('forbidden', 'you cannot change your own role');
  if (RANK[target.role] >= RANK[actor.role]) throw new ChatError('forbidden', `a ${actor.role} cannot change a ${target.role}`);
  if (RANK[role] >= RANK[actor.role]) throw new ChatError('forbidden', `a ${actor.role} cannot grant ${role}`);
}

export function assertCanUpdateRoom(room: Room, member: RoomMember | undefined): asserts member is RoomMember {
  assertMember(room, member);
  if (room.type === 'direct') throw new ChatError('forbidden', 'direct rooms have no settings');
  if (!atLeast(member.role, 'admin')) throw new ChatError('forbidden', 'only admins and the owner may change room settings');
}
