/** The data model the wire, the REST API and every store share (seed 000's shapes, camelCase). */

export const MESSAGE_TYPES = ['text', 'image', 'file', 'audio', 'video', 'poll', 'system', 'ai_response'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export const ROOM_TYPES = ['public', 'private', 'direct', 'group', 'announcement'] as const;
export type RoomType = (typeof ROOM_TYPES)[number];

/** Highest first: a role may act on any role strictly below it. */
export const ROLES = ['owner', 'admin', 'moderator', 'member'] as const;
export type Role = (typeof ROLES)[number];

export const MODERATION_LEVELS = ['none', 'basic', 'strict'] as const;
export type ModerationLevel = (typeof MODERATION_LEVELS)[number];

export const PRESENCE_STATUSES = ['online', 'away', 'busy', 'offline'] as const;
export type PresenceStatus = (typeof PRESENCE_STATUSES)[number];

export const DEVICE_TYPES = ['web', 'mobile', 'desktop'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

export interface Attachment {
  id: string;
  type: 'image' | 'file' | 'audio' | 'video';
  url: string;
  thumbnailUrl?: string;
  fileName?: string;
  fileSize?: number;
  mimeType?: string;
}

export interface Message {
  /** Snowflake, decimal string; orders history. */
  messageId: string;
  roomId: string;
  authorId: string;
  authorName: string;
  authorAvatar?: string;
  content: string;
  type: MessageType;
  /** ISO time the message was created (derived from the id). */
  timestamp: string;
  /** emoji -> user ids, in the order they reacted. */
  reactions: Record<string, string[]>;
  replyTo: string | null;
  /** Root message id when this message is a reply inside a thread; null in the main timeline. */
  threadId: string | null;
  mentions: string[];
  attachments: Attachment[];
  isEdited: boolean;
  editedAt?: string;
  isDeleted: boolean;
  deletedAt?: string;
  isPinned: boolean;
  isAnonymous: boolean;
  anonymousName?: string;
  clientMsgId?: string;
  /** Free-form metadata of small size (poll options, AI model name, ...). */
  metadata?: Record<string, unknown>;
}

export interface RoomSettings {
  allowInvites: boolean;
  requireApproval: boolean;
  allowFileUploads: boolean;
  maxFileSize: number;
  allowedFileTypes: string[];
  /** Days; 0 keeps forever. */
  messageRetention: number;
  enableAI: boolean;
  moderationLevel: ModerationLevel;
  maxMembers: number;
}

export interface Room {
  roomId: string;
  tenant: string;
  name: string;
  description: string;
  type: RoomType;
  avatar?: string;
  banner?: string;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  memberCount: number;
  maxMembers: number;
  lastActivity: string;
  settings: RoomSettings;
  isActive: boolean;
  tags: string[];
  /** The match a direct room was opened for (seed 004: one conversation per match); absent for other rooms. */
  matchId?: string;
}

export interface RoomMember {
  roomId: string;
  userId: string;
  displayName: string;
  avatar?: string;
  role: Role;
  joinedAt: string;
  isMuted: boolean;
  isBanned: boolean;
}

/**
 * The assistant's memory of one user's questions asked outside a room (seed 000's AIContext):
 * the last turns, kept until `expiresAt` (a TTL renewed by each question), with the tokens spent.
 */
export interface AiContext {
  contextId: string;
  /** null: the user's own context, not a room's. */
  roomId: string | null;
  userId: string;
  messages: AiContextMessage[];
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  tokensUsed: number;
}

export interface AiContextMessage {
  role: 'user' | 'assistant' | 'system';
  content: string;
  timestamp: string;
}

/** Per-message delivery state in direct rooms (seed 004): sent -> delivered -> read. */
export interface MessageStatus {
  messageId: string;
  userId: string;
  deliveredAt?: string;
  readAt?: string;
}

export interface ReadState {
  roomId: string;
  userId: string;
  lastReadId: string;
  readAt: string;
}

export const DEFAULT_ROOM_SETTINGS: Readonly<RoomSettings> = Object.freeze({
  allowInvites: true,
  requireApproval: false,
  allowFileUploads: true,
  maxFileSize: 10 * 1024 * 1024,
  allowedFileTypes: [],
  messageRetention: 0,
  enableAI: true,
  moderationLevel: 'basic',
  maxMembers: 10_000,
});

/** Group rooms hold 2 to 50 people (seed 000); direct rooms exactly 2. */
export const GROUP_MAX_MEMBERS = 50;
export const DIRECT_MEMBERS = 2;
