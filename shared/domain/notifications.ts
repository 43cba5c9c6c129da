/**
 * Offline notifications: what a user asked to be told about while they have no live connection,
 * where it is sent (outgoing webhooks, Web Push subscriptions), and the health of each webhook.
 */

/**
 * `all`: mentions, direct messages and replies to you; `mentions`: mentions and direct messages
 * (a direct message is addressed to you as plainly as a mention); `none`: nothing.
 */
export const NOTIFY_LEVELS = ['all', 'mentions', 'none'] as const;
export type NotifyLevel = (typeof NOTIFY_LEVELS)[number];

/** Why a user is told about a message; the order is the precedence when several apply. */
export const NOTIFY_REASONS = ['mention', 'direct', 'reply'] as const;
export type NotifyReason = (typeof NOTIFY_REASONS)[number];

export interface NotificationPrefs {
  level: NotifyLevel;
  /** Room ids (of the user's tenant) that never notify. */
  mutedRooms: string[];
}

export const DEFAULT_NOTIFICATION_PREFS: Readonly<NotificationPrefs> = Object.freeze({ level: 'all', mutedRooms: [] as string[] });

/** Whether a level lets a reason through. */
export function levelAllows(level: NotifyLevel, reason: NotifyReason): boolean {
  switch (level) {
    case 'all': return true;
    case 'mentions': return reason !== 'reply';
    case 'none': return false;
    default: {
      const never: never = level;
      throw new Error(`unknown notification level ${String(never)}`);
    }
  }
}

/**
 * A user's webhook receives that user's notifications; a tenant's webhook (made by a tenant admin)
 * receives the notifications of every user of the tenant.
 */
export type WebhookScope = 'user' | 'tenant';

export interface Webhook {
  webhookId: string;
  tenant: string;
  scope: WebhookScope;
  /** The user whose notifications it gets (scope user); '' for a tenant's webhook. */
  userId: string;
  createdBy: string;
  url: string;
  /** HMAC-SHA256 key of the signature header; shown in full only when the webhook is created. */
  secret: string;
  createdAt: string;
}

export interface WebhookHealth {
  status: 'active' | 'disabled';
  /** Deliveries in a row that were dead-lettered (reset by a success). */
  consecutiveFailures: number;
  lastError?: string;
  lastAttemptAt?: string;
  lastSuccessAt?: string;
  disabledAt?: string;
  disabledReason?: string;
}

export const HEALTHY_WEBHOOK: Readonly<WebhookHealth> = Object.freeze({ status: 'active', consecutiveFailures: 0 });

export type StoredWebhook = Webhook & { health: WebhookHealth };

/** Who a webhook belongs to, as the stores key it: a user's id, or '' for the tenant's own. */
export function webhookOwner(scope: WebhookScope, userId: string): string {
  return scope === 'user' ? userId : '';
}

/** A browser's Web Push subscription (PushSubscription.toJSON()), keys base64url. */
export interface PushSubscriptionRecord {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  createdAt: string;
}
