import { Type, type TSchema } from '@sinclair/typebox';
import { AttachmentSchema, DeviceTypeSchema, MessageId, MessageTypeSchema, NewMessageFields, PresenceStatusSchema, RoomId } from '../shared/protocol/index.ts';
import { MATCH_ID_PATTERN, MODERATION_LEVELS, ROLES, ROOM_TYPES } from '../shared/domain/index.ts';

/**
 * The REST api's request and response schemas (seed 000's shapes). They validate requests, check
 * responses in tests, and are the OpenAPI document; schemas with `$id` become named components.
 */

const literals = <T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) =>
  Type.Union(values.map((v) => Type.Literal(v)) as never, options) as unknown as TSchema & { static: T[number] };

const IsoTime = Type.String({ description: 'ISO 8601 time' });
const UserId = Type.String({ minLength: 1, maxLength: 128 });
const Emoji = Type.String({ minLength: 1, maxLength: 32 });

export const RoomTypeSchema = literals(ROOM_TYPES, { $id: 'RoomType' });
export const RoleSchema = literals(ROLES, { $id: 'Role' });

// ---- pagination

export const PAGE_MAX = 100;
export const OFFSET_MAX = 10_000;

export const OffsetPageQuery = {
  limit: Type.Integer({ minimum: 1, maximum: PAGE_MAX, default: 20 }),
  offset: Type.Integer({ minimum: 0, maximum: OFFSET_MAX, default: 0 }),
};

export const OffsetPagination = Type.Object({
  total: Type.Integer({ minimum: 0 }),
  limit: Type.Integer(),
  offset: Type.Integer(),
  hasMore: Type.Boolean(),
}, { $id: 'OffsetPagination' });

export const CursorQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: PAGE_MAX, default: 50 }),
  before: Type.Optional(MessageId),
  after: Type.Optional(MessageId),
});

export const CursorPagination = Type.Object({
  hasMore: Type.Boolean({ description: 'More messages exist in the direction of travel: older, or newer when only `after` was given' }),
  before: Type.Union([MessageId, Type.Null()], { description: 'Oldest id in this page: pass as `before` for the previous page' }),
  after: Type.Union([MessageId, Type.Null()], { description: 'Newest id in this page: pass as `after` for the next page' }),
  limit: Type.Integer(),
}, { $id: 'CursorPagination' });

// ---- rooms

export const RoomSettingsSchema = Type.Object({
  allowInvites: Type.Boolean(),
  requireApproval: Type.Boolean(),
  allowFileUploads: Type.Boolean(),
  maxFileSize: Type.Integer({ minimum: 0 }),
  allowedFileTypes: Type.Array(Type.String()),
  messageRetention: Type.Integer({ minimum: 0, description: 'days; 0 keeps forever' }),
  enableAI: Type.Boolean(),
  moderationLevel: literals(MODERATION_LEVELS),
  maxMembers: Type.Integer({ minimum: 1 }),
}, { $id: 'RoomSettings' });

export const RoomSettingsPatch = Type.Partial(Type.Object({
  allowInvites: Type.Boolean(),
  requireApproval: Type.Boolean(),
  allowFileUploads: Type.Boolean(),
  maxFileSize: Type.Integer({ minimum: 0 }),
  allowedFileTypes: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 50 }),
  messageRetention: Type.Integer({ minimum: 0 }),
  enableAI: Type.Boolean(),
  moderationLevel: literals(MODERATION_LEVELS),
  maxMembers: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
}));

const roomFields = {
  roomId: Type.String(),
  name: Type.String(),
  description: Type.String(),
  type: RoomTypeSchema,
  avatar: Type.Optional(Type.String()),
  banner: Type.Optional(Type.String()),
  createdBy: Type.String(),
  createdAt: IsoTime,
  updatedAt: IsoTime,
  memberCount: Type.Integer({ minimum: 0 }),
  maxMembers: Type.Integer(),
  lastActivity: IsoTime,
  settings: RoomSettingsSchema,
  isActive: Type.Boolean(),
  tags: Type.Array(Type.String()),
  matchId: Type.Optional(Type.String({ description: 'the match this direct room was opened for (seed 004)' })),
};

const MatchId = Type.String({ pattern: MATCH_ID_PATTERN, description: 'one room per matchId in a tenant' });
const IsArchived = Type.Boolean({ description: 'you archived the room (only your own list hides it)' });

/** A room as its reader sees it: whether they are in it and with which role. */
export const RoomDetails = Type.Object({
  ...roomFields,
  isJoined: Type.Boolean(),
  role: Type.Union([RoleSchema, Type.Null()], { description: 'your role; null when not a member' }),
  isArchived: IsArchived,
}, { $id: 'RoomDetails' });

export const RoomListItem = Type.Object({
  ...roomFields,
  isJoined: Type.Boolean(),
  unreadCount: Type.Integer({ minimum: 0, description: 'capped at 100; 0 for rooms you have not joined' }),
  isArchived: IsArchived,
}, { $id: 'RoomListItem' });

export const RoomIdParams = Type.Object({ roomId: RoomId });

export const ListRoomsQuery = Type.Object({
  type: Type.Optional(RoomTypeSchema),
  scope: Type.Union([Type.Literal('all'), Type.Literal('joined'), Type.Literal('discover')], {
    default: 'all', description: 'joined: rooms you are in; discover: public and announcement rooms; all: both',
  }),
  archived: Type.Boolean({ default: false, description: 'false: the rooms you have not archived; true: only those you archived' }),
  ...OffsetPageQuery,
});

const MemberRef = Type.Object({ userId: UserId, displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) });

export const CreateRoomBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  description: Type.Optional(Type.String({ maxLength: 1000 })),
  type: RoomTypeSchema,
  roomId: Type.Optional(RoomId),
  avatar: Type.Optional(Type.String({ maxLength: 2048 })),
  banner: Type.Optional(Type.String({ maxLength: 2048 })),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { maxItems: 20 })),
  maxMembers: Type.Optional(Type.Integer({ minimum: 2, maximum: 1_000_000 })),
  allowInvites: Type.Optional(Type.Boolean()),
  members: Type.Optional(Type.Array(Type.Union([UserId, MemberRef]), {
    maxItems: 100, description: 'users added at once; a direct room needs exactly one',
  })),
  settings: Type.Optional(RoomSettingsPatch),
  matchId: Type.Optional({ ...MatchId, description: 'a direct room for this match: the first call creates it (201), later ones return it (200)' }),
});

export const ArchiveResult = Type.Object({
  roomId: Type.String(),
  archived: Type.Boolean(),
  archivedAt: Type.Union([IsoTime, Type.Null()], { description: 'when you archived it; null when not archived' }),
}, { $id: 'ArchiveResult' });

export const UpdateRoomBody = Type.Object({
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  description: Type.Optional(Type.String({ maxLength: 1000 })),
  avatar: Type.Optional(Type.String({ maxLength: 2048 })),
  banner: Type.Optional(Type.String({ maxLength: 2048 })),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { maxItems: 20 })),
  maxMembers: Type.Optional(Type.Integer({ minimum: 2, maximum: 1_000_000 })),
  settings: Type.Optional(RoomSettingsPatch),
});

// ---- members

export const MemberSchema = Type.Object({
  roomId: Type.String(),
  userId: Type.String(),
  displayName: Type.String(),
  avatar: Type.Optional(Type.String()),
  role: RoleSchema,
  joinedAt: IsoTime,
  isMuted: Type.Boolean(),
  isBanned: Type.Boolean(),
}, { $id: 'RoomMember' });

export const MemberWithPresence = Type.Object({
  ...MemberSchema.properties,
  isOnline: Type.Boolean(),
  lastSeen: Type.Union([IsoTime, Type.Null()]),
}, { $id: 'RoomMemberWithPresence' });

export const MemberParams = Type.Object({ roomId: RoomId, userId: UserId });
export const InviteBody = MemberRef;
export const SetRoleBody = Type.Object({ role: RoleSchema });

// ---- messages

export const MessageSchema = Type.Object({
  messageId: Type.String(),
  roomId: Type.String(),
  authorId: Type.String(),
  authorName: Type.String(),
  authorAvatar: Type.Optional(Type.String()),
  content: Type.String(),
  type: MessageTypeSchema,
  timestamp: IsoTime,
  reactions: Type.Record(Type.String(), Type.Array(Type.String()), { description: 'emoji -> user ids' }),
  replyTo: Type.Union([Type.String(), Type.Null()]),
  threadId: Type.Union([Type.String(), Type.Null()]),
  mentions: Type.Array(Type.String()),
  attachments: Type.Array(AttachmentSchema),
  isEdited: Type.Boolean(),
  editedAt: Type.Optional(IsoTime),
  isDeleted: Type.Boolean(),
  deletedAt: Type.Optional(IsoTime),
  isPinned: Type.Boolean(),
  isAnonymous: Type.Boolean(),
  anonymousName: Type.Optional(Type.String()),
  clientMsgId: Type.Optional(Type.String()),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
}, { $id: 'Message' });

export const MessageParams = Type.Object({ roomId: RoomId, messageId: MessageId });

/** Seed 000 names the type `type`; the WebSocket frame calls it `messageType`. Both are accepted. */
export const SendMessageBody = Type.Object({
  ...NewMessageFields,
  type: Type.Optional(MessageTypeSchema),
});

export const ThreadReplyBody = Type.Omit(SendMessageBody, ['threadId']);

export const SendResultSchema = Type.Object({
  message: MessageSchema,
  seq: Type.Integer({ description: 'stream sequence of the event' }),
  duplicate: Type.Boolean({ description: 'true when a retry with the same clientMsgId returned the first message' }),
}, { $id: 'SendResult' });

export const MessagePage = Type.Object({
  messages: Type.Array(MessageSchema, { description: 'newest first' }),
  pagination: CursorPagination,
});

export const EditBody = Type.Object({ content: NewMessageFields.content });

export const EditResult = Type.Object({
  roomId: Type.String(), messageId: Type.String(), content: Type.String(), editedAt: IsoTime, seq: Type.Integer(),
});

export const DeleteResult = Type.Object({
  roomId: Type.String(), messageId: Type.String(), deleted: Type.Literal(true), deletedAt: IsoTime, seq: Type.Integer(),
});

export const ReactionBody = Type.Object({ emoji: Emoji });
export const ReactionParams = Type.Object({ roomId: RoomId, messageId: MessageId, emoji: Emoji });
export const ReactionResult = Type.Object({
  roomId: Type.String(), messageId: Type.String(), emoji: Type.String(),
  action: Type.Union([Type.Literal('add'), Type.Literal('remove')]), seq: Type.Integer(),
});

export const PinResult = Type.Object({ roomId: Type.String(), messageId: Type.String(), pinned: Type.Boolean(), seq: Type.Integer() });

export const ThreadPage = Type.Object({
  root: MessageSchema,
  replies: Type.Array(MessageSchema, { description: 'newest first' }),
  pagination: CursorPagination,
});

export const ReadBody = Type.Object({ messageId: MessageId });
export const ReadResult = Type.Object({
  roomId: Type.String(), messageId: Type.String(), readAt: IsoTime,
  seq: Type.Optional(Type.Integer({ description: 'The stream sequence of the stored mark; absent when coalesced' })),
  coalesced: Type.Optional(Type.Boolean({ description: 'Another mark of yours in this room was stored less than COALESCE_READ_MS ago: this one is stored when that window ends, unless a later one replaces it' })),
});

export const MessageStatusResult = Type.Object({
  roomId: Type.String(),
  messageId: Type.String(),
  statuses: Type.Array(Type.Object({
    userId: Type.String(),
    status: Type.Union([Type.Literal('sent'), Type.Literal('delivered'), Type.Literal('read')]),
    deliveredAt: Type.Optional(IsoTime),
    readAt: Type.Optional(IsoTime),
  })),
});

// ---- search, presence, me

export const SearchQuery = Type.Object({
  q: Type.String({ minLength: 1, maxLength: 200 }),
  roomId: Type.Optional(RoomId),
  limit: Type.Integer({ minimum: 1, maximum: PAGE_MAX, default: 20 }),
});

export const SearchResult = Type.Object({
  query: Type.String(),
  messages: Type.Array(MessageSchema, { description: 'best match first' }),
});

const DeviceSchema = Type.Object({
  type: Type.Optional(DeviceTypeSchema),
  platform: Type.Optional(Type.String({ maxLength: 32 })),
  version: Type.Optional(Type.String({ maxLength: 32 })),
});

export const PresenceSchema = Type.Object({
  userId: Type.String(),
  status: PresenceStatusSchema,
  customStatus: Type.Optional(Type.String()),
  device: Type.Optional(Type.Object({ type: Type.Optional(Type.String()), platform: Type.Optional(Type.String()), version: Type.Optional(Type.String()) })),
  lastSeen: IsoTime,
  connections: Type.Integer({ minimum: 0 }),
}, { $id: 'Presence' });

export const PRESENCE_QUERY_MAX = 100;

export const PresenceQuery = Type.Object({
  userIds: Type.String({ minLength: 1, maxLength: 100 * 129, description: `comma-separated user ids, at most ${PRESENCE_QUERY_MAX}` }),
});

export const SetPresenceBody = Type.Object({
  status: PresenceStatusSchema,
  customStatus: Type.Optional(Type.String({ maxLength: 140 })),
  device: Type.Optional(DeviceSchema),
});

export const MeResult = Type.Object({
  userId: Type.String(),
  name: Type.String(),
  tenant: Type.String(),
  roles: Type.Array(Type.String()),
  rooms: Type.Array(Type.String(), { description: 'ids of the rooms you are a member of' }),
});

export const JoinResult = Type.Object({ roomId: Type.String(), joined: Type.Literal(true), role: RoleSchema, memberCount: Type.Integer() });
export const LeaveResult = Type.Object({ roomId: Type.String(), left: Type.Literal(true) });
export const KickResult = Type.Object({ roomId: Type.String(), userId: Type.String(), removed: Type.Literal(true) });

// ---- attachments

export const AttachmentParams = Type.Object({ roomId: RoomId, attachmentId: Type.String({ pattern: '^[0-9a-f-]{36}$' }) });

export const UploadQuery = Type.Object({
  fileName: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'the file\'s name, shown and offered on download (a path keeps its last part)' })),
});

/** A signed attachment link's path (api/attachment-links.ts): the tenant as given, URL-encoded. */
export const LinkParams = Type.Object({ tenant: Type.String({ minLength: 1, maxLength: 256 }), roomId: RoomId, attachmentId: AttachmentParams.properties.attachmentId });
export const LinkQuery = Type.Object({
  expires: Type.String({ pattern: '^[0-9]{1,12}$', description: 'unix seconds after which the link is refused' }),
  signature: Type.String({ maxLength: 128, description: 'base64url HMAC-SHA256 under ATTACHMENT_LINK_SECRET' }),
});

export const DownloadQuery = Type.Object({
  token: Type.Optional(Type.String({ description: 'The bearer token, for `<img src>` and download links, which cannot send an Authorization header' })),
});

/** Seed 000's Attachment, as an upload answers it: what a message's `attachments` then carries. */
export const UploadedAttachment = Type.Object({
  id: Type.String(),
  type: Type.Union([Type.Literal('image'), Type.Literal('file'), Type.Literal('audio'), Type.Literal('video')]),
  url: Type.String({ description: 'where members download it: this server\'s path, relative to its origin' }),
  thumbnailUrl: Type.Optional(Type.String()),
  fileName: Type.String(),
  fileSize: Type.Integer({ minimum: 0 }),
  mimeType: Type.String({ description: 'decided from the file\'s bytes, not from what the uploader declared' }),
}, { $id: 'UploadedAttachment' });

export const DirectUploadParams = Type.Object({ roomId: RoomId, attachmentId: Type.String({ pattern: '^[0-9a-f-]{36}$' }) });

export const DirectUploadBody = Type.Object({
  fileSize: Type.Integer({ minimum: 1, description: 'the exact size of the file: the URL takes a PUT of this length only' }),
});

export const DirectUploadTicket = Type.Object({
  attachmentId: Type.String(),
  upload: Type.Object({
    method: Type.Literal('PUT'),
    url: Type.String({ description: 'PUT the file\'s bytes here, as they are' }),
    headers: Type.Record(Type.String(), Type.String(), { description: 'headers the PUT must carry' }),
    expiresAt: Type.String({ description: 'ISO 8601 time' }),
  }),
  completeUrl: Type.String({ description: 'POST here once the PUT succeeded' }),
}, { $id: 'DirectUploadTicket' });

export const CompleteUploadBody = Type.Object({
  fileName: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
});
