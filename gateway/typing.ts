import { subjects, type Bus } from '../shared/bus/index.ts';
import { roomKey } from '../shared/domain/index.ts';
import { encodeMsgpack } from '../shared/protocol/index.ts';
import type { Presence } from '../shared/presence/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import type { Connection } from './connection.ts';

/**
 * Typing indicators: ephemeral, core bus only. A start shows `isTyping: true` to the room once;
 * repeated starts only push the expiry; without a new start or a stop, the indicator ends after
 * TYPING_TIMEOUT with `isTyping: false`, also when the socket closes or the user sends.
 */
export class TypingTracker {
  constructor(
    private readonly bus: Bus,
    private readonly presence: Presence,
    private readonly timeoutMs: number,
    private readonly log: Logger,
  ) {}

  async start(conn: Connection, roomId: string): Promise<void> {
    conn.typing ??= new Map();
    const timer = conn.typing.get(roomId);
    if (timer) clearTimeout(timer);
    conn.typing.set(roomId, setTimeout(() => this.expire(conn, roomId), this.timeoutMs).unref());
    const { tenant, userId } = conn.principal;
    const began = await this.presence.startTyping(tenant, roomId, userId);
    if (began) this.announce(conn, roomId, true);
  }

  async stop(conn: Connection, roomId: string): Promise<void> {
    const timer = conn.typing?.get(roomId);
    if (!timer) return;
    clearTimeout(timer);
    conn.typing!.delete(roomId);
    const { tenant, userId } = conn.principal;
    // This socket's timer is what says it was typing: the shared entry may have expired already.
    await this.presence.stopTyping(tenant, roomId, userId);
    this.announce(conn, roomId, false);
  }

  /** Ends typing without waiting (timer expiry, socket close, a sent message). */
  expire(conn: Connection, roomId: string): void {
    this.stop(conn, roomId).catch((err) => this.log.warn({ err, roomId }, 'typing stop failed'));
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
