import webpush from 'web-push';
import type { Bus } from '../../shared/bus/index.ts';
import { subjects } from '../../shared/bus/index.ts';
import type { PushSubscriptionRecord } from '../../shared/domain/index.ts';
import { encodeMsgpack } from '../../shared/protocol/index.ts';
import type { Store } from '../../shared/store/index.ts';
import { metrics, type Logger } from '../../shared/telemetry/index.ts';
import { httpOutcome, transportOutcome, withRetries, type RetryPolicy } from './attempts.ts';
import type { NotifyChannel } from './channel.ts';
import { pushPayload, type Notification } from './notification.ts';
import type { OutboundRequest, OutboundResponse } from './outbound-http.ts';
import { urlOrigin } from './webhook-channel.ts';

export interface PushChannelDeps {
  store: Store;
  bus: Bus;
  post: (req: OutboundRequest) => Promise<OutboundResponse>;
  policy: RetryPolicy;
  timeoutMs: number;
  vapid: { publicKey: string; privateKey: string; subject: string };
  ttlSec: number;
  log: Logger;
}

/**
 * Web Push (RFC 8030) to every subscription of the user: `web-push` encrypts the payload
 * (aes128gcm, RFC 8291) and signs the VAPID token (RFC 8292); the request itself goes through the
 * guarded client like a webhook's. A push service answering 404 or 410 says the subscription is
 * gone: it is removed. Other failures are retried, then dead-lettered.
 */
export function pushChannel(deps: PushChannelDeps): NotifyChannel {
  const { store, log } = deps;

  async function deliver(n: Notification, sub: PushSubscriptionRecord, payload: string): Promise<void> {
    const outcome = await withRetries(deps.policy, async () => {
      let details: ReturnType<typeof webpush.generateRequestDetails>;
      try {
        // a fresh encryption each try: every message needs its own salt and key
        details = webpush.generateRequestDetails({ endpoint: sub.endpoint, keys: sub.keys }, payload, {
          vapidDetails: deps.vapid, TTL: deps.ttlSec, contentEncoding: 'aes128gcm', urgency: 'high',
        });
      } catch (err) {
        // keys the routes let through but web-push refuses: no later try can do better
        return { kind: 'failed', error: `cannot encrypt for this subscription: ${err instanceof Error ? err.message : String(err)}`, retryable: false };
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(details.headers)) if (k.toLowerCase() !== 'content-length') headers[k.toLowerCase()] = String(v);
      try {
        const res = await deps.post({ url: details.endpoint, headers, body: details.body ?? Buffer.alloc(0), timeoutMs: deps.timeoutMs });
        if (res.status === 404 || res.status === 410) return { kind: 'gone', error: `HTTP ${res.status}` };
        return httpOutcome(res);
      } catch (err) {
        return transportOutcome(err);
      }
    });
    switch (outcome.kind) {
      case 'delivered':
        metrics.notifyDeliveries.inc({ channel: 'push', outcome: 'delivered' });
        return;
      case 'gone':
        metrics.notifyDeliveries.inc({ channel: 'push', outcome: 'gone' });
        log.info({ tenant: n.tenant, userId: n.userId, origin: urlOrigin(sub.endpoint), error: outcome.error }, 'push subscription gone: removed');
        await store.deletePushSubscription(n.tenant, n.userId, sub.endpoint);
        return;
      case 'dead_letter':
        metrics.notifyDeliveries.inc({ channel: 'push', outcome: 'dead_letter' });
        metrics.notifyDeadLetters.inc({ channel: 'push' });
        log.error({ tenant: n.tenant, userId: n.userId, origin: urlOrigin(sub.endpoint), notificationId: n.notificationId, attempts: outcome.attempts, error: outcome.error },
          'push delivery dead-lettered');
        deps.bus.publish(subjects.deadLetter, encodeMsgpack({
          reason: 'push delivery failed', channel: 'push', tenant: n.tenant, userId: n.userId, notificationId: n.notificationId, error: outcome.error,
        }));
        return;
      default: {
        const never: never = outcome;
        throw new Error(`unknown delivery outcome ${JSON.stringify(never)}`);
      }
    }
  }

  return {
    name: 'push',
    async send(n) {
      const subs = await store.listPushSubscriptions(n.tenant, n.userId);
      if (subs.length === 0) return;
      const payload = pushPayload(n);
      await Promise.all(subs.map((s) => deliver(n, s, payload)));
    },
  };
}
