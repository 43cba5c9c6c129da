import type { Bus } from '../../shared/bus/index.ts';
import type { NotifyConfig } from '../../shared/config/index.ts';
import type { Presence } from '../../shared/presence/index.ts';
import type { Store } from '../../shared/store/index.ts';
import type { Logger } from '../../shared/telemetry/index.ts';
import { AddressGuard } from './address-guard.ts';
import type { RetryPolicy } from './attempts.ts';
import type { NotifyChannel } from './channel.ts';
import { startNotifier, type Notifier } from './notifier.ts';
import { createOutbound } from './outbound-http.ts';
import { pushChannel } from './push-channel.ts';
import { StopSignal } from './stop-signal.ts';
import { webhookChannel } from './webhook-channel.ts';

export { AddressGuard } from './address-guard.ts';
export { newWebhookSecret, secretHint, signWebhook, verifyWebhook } from './webhook-signature.ts';
export type { Notifier } from './notifier.ts';

export interface NotificationsDeps {
  bus: Bus;
  store: Store;
  presence: Presence;
  config: NotifyConfig;
  log: Logger;
}

/**
 * Builds the notifier of an api process with its channels: webhooks always, Web Push when VAPID
 * keys are configured. Both send through one guarded HTTP client.
 */
export function startNotifications(deps: NotificationsDeps): Notifier {
  const { config, log } = deps;
  const guard = new AddressGuard(config.allowNetworks);
  const post = createOutbound(guard);
  const signal = new StopSignal();
  const policy: RetryPolicy = {
    maxAttempts: config.maxAttempts,
    backoff: { initialDelayMs: config.retry.initialDelayMs, maxDelayMs: config.retry.maxDelayMs, factor: 2, jitter: 0.2 },
    sleep: (ms) => signal.sleep(ms),
    running: () => signal.running(),
  };
  const channels: NotifyChannel[] = [
    webhookChannel({ store: deps.store, bus: deps.bus, post, policy, timeoutMs: config.httpTimeoutMs, disableAfter: config.webhookDisableAfter, log }),
  ];
  if (config.vapid) {
    channels.push(pushChannel({ store: deps.store, bus: deps.bus, post, policy, timeoutMs: config.httpTimeoutMs, vapid: config.vapid, ttlSec: config.pushTtlSec, log }));
  }
  return startNotifier({ ...deps, channels, stopDeliveries: () => signal.stop() });
}
