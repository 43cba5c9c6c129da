import type cassandra from 'cassandra-driver';
import { HEALTHY_WEBHOOK, webhookOwner, type NotificationPrefs, type PushSubscriptionRecord, type StoredWebhook, type Webhook, type WebhookHealth } from '../domain/notifications.ts';
import type { CassandraSession } from './cassandra-session.ts';
import type { Store } from './store.ts';

type NotificationParts =
  | 'getNotificationPrefs' | 'putNotificationPrefs'
  | 'putWebhook' | 'getWebhook' | 'listWebhooks' | 'deleteWebhook' | 'setWebhookHealth'
  | 'putPushSubscription' | 'listPushSubscriptions' | 'deletePushSubscription'
  | 'notifiedOf' | 'markNotified';

/**
 * Preferences, webhooks, push subscriptions and sent-records (their migration is in cassandra-schema.ts).
 * A webhook's health is its own cell, so a delivery's health update never overwrites an edit of
 * the webhook; an update that lands after a delete makes a row without `body`, which reads skip.
 * Sent-records carry a TTL up to their expiry, so Cassandra drops them by itself.
 */
export function cassandraNotifications(db: CassandraSession): Pick<Store, NotificationParts> {
  const ks = db.keyspace;
  const q = {
    getPrefs: `SELECT body FROM ${ks}.notification_prefs WHERE tenant = ? AND user_id = ?`,
    putPrefs: `INSERT INTO ${ks}.notification_prefs (tenant, user_id, body) VALUES (?, ?, ?)`,
    putHook: `INSERT INTO ${ks}.webhooks (tenant, owner, webhook_id, body, health) VALUES (?, ?, ?, ?, ?)`,
    getHook: `SELECT body, health FROM ${ks}.webhooks WHERE tenant = ? AND owner = ? AND webhook_id = ?`,
    listHooks: `SELECT body, health FROM ${ks}.webhooks WHERE tenant = ? AND owner = ?`,
    deleteHook: `DELETE FROM ${ks}.webhooks WHERE tenant = ? AND owner = ? AND webhook_id = ?`,
    setHealth: `UPDATE ${ks}.webhooks SET health = ? WHERE tenant = ? AND owner = ? AND webhook_id = ?`,
    putSub: `INSERT INTO ${ks}.push_subscriptions (tenant, user_id, endpoint, body) VALUES (?, ?, ?, ?)`,
    listSubs: `SELECT body FROM ${ks}.push_subscriptions WHERE tenant = ? AND user_id = ?`,
    deleteSub: `DELETE FROM ${ks}.push_subscriptions WHERE tenant = ? AND user_id = ? AND endpoint = ?`,
    sent: `SELECT message_id, expires_at FROM ${ks}.notifications_sent WHERE tenant = ? AND user_id = ? AND message_id IN ?`,
    mark: `INSERT INTO ${ks}.notifications_sent (tenant, user_id, message_id, expires_at) VALUES (?, ?, ?, ?) USING TTL ?`,
  };
  const stored = (row: cassandra.types.Row): StoredWebhook | undefined => {
    const body = row.get('body') as string | null;
    if (body === null) return undefined;
    const health = row.get('health') as string | null;
    return { ...JSON.parse(body) as Webhook, health: health === null ? { ...HEALTHY_WEBHOOK } : JSON.parse(health) as WebhookHealth };
  };

  return {
    async getNotificationPrefs(tenant, userId) {
      const row = (await db.exec('getNotificationPrefs', q.getPrefs, [tenant, userId])).first();
      return row ? JSON.parse(row.get('body') as string) as NotificationPrefs : undefined;
    },
    async putNotificationPrefs(tenant, userId, prefs) {
      await db.exec('putNotificationPrefs', q.putPrefs, [tenant, userId, JSON.stringify(prefs)]);
    },
    async putWebhook(w) {
      await db.exec('putWebhook', q.putHook, [w.tenant, webhookOwner(w.scope, w.userId), w.webhookId, JSON.stringify(w), JSON.stringify(HEALTHY_WEBHOOK)]);
    },
    async getWebhook(tenant, owner, id) {
      const row = (await db.exec('getWebhook', q.getHook, [tenant, owner, id])).first();
      return row ? stored(row) : undefined;
    },
    async listWebhooks(tenant, owner) {
      const rows = await db.all('listWebhooks', q.listHooks, [tenant, owner]);
      return rows.map(stored).filter((w): w is StoredWebhook => w !== undefined);
    },
    async deleteWebhook(tenant, owner, id) {
      await db.exec('deleteWebhook', q.deleteHook, [tenant, owner, id]);
    },
    async setWebhookHealth(tenant, owner, id, health) {
      await db.exec('setWebhookHealth', q.setHealth, [JSON.stringify(health), tenant, owner, id]);
    },
    async putPushSubscription(tenant, userId, sub) {
      await db.exec('putPushSubscription', q.putSub, [tenant, userId, sub.endpoint, JSON.stringify(sub)]);
    },
    async listPushSubscriptions(tenant, userId) {
      const rows = await db.all('listPushSubscriptions', q.listSubs, [tenant, userId]);
      return rows.map((r) => JSON.parse(r.get('body') as string) as PushSubscriptionRecord);
    },
    async deletePushSubscription(tenant, userId, endpoint) {
      await db.exec('deletePushSubscription', q.deleteSub, [tenant, userId, endpoint]);
    },
    async notifiedOf(tenant, userId, ids, nowMs) {
      if (ids.length === 0) return new Set();
      const rows = await db.all('notifiedOf', q.sent, [tenant, userId, ids]);
      // the TTL is in whole seconds: a record may outlive its expiry by less than one
      return new Set(rows.filter((r) => Number(r.get('expires_at')) > nowMs).map((r) => r.get('message_id') as string));
    },
    async markNotified(tenant, userId, ids, expiresAtMs) {
      const ttl = Math.max(1, Math.ceil((expiresAtMs - Date.now()) / 1000));
      await Promise.all(ids.map((id) => db.exec('markNotified', q.mark, [tenant, userId, id, BigInt(expiresAtMs), ttl])));
    },
  };
}
