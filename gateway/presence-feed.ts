import { subjects, type Bus } from '../shared/bus/index.ts';
import { roomKey } from '../shared/domain/index.ts';
import { encodeMsgpack, type ClientFrameOf } from '../shared/protocol/index.ts';
import type { Presence, PresenceInfo } from '../shared/presence/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import { Coalescer } from '../shared/rate-limit/index.ts';
import type { Connection } from './connection.ts';

/** What presence needs of a connection: WebSockets and fallback (SSE, long-poll) connections alike. */
export type PresenceConnection = Pick<Connection, 'principal' | 'connectionId' | 'device' | 'rooms'>;

/**
 * Presence of this gateway's users: registers connections, refreshes their TTL on a heartbeat
 * (so a gateway that dies lets its users expire), and announces changes to the rooms the user is
 * in on this gateway's sockets (each gateway announces for its own connections).
 */
export class PresenceFeed {
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly statuses: Coalescer<{ c: Connection; frame: ClientFrameOf<'set_presence'> }>;

  constructor(
    private readonly bus: Bus,
    private readonly presence: Presence,
    private readonly ttlSec: number,
    private readonly connections: () => Iterable<PresenceConnection>,
    private readonly log: Logger,
    /** A user's set_presence frames take effect at most once per this many ms, the last winning (COALESCE_PRESENCE_MS). */
    coalesceMs = 0,
  ) {
    this.statuses = new Coalescer(coalesceMs, (err) => this.log.warn({ err }, 'a held presence status was not set'));
  }

  start(): void {
    const everyMs = Math.max(1000, Math.floor((this.ttlSec * 1000) / 3));
    this.heartbeat = setInterval(() => void this.beat(), everyMs).unref();
  }

  stop(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.statuses.close();
  }

  async connected(c: PresenceConnection): Promise<void> {
    const { wentOnline } = await this.presence.connect({
      tenant: c.principal.tenant, userId: c.principal.userId, connectionId: c.connectionId,
      ...(c.device ? { device: { type: c.device } } : {}),
    });
    if (wentOnline) await this.announce(c, c.rooms);
  }

  /** After the socket closed: `rooms` is what it was in. */
  async disconnected(c: PresenceConnection, rooms: Iterable<string>): Promise<void> {
    const { wentOffline } = await this.presence.disconnect(c.principal.tenant, c.principal.userId, c.connectionId);
    if (wentOffline) await this.announce(c, rooms);
  }

  /** The status set, or undefined when it was held (coalesced): it is set when the user's window ends, unless a later one replaces it. */
  async setStatus(c: Connection, frame: ClientFrameOf<'set_presence'>): Promise<PresenceInfo | undefined> {
    const key = `${c.principal.tenant}:${c.principal.userId}`;
    return this.statuses.offer(key, { c, frame }, (held) => this.applyStatus(held.c, held.frame));
  }

  private async applyStatus(c: Connection, frame: ClientFrameOf<'set_presence'>): Promise<PresenceInfo> {
    const info = await this.presence.setStatus(c.principal.tenant, c.principal.userId, {
      status: frame.status,
      ...(frame.customStatus !== undefined ? { customStatus: frame.customStatus } : {}),
      ...(frame.device ? { device: frame.device } : {}),
    });
    this.publish(c.principal.tenant, c.rooms, info);
    return info;
  }

  private async announce(c: PresenceConnection, rooms: Iterable<string>): Promise<void> {
    const [info] = await this.presence.get(c.principal.tenant, [c.principal.userId]);
    if (info) this.publish(c.principal.tenant, rooms, info);
  }

  /** To the tenant's rooms of these ids. */
  private publish(tenant: string, rooms: Iterable<string>, info: PresenceInfo): void {
    const payload = encodeMsgpack({
      type: 'presence_update', userId: info.userId, status: info.status,
      ...(info.customStatus ? { customStatus: info.customStatus } : {}),
      ...(info.device ? { device: info.device } : {}),
      lastSeen: info.lastSeen,
    });
    for (const roomId of rooms) this.bus.publish(subjects.roomEvents(roomKey(tenant, roomId)), payload);
  }

  private async beat(): Promise<void> {
    const byTenant = new Map<string, Array<{ userId: string; connectionId: string }>>();
    for (const c of this.connections()) {
      let list = byTenant.get(c.principal.tenant);
      if (!list) byTenant.set(c.principal.tenant, (list = []));
      list.push({ userId: c.principal.userId, connectionId: c.connectionId });
    }
    for (const [tenant, conns] of byTenant) {
      await this.presence.heartbeat(tenant, conns).catch((err) => this.log.warn({ err, tenant }, 'presence heartbeat failed'));
    }
  }
}
