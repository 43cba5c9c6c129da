import type { Bus, Consumer, Delivery } from '../../shared/bus/index.ts';
import { subjects } from '../../shared/bus/index.ts';
import { channelUserId, conversationOfTags, parseChannelRoomId, replyParts, type Channel, type ChannelDirectory, type OutboundMedia, type Platform, type SendOutcome } from '../../shared/channels/index.ts';
import type { ChannelsConfig } from '../../shared/config/index.ts';
import { roomIdOf, tenantOf, type Attachment, type DurableEvent, type Message, type RoomKey } from '../../shared/domain/index.ts';
import { idTime } from '../../shared/ids/index.ts';
import { encodeMsgpack, type ServerFrame } from '../../shared/protocol/index.ts';
import { backoffDelay } from '../../shared/retry/index.ts';
import type { Store } from '../../shared/store/index.ts';
import { metrics, type Logger } from '../../shared/telemetry/index.ts';
import { StopSignal } from '../notify/stop-signal.ts';
import type { SessionTouch } from './session-touch.ts';
import type { AttachmentLinks } from '../attachment-links.ts';

/** The durable consumer every channel sender of a deployment shares. */
export const CHANNELS_DURABLE = 'channels';
const BATCH_MAX = 64;
/** How long the consumer gathers a batch: replies should leave at once. */
const BATCH_WAIT_MS = 20;
/**
 * Older messages are not sent: WhatsApp refuses free-form replies a day after the person's last
 * message anyway, and a sender starting on an old stream must not replay a day of answers.
 */
const MAX_AGE_MS = 24 * 3600 * 1000;
/** Rooms remembered as channel rooms (or not), so a busy room costs one store read. */
const ROOM_CACHE_MAX = 10_000;

/**
 * The key a room's sent-records are kept under (the notifier's records, by message id and
 * "user"). It holds spaces, which no user id may (shared/domain/identity.ts), so it never meets a
 * user's own notification records; it names the room, so each conversation's records are their
 * own Cassandra partition rather than one for every reply of the tenant.
 */
export const sentRecordKey = (roomId: string): string => `channel sent ${roomId}`;

/**
 * A second sent-record of a reply, under the same key, pairing it with the id the platform
 * answered: platforms whose receipts name only their own id (Messenger) find the reply by it
 * (status-target.ts). The space cannot occur in a message id.
 */
export const sentAsRecordId = (messageId: string, platformMessageId: string): string => `${messageId} ${platformMessageId}`;

/**
 * The sent-record of one send of a reply that takes several (files: replyParts), under the same
 * key; the reply's own record (its message id) is written once every part is out. '#' cannot
 * occur in a message id.
 */
export const partRecordId = (messageId: string, part: number): string => `${messageId}#${part}`;

export interface ChannelSenderDeps {
  bus: Bus;
  store: Store;
  /** Whose credentials a reply goes out with: those of the tenant whose room it is. */
  directory: ChannelDirectory;
  config: ChannelsConfig;
  log: Logger;
  now?: () => number;
  /** Waits between tries (tests count them); default: a timer that ends early when the sender stops. */
  sleep?: (ms: number) => Promise<void>;
  /** The person's session, touched by each reply sent; none: no sessions. */
  sessions?: SessionTouch;
  /** Links the platform fetches a reply's files from; none: only files at another server's http(s) url go out. */
  links?: AttachmentLinks;
}

export interface ChannelSender {
  /** Takes no new events; a reply waiting for its next try gives up and its event comes back to another sender. */
  stop(): Promise<void>;
}

class Stopped extends Error {}

/** What a platform may show of a file besides its link. */
function pick(a: Attachment): Pick<OutboundMedia, 'mimeType' | 'fileName'> {
  return { ...(a.mimeType ? { mimeType: a.mimeType } : {}), ...(a.fileName ? { fileName: a.fileName } : {}) };
}

/**
 * Agents' replies out to the platforms: its own durable consumer of the stream (like the
 * persister and the notifier), so every message stored in a channel room is looked at once per
 * deployment, whichever process took the agent's message and however many api processes run.
 *
 * - What goes out: a `message.created` in a channel room (`wa_...`, `tg_...`, `sl_...`, `fbm_...`,
 *   `sms_...`, created by the person's principal) of a tenant with credentials for that platform,
 *   sent with that tenant's credentials; not written by the person (their own messages came from
 *   the platform), not a system message, not deleted, not older than a day.
 * - Files: each attachment goes as the platform's media message, by a link it fetches (links);
 *   a reply is cut into sends by what one send of the platform carries (replyParts: the text as
 *   the first file's caption where it fits, else a send of its own). An attachment no link can be
 *   made for (another platform's reference) is left out with a log line; a reply left with
 *   nothing is dead-lettered.
 * - Exactly once across restarts: the event is acked only after the send succeeded (or was given
 *   up on) and its sent-record (message id) was written; a redelivered event finds the record and
 *   sends nothing. A reply of several sends also has a record per send (partRecordId), written as
 *   each is taken, so a redelivery sends only the parts not sent yet. What is left is the instant
 *   between the platform's answer and the record.
 * - Failures: 429, 408, 5xx and no answer are tried again after the shared backoff (or the wait the
 *   platform asked for, when longer), up to CHANNELS_MAX_ATTEMPTS; then, or at once for another
 *   4xx, the reply is dead-lettered: a log line, chat_channel_dead_letters_total, a message on
 *   the dead-letter subject, and a `message_status` `failed` in the room.
 * - Order: one room's replies go out one after another in stream order; rooms in parallel.
 */
export function startChannelSender(deps: ChannelSenderDeps): ChannelSender {
  const { bus, store, directory, config, log } = deps;
  const now = deps.now ?? Date.now;
  const signal = new StopSignal();
  const sleep = deps.sleep ?? ((ms: number) => signal.sleep(ms));
  /** Per room: whether it is a channel conversation, and whether its tags name where replies go (read afresh each reply: it moves). */
  const rooms = new Map<RoomKey, { yes: boolean; conversational: boolean }>();

  /** Undefined: not a channel room; else the conversation its tags name, if any. */
  async function channelRoom(key: RoomKey, platform: Platform, externalUserId: string): Promise<{ conversation: string | undefined } | undefined> {
    const known = rooms.get(key);
    if (known !== undefined && (!known.yes || !known.conversational)) return known.yes ? { conversation: undefined } : undefined;
    const room = await store.getRoom(key);
    if (room === undefined) return undefined;
    // a room someone named wa_... themselves is not a conversation with that number
    const yes = room.createdBy === channelUserId(platform, externalUserId);
    const conversation = conversationOfTags(room.tags);
    if (rooms.size >= ROOM_CACHE_MAX) rooms.clear();
    rooms.set(key, { yes, conversational: conversation !== undefined });
    return yes ? { conversation } : undefined;
  }

  /** The reply this event asks for, if any. */
  async function replyOf(event: DurableEvent): Promise<{ platform: Platform; channel: Channel; externalUserId: string; conversation: string | undefined; key: RoomKey; message: Message } | undefined> {
    if (event.kind !== 'message.created') return undefined;
    const m = event.message;
    const target = parseChannelRoomId(roomIdOf(event.roomId));
    if (target === undefined) return undefined;
    if (m.authorId === channelUserId(target.platform, target.externalUserId) || m.type === 'system' || m.isDeleted) return undefined;
    if (now() - idTime(m.messageId) > MAX_AGE_MS) return undefined;
    const channel = await directory.get(tenantOf(event.roomId), target.platform);
    if (channel === undefined) return undefined;
    const room = await channelRoom(event.roomId, target.platform, target.externalUserId);
    if (room === undefined) return undefined;
    return { ...target, channel, conversation: room.conversation, key: event.roomId, message: m };
  }

  function status(key: RoomKey, platform: Platform, externalUserId: string, messageId: string, s: 'sent' | 'failed', extra: { platformMessageId?: string; error?: string }): void {
    const frame: ServerFrame = {
      type: 'message_status', roomId: roomIdOf(key), messageId, userId: channelUserId(platform, externalUserId), status: s,
      at: new Date(now()).toISOString(), channel: platform, ...extra,
    };
    bus.publish(subjects.roomControl(key), encodeMsgpack(frame));
  }

  /** The reply's files as the platform will fetch them, in their order; those no link can be made for are left out. */
  async function mediaOf(r: NonNullable<Awaited<ReturnType<typeof replyOf>>>): Promise<OutboundMedia[]> {
    const media: OutboundMedia[] = [];
    for (const a of r.message.attachments) {
      const url = deps.links ? await deps.links.linkFor(r.key, a) : /^https?:\/\//i.test(a.url) ? a.url : undefined;
      if (url === undefined) {
        log.warn({ platform: r.platform, messageId: r.message.messageId, attachmentId: a.id }, 'channel reply: a file no link can be made for is left out (another platform\'s reference, a file gone, or PUBLIC_URL unset)');
        continue;
      }
      media.push({ type: a.type, url, ...pick(a) });
    }
    return media;
  }

  async function deliver(r: NonNullable<Awaited<ReturnType<typeof replyOf>>>): Promise<void> {
    const tenant = tenantOf(r.key);
    const recordKey = sentRecordKey(roomIdOf(r.key));
    const id = r.message.messageId;
    if ((await store.notifiedOf(tenant, recordKey, [id], now())).has(id)) return;
    const parts = replyParts(r.message.content, await mediaOf(r), r.channel.media);
    // one send: its record is the reply's, as before replies had parts
    const partIds = parts.length === 1 ? [id] : parts.map((_, n) => partRecordId(id, n));
    const partsSent = parts.length === 1 ? new Set<string>() : await store.notifiedOf(tenant, recordKey, partIds, now());
    let sentAs: string | undefined;
    for (const [n, part] of parts.entries()) {
      if (partsSent.has(partIds[n]!)) continue;
      const platformMessageId = part.content.trim() === '' && part.media.length === 0
        ? await sendPart(r, async () => ({ kind: 'failed', error: 'nothing the platform can show: no text, and no file a link could be made for', retryable: false }))
        : await sendPart(r, () => r.channel.send({
          externalUserId: r.externalUserId, content: part.content, messageId: id, ...(part.media.length ? { media: part.media } : {}),
          ...(r.conversation !== undefined ? { conversation: r.conversation } : {}),
        }));
      if (platformMessageId === undefined) return;
      await store.markNotified(tenant, recordKey, [partIds[n]!, sentAsRecordId(id, platformMessageId)], now() + config.sentRecordTtlMs);
      sentAs = platformMessageId;
    }
    if (parts.length > 1) await store.markNotified(tenant, recordKey, [id], now() + config.sentRecordTtlMs);
    metrics.channelSends.inc({ platform: r.platform, outcome: 'sent' });
    log.info({ platform: r.platform, tenant, roomId: roomIdOf(r.key), messageId: id, platformMessageId: sentAs, sends: parts.length }, 'channel reply sent');
    status(r.key, r.platform, r.externalUserId, id, 'sent', sentAs === undefined ? {} : { platformMessageId: sentAs });
    await deps.sessions?.outbound(tenant, r.platform, r.externalUserId);
  }

  /** One send of a reply, tried until the platform takes it (its id) or it is given up on (undefined: dead-lettered). */
  async function sendPart(r: NonNullable<Awaited<ReturnType<typeof replyOf>>>, send: () => Promise<SendOutcome>): Promise<string | undefined> {
    const tenant = tenantOf(r.key);
    const id = r.message.messageId;
    for (let attempt = 1; ; attempt++) {
      if (!signal.running()) throw new Stopped();
      const outcome = await send();
      if (outcome.kind === 'sent') return outcome.platformMessageId;
      if (!outcome.retryable || attempt >= config.maxAttempts) {
        metrics.channelSends.inc({ platform: r.platform, outcome: 'dead_letter' });
        metrics.channelDeadLetters.inc({ platform: r.platform });
        log.error({ platform: r.platform, tenant, roomId: roomIdOf(r.key), messageId: id, attempts: attempt, error: outcome.error }, 'channel reply dead-lettered');
        bus.publish(subjects.deadLetter, encodeMsgpack({
          reason: 'channel reply failed', channel: r.platform, tenant, roomId: roomIdOf(r.key), messageId: id, attempts: attempt, error: outcome.error,
        }));
        status(r.key, r.platform, r.externalUserId, id, 'failed', { error: outcome.error });
        return undefined;
      }
      const wait = Math.max(backoffDelay(attempt - 1, { initialDelayMs: config.retry.initialDelayMs, maxDelayMs: config.retry.maxDelayMs, factor: 2, jitter: 0.2 }), outcome.retryAfterMs ?? 0);
      log.warn({ platform: r.platform, tenant, messageId: id, attempt, waitMs: wait, error: outcome.error }, 'channel reply failed; trying again');
      await sleep(Math.min(wait, config.retry.maxDelayMs));
    }
  }

  async function handle(batch: Delivery[]): Promise<void> {
    const byRoom = new Map<RoomKey, Array<{ d: Delivery; reply: NonNullable<Awaited<ReturnType<typeof replyOf>>> }>>();
    for (const d of batch) {
      let event: DurableEvent;
      try {
        event = d.decoded() as DurableEvent;
      } catch (err) {
        log.warn({ err, seq: d.seq }, 'channels: undecodable event skipped');
        d.term();
        continue;
      }
      let reply;
      try {
        reply = await replyOf(event);
      } catch (err) {
        log.warn({ err, seq: d.seq }, 'channels: the room or its tenant\'s credentials could not be read, the event comes back later');
        d.nak();
        continue;
      }
      if (reply === undefined) {
        d.ack();
        continue;
      }
      const list = byRoom.get(reply.key) ?? [];
      list.push({ d, reply });
      byRoom.set(reply.key, list);
    }
    await Promise.all([...byRoom.values()].map(async (items) => {
      for (let i = 0; i < items.length; i++) {
        const { d, reply } = items[i]!;
        try {
          await deliver(reply);
          d.ack();
        } catch (err) {
          if (!(err instanceof Stopped)) log.warn({ err, messageId: reply.message.messageId }, 'channels: reply not settled, its event comes back later');
          // the rest of the room waits too, so that its replies keep their order
          for (const rest of items.slice(i)) rest.d.nak();
          return;
        }
      }
    }));
  }

  const consumer: Consumer = bus.consume({ durable: CHANNELS_DURABLE, maxBatch: BATCH_MAX, maxWaitMs: BATCH_WAIT_MS, ackWaitMs: config.ackWaitMs }, handle);
  log.debug({ perTenant: config.perTenant }, 'channel sender consuming');
  return {
    async stop() {
      signal.stop();
      await consumer.stop();
    },
  };
}
