import type { Principal } from '../auth/principal.ts';
import type { Room, RoomMember } from '../domain/models.ts';
import { roomKey, type RoomKey } from '../domain/room-key.ts';
import { assertCanPost, assertCanRead, assertCanReact, assertMember } from '../domain/permissions.ts';
import type { RoomAccess } from './room-access.ts';
import { ChatError } from '../protocol/errors.ts';

/**
 * Who may do what in a room, for every frame and request that touches one: the message commands
 * use it, and so do the parts that are not commands themselves (typing, resume, SSE and long-poll
 * room lists, REST reads). Each method resolves with the room and the caller's membership, or
 * throws ChatError: `not_found` for a room the caller may not know of (another tenant's, a
 * private one), `forbidden` for one they know but may not act in. The rules are the domain's
 * (shared/domain/permissions.ts); this is the one place that applies them to a request.
 *
 * `roomId` is the id the caller named; the room is the one of that id in the caller's tenant, and
 * `key` (shared/domain/room-key.ts) is how everything past this point names it.
 */
export class RoomGuard {
  constructor(private readonly access: RoomAccess) {}

  /** Reading messages: members, and anyone of the tenant not banned in a discoverable room. */
  async reader(who: Principal, roomId: string): Promise<{ key: RoomKey; room: Room; member: RoomMember | undefined }> {
    const { key, room, member } = await this.load(who, roomId);
    assertCanRead(room, member);
    return { key, room, member };
  }

  /** Member-only actions: typing, resume, edits, deletes, read marks, message status. */
  async member(who: Principal, roomId: string): Promise<{ key: RoomKey; room: Room; member: RoomMember }> {
    const { key, room, member } = await this.load(who, roomId);
    assertMember(room, member);
    return { key, room, member };
  }

  /** Sending: members who are not muted, in an active room, by role in announcement rooms. */
  async poster(who: Principal, roomId: string): Promise<{ key: RoomKey; room: Room; member: RoomMember }> {
    const { key, room, member } = await this.load(who, roomId);
    assertCanPost(room, member);
    return { key, room, member };
  }

  /**
   * Attachments' files, read or uploaded: members only, and to anyone else (a non-member of a
   * public room included) the room is as absent as one that does not exist, so file ids leak nothing.
   */
  async insider(who: Principal, roomId: string): Promise<{ key: RoomKey; room: Room; member: RoomMember }> {
    const { key, room, member } = await this.load(who, roomId);
    if (!member || member.isBanned) throw new ChatError('not_found', `room ${roomId} not found`);
    return { key, room, member };
  }

  /** Uploading a file: an insider (else not_found) who may post. */
  async uploader(who: Principal, roomId: string): Promise<{ key: RoomKey; room: Room; member: RoomMember }> {
    const { key, room, member } = await this.insider(who, roomId);
    assertCanPost(room, member);
    return { key, room, member };
  }

  async reactor(who: Principal, roomId: string): Promise<{ key: RoomKey; room: Room; member: RoomMember | undefined }> {
    const { key, room, member } = await this.load(who, roomId);
    assertCanReact(room, member);
    return { key, room, member };
  }

  private async load(who: Principal, roomId: string): Promise<{ key: RoomKey; room: Room; member: RoomMember | undefined }> {
    const key = roomKey(who.tenant, roomId);
    const room = await this.access.room(key);
    return { key, room, member: await this.access.member(key, who.userId) };
  }
}
