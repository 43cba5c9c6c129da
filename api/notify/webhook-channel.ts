import type { Bus } from '../../shared/bus/index.ts';
import { subjects } from '../../shared/bus/index.ts';
import { HEALTHY_WEBHOOK, webhookOwner, type StoredWebhook, type WebhookHealth } from '../../shared/domain/index.ts';
import { encodeMsgpack } from '../../shared/protocol/index.ts';
import type { Store } from '../../shared/store/index.ts';
import { metrics, type Logger } from '../../shared/telemetry/index.ts';
import { httpOutcome, transportOutcome, withRetries, type DeliveryOutcome, type RetryPolicy } from './attempts.ts';
import type { NotifyChannel } from './channel.ts';
import { webhookBody, type Notification } from './notification.ts';
import type { OutboundRequest, OutboundResponse } from './outbound-http.ts';
import { DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook } from './webhook-signature.ts';

export interface WebhookChannelDeps {
  store: Store;
  bus: Bus;
  post: (req: OutboundRequest) => Promise<OutboundResponse>;
  policy: RetryPolicy;
  timeoutMs: number;
  /** Dead-lettered deliveries in a row that disable a webhook. */
  disableAfter: number;
  log: Logger;
  now?: () => number;
}

/** Only scheme, host and port of a URL: its path or query may hold a token (Slack-style URLs). */
export function urlOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(not a URL)';
  }
}

/**
 * Outgoing webhooks: the user's own and the tenant's, each a signed POST, retried with backoff,
 * then dead-lettered (a log line, a metric, a message on the dead-letter subject). A webhook whose
 * deliveries keep being dead-lettered is disabled, and its health says why.
 */
export function webhookChannel(deps: WebhookChannelDeps): NotifyChannel {
  const { store, log } = deps;
  const now = deps.now ?? Date.now;

  async function deliver(hook: StoredWebhook, n: Notification): Promise<void> {
    const body = Buffer.from(JSON.stringify(webhookBody(n, new Date(now()).toISOString())));
    const outcome = await withRetries(deps.policy, async () => {
      const timestamp = Math.floor(now() / 1000);
      try {
        const res = await deps.post({
          url: hook.url, body, timeoutMs: deps.timeoutMs,
          headers: {
            'content-type': 'application/json', 'user-agent': 'chat-svc-webhooks/1',
            [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signWebhook(hook.secret, timestamp, body), [DELIVERY_HEADER]: n.notificationId,
          },
        });
        return httpOutcome(res);
      } catch (err) {
        return transportOutcome(err);
      }
    });
    await record(hook, n, outcome);
  }

  async function record(hook: StoredWebhook, n: Notification, outcome: DeliveryOutcome): Promise<void> {
    const owner = webhookOwner(hook.scope, hook.userId);
    const at = new Date(now()).toISOString();
    // read again: another delivery to the same webhook may have ended meanwhile
    const current = (await store.getWebhook(hook.tenant, owner, hook.webhookId))?.health ?? hook.health;
    let health: WebhookHealth;
    if (outcome.kind === 'delivered') {
      metrics.notifyDeliveries.inc({ channel: 'webhook', outcome: 'delivered' });
      health = { ...HEALTHY_WEBHOOK, status: current.status, lastAttemptAt: at, lastSuccessAt: at };
    } else {
      const error = outcome.error;
      metrics.notifyDeliveries.inc({ channel: 'webhook', outcome: 'dead_letter' });
      metrics.notifyDeadLetters.inc({ channel: 'webhook' });
      log.error({
        webhookId: hook.webhookId, tenant: hook.tenant, scope: hook.scope, origin: urlOrigin(hook.url), notificationId: n.notificationId,
        attempts: outcome.kind === 'dead_letter' ? outcome.attempts : 1, error,
      }, 'webhook delivery dead-lettered');
      deps.bus.publish(subjects.deadLetter, encodeMsgpack({
        reason: 'webhook delivery failed', channel: 'webhook', webhookId: hook.webhookId, tenant: hook.tenant, notificationId: n.notificationId, error,
      }));
      const failures = current.consecutiveFailures + 1;
      health = { ...current, consecutiveFailures: failures, lastError: error, lastAttemptAt: at };
      if (failures >= deps.disableAfter && current.status === 'active') {
        health = { ...health, status: 'disabled', disabledAt: at, disabledReason: `disabled after ${failures} deliveries in a row failed; the last: ${error}` };
        metrics.webhooksDisabled.inc();
        log.warn({ webhookId: hook.webhookId, tenant: hook.tenant, scope: hook.scope, failures }, 'webhook disabled');
      }
    }
    await store.setWebhookHealth(hook.tenant, owner, hook.webhookId, health);
  }

  return {
    name: 'webhook',
    async send(n) {
      const [own, tenants] = await Promise.all([store.listWebhooks(n.tenant, n.userId), store.listWebhooks(n.tenant, '')]);
      const hooks = [...own, ...tenants].filter((h) => h.health.status === 'active');
      await Promise.all(hooks.map((h) => deliver(h, n)));
    },
  };
}
