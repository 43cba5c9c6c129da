import type { Principal } from '../../shared/auth/index.ts';
import { subjects, type Bus } from '../../shared/bus/index.ts';
import { channelRoomId, channelUserId, conversationOfTags, withConversationTag, type InboundMessage, type InboundStatus, type Platform } from '../../shared/channels/index.ts';
import type { MessageCommands, RoomCommands } from '../../shared/commands/index.ts';
import { roomKey, type Message, type RoomKey } from '../../shared/domain/index.ts';
import { ChatError, encodeMsgpack, errorMapping, type ServerFrame } from '../../shared/protocol/index.ts';
import type { HistoryQuery, Store } from '../../shared/store/index.ts';
import { metrics, type Logger } from '../../shared/telemetry/index.ts';
import { statusTarget } from './status-target.ts';
import type { SessionTouch } from './session-touch.ts';

export interface InboxDeps {
  store: Store;
  /** How long a received-record is kept (the platforms retry for up to a week). */
  receivedRecordTtlMs: number;
  now?: () => number;
  bus: Bus;
  rooms: RoomCommands;
  messages: MessageCommands;
  /** The tenant whose rooms this webhook feeds (the one its path names; CHANNELS_TENANT without one). */
  tenant: string;
  log: Logger;
  /** Where a status without our message id looks for its reply (status-target.ts); the store when not given. */
  history?: (room: RoomKey, q: HistoryQuery) => Promise<Message[]>;
  /** The person's session, touched by each message; none: messages carry no session. */
  sessions?: SessionTouch;
}

/**
 * The key a room's received-records (platform message ids already stored) are kept under, among
 * the notification records: spaces keep it apart from every user id, and one key per room keeps
 * each conversation its own Cassandra partition.
 */
export const receivedRecordKey = (roomId: string): string => `channel received ${roomId}`;

const NAMES: Record<Platform, string> = { whatsapp: 'WhatsApp', telegram: 'Telegram', slack: 'Slack', messenger: 'Messenger', twilio: 'SMS', teams: 'Teams' };

/** The principal an external person acts as: only a verified webhook is ever given it. */
export function channelPrincipal(tenant: string, platform: Platform, externalUserId: string, name: string | undefined): Principal {
  return { userId: channelUserId(platform, externalUserId), name: name ?? externalUserId, tenant, roles: ['channel'], expiresAt: undefined };
}

/**
 * Where verified platform events enter the chat: a message goes into its sender's room through
 * the same commands a WebSocket client's message does (so it is in history, live, notified and
 * persisted like any other), deduplicated by the platform's message id: in the stream as its
 * clientMsgId (two deliveries at once), and by a received-record written once it is stored
 * (a retry days later, past the stream's duplicate window); a status becomes a `message_status`
 * frame in the room.
 */
export class ChannelInbox {
  constructor(private readonly deps: InboxDeps) {}

  /** Stores one message; `duplicate` when the platform delivered it before (within the stream's duplicate window). */
  async message(platform: Platform, m: InboundMessage): Promise<'stored' | 'duplicate' | 'ignored'> {
    const roomId = channelRoomId(platform, m.externalUserId);
    if (roomId === undefined) {
      this.deps.log.warn({ platform }, 'channel message from an id that cannot name a room: ignored');
      return 'ignored';
    }
    const who = channelPrincipal(this.deps.tenant, platform, m.externalUserId, m.externalUserName);
    const now = this.deps.now ?? Date.now;
    // the stream forgets a clientMsgId after NATS_DUPLICATE_WINDOW; platforms retry for days
    const recordKey = receivedRecordKey(roomId);
    if ((await this.deps.store.notifiedOf(who.tenant, recordKey, [m.platformMessageId], now())).has(m.platformMessageId)) return 'duplicate';
    let sent;
    try {
      const [sessionId] = await Promise.all([this.deps.sessions?.inbound(who.tenant, platform, roomId, m), this.ensureRoom(platform, roomId, who, m.externalUserId, m.conversation)]);
      sent = await this.deps.messages.send(who, {
        roomId, content: m.content, messageType: m.type, clientMsgId: m.platformMessageId, attachments: m.attachments,
        metadata: { ...m.metadata, channel: platform, externalUserId: m.externalUserId, platformMessageId: m.platformMessageId, ...(sessionId ? { sessionId } : {}) },
      });
    } catch (err) {
      // a refusal that holds on every retry (the person was banned, the text is too long, the room
      // is not theirs) is not the platform's to retry: an error answer would have it retry for days
      if (!(err instanceof ChatError) || errorMapping(err.code).retryable) throw err;
      this.deps.log.warn({ platform, roomId, code: err.code, reason: err.message }, 'channel message refused');
      return 'ignored';
    }
    await this.deps.store.markNotified(who.tenant, recordKey, [m.platformMessageId], now() + this.deps.receivedRecordTtlMs);
    return sent.duplicate ? 'duplicate' : 'stored';
  }

  /**
   * Tells the room's connections what the platform said of a reply; a status whose room message
   * cannot be found (status-target.ts) is ignored.
   */
  async status(platform: Platform, s: InboundStatus): Promise<'status' | 'ignored'> {
    const roomId = channelRoomId(platform, s.externalUserId);
    if (roomId === undefined) return 'ignored';
    const messageId = await statusTarget(this.deps, this.deps.tenant, platform, roomId, s, (this.deps.now ?? Date.now)());
    if (messageId === undefined) return 'ignored';
    const frame: ServerFrame = {
      type: 'message_status', roomId, messageId, userId: channelUserId(platform, s.externalUserId), status: s.status,
      at: new Date(s.at).toISOString(), channel: platform, ...(s.platformMessageId ? { platformMessageId: s.platformMessageId } : {}), ...(s.error ? { error: s.error } : {}),
    };
    this.deps.bus.publish(subjects.roomControl(roomKey(this.deps.tenant, roomId)), encodeMsgpack(frame));
    return 'status';
  }

  /**
   * The conversation's room, created by its first message. Its id is derived from the sender
   * (channel-room.ts), so two processes taking two first messages at once race on one id: the
   * loser's create fails and it finds the winner's room.
   */
  private async ensureRoom(platform: Platform, roomId: string, who: Principal, externalUserId: string, conversation: string | undefined): Promise<void> {
    const key = roomKey(who.tenant, roomId);
    const room = await this.deps.store.getRoom(key);
    if (room) {
      // the latest message's conversation is the one answered (Teams may move a person to another serviceUrl)
      // only in the person's own room: one someone else made under its id is refused by the send anyway
      if (conversation !== undefined && room.createdBy === who.userId && conversationOfTags(room.tags) !== conversation) {
        await this.deps.store.updateRoom({ ...room, tags: withConversationTag(room.tags, conversation) });
      }
      return;
    }
    const tags = ['channel', `channel:${platform}`, `external:${externalUserId}`];
    try {
      await this.deps.rooms.create(who, {
        roomId, type: 'public', name: `${NAMES[platform]}: ${who.name}`,
        description: `${NAMES[platform]} conversation with ${who.name} (${externalUserId})`,
        tags: conversation === undefined ? tags : withConversationTag(tags, conversation),
      });
      metrics.channelInbound.inc({ platform, outcome: 'room_created' });
    } catch (err) {
      if (err instanceof ChatError && err.code === 'conflict' && await this.deps.store.getRoom(key)) return this.ensureRoom(platform, roomId, who, externalUserId, conversation);
      throw err;
    }
  }
}
