import type { ChannelsConfig } from '../config/index.ts';
import type { Channel, Platform } from './channel.ts';
import { messengerChannel } from './messenger-channel.ts';
import { slackChannel } from './slack-channel.ts';
import { telegramChannel } from './telegram-channel.ts';
import { twilioChannel } from './twilio-channel.ts';
import { whatsappChannel } from './whatsapp-channel.ts';
import { teamsChannel } from './teams-channel.ts';

/** One credential a platform's adapter is built from: whether it must be set, and the form it must have. */
export interface CredentialSpec {
  required: boolean;
  pattern?: RegExp;
}

/**
 * How a tenant's adapter for one platform is made from its stored secrets: the secret names it
 * reads (`<platform>.<name>`, documented in docs/channels.md) and the adapter built from them once
 * every required one is set. Where the platform's API is (`endpoints`) stays the deployment's: a
 * tenant sets credentials, never where the service sends them.
 */
export interface TenantChannelFactory {
  credentials: Readonly<Record<string, CredentialSpec>>;
  build(secrets: Readonly<Record<string, string>>, cfg: ChannelsConfig): Channel;
}

const secret = { required: true } as const;
const optional = { required: false } as const;

/** Every platform's factory: adding a platform is one entry here (and its adapter). */
export const TENANT_CHANNELS: { readonly [P in Platform]: TenantChannelFactory } = {
  whatsapp: {
    credentials: {
      'whatsapp.appSecret': secret, 'whatsapp.verifyToken': optional, 'whatsapp.accessToken': optional,
      'whatsapp.phoneNumberId': { required: false, pattern: /^[0-9]{1,32}$/ },
    },
    build: (s, cfg) => whatsappChannel({
      appSecret: s['whatsapp.appSecret']!, verifyToken: s['whatsapp.verifyToken'], accessToken: s['whatsapp.accessToken'],
      phoneNumberId: s['whatsapp.phoneNumberId'], ...cfg.endpoints.whatsapp, httpTimeoutMs: cfg.httpTimeoutMs,
    }),
  },
  telegram: {
    // Telegram's own rule for setWebhook's secret_token
    credentials: { 'telegram.botToken': secret, 'telegram.secretToken': { required: true, pattern: /^[A-Za-z0-9_-]{1,256}$/ } },
    build: (s, cfg) => telegramChannel({
      botToken: s['telegram.botToken']!, secretToken: s['telegram.secretToken']!, ...cfg.endpoints.telegram, httpTimeoutMs: cfg.httpTimeoutMs,
    }),
  },
  slack: {
    credentials: { 'slack.signingSecret': secret, 'slack.botToken': optional },
    build: (s, cfg) => slackChannel({
      signingSecret: s['slack.signingSecret']!, botToken: s['slack.botToken'], ...cfg.endpoints.slack, httpTimeoutMs: cfg.httpTimeoutMs,
    }),
  },
  messenger: {
    credentials: { 'messenger.appSecret': secret, 'messenger.verifyToken': optional, 'messenger.pageAccessToken': optional },
    build: (s, cfg) => messengerChannel({
      appSecret: s['messenger.appSecret']!, verifyToken: s['messenger.verifyToken'], pageAccessToken: s['messenger.pageAccessToken'],
      ...cfg.endpoints.messenger, httpTimeoutMs: cfg.httpTimeoutMs,
    }),
  },
  twilio: {
    credentials: {
      'twilio.authToken': secret,
      // the public URL set on the tenant's number (…/v1/channels/twilio/webhook/{tenantId}): Twilio signs it
      'twilio.webhookUrl': { required: true, pattern: /^https?:\/\/\S+$/ },
      'twilio.accountSid': { required: false, pattern: /^AC[0-9a-fA-F]{32}$/ },
      'twilio.fromNumber': { required: false, pattern: /^\+[0-9]{3,15}$/ },
      'twilio.messagingServiceSid': { required: false, pattern: /^MG[0-9a-fA-F]{32}$/ },
    },
    build: (s, cfg) => twilioChannel({
      authToken: s['twilio.authToken']!, webhookUrl: s['twilio.webhookUrl']!, accountSid: s['twilio.accountSid'], fromNumber: s['twilio.fromNumber'],
      messagingServiceSid: s['twilio.messagingServiceSid'], ...cfg.endpoints.twilio, httpTimeoutMs: cfg.httpTimeoutMs,
    }),
  },
  teams: {
    // the app id is the audience tokens are checked for: without it nothing could be verified
    credentials: { 'teams.appId': { required: true, pattern: /^[A-Za-z0-9-]{1,64}$/ }, 'teams.appPassword': secret },
    build: (s, cfg) => teamsChannel({
      appId: s['teams.appId']!, appPassword: s['teams.appPassword']!, ...cfg.endpoints.teams, httpTimeoutMs: cfg.httpTimeoutMs,
    }),
  },
};

/** The tenant's adapter for `platform`, or undefined when a required credential is missing. */
export function tenantChannel(platform: Platform, secrets: Readonly<Record<string, string>>, cfg: ChannelsConfig): Channel | undefined {
  const factory = TENANT_CHANNELS[platform];
  for (const [name, spec] of Object.entries(factory.credentials)) {
    const value = secrets[name];
    if (spec.required && value === undefined) return undefined;
    // refused when written; a value stored before the rule is treated as not set
    if (value !== undefined && spec.pattern && !spec.pattern.test(value)) return undefined;
  }
  return factory.build(secrets, cfg);
}

/**
 * What is wrong with a value for a secret name that is a channel credential (undefined when it is
 * fine, or the name is not one): the tenant admin API refuses it when written.
 */
export function credentialProblem(name: string, value: string): string | undefined {
  for (const factory of Object.values(TENANT_CHANNELS) as TenantChannelFactory[]) {
    const spec = factory.credentials[name];
    if (spec?.pattern && !spec.pattern.test(value)) return `${name}: expected ${spec.pattern.source}`;
  }
  return undefined;
}
