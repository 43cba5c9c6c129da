import type { Message, NotifyReason, Room } from '../../shared/domain/index.ts';
import type { RoomKey } from '../../shared/domain/index.ts';
import type { Store } from '../../shared/store/index.ts';

/**
 * Who a new message may notify, and why: the members it mentions, the other member of a direct
 * room, and the author of the message it replies to (or of its thread's root). Never its author,
 * never a non-member or a banned member (they cannot read it). Presence and preferences are
 * decided later, when the notification is due.
 */
export async function recipientsOf(store: Store, key: RoomKey, room: Room, message: Message): Promise<Map<string, NotifyReason>> {
  const found = new Map<string, NotifyReason>();
  const add = (userId: string, reason: NotifyReason) => {
    if (userId === message.authorId || found.has(userId)) return;
    found.set(userId, reason);
  };
  // in order of precedence: the first reason found for a user is theirs
  for (const userId of message.mentions) add(userId, 'mention');
  if (room.type === 'direct') {
    const { members } = await store.listMembers(key, { limit: 2, offset: 0 });
    for (const m of members) add(m.userId, 'direct');
  }
  const parentId = message.replyTo ?? message.threadId;
  if (parentId) {
    const parent = await store.getMessage(key, parentId);
    if (parent && !parent.isDeleted && !parent.isAnonymous) add(parent.authorId, 'reply');
  }
  for (const userId of [...found.keys()]) {
    const member = await store.getMember(key, userId);
    if (!member || member.isBanned) found.delete(userId);
  }
  return found;
}
