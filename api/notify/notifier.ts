import type { Bus, Consumer, Delivery } from '../../shared/bus/index.ts';
import type { NotifyConfig } from '../../shared/config/index.ts';
import { DEFAULT_NOTIFICATION_PREFS, levelAllows, type DurableEvent, type NotifyReason, type Room, type RoomKey } from '../../shared/domain/index.ts';
import type { Presence } from '../../shared/presence/index.ts';
import type { Store } from '../../shared/store/index.ts';
import { metrics, type Logger } from '../../shared/telemetry/index.ts';
import { StoppedError } from './attempts.ts';
import type { NotifyChannel } from './channel.ts';
import { strongestReason, type Notification } from './notification.ts';
import { recipientsOf } from './recipients.ts';
import { RoomCache } from './room-cache.ts';

/** The durable consumer every notifier of a deployment shares. */
export const NOTIFIER_DURABLE = 'notifier';
/** Events handed over at most per batch. */
const BATCH_MAX = 256;
/** Notifications being delivered at once, past which the notifier takes no new batch. */
const MAX_IN_FLIGHT = 200;

export interface NotifierDeps {
  bus: Bus;
  store: Store;
  presence: Presence;
  config: NotifyConfig;
  channels: NotifyChannel[];
  /** Called once no new event is taken: deliveries waiting for a retry give up (StoppedError). */
  stopDeliveries: () => void;
  log: Logger;
  now?: () => number;
}

export interface Notifier {
  /** Takes no new events; waits up to `timeoutMs` for the deliveries under way (the rest come back from the stream). */
  stop(timeoutMs?: number): Promise<void>;
}

/** Messages gathered for one user in one room while they waited for the collapse window. */
interface Group {
  tenant: string;
  userId: string;
  key: RoomKey;
  room: Room;
  items: Array<{ messageId: string; reason: NotifyReason; message: import('../../shared/domain/index.ts').Message }>;
  deliveries: Set<Delivery>;
}

/**
 * The offline notifier: its own durable consumer of the stream (the persister's twin), so every
 * stored message is looked at once per deployment whatever the number of api processes.
 *
 * - Collapsing: the consumer hands events over at most every NOTIFY_COLLAPSE_MS (its batch wait),
 *   and a batch's messages for one user in one room become one notification.
 * - Who: recipients.ts says who a message concerns; when the notification is due, a user with a
 *   live connection (presence), a muted room or a level that does not cover the reason is skipped.
 * - Exactly once across restarts: an event is acked only after the notifications it caused were
 *   delivered (or given up on) and their sent-records (message id + user) were written; a
 *   redelivered event finds its sent-records and sends nothing again. What is left is the instant
 *   between a delivery and its record: a crash exactly there sends that notification twice (the
 *   webhook's X-Chat-Delivery lets a receiver drop the repeat).
 */
export function startNotifier(deps: NotifierDeps): Notifier {
  const { bus, store, presence, config, channels, log } = deps;
  const now = deps.now ?? Date.now;
  const inFlight = new Set<Promise<void>>();
  /** Deliveries handed back to the bus only once every group they feed is done. */
  const pending = new Map<Delivery, { left: number; failed: boolean }>();

  // NOTIFY_ACK_WAIT_MS is how long a dead notifier keeps its events from the others; a live one
  // holds an event while its deliveries are retried (minutes, at worst), so it says so meanwhile
  const roomCache = new RoomCache(store);
  const keepAlive = setInterval(() => {
    for (const d of pending.keys()) d.working();
  }, Math.floor(config.ackWaitMs / 3));
  keepAlive.unref();

  async function handle(batch: Delivery[]): Promise<void> {
    const groups = new Map<string, Group>();
    for (const d of batch) {
      let event: DurableEvent;
      try {
        event = d.decoded() as DurableEvent;
      } catch (err) {
        log.warn({ err, seq: d.seq }, 'notifier: undecodable event skipped');
        d.term();
        continue;
      }
      if (event.kind !== 'message.created') {
        d.ack();
        continue;
      }
      const m = event.message;
      if (m.type === 'system' || m.isDeleted || now() - event.at > config.maxAgeMs) {
        d.ack();
        continue;
      }
      // most messages concern nobody (no mention, no reply, not a direct room): settled here
      // without a store read or an await, which a profile of the embedded ingest showed add up
      const known = roomCache.peek(event.roomId, now());
      if (known !== undefined && known.type !== 'direct' && m.mentions.length === 0 && !m.replyTo && !m.threadId) {
        d.ack();
        continue;
      }
      let room: Room | undefined;
      let recipients: Map<string, NotifyReason>;
      try {
        room = await roomCache.get(event.roomId, now());
        recipients = room ? await recipientsOf(store, event.roomId, room, m) : new Map();
      } catch (err) {
        log.warn({ err, seq: d.seq }, 'notifier: recipients unknown, the event comes back later');
        d.nak();
        continue;
      }
      if (room === undefined || recipients.size === 0) {
        d.ack();
        continue;
      }
      pending.set(d, { left: recipients.size, failed: false });
      for (const [userId, reason] of recipients) {
        const id = `${room.tenant}\u0000${userId}\u0000${event.roomId}`;
        let g = groups.get(id);
        if (g === undefined) {
          g = { tenant: room.tenant, userId, key: event.roomId, room, items: [], deliveries: new Set() };
          groups.set(id, g);
        }
        if (!g.items.some((i) => i.messageId === m.messageId)) g.items.push({ messageId: m.messageId, reason, message: m });
        g.deliveries.add(d);
      }
    }
    for (const g of groups.values()) {
      const work: Promise<void> = notify(g).then(
        () => settle(g, true),
        (err: unknown) => {
          if (!(err instanceof StoppedError)) log.warn({ err, tenant: g.tenant, userId: g.userId }, 'notifier: notification failed, its events come back later');
          settle(g, false);
        },
      ).finally(() => { inFlight.delete(work); });
      inFlight.add(work);
    }
    // back-pressure: hold the next batch while too many notifications are under way
    while (inFlight.size > MAX_IN_FLIGHT) await Promise.race(inFlight);
  }

  function settle(g: Group, ok: boolean): void {
    for (const d of g.deliveries) {
      const p = pending.get(d);
      if (p === undefined) continue;
      p.left--;
      if (!ok) p.failed = true;
      if (p.left > 0) continue;
      pending.delete(d);
      if (p.failed) d.nak();
      else d.ack();
    }
  }

  async function notify(g: Group): Promise<void> {
    const at = now();
    const done = await store.notifiedOf(g.tenant, g.userId, g.items.map((i) => i.messageId), at);
    const items = g.items.filter((i) => !done.has(i.messageId));
    if (items.length === 0) return;
    const prefs = await store.getNotificationPrefs(g.tenant, g.userId) ?? DEFAULT_NOTIFICATION_PREFS;
    const wanted = prefs.mutedRooms.includes(g.room.roomId) ? [] : items.filter((i) => levelAllows(prefs.level, i.reason));
    if (wanted.length === 0) return;
    const [status] = await presence.get(g.tenant, [g.userId]);
    if (status !== undefined && status.connections > 0) return;
    wanted.sort((a, b) => (BigInt(a.messageId) < BigInt(b.messageId) ? -1 : 1));
    const n: Notification = {
      notificationId: `${wanted[0]!.messageId}.${g.userId}`,
      tenant: g.tenant, userId: g.userId, roomKey: g.key,
      room: { roomId: g.room.roomId, name: g.room.name, type: g.room.type },
      reason: strongestReason(wanted.map((i) => i.reason)),
      messages: wanted.map((i) => ({ message: i.message, reason: i.reason })),
    };
    await Promise.all(channels.map((c) => c.send(n)));
    await store.markNotified(g.tenant, g.userId, items.map((i) => i.messageId), now() + config.sentRecordTtlMs);
    metrics.notifications.inc({ reason: n.reason });
    log.info({ tenant: g.tenant, userId: g.userId, roomId: g.room.roomId, notificationId: n.notificationId, messages: wanted.length }, 'notification sent');
  }

  const consumer: Consumer = bus.consume(
    { durable: NOTIFIER_DURABLE, maxBatch: BATCH_MAX, maxWaitMs: config.collapseMs, ackWaitMs: config.ackWaitMs },
    handle,
  );
  log.debug({ collapseMs: config.collapseMs, channels: channels.map((c) => c.name) }, 'notifier consuming');

  return {
    async stop(timeoutMs = 10_000) {
      // retries first: a handler held by the in-flight limit waits for them, and the consumer for it
      deps.stopDeliveries();
      await consumer.stop();
      const drained = Promise.allSettled([...inFlight]);
      const timedOut = new Promise<'timeout'>((r) => setTimeout(r, timeoutMs, 'timeout').unref());
      if (await Promise.race([drained, timedOut]) === 'timeout') log.warn({ inFlight: inFlight.size }, 'notifier stopped with deliveries under way; their events come back');
      clearInterval(keepAlive);
    },
  };
}
