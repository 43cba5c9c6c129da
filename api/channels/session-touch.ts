import { randomUUID } from 'node:crypto';
import type { InboundMessage, Platform } from '../../shared/channels/index.ts';
import type { JsonValue, SessionStore } from '../../shared/sessions/index.ts';
import { metrics, type Logger } from '../../shared/telemetry/index.ts';

/** A pressed button larger than this is left out of the session's context: it is not worth a kilobyte of every touch. */
const MAX_BUTTON_BYTES = 1024;

/**
 * How the channel inbox and sender keep a person's session: every message from them and every
 * reply sent to them touches it (one Redis round trip, which the inbox runs beside its room check,
 * so a message waits for no extra trip). A touch never fails the caller: a session store that
 * fails (Redis unreachable or slower than its command timeout) is logged and counted in
 * chat_channel_session_errors_total, and the message is stored, or the reply acked, without its
 * session; the session resumes with the next touch that works.
 */
export class SessionTouch {
  constructor(private readonly store: SessionStore, private readonly log: Logger, private readonly now: () => number = Date.now) {}

  /** The session id the message belongs to (a new one when it started one); undefined when the store failed. */
  async inbound(tenant: string, platform: Platform, roomId: string, m: InboundMessage): Promise<string | undefined> {
    const button = m.metadata['button'] as JsonValue | undefined;
    const context = button !== undefined && Buffer.byteLength(JSON.stringify(button)) <= MAX_BUTTON_BYTES ? { lastButton: button } : undefined;
    try {
      const { session, started } = await this.store.touchInbound({ tenant, platform, externalUserId: m.externalUserId }, {
        roomId, newSessionId: randomUUID(), platformMessageId: m.platformMessageId, at: this.now(), ...(context ? { context } : {}),
      });
      if (started) {
        metrics.channelSessionsStarted.inc({ platform });
        this.log.debug({ platform, roomId, sessionId: session.sessionId }, 'channel session started');
      }
      return session.sessionId;
    } catch (err) {
      metrics.channelSessionErrors.inc({ direction: 'inbound' });
      this.log.warn({ err, platform, roomId }, 'channel session not touched: the message goes on without it');
      return undefined;
    }
  }

  /** Counts a reply sent to the person in their live session, if they have one. */
  async outbound(tenant: string, platform: Platform, externalUserId: string): Promise<void> {
    try {
      await this.store.touchOutbound({ tenant, platform, externalUserId }, this.now());
    } catch (err) {
      metrics.channelSessionErrors.inc({ direction: 'outbound' });
      this.log.warn({ err, platform }, 'channel session not touched by a reply');
    }
  }
}
