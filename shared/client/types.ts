import type { ServerFrame } from '../protocol/frames.ts';
import type { Message, PresenceStatus, Role, Room, RoomMember, RoomSettings, RoomType } from '../domain/models.ts';

export type { Message, PresenceStatus, Role, Room, RoomMember, RoomSettings, RoomType, ServerFrame };

/** The server frame of one type. */
export type FrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;

/** A room as the REST api shows it (the tenant is never shown). */
export type RoomView = Omit<Room, 'tenant'>;
export type RoomListItem = RoomView & { isJoined: boolean; unreadCount: number; isArchived: boolean };
export type RoomDetails = RoomView & { isJoined: boolean; role: Role | null; isArchived: boolean };
/** The caller's own archive of a room (POST /rooms/{roomId}/archive and /unarchive). */
export interface ArchiveState { roomId: string; archived: boolean; archivedAt: string | null }
export type MemberWithPresence = RoomMember & { isOnline: boolean; lastSeen: string | null };

export interface OffsetPage { total: number; limit: number; offset: number; hasMore: boolean }
export interface CursorPagination { hasMore: boolean; before: string | null; after: string | null; limit: number }
export interface MessagePage { messages: Message[]; pagination: CursorPagination }

export interface Presence {
  userId: string;
  status: PresenceStatus;
  customStatus?: string;
  device?: { type?: string; platform?: string; version?: string };
  lastSeen: string;
  connections: number;
}

export interface Me { userId: string; name: string; tenant: string; roles: string[]; rooms: string[] }

export interface CreateRoomInput {
  name: string;
  type: RoomType;
  roomId?: string;
  description?: string;
  maxMembers?: number;
  allowInvites?: boolean;
  members?: Array<string | { userId: string; displayName?: string }>;
  settings?: Partial<RoomSettings>;
  tags?: string[];
  /** With type direct: the match's room, created by the first call and returned by every later one. */
  matchId?: string;
}

export interface SendOptions {
  messageType?: Message['type'];
  /** Generated when absent; a retry with the same id never makes a second message. */
  clientMsgId?: string;
  replyTo?: string | null;
  threadId?: string | null;
  mentions?: string[];
  attachments?: Message['attachments'];
  isAnonymous?: boolean;
  metadata?: Record<string, unknown>;
}

/** What the server acknowledged for a send (WebSocket ack or REST response). */
export interface SendAck {
  roomId: string;
  messageId: string;
  clientMsgId: string;
  seq: number;
  timestamp: string;
  duplicate: boolean;
}

export interface MessageStatusView {
  roomId: string;
  messageId: string;
  statuses: Array<{ userId: string; status: 'sent' | 'delivered' | 'read'; deliveredAt?: string; readAt?: string }>;
}
