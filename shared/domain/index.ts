// Permissions (permissions.ts) are not exported here: tiers authorize through shared/commands.
export * from './models.ts';
export type { DurableEvent, DurableEventKind } from './events.ts';
export { checkContent, checkMetadata, checkAttachments, extractMentions, assertClientMessageType, type MessageLimits } from './message-rules.ts';
export { canonicalId, canonicalName, MAX_ID_LENGTH } from './identity.ts';
export { roomKey, keyOfRoom, roomIdOf, tenantOf, tenantToken, BARE_KEY_TENANT, type RoomKey } from './room-key.ts';
export { MATCH_ID_PATTERN, checkMatchId } from './match.ts';
export {
  NOTIFY_LEVELS, NOTIFY_REASONS, DEFAULT_NOTIFICATION_PREFS, HEALTHY_WEBHOOK, levelAllows, webhookOwner,
  type NotifyLevel, type NotifyReason, type NotificationPrefs, type WebhookScope, type Webhook, type WebhookHealth, type StoredWebhook,
  type PushSubscriptionRecord,
} from './notifications.ts';
export { QUOTA_NAMES, maskSecret, type TenantRecord, type TenantQuotas, type TenantApiKey } from './tenants.ts';
