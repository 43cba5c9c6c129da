import { HEALTHY_WEBHOOK, webhookOwner, type NotificationPrefs, type PushSubscriptionRecord, type StoredWebhook, type Webhook, type WebhookHealth } from '../domain/notifications.ts';
import type { SqliteContext } from './sqlite-context.ts';
import type { Store } from './store.ts';

type NotificationParts =
  | 'getNotificationPrefs' | 'putNotificationPrefs'
  | 'putWebhook' | 'getWebhook' | 'listWebhooks' | 'deleteWebhook' | 'setWebhookHealth'
  | 'putPushSubscription' | 'listPushSubscriptions' | 'deletePushSubscription'
  | 'notifiedOf' | 'markNotified';

/**
 * Preferences, webhooks, push subscriptions and sent-records, as JSON rows keyed like the
 * Cassandra tables; expired sent-records are swept by the next write.
 */
export function sqliteNotifications({ db, run }: SqliteContext): Pick<Store, NotificationParts> {
  const getPrefs = db.prepare('SELECT body FROM notification_prefs WHERE tenant = ? AND user_id = ?');
  const putPrefs = db.prepare(`INSERT INTO notification_prefs (tenant, user_id, body) VALUES (?, ?, ?)
    ON CONFLICT (tenant, user_id) DO UPDATE SET body = excluded.body`);
  const putHook = db.prepare(`INSERT INTO webhooks (tenant, owner, webhook_id, body, health) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (tenant, owner, webhook_id) DO UPDATE SET body = excluded.body, health = excluded.health`);
  const getHook = db.prepare('SELECT body, health FROM webhooks WHERE tenant = ? AND owner = ? AND webhook_id = ?');
  const listHooks = db.prepare('SELECT body, health FROM webhooks WHERE tenant = ? AND owner = ? ORDER BY webhook_id');
  const deleteHook = db.prepare('DELETE FROM webhooks WHERE tenant = ? AND owner = ? AND webhook_id = ?');
  const setHealth = db.prepare('UPDATE webhooks SET health = ? WHERE tenant = ? AND owner = ? AND webhook_id = ?');
  const putSub = db.prepare(`INSERT INTO push_subscriptions (tenant, user_id, endpoint, body) VALUES (?, ?, ?, ?)
    ON CONFLICT (tenant, user_id, endpoint) DO UPDATE SET body = excluded.body`);
  const listSubs = db.prepare('SELECT body FROM push_subscriptions WHERE tenant = ? AND user_id = ? ORDER BY endpoint');
  const deleteSub = db.prepare('DELETE FROM push_subscriptions WHERE tenant = ? AND user_id = ? AND endpoint = ?');
  const sent = db.prepare('SELECT 1 FROM notifications_sent WHERE tenant = ? AND user_id = ? AND message_id = ? AND expires_at > ?');
  const mark = db.prepare(`INSERT INTO notifications_sent (tenant, user_id, message_id, expires_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (tenant, user_id, message_id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`);
  const sweep = db.prepare('DELETE FROM notifications_sent WHERE expires_at <= ?');
  const markAll = db.transaction((tenant: string, userId: string, ids: string[], expiresAtMs: number) => {
    sweep.run(Date.now());
    for (const id of ids) mark.run(tenant, userId, id, expiresAtMs);
  });
  const stored = (row: { body: string; health: string }): StoredWebhook =>
    ({ ...JSON.parse(row.body) as Webhook, health: JSON.parse(row.health) as WebhookHealth });

  return {
    getNotificationPrefs: (tenant, userId) => run('getNotificationPrefs', () => {
      const row = getPrefs.get(tenant, userId) as { body: string } | undefined;
      return row === undefined ? undefined : JSON.parse(row.body) as NotificationPrefs;
    }),
    putNotificationPrefs: (tenant, userId, prefs) => run('putNotificationPrefs', () => {
      putPrefs.run(tenant, userId, JSON.stringify(prefs));
    }),
    putWebhook: (w) => run('putWebhook', () => {
      putHook.run(w.tenant, webhookOwner(w.scope, w.userId), w.webhookId, JSON.stringify(w), JSON.stringify(HEALTHY_WEBHOOK));
    }),
    getWebhook: (tenant, owner, id) => run('getWebhook', () => {
      const row = getHook.get(tenant, owner, id) as { body: string; health: string } | undefined;
      return row === undefined ? undefined : stored(row);
    }),
    listWebhooks: (tenant, owner) => run('listWebhooks', () =>
      (listHooks.all(tenant, owner) as Array<{ body: string; health: string }>).map(stored)),
    deleteWebhook: (tenant, owner, id) => run('deleteWebhook', () => {
      deleteHook.run(tenant, owner, id);
    }),
    setWebhookHealth: (tenant, owner, id, health) => run('setWebhookHealth', () => {
      setHealth.run(JSON.stringify(health), tenant, owner, id);
    }),
    putPushSubscription: (tenant, userId, sub) => run('putPushSubscription', () => {
      putSub.run(tenant, userId, sub.endpoint, JSON.stringify(sub));
    }),
    listPushSubscriptions: (tenant, userId) => run('listPushSubscriptions', () =>
      (listSubs.all(tenant, userId) as Array<{ body: string }>).map((r) => JSON.parse(r.body) as PushSubscriptionRecord)),
    deletePushSubscription: (tenant, userId, endpoint) => run('deletePushSubscription', () => {
      deleteSub.run(tenant, userId, endpoint);
    }),
    notifiedOf: (tenant, userId, ids, nowMs) => run('notifiedOf', () =>
      new Set(ids.filter((id) => sent.get(tenant, userId, id, nowMs) !== undefined))),
    markNotified: (tenant, userId, ids, expiresAtMs) => run('markNotified', () => {
      markAll(tenant, userId, ids, expiresAtMs);
    }),
  };
}
