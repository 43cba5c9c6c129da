import type { Principal } from '../shared/auth/principal.ts';
import type { RoomCommands } from '../shared/chat/index.ts';
import type { Room, RoomMember } from '../shared/domain/models.ts';
import { assertCanRead, assertMember } from '../shared/domain/permissions.ts';

/**
 * The room and the caller's membership, for routes that show messages. Reading follows
 * permissions.assertCanRead: members read their rooms; public and announcement rooms are also
 * readable by anyone of the tenant who is not banned, so a room can be previewed before joining.
 * Private rooms stay not_found to outsiders.
 */
export async function readableRoom(rooms: RoomCommands, who: Principal, roomId: string): Promise<{ room: Room; member: RoomMember | undefined }> {
  const { room, member } = await rooms.get(who, roomId);
  assertCanRead(room, member);
  return { room, member };
}

/** For member-only reads (message status). */
export async function memberRoom(rooms: RoomCommands, who: Principal, roomId: string): Promise<{ room: Room; member: RoomMember }> {
  const { room, member } = await rooms.get(who, roomId);
  assertMember(room, member);
  return { room, member };
}
