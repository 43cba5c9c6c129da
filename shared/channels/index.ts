import type { ChannelsConfig } from '../config/index.ts';
import type { Channel, Platform } from './channel.ts';
import { telegramChannel } from './telegram-channel.ts';
import { whatsappChannel } from './whatsapp-channel.ts';
import { slackChannel } from './slack-channel.ts';
import { messengerChannel } from './messenger-channel.ts';
import { twilioChannel } from './twilio-channel.ts';
import { teamsChannel } from './teams-channel.ts';

export { PLATFORMS, type Channel, type Platform, type InboundEvent, type InboundMessage, type InboundStatus, type OutboundMessage, type SendOutcome, type WebhookHeaders } from './channel.ts';
export type { MediaSupport, OutboundMedia } from './channel.ts';
export { replyParts, type ReplyPart } from './reply-parts.ts';
export { WHATSAPP_SIGNATURE_HEADER } from './whatsapp-channel.ts';
export { TELEGRAM_SECRET_HEADER } from './telegram-channel.ts';
export { SLACK_SIGNATURE_HEADER, SLACK_TIMESTAMP_HEADER, slackSignature } from './slack-channel.ts';
export { MESSENGER_SIGNATURE_HEADER } from './messenger-channel.ts';
export { TWILIO_SIGNATURE_HEADER, twilioSignature } from './twilio-channel.ts';
export { TEAMS_AUTHORIZATION_HEADER, teamsPersonId } from './teams-channel.ts';
export { metaSignature } from './signatures.ts';
export { createChannelDirectory, DIRECTORY_TTL_MS, type ChannelDirectory, type ChannelDirectoryOptions } from './channel-directory.ts';
export { TENANT_CHANNELS, credentialProblem, tenantChannel, type TenantChannelFactory, type CredentialSpec } from './tenant-credentials.ts';
export { channelRoomId, channelUserId, conversationOfTags, parseChannelRoomId, withConversationTag } from './channel-room.ts';

/** The configured platforms' adapters: a platform whose secret is unset has none (its webhook answers 404). */
export function createChannels(cfg: ChannelsConfig): Map<Platform, Channel> {
  const channels = new Map<Platform, Channel>();
  if (cfg.whatsapp) channels.set('whatsapp', whatsappChannel({ ...cfg.whatsapp, httpTimeoutMs: cfg.httpTimeoutMs }));
  if (cfg.telegram) channels.set('telegram', telegramChannel({ ...cfg.telegram, httpTimeoutMs: cfg.httpTimeoutMs }));
  if (cfg.slack) channels.set('slack', slackChannel({ ...cfg.slack, httpTimeoutMs: cfg.httpTimeoutMs }));
  if (cfg.messenger) channels.set('messenger', messengerChannel({ ...cfg.messenger, httpTimeoutMs: cfg.httpTimeoutMs }));
  if (cfg.twilio) channels.set('twilio', twilioChannel({ ...cfg.twilio, httpTimeoutMs: cfg.httpTimeoutMs }));
  if (cfg.teams) channels.set('teams', teamsChannel({ ...cfg.teams, httpTimeoutMs: cfg.httpTimeoutMs }));
  return channels;
}
