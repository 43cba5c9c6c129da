import type { TenantQuotaReader } from './tenant-quotas.ts';
import { ChatError } from '../protocol/errors.ts';
import { encodeMsgpack, decodeMsgpack } from '../protocol/codec.ts';
import { subjects, type Bus, type DurableAck } from '../bus/bus.ts';
import type { Store } from '../store/store.ts';
import type { RateLimiter, RateRule } from '../rate-limit/rate-limit.ts';
import type { Presence } from '../presence/presence.ts';
import type { Principal } from '../auth/principal.ts';
import type { DurableEvent } from '../domain/events.ts';
import type { Attachment, Message, MessageType } from '../domain/models.ts';
import { roomIdOf, type RoomKey } from '../domain/room-key.ts';
import { assertCanDelete, assertCanEdit, assertCanPin } from '../domain/permissions.ts';
import { assertClientMessageType, checkAttachments, checkContent, checkMetadata, extractMentions, type MessageLimits } from '../domain/message-rules.ts';
import { canonicalId } from '../domain/identity.ts';
import { idTime, isId, type Snowflake } from '../ids/snowflake.ts';
import type { RoomAccess } from './room-access.ts';
import { RoomGuard } from './room-guard.ts';
import { inSpan, SpanKind, traceHeaders, tracingEnabled } from '../telemetry/tracing.ts';
import { Coalescer } from '../rate-limit/coalescer.ts';
import { mayTriggerAi } from '../ai/triggers.ts';
import { moderate } from '../ai/moderation.ts';
import { aiMetrics } from '../ai/ai-metrics.ts';
import { encodeAiRequest } from '../ai/requests.ts';

/**
 * Message commands: send, edit, delete, react, pin, mark read, delivered. The one place where a
 * message event is authorized, turned into a durable event and stored in the stream. Both the
 * gateway (frames) and the api (REST) call these, so the rules hold on every path.
 *
 * Order of work (docs/architecture.md, Durability): publishDurable, wait for the stream's ack,
 * return (the caller acks the client). The stream itself announces the stored event on the room's
 * live subject (the bus's republish), so nothing here publishes it live: stored implies announced,
 * even when this process dies right after the ack.
 */
export interface MessageCommandDeps {
  bus: Bus;
  store: Store;
  /** Keeps unread counts (never throws by its contract). */
  presence: Presence;
  access: RoomAccess;
  ids: Snowflake;
  limits: MessageLimits;
  rateLimiter: RateLimiter;
  userRate: RateRule;
  /** Per-tenant limit; undefined for none. Unused with `quotas`, whose messagesPerSecond is the limit. */
  tenantRate: RateRule | undefined;
  /** The tenants' own messagesPerSecond quotas (TENANT_RATE_LIMIT_PER_SECOND their default). */
  quotas?: TenantQuotaReader;
  /** A user's read marks in a room are stored at most once per this many ms, the last one winning (COALESCE_READ_MS; 0 or none: each). */
  coalesceReadMs?: number;
  /** Told when a held read mark fails when its window ends (its request was answered already). */
  onHeldError?: (err: unknown) => void;
  now?: () => number;
}

export interface SendInput {
  roomId: string;
  content: string;
  messageType?: MessageType;
  clientMsgId?: string;
  replyTo?: string | null;
  threadId?: string | null;
  attachments?: Attachment[];
  mentions?: string[];
  isAnonymous?: boolean;
  metadata?: Record<string, unknown>;
}

export interface SendResult {
  message: Message;
  seq: number;
  /** True when this was a retry of a message already stored (same clientMsgId). */
  duplicate: boolean;
}

export interface EventResult {
  seq: number;
  at: number;
}

/** A read mark stored now (`seq`), or held: a later mark of the same window wins, stored when it ends. */
export type ReadMarkResult = EventResult | { coalesced: true; at: number };

/**
 * Told once the command's event was handed to the stream (or the command failed before that):
 * the stream stores events in the order they were handed over, so a sender's next command may
 * start then, without waiting for this one's ack, and still be stored after it.
 */
export type Issued = () => void;

/** How long an author's own message may take to reach the store before edit/delete gives up. */
const PERSIST_GRACE_MS = 250;
const ANONYMOUS_NAME = 'Anonymous';
/** Author of the assistant's messages; what marks them is their type, `ai_response`, which no client may send. */
export const AI_AUTHOR_ID = '@assistant';
export const AI_AUTHOR_NAME = 'AI Assistant';
/** A read mark this far behind the newest message is treated as this far behind. */
const UNREAD_RECOUNT_CAP = 1000;

export class MessageCommands {
  private readonly now: () => number;
  private readonly guard: RoomGuard;
  private readonly reads: Coalescer<{ who: Principal; roomId: string; messageId: string }>;

  constructor(private readonly deps: MessageCommandDeps) {
    this.now = deps.now ?? Date.now;
    this.guard = new RoomGuard(deps.access);
    this.reads = new Coalescer(deps.coalesceReadMs ?? 0, (err) => deps.onHeldError?.(err));
  }

  /** In a command span when tracing is on: a message's trace shows its checks apart from its publish. */
  send(who: Principal, input: SendInput, issued?: Issued): Promise<SendResult> {
    if (!tracingEnabled()) return this.sendMessage(who, input, issued);
    return inSpan('chat.command send', SpanKind.INTERNAL, { 'chat.room_id': input.roomId }, () => this.sendMessage(who, input, issued));
  }

  private async sendMessage(who: Principal, input: SendInput, issued?: Issued): Promise<SendResult> {
    const type = input.messageType ?? 'text';
    assertClientMessageType(type);
    const content = checkContent(input.content, this.deps.limits, { attachments: input.attachments, type });
    checkMetadata(input.metadata, this.deps.limits);
    checkAttachments(input.roomId, input.attachments);
    // named users as tokens name them (domain/identity.ts): `@ａｄｍｉｎ` mentions admin
    const mentioned = input.mentions?.map((id) => canonicalId(id, 'a mentioned user id'));
    const { key, room, member } = await this.guard.poster(who, input.roomId);
    await this.limit(who);
    // `none` costs nothing; the others one scan of the text by the word list (moderation.ts)
    const level = room.settings.moderationLevel;
    const verdict = level === 'none' ? undefined : moderate(content);
    if (verdict?.flagged) {
      aiMetrics.moderation.inc({ level, action: level === 'strict' ? 'refused' : 'flagged' });
      if (level === 'strict') {
        throw new ChatError('moderated', 'this room does not accept that message (moderation: strict)', { details: { categories: verdict.categories } });
      }
    }

    if (input.threadId) assertId(input.threadId);
    if (input.replyTo) assertId(input.replyTo);
    if (input.threadId) await this.requireMessage(key, input.threadId, 'thread root');
    if (input.replyTo) await this.requireMessage(key, input.replyTo, 'replied-to message');

    const messageId = this.deps.ids.next();
    const at = idTime(messageId);
    const anonymous = input.isAnonymous === true;
    const message: Message = {
      messageId,
      roomId: room.roomId,
      authorId: who.userId,
      authorName: anonymous ? ANONYMOUS_NAME : member.displayName || who.name,
      content,
      type,
      timestamp: new Date(at).toISOString(),
      reactions: {},
      replyTo: input.replyTo ?? null,
      threadId: input.threadId ?? null,
      mentions: extractMentions(content, mentioned),
      attachments: input.attachments ?? [],
      isEdited: false,
      isDeleted: false,
      isPinned: false,
      isAnonymous: anonymous,
    };
    // optional fields set one by one: a spread of a fresh object for each costs on every send
    if (anonymous) message.anonymousName = ANONYMOUS_NAME;
    if (member.avatar && !anonymous) message.authorAvatar = member.avatar;
    if (input.clientMsgId) message.clientMsgId = input.clientMsgId;
    if (input.metadata) message.metadata = input.metadata;
    if (verdict?.flagged) message.metadata = { ...message.metadata, moderation: { flagged: true, categories: verdict.categories } };
    const event: DurableEvent = { kind: 'message.created', id: messageId, at, roomId: key, message };
    // A retried clientMsgId dedupes in the stream: the first message wins and is returned again.
    // The id is the sender's own in one room: the same id in another room is another message.
    const dedupeId = input.clientMsgId ? `c:${who.tenant}:${who.userId}:${room.roomId}:${input.clientMsgId}` : messageId;
    const ack = await this.append(event, dedupeId, issued);
    if (ack.duplicate) {
      // the first attempt was stored, so the stream announced it then: only its sender needs it again
      const original = await this.deps.bus.getDurable(ack.seq);
      const stored = original ? (decodeMsgpack(original.data) as DurableEvent) : undefined;
      if (stored?.kind === 'message.created') return { message: stored.message, seq: ack.seq, duplicate: true };
      throw new ChatError('conflict', `clientMsgId ${input.clientMsgId} was already used`);
    }
    // Not awaited: the count is advisory and must not add a round trip to every send.
    void this.deps.presence.noteMessage(who.tenant, room.roomId, who.userId);
    // Addressed to the assistant: one request on the bus for the api tier's AI workers (a
    // gateway never calls a provider). Stored first, so the answer can name it as replyTo.
    if (room.settings.enableAI && mayTriggerAi(content)) {
      this.deps.bus.publish(subjects.aiRequests, encodeAiRequest({
        kind: 'room', requestId: `ai-${messageId}`, tenant: who.tenant, userId: who.userId, userName: message.authorName,
        roomId: room.roomId, messageId, content,
      }));
    }
    return { message, seq: ack.seq, duplicate: false };
  }

  /**
   * Stores the assistant's finished answer in the room through the stream, like any message
   * (history, resume and `new_message` follow), as type `ai_response`. Only the AI workers call
   * this; clients cannot send that type. Deduped on the request, so a retry stores it once.
   */
  async postAiAnswer(input: { room: RoomKey; roomId: string; requestId: string; replyTo: string; content: string; metadata: Record<string, unknown> }): Promise<Message> {
    const messageId = this.deps.ids.next();
    const at = idTime(messageId);
    const max = this.deps.limits.maxMessageLength;
    const content = input.content.length > max ? `${input.content.slice(0, max - 1)}…` : input.content;
    const message: Message = {
      messageId, roomId: input.roomId, authorId: AI_AUTHOR_ID, authorName: AI_AUTHOR_NAME, content, type: 'ai_response',
      timestamp: new Date(at).toISOString(), reactions: {}, replyTo: input.replyTo, threadId: null, mentions: [], attachments: [],
      isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false, metadata: input.metadata,
    };
    const ack = await this.append({ kind: 'message.created', id: messageId, at, roomId: input.room, message }, `ai:${input.requestId}`);
    if (ack.duplicate) {
      const original = await this.deps.bus.getDurable(ack.seq);
      const stored = original ? (decodeMsgpack(original.data) as DurableEvent) : undefined;
      if (stored?.kind === 'message.created') return stored.message;
    }
    return message;
  }

  async edit(who: Principal, input: { roomId: string; messageId: string; content: string }, issued?: Issued): Promise<EventResult> {
    assertId(input.messageId);
    const content = checkContent(input.content, this.deps.limits);
    const { key, member } = await this.guard.member(who, input.roomId);
    const message = await this.requireMessage(key, input.messageId, 'message');
    assertCanEdit(message.authorId, member);
    if (message.isDeleted) throw new ChatError('conflict', 'a deleted message cannot be edited');
    await this.limit(who);
    return this.emit({ kind: 'message.edited', id: this.deps.ids.next(), at: this.now(), roomId: key, messageId: input.messageId, userId: who.userId, content }, issued);
  }

  async delete(who: Principal, input: { roomId: string; messageId: string }, issued?: Issued): Promise<EventResult> {
    assertId(input.messageId);
    const { key, member } = await this.guard.member(who, input.roomId);
    const message = await this.requireMessage(key, input.messageId, 'message');
    assertCanDelete(message.authorId, member);
    await this.limit(who);
    return this.emit({ kind: 'message.deleted', id: this.deps.ids.next(), at: this.now(), roomId: key, messageId: input.messageId, userId: who.userId }, issued);
  }

  async react(who: Principal, input: { roomId: string; messageId: string; emoji: string; action?: 'add' | 'remove' }, issued?: Issued): Promise<EventResult & { action: 'add' | 'remove' }> {
    assertId(input.messageId);
    const { key } = await this.guard.reactor(who, input.roomId);
    const message = await this.requireMessage(key, input.messageId, 'message');
    if (message.isDeleted) throw new ChatError('conflict', 'cannot react to a deleted message');
    const action = input.action ?? 'add';
    // `remove` takes back the sender's own reaction: one that is not there (someone else's, or
    // none) is refused, so nothing is announced that did not happen.
    if (action === 'remove' && !(await this.hasReacted(key, message, input.emoji, who.userId))) {
      throw new ChatError('not_found', `you have no ${input.emoji} reaction on message ${input.messageId}`);
    }
    await this.limit(who);
    const result = await this.emit({
      kind: action === 'add' ? 'reaction.added' : 'reaction.removed',
      id: this.deps.ids.next(), at: this.now(), roomId: key, messageId: input.messageId, userId: who.userId, emoji: input.emoji,
    }, issued);
    return { ...result, action };
  }

  async pin(who: Principal, input: { roomId: string; messageId: string; pinned: boolean }, issued?: Issued): Promise<EventResult> {
    assertId(input.messageId);
    const { key, room, member } = await this.guard.member(who, input.roomId);
    assertCanPin(room, member);
    const message = await this.requireMessage(key, input.messageId, 'message');
    if (message.isDeleted && input.pinned) throw new ChatError('conflict', 'cannot pin a deleted message');
    return this.emit({
      kind: input.pinned ? 'message.pinned' : 'message.unpinned',
      id: this.deps.ids.next(), at: this.now(), roomId: key, messageId: input.messageId, userId: who.userId,
    }, issued);
  }

  /**
   * Read marks move forward only (the store keeps the greatest id); direct rooms also get a read
   * status (an ephemeral frame: the stream announces the read mark itself). Takes no `Issued`: the
   * unread count it sets afterwards must not race the next mark's.
   */
  async markRead(who: Principal, input: { roomId: string; messageId: string }): Promise<EventResult> {
    assertId(input.messageId);
    const { key, room } = await this.guard.member(who, input.roomId);
    const event: DurableEvent = { kind: 'read.marked', id: this.deps.ids.next(), at: this.now(), roomId: key, userId: who.userId, messageId: input.messageId };
    const result = await this.emit(event);
    // Counting the newer messages here (once per mark) keeps unread reads O(1); the store may be up
    // to one persister batch behind, so a message sent this very moment may be counted as read.
    const leftUnread = await this.deps.store.countUnread(key, who.userId, input.messageId, UNREAD_RECOUNT_CAP);
    await this.deps.presence.markRoomRead(who.tenant, room.roomId, who.userId, leftUnread);
    if (room.type === 'direct') {
      this.deps.bus.publish(subjects.roomEvents(key), encodeMsgpack({
        type: 'message_status', roomId: room.roomId, messageId: input.messageId, userId: who.userId,
        status: 'read', at: new Date(event.at).toISOString(), seq: result.seq,
      }));
    }
    return result;
  }

  /**
   * A client's read mark (frame or REST): stored at once, or, within COALESCE_READ_MS of the
   * user's last stored mark in the room, held and stored when that window ends unless a later
   * mark replaces it. A flood of marks costs one stored event per window.
   */
  async offerReadMark(who: Principal, input: { roomId: string; messageId: string }): Promise<ReadMarkResult> {
    assertId(input.messageId);
    // Checked before it is held, so a refused mark is refused at once (a held one is checked again when stored).
    await this.guard.member(who, input.roomId);
    const mark = { roomId: input.roomId, messageId: input.messageId };
    const now = this.reads.offer(`${who.tenant}:${who.userId}:${input.roomId}`, { who, ...mark }, (held) => this.markRead(held.who, held));
    return now ?? { coalesced: true, at: this.now() };
  }

  /**
   * A recipient's gateway wrote the message to the recipient's socket (direct rooms). Deduped per
   * (message, user), so several connections or gateways record it once. `roomId` is the room's key.
   */
  async markDelivered(roomId: RoomKey, messageId: string, userId: string): Promise<void> {
    assertId(messageId);
    const at = this.now();
    const event: DurableEvent = { kind: 'message.delivered', id: this.deps.ids.next(), at, roomId, messageId, userId };
    await this.append(event, `d:${messageId}:${userId}`);
  }

  /**
   * Stores the event in the stream, carrying the trace context so the persister's work joins the
   * trace. The bus takes the event in call order before publishDurable returns (inSpan calls it at once),
   * so `issued` is told right after.
   */
  private append(event: DurableEvent, dedupeId: string, issued?: Issued): Promise<DurableAck> {
    const ack = !tracingEnabled()
      ? this.deps.bus.publishDurable(event.roomId, dedupeId, encodeMsgpack(event))
      : inSpan(`chat.publish ${event.kind}`, SpanKind.PRODUCER, { 'chat.room_id': event.roomId, 'chat.event_id': event.id }, async (span) => {
        const stored = await this.deps.bus.publishDurable(event.roomId, dedupeId, encodeMsgpack(event), traceHeaders());
        span.setAttribute('chat.stream_seq', stored.seq);
        if (stored.duplicate) span.setAttribute('chat.duplicate', true);
        return stored;
      });
    issued?.();
    return ack;
  }

  private async emit(event: DurableEvent, issued?: Issued): Promise<EventResult> {
    const ack = await this.append(event, event.id, issued);
    return { seq: ack.seq, at: event.at };
  }

  private async limit(who: Principal): Promise<void> {
    const user = await this.deps.rateLimiter.take(`u:${who.tenant}:${who.userId}`, this.deps.userRate);
    if (!user.allowed) throw rateLimited(user.retryAfterMs);
    if (this.deps.quotas) await this.deps.quotas.takeRate(this.deps.rateLimiter, who.tenant, 'messagesPerSecond', `t:${who.tenant}`);
    else if (this.deps.tenantRate) {
      const tenant = await this.deps.rateLimiter.take(`t:${who.tenant}`, this.deps.tenantRate);
      if (!tenant.allowed) throw rateLimited(tenant.retryAfterMs);
    }
  }

  /**
   * Whether the user's reaction is on the message. One added a moment ago may still be in the
   * persister's current batch, so a miss is read again once after that window.
   */
  private async hasReacted(room: RoomKey, message: Message, emoji: string, userId: string): Promise<boolean> {
    if (message.reactions[emoji]?.includes(userId)) return true;
    await new Promise((r) => setTimeout(r, PERSIST_GRACE_MS));
    const again = await this.deps.store.getMessage(room, message.messageId);
    return again?.reactions[emoji]?.includes(userId) === true;
  }

  /**
   * A message that must exist. A message acked a moment ago may still be in the persister's
   * current batch (history is consistent within one batch), so a miss on a recent id is retried
   * once after that window.
   */
  private async requireMessage(roomId: RoomKey, messageId: string, what: string): Promise<Message> {
    let message = await this.deps.store.getMessage(roomId, messageId);
    if (!message && this.now() - idTime(messageId) < 60_000) {
      await new Promise((r) => setTimeout(r, PERSIST_GRACE_MS));
      message = await this.deps.store.getMessage(roomId, messageId);
    }
    if (!message) throw new ChatError('not_found', `${what} ${messageId} not found in room ${roomIdOf(roomId)}`);
    return message;
  }
}

/**
 * Ids are signed 64-bit: the wire pattern allows any 1-20 digits, so a larger number must be
 * refused here, before it reaches the stream, where the store would reject it and hold up the
 * rest of its batch.
 */
function assertId(id: string): void {
  if (!isId(id)) throw new ChatError('bad_request', `${id.slice(0, 24)} is not a message id`);
}

function rateLimited(retryAfterMs: number): ChatError {
  return new ChatError('rate_limited', `too many messages; retry in ${Math.ceil(retryAfterMs)} ms`, { details: { retryAfterMs: Math.ceil(retryAfterMs) } });
}
