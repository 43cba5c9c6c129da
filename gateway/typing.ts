import { subjects, type Bus } from '../shared/bus/index.ts';
import { roomKey } from '../shared/domain/index.ts';
import { encodeMsgpack } from '../shared/protocol/index.ts';
import type { Presence } from '../shared/presence/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import { Coalescer } from '../shared/rate-limit/index.ts';
import type { Connection } from './connection.ts';

/**
 * Typing indicators: ephemeral, core bus only. A start shows `isTyping: true` to the room once;
 * repeated starts only push the expiry; without a new start or a stop, the indicator ends after
 * TYPING_TIMEOUT with `isTyping: false`, also when the socket closes or the user sends.
 *
 * A user's starts and stops in a room are coalesced (COALESCE_TYPING_MS): the room hears at most
 * one change per window, the last state winning, and presence is asked once per window too.
 */
export class TypingTracker {
  private readonly changes: Coalescer<{ conn: Connection; typing: boolean }>;

  constructor(
    private readonly bus: Bus,
    private readonly presence: Presence,
    private readonly timeoutMs: number,
    private readonly log: Logger,
    coalesceMs = 0,
  ) {
    this.changes = new Coalescer(coalesceMs, (err, key) => this.log.warn({ err, key }, 'a held typing change failed'));
  }

  async start(conn: Connection, roomId: string): Promise<void> {
    conn.typing ??= new Map();
    const timer = conn.typing.get(roomId);
    if (timer) clearTimeout(timer);
    conn.typing.set(roomId, setTimeout(() => this.expire(conn, roomId), this.timeoutMs).unref());
    await this.change(conn, roomId, true);
  }

  async stop(conn: Connection, roomId: string): Promise<void> {
    const timer = conn.typing?.get(roomId);
    if (!timer) return;
    clearTimeout(timer);
    conn.typing!.delete(roomId);
    await this.change(conn, roomId, false);
  }

  private async change(conn: Connection, roomId: string, typing: boolean): Promise<void> {
    const { tenant, userId } = conn.principal;
    await this.changes.offer(`${tenant}:${userId}:${roomId}`, { conn, typing }, async (held) => {
      if (held.typing) {
        const began = await this.presence.startTyping(tenant, roomId, userId);
        if (began) this.announce(held.conn, roomId, true);
      } else {
        // This socket's timer is what says it was typing: the shared entry may have expired already.
        await this.presence.stopTyping(tenant, roomId, userId);
        this.announce(held.conn, roomId, false);
      }
    });
  }

  close(): void {
    this.changes.close();
  }

  /** Ends typing without waiting (timer expiry, socket close, a sent message). */
  expire(conn: Connection, roomId: string): void {
    this.stop(conn, roomId).catch((err) => this.log.warn({ err, roomId }, 'typing stop failed'));
  }

  /**
   * A sent message ends typing at once, outside the coalescing window (clients clear the
   * indicator on the message itself, so a start held in the window must be announced afresh).
   * Messages have their own rate limit, so this is no way around the window.
   */
  messageSent(conn: Connection, roomId: string): void {
    const timer = conn.typing?.get(roomId);
    const { tenant, userId } = conn.principal;
    const key = `${tenant}:${userId}:${roomId}`;
    // typing on this socket, or a change of this user's typing still in its window (a stop held there)
    if (!timer && !this.changes.has(key)) return;
    if (timer) {
      clearTimeout(timer);
      conn.typing!.delete(roomId);
    }
    this.changes.drop(key);
    this.presence.stopTyping(tenant, roomId, userId).then(
      () => this.announce(conn, roomId, false),
      (err) => this.log.warn({ err, roomId }, 'typing stop failed'),
    );
  }

  stopAll(conn: Connection): void {
    if (!conn.typing) return;
    for (const roomId of [...conn.typing.keys()]) this.expire(conn, roomId);
  }

  private announce(conn: Connection, roomId: string, isTyping: boolean): void {
    const { principal } = conn;
    this.bus.publish(subjects.roomEvents(roomKey(principal.tenant, roomId)), encodeMsgpack({
      type: 'typing_indicator', roomId, user: { userId: principal.userId, name: principal.name }, isTyping,
    }));
  }
}
