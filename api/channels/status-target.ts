import { channelUserId, type InboundStatus, type Platform } from '../../shared/channels/index.ts';
import { roomKey, type Message, type RoomKey } from '../../shared/domain/index.ts';
import { idTime } from '../../shared/ids/index.ts';
import type { HistoryQuery, Store } from '../../shared/store/index.ts';
import { sentAsRecordId, sentRecordKey } from './sender.ts';

/**
 * How far back in a room a status without our message id is looked for: receipts come within
 * minutes of a send, and a conversation rarely has this many replies in between.
 */
export const STATUS_LOOKBACK = 50;

export interface StatusTargetDeps {
  store: Store;
  /**
   * The room's recent messages, newest first: the api's history windows, which hold a reply from
   * its acknowledgement on (a receipt may come back before the persister wrote it); the store
   * when not given.
   */
  history?: (room: RoomKey, q: HistoryQuery) => Promise<Message[]>;
}

/**
 * The room message a platform status is about, when the platform does not hand back what the send
 * gave it (Messenger's receipts; WhatsApp and Twilio name it themselves):
 * - by the platform's message id (Messenger `delivery.mids`): the sender wrote a record pairing
 *   the room message with the id the platform answered (sentAsRecordId), so the room's recent
 *   replies are asked whether one of them went out as that id;
 * - by a watermark (`upTo`, Messenger `read` and `delivery` without mids: "every message sent up to
 *   this time"): the newest recent reply that was sent (it has a sent-record) and was written at or
 *   before the watermark. A status for it stands for it and every earlier reply, as a read receipt
 *   does; a reply written just before the watermark but sent after it (a retry) would be counted
 *   in, since the watermark is the platform's send time and we keep the write time.
 * Undefined when no recent reply matches (a status for a message older than the look-back).
 */
export async function statusTarget(deps: StatusTargetDeps, tenant: string, platform: Platform, roomId: string, s: InboundStatus, nowMs: number): Promise<string | undefined> {
  const { store } = deps;
  if (s.messageId !== undefined) return s.messageId;
  if (s.platformMessageId === undefined && s.upTo === undefined) return undefined;
  const person = channelUserId(platform, s.externalUserId);
  const key = roomKey(tenant, roomId);
  const recent = (await (deps.history ? deps.history(key, { limit: STATUS_LOOKBACK }) : store.history(key, { limit: STATUS_LOOKBACK })))
    .filter((m) => m.authorId !== person && m.type !== 'system' && !m.isDeleted);
  const recordKey = sentRecordKey(roomId);
  if (s.platformMessageId !== undefined) {
    const pmid = s.platformMessageId;
    const found = await store.notifiedOf(tenant, recordKey, recent.map((m) => sentAsRecordId(m.messageId, pmid)), nowMs);
    return recent.find((m) => found.has(sentAsRecordId(m.messageId, pmid)))?.messageId;
  }
  const upTo = s.upTo!;
  const before = recent.filter((m) => idTime(m.messageId) <= upTo);
  const sent = await store.notifiedOf(tenant, recordKey, before.map((m) => m.messageId), nowMs);
  // history is newest first
  return before.find((m) => sent.has(m.messageId))?.messageId;
}
