import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { MESSAGE_TYPES, PRESENCE_STATUSES, DEVICE_TYPES, type Message, type PresenceStatus, type Role } from '../domain/models.ts';

/**
 * Client -> server frames. Every frame is an object with `type`; `ref` (any short string or number)
 * is echoed in the `ack` or `error` that answers it. Unknown properties are ignored so that newer
 * clients keep working against older gateways.
 */

/** Room ids double as NATS subject tokens, so they are restricted to subject-safe characters. */
export const ROOM_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
export const MESSAGE_ID_PATTERN = '^[0-9]{1,20}$';

export const RoomId = Type.String({ pattern: ROOM_ID_PATTERN });
export const MessageId = Type.String({ pattern: MESSAGE_ID_PATTERN });
/** The longest `ref` a client may attach (echoed in the reply). */
export const MAX_REF_LENGTH = 64;
const Ref = Type.Optional(Type.Union([Type.String({ maxLength: MAX_REF_LENGTH }), Type.Number()]));
const Emoji = Type.String({ minLength: 1, maxLength: 32 });

export const AttachmentSchema = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 128 }),
  type: Type.Union([Type.Literal('image'), Type.Literal('file'), Type.Literal('audio'), Type.Literal('video')]),
  url: Type.String({ minLength: 1, maxLength: 2048 }),
  thumbnailUrl: Type.Optional(Type.String({ maxLength: 2048 })),
  fileName: Type.Optional(Type.String({ maxLength: 255 })),
  fileSize: Type.Optional(Type.Integer({ minimum: 0 })),
  mimeType: Type.Optional(Type.String({ maxLength: 128 })),
});

const literalUnion = <T extends readonly string[]>(values: T) =>
  Type.Union(values.map((v) => Type.Literal(v)) as never) as unknown as TSchema & { static: T[number] };

export const MessageTypeSchema = literalUnion(MESSAGE_TYPES);
export const PresenceStatusSchema = literalUnion(PRESENCE_STATUSES);
export const DeviceTypeSchema = literalUnion(DEVICE_TYPES);

/** The fields of a new message shared by the WebSocket frame and the REST body. */
export const NewMessageFields = {
  content: Type.String({ maxLength: 1_000_000 }),
  messageType: Type.Optional(MessageTypeSchema),
  clientMsgId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  replyTo: Type.Optional(Type.Union([MessageId, Type.Null()])),
  threadId: Type.Optional(Type.Union([MessageId, Type.Null()])),
  attachments: Type.Optional(Type.Array(AttachmentSchema, { maxItems: 10 })),
  mentions: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 50 })),
  isAnonymous: Type.Optional(Type.Boolean()),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
};

export const ClientFrames = {
  join_room: Type.Object({ type: Type.Literal('join_room'), roomId: RoomId, ref: Ref }),
  leave_room: Type.Object({ type: Type.Literal('leave_room'), roomId: RoomId, ref: Ref }),
  send_message: Type.Object({ type: Type.Literal('send_message'), roomId: RoomId, ref: Ref, ...NewMessageFields }),
  edit_message: Type.Object({
    type: Type.Literal('edit_message'), roomId: RoomId, messageId: MessageId, content: Type.String({ maxLength: 1_000_000 }), ref: Ref,
  }),
  delete_message: Type.Object({ type: Type.Literal('delete_message'), roomId: RoomId, messageId: MessageId, ref: Ref }),
  typing_start: Type.Object({ type: Type.Literal('typing_start'), roomId: RoomId, ref: Ref }),
  typing_stop: Type.Object({ type: Type.Literal('typing_stop'), roomId: RoomId, ref: Ref }),
  message_reaction: Type.Object({
    type: Type.Literal('message_reaction'), roomId: RoomId, messageId: MessageId, emoji: Emoji,
    action: Type.Optional(Type.Union([Type.Literal('add'), Type.Literal('remove')])), ref: Ref,
  }),
  pin_message: Type.Object({ type: Type.Literal('pin_message'), roomId: RoomId, messageId: MessageId, ref: Ref }),
  unpin_message: Type.Object({ type: Type.Literal('unpin_message'), roomId: RoomId, messageId: MessageId, ref: Ref }),
  mark_read: Type.Object({ type: Type.Literal('mark_read'), roomId: RoomId, messageId: MessageId, ref: Ref }),
  set_presence: Type.Object({
    type: Type.Literal('set_presence'), status: PresenceStatusSchema,
    customStatus: Type.Optional(Type.String({ maxLength: 140 })),
    device: Type.Optional(Type.Object({
      type: Type.Optional(DeviceTypeSchema),
      platform: Type.Optional(Type.String({ maxLength: 32 })),
      version: Type.Optional(Type.String({ maxLength: 32 })),
    })),
    ref: Ref,
  }),
  resume: Type.Object({
    type: Type.Literal('resume'),
    rooms: Type.Array(Type.Object({ roomId: RoomId, lastMessageId: Type.Optional(MessageId) }), { maxItems: 500 }),
    ref: Ref,
  }),
  ping: Type.Object({ type: Type.Literal('ping'), ref: Ref }),
  /** A fresh token for the open socket, before the one it connected with expires: same user, verified as at upgrade. */
  auth: Type.Object({ type: Type.Literal('auth'), token: Type.String({ minLength: 1, maxLength: 8192 }), ref: Ref }),
  /** Seed 001's frame: `{type:'message', data:{room, message}}`, accepted as send_message. */
  message: Type.Object({
    type: Type.Literal('message'),
    data: Type.Object({ room: RoomId, message: Type.String({ maxLength: 1_000_000 }), username: Type.Optional(Type.String()) }),
    ref: Ref,
  }),
} as const;

export type ClientFrameType = keyof typeof ClientFrames;
export type ClientFrame = { [K in ClientFrameType]: Static<(typeof ClientFrames)[K]> }[ClientFrameType];
export type ClientFrameOf<K extends ClientFrameType> = Static<(typeof ClientFrames)[K]>;
export const CLIENT_FRAME_TYPES = Object.keys(ClientFrames) as ClientFrameType[];

/** Server -> client frames. */
export interface UserRef { userId: string; name: string }
export interface PresenceDevice { type?: string; platform?: string; version?: string }

export type ServerFrame =
  | {
    type: 'welcome'; userId: string; name: string; tenant: string; connectionId: string; serverTime: string; heartbeatMs: number; format: 'json' | 'msgpack'; rooms: string[];
    /** When the token expires and the connection is closed (4401) unless an `auth` frame extends it; absent: never. */
    tokenExpiresAt?: string;
  }
  | { type: 'ack'; ref?: string | number; [key: string]: unknown }
  | { type: 'error'; code: string; message: string; ref?: string | number; retryAfterMs?: number; details?: Record<string, unknown> }
  | { type: 'new_message'; roomId: string; message: Message; seq: number }
  | { type: 'message_updated'; roomId: string; messageId: string; content: string; editedAt: string; userId: string; seq: number }
  | { type: 'message_deleted'; roomId: string; messageId: string; deletedAt: string; userId: string; seq: number }
  | { type: 'reaction_updated'; roomId: string; messageId: string; emoji: string; userId: string; action: 'add' | 'remove'; seq: number }
  | { type: 'message_pinned'; roomId: string; messageId: string; pinned: boolean; userId: string; seq: number }
  | { type: 'read_receipt'; roomId: string; userId: string; messageId: string; readAt: string; seq: number }
  /**
   * Direct rooms: `delivered`/`read` by a member, durable (`seq`). Channel rooms: the platform's word
   * on a reply sent to it (`sent`, `delivered`, `read`, `failed`), live only (no `seq`), with
   * `channel`, the platform's message id and, for `failed`, its error.
   */
  | {
    type: 'message_status'; roomId: string; messageId: string; userId: string; status: 'sent' | 'delivered' | 'read' | 'failed'; at: string; seq?: number;
    channel?: string; platformMessageId?: string; error?: string;
  }
  | { type: 'user_joined'; roomId: string; user: UserRef; role: Role }
  | { type: 'user_left'; roomId: string; user: UserRef; reason: 'left' | 'kicked' | 'banned' }
  | { type: 'member_updated'; roomId: string; userId: string; role: Role; isMuted: boolean; isBanned: boolean }
  | { type: 'room_updated'; roomId: string; room: Record<string, unknown> }
  | { type: 'typing_indicator'; roomId: string; user: UserRef; isTyping: boolean }
  | { type: 'presence_update'; userId: string; status: PresenceStatus; customStatus?: string; device?: PresenceDevice; lastSeen: string }
  | { type: 'resumed'; rooms: Array<{ roomId: string; recovered: boolean; replayed: number }> }
    /**
   * The assistant's answer in a room, streamed: chunks in order, then one `done: true` frame that
   * names the stored message (`messageId`) or carries why the answer failed (`error`, nothing stored).
   */
  | { type: 'ai_response'; roomId: string; requestId: string; chunk: string; done: boolean; messageId?: string; error?: { code: string; message: string } }
  | { type: 'pong'; ref?: string | number; serverTime: string }
  /**
   * The gateway is draining (shutting down): connect again, to another gateway, after about
   * `retryAfterMs` (spread per client so they do not all come back at once) and resume. The
   * connection keeps working until then; the gateway closes it with 1001 after DRAIN_GRACE_MS.
   */
  | { type: 'reconnect'; reason: 'draining'; retryAfterMs: number }
  | { type: 'message'; data: { id: string; room: string; message: string; username: string; timestamp: string } };

export type ServerFrameType = ServerFrame['type'];
