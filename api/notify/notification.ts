import { NOTIFY_REASONS, type Message, type NotifyReason, type Room } from '../../shared/domain/index.ts';
import type { RoomKey } from '../../shared/domain/index.ts';

/** One user's notification about one room: the messages that gathered while it waited. */
export interface Notification {
  /** Stable for the same messages: the first message's id and the user (receivers may dedupe on it). */
  notificationId: string;
  tenant: string;
  userId: string;
  roomKey: RoomKey;
  room: Pick<Room, 'roomId' | 'name' | 'type'>;
  /** The strongest reason among its messages (mention, then direct, then reply). */
  reason: NotifyReason;
  messages: Array<{ message: Message; reason: NotifyReason }>;
}

/** Characters of a message's content a notification carries. */
const PREVIEW_CHARS = 280;
/** Messages a webhook body lists at most (the count says how many there were). */
const WEBHOOK_MESSAGES = 20;

export function strongestReason(reasons: Iterable<NotifyReason>): NotifyReason {
  let best = NOTIFY_REASONS.length - 1;
  for (const r of reasons) best = Math.min(best, NOTIFY_REASONS.indexOf(r));
  return NOTIFY_REASONS[best]!;
}

function preview(content: string, chars: number): string {
  return content.length <= chars ? content : `${content.slice(0, chars - 1)}…`;
}

function author(m: Message): { authorId?: string; authorName: string } {
  return m.isAnonymous ? { authorName: m.anonymousName ?? 'Anonymous' } : { authorId: m.authorId, authorName: m.authorName };
}

/** The JSON a webhook receives (docs/webhooks.md). */
export function webhookBody(n: Notification, sentAt: string): Record<string, unknown> {
  return {
    type: 'notification',
    notificationId: n.notificationId,
    tenant: n.tenant,
    userId: n.userId,
    room: n.room,
    reason: n.reason,
    count: n.messages.length,
    messages: n.messages.slice(-WEBHOOK_MESSAGES).map(({ message: m, reason }) => ({
      messageId: m.messageId, ...author(m), content: preview(m.content, PREVIEW_CHARS), type: m.type, timestamp: m.timestamp, reason,
    })),
    sentAt,
  };
}

/**
 * What a Web Push message carries (encrypted, it must stay under the 4 KiB push services take):
 * a title and body ready to show, and what the page needs to open the room.
 */
export function pushPayload(n: Notification): string {
  const last = n.messages[n.messages.length - 1]!.message;
  const who = author(last).authorName;
  const title = n.room.type === 'direct' ? who : `${who} in ${n.room.name}`;
  const more = n.messages.length > 1 ? ` (+${n.messages.length - 1} more)` : '';
  return JSON.stringify({
    type: 'notification', notificationId: n.notificationId, title, body: preview(last.content, 140) + more,
    roomId: n.room.roomId, messageId: last.messageId, reason: n.reason, count: n.messages.length,
  });
}
