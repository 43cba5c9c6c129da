import type { Notification } from './notification.ts';

/**
 * A way a notification leaves the server. `send` settles once every delivery of the channel
 * ended (delivered, dead-lettered or gone: each channel records and counts that itself); it
 * rejects only when the delivery could not be decided (the store is unavailable, the notifier is
 * stopping), and then the notification is tried again from the stream.
 */
export interface NotifyChannel {
  readonly name: 'webhook' | 'push';
  send(n: Notification): Promise<void>;
}
