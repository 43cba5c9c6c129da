import type { Platform } from './channel.ts';

/**
 * One room per external conversation and platform, whose id is derived from both: every process
 * computes the same id for the same sender, so the first message creates it and any number of
 * simultaneous first messages find one room. Room ids are `[A-Za-z0-9_-]{1,64}`; the prefix keeps
 * the platforms apart (a WhatsApp number and a Telegram chat id may be the same digits).
 */
const PREFIX: Record<Platform, string> = { whatsapp: 'wa_', telegram: 'tg_', slack: 'sl_', messenger: 'fbm_', twilio: 'sms_', teams: 'mst_' };
const EXTERNAL_ID = /^[A-Za-z0-9_-]{1,60}$/;

/** The room of an external conversation; undefined when the platform's id cannot make a room id. */
export function channelRoomId(platform: Platform, externalUserId: string): string | undefined {
  return EXTERNAL_ID.test(externalUserId) ? `${PREFIX[platform]}${externalUserId}` : undefined;
}

/** The platform and external id of a channel room; undefined for every other room. */
export function parseChannelRoomId(roomId: string): { platform: Platform; externalUserId: string } | undefined {
  for (const [platform, prefix] of Object.entries(PREFIX) as Array<[Platform, string]>) {
    if (roomId.startsWith(prefix) && roomId.length > prefix.length) return { platform, externalUserId: roomId.slice(prefix.length) };
  }
  return undefined;
}

/**
 * The user id the external person writes as in their room. It holds a ':', which no room id
 * does, and names the platform, so it cannot be taken for a user of the tenant's own login by
 * accident; what makes it theirs alone is that only a verified webhook acts as it.
 */
export function channelUserId(platform: Platform, externalUserId: string): string {
  return `${platform}:${externalUserId}`;
}

/** The room tag that holds the conversation a reply answers (InboundMessage.conversation). */
const CONVERSATION_TAG = 'conversation:';

/** The room's tags with `conversation` as its only conversation tag. */
export function withConversationTag(tags: readonly string[], conversation: string): string[] {
  return [...tags.filter((t) => !t.startsWith(CONVERSATION_TAG)), `${CONVERSATION_TAG}${conversation}`];
}

/** The conversation a room's tags hold, if any. */
export function conversationOfTags(tags: readonly string[]): string | undefined {
  return tags.find((t) => t.startsWith(CONVERSATION_TAG))?.slice(CONVERSATION_TAG.length);
}
