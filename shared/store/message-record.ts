import type { Message } from '../domain/models.ts';
import { roomIdOf, type RoomKey } from '../domain/room-key.ts';

/**
 * How every store keeps a message: the fields events change (content, edit and delete times,
 * pin) in their own columns, and the fields no event after the create changes in one JSON body.
 * Both stores write the body with `messageBody` and read a message back with `toMessage`, so a
 * message looks the same whichever store holds it.
 */

/** The fields of a message that no event after its create changes, stored as one JSON value. */
export interface MessageBody {
  authorName: string;
  authorAvatar?: string;
  type: Message['type'];
  timestamp: string;
  replyTo: string | null;
  mentions: string[];
  attachments: Message['attachments'];
  isAnonymous: boolean;
  anonymousName?: string;
  clientMsgId?: string;
  metadata?: Record<string, unknown>;
}

/** The body of a created message, as stored. */
export function messageBody(m: Message): string {
  const body: MessageBody = {
    authorName: m.authorName, authorAvatar: m.authorAvatar, type: m.type, timestamp: m.timestamp,
    // Defaults guard against producers that leave out empty fields (the wire is msgpack, not TypeScript).
    replyTo: m.replyTo ?? null, mentions: m.mentions ?? [], attachments: m.attachments ?? [], isAnonymous: m.isAnonymous ?? false,
    anonymousName: m.anonymousName, clientMsgId: m.clientMsgId, metadata: m.metadata,
  };
  return JSON.stringify(body);
}

/** A stored message as an adapter read it, before its reactions are added. */
export interface MessageRecord {
  messageId: string;
  /** The room's key, as the store keys its rows; the message shows the room's id. */
  room: RoomKey;
  authorId: string;
  /** Root of the thread the message replies in; null in the main timeline. */
  threadId: string | null;
  /** JSON of a MessageBody. */
  body: string;
  content: string;
  /** ms of the edit whose content is shown; undefined when the content is the create's. */
  editedAt: number | undefined;
  deleted: boolean;
  /** ms of the delete, when the store has it. */
  deletedAt: number | undefined;
  pinned: boolean;
}

export function toMessage(r: MessageRecord, reactions: Record<string, string[]>): Message {
  const b = JSON.parse(r.body) as MessageBody;
  const m: Message = {
    messageId: r.messageId,
    roomId: roomIdOf(r.room),
    authorId: r.authorId,
    authorName: b.authorName,
    content: r.deleted ? '' : r.content,
    type: b.type,
    timestamp: b.timestamp,
    reactions,
    replyTo: b.replyTo,
    threadId: r.threadId,
    mentions: b.mentions,
    // A tombstone keeps no trace of what was said, attachments included.
    attachments: r.deleted ? [] : b.attachments,
    isEdited: r.editedAt !== undefined,
    isDeleted: r.deleted,
    isPinned: r.pinned,
    isAnonymous: b.isAnonymous,
  };
  if (b.authorAvatar !== undefined) m.authorAvatar = b.authorAvatar;
  if (r.editedAt !== undefined) m.editedAt = new Date(r.editedAt).toISOString();
  if (r.deleted && r.deletedAt !== undefined) m.deletedAt = new Date(r.deletedAt).toISOString();
  if (b.anonymousName !== undefined) m.anonymousName = b.anonymousName;
  if (b.clientMsgId !== undefined) m.clientMsgId = b.clientMsgId;
  if (b.metadata !== undefined) m.metadata = b.metadata;
  return m;
}
