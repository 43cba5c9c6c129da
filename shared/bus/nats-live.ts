import type { Logger } from 'pino';
import type { NatsConnection, Subscription as NatsSubscription } from 'nats';
import { ChatError } from '../protocol/errors.ts';
import type { LiveHandler, LiveWatcher, Subscription } from './bus.ts';
import type { NatsBusConnection } from './nats-connection.ts';
import { republishedSeq } from './nats-messages.ts';
import { tracingEnabled } from '../telemetry/tracing.ts';

/** The W3C trace context header: the stream republishes the publisher's headers with the event. */
const TRACEPARENT = 'traceparent';

interface LiveSub {
  readonly subject: string;
  readonly handler: LiveHandler;
  readonly queue: string | undefined;
  nats: NatsSubscription | undefined;
}

/**
 * The live plane over core NATS: at-most-once publish, subscriptions that outlive reconnects
 * (nats.js re-sends them; after a connection closed for good they are made again), and the
 * detection of interruptions for `watchLive`.
 */
export class NatsLivePlane {
  readonly #connection: Pick<NatsBusConnection, 'closed' | 'connected' | 'current' | 'flush'>;
  readonly #log: Logger;
  #droppingLive = false;
  readonly #subs = new Set<LiveSub>();
  readonly #watchers = new Set<LiveWatcher>();
  /** When live delivery stopped (connection lost), until it works again. */
  #downSince: number | undefined;

  constructor(connection: Pick<NatsBusConnection, 'closed' | 'connected' | 'current' | 'flush'>, log: Logger) {
    this.#connection = connection;
    this.#log = log;
  }

  publish(subject: string, payload: Uint8Array): void {
    const c = this.#connection;
    if (c.closed) return;
    const conn = c.current;
    if (conn === undefined || !c.connected) {
      if (!this.#droppingLive) {
        this.#droppingLive = true;
        this.#log.warn({ subject }, 'nats bus: not connected; live publishes are dropped until NATS is back');
      }
      return;
    }
    try {
      conn.nc.publish(subject, payload);
    } catch (err) {
      this.#log.warn({ err, subject }, 'nats bus: live publish failed');
    }
  }

  subscribe(subject: string, handler: LiveHandler, queue?: string): Subscription {
    if (this.#connection.closed) throw new ChatError('unavailable', 'the bus is closed');
    checkSubject(subject);
    if (queue !== undefined && WILDCARD.test(subject)) throw new ChatError('bad_request', `queue group ${queue}: subject "${subject}" must be exact`);
    const sub: LiveSub = { subject, handler, queue, nats: undefined };
    this.#subs.add(sub);
    const conn = this.#connection.current;
    if (conn !== undefined) this.#natsSubscribe(conn.nc, sub);
    return {
      unsubscribe: () => {
        if (!this.#subs.delete(sub)) return;
        const natsSub = sub.nats;
        sub.nats = undefined;
        if (natsSub !== undefined && !natsSub.isClosed()) natsSub.unsubscribe();
      },
    };
  }

  watchLive(watcher: LiveWatcher): Subscription {
    this.#watchers.add(watcher);
    if (this.#downSince !== undefined) this.#tell(watcher, 'interrupted');
    return { unsubscribe: () => { this.#watchers.delete(watcher); } };
  }

  /** A new connection: our subscriptions are made on it. */
  attached(nc: NatsConnection): void {
    this.#droppingLive = false;
    for (const sub of this.#subs) this.#natsSubscribe(nc, sub);
  }

  /** nats.js reconnected: it re-sends our subscriptions by itself. */
  reconnected(): void {
    this.#droppingLive = false;
  }

  /** The connection closed for good: its subscriptions are gone with it. */
  lost(): void {
    this.interrupted();
    for (const sub of this.#subs) sub.nats = undefined;
  }

  /**
   * Servers left the cluster while our connection stayed up: live messages other processes
   * published through them may never have been routed to ours, so watchers repair as after an
   * outage of our own.
   */
  serversLeft(nc: NatsConnection, gone: string[]): void {
    if (!this.#connection.connected || this.#downSince !== undefined) return;
    this.#log.warn({ gone }, 'nats bus: a server left the cluster; live messages routed through it may be lost');
    this.interrupted();
    void this.restored(nc);
  }

  interrupted(): void {
    if (this.#connection.closed || this.#downSince !== undefined) return;
    this.#downSince = Date.now();
    for (const w of this.#watchers) this.#tell(w, 'interrupted');
  }

  /**
   * Once a round trip on `nc` came back the server has our subscriptions, so everything
   * published from then on reaches us again.
   */
  async restored(nc: NatsConnection): Promise<void> {
    if (this.#downSince === undefined) return;
    await this.#connection.flush();
    const c = this.#connection;
    // lost again meanwhile: the next reconnect restores it, from the first interruption
    if (c.closed || c.current?.nc !== nc || !c.connected || this.#downSince === undefined) return;
    const since = this.#downSince;
    this.#downSince = undefined;
    this.#log.info({ downMs: Date.now() - since }, 'nats bus: live delivery restored');
    for (const w of this.#watchers) this.#tell(w, 'restored', since);
  }

  clear(): void {
    this.#subs.clear();
  }

  #tell(watcher: LiveWatcher, what: 'interrupted' | 'restored', since = 0): void {
    try {
      if (what === 'interrupted') watcher.interrupted();
      else watcher.restored(since);
    } catch (err) {
      this.#log.error({ err, what }, 'nats bus: live watcher threw');
    }
  }

  #natsSubscribe(nc: NatsConnection, sub: LiveSub): void {
    const { handler, subject } = sub;
    const log = this.#log;
    // an exact subject is known: nats.js would decode it from bytes for every message
    const exact = !WILDCARD.test(subject);
    // one closure per subscription, none per message
    sub.nats = nc.subscribe(subject, {
      ...(sub.queue !== undefined ? { queue: sub.queue } : {}),
      callback: (err, msg) => {
        if (err !== null) {
          log.error({ err, subject }, 'nats bus: subscription failed');
          return;
        }
        try {
          const seq = republishedSeq(msg);
          if (seq === undefined || !tracingEnabled()) handler(msg.data, exact ? subject : msg.subject, seq);
          else handler(msg.data, exact ? subject : msg.subject, seq, msg.headers?.get(TRACEPARENT) || undefined);
        } catch (handlerErr) {
          log.error({ err: handlerErr, subject: msg.subject }, 'nats bus: live subscriber threw');
        }
      },
    });
  }
}

/** A `*` or `>` token. */
const WILDCARD = /(^|\.)[*>](\.|$)/;

function checkSubject(subject: string): void {
  const tokens = subject.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok === '' || /\s/.test(tok) || (tok === '>' && i !== tokens.length - 1)) {
      throw new ChatError('bad_request', `invalid subject "${subject}": empty token, whitespace or '>' before the last token`);
    }
  }
}
