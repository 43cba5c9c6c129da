import type { RoomAccess } from '../shared/commands/index.ts';
import type { ServerFrame } from '../shared/protocol/index.ts';
import { roomIdOf, tenantOf, type RoomKey } from '../shared/domain/index.ts';
import type { LocalUsers } from './local-users.ts';
import type { RoomFanout } from './room-fanout.ts';

/**
 * Membership and settings changes, from a room's control subject or from a user's own: keeps the
 * access caches right, and takes a member who left (or was kicked, or banned) out of the room on
 * this gateway before the room sees the frame, whatever their transport. They learn of it once,
 * on their user subject, whichever of the two subjects brings it first.
 */
export function controlHandler(access: RoomAccess, users: LocalUsers, fanout: RoomFanout): (key: RoomKey, frame: ServerFrame) => void {
  return (key, frame) => {
    access.invalidate(key);
    const userId = frame.type === 'user_joined' || frame.type === 'user_left' ? frame.user.userId
      : frame.type === 'member_updated' ? frame.userId : undefined;
    if (userId === undefined) return;
    access.invalidate(key, userId);
    if (frame.type !== 'user_left') return;
    const roomId = roomIdOf(key);
    for (const r of users.connectionsOf(tenantOf(key), userId)) fanout.remove(r, roomId);
  };
}
