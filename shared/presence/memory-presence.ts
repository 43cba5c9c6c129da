import type { PresenceStatus } from '../domain/models.ts';
import type { ConnectionInfo, DeviceInfo, Presence, PresenceInfo, StatusUpdate } from './presence.ts';

/**
 * Presence for one process (embedded mode). Expired connections and typing entries are removed
 * lazily when read and by a periodic sweep; a user with no connection is forgotten (with the
 * status they set) `offlineRetentionMs` after they were last seen, so memory follows the users
 * seen recently, not every user ever seen.
 */
export interface MemoryPresenceConfig {
  ttlSec: number;
  typingTimeoutMs: number;
}

export interface MemoryPresenceOptions {
  /** ms since epoch; default Date.now. */
  now?: () => number;
  offlineRetentionMs?: number;
  sweepIntervalMs?: number;
}

export const DEFAULT_OFFLINE_RETENTION_MS = 24 * 3600_000;
const MAX_SWEEP_INTERVAL_MS = 60_000;
const MIN_SWEEP_INTERVAL_MS = 1000;

/** Reported as lastSeen for a user this process has never seen (the port requires a time). */
const NEVER_SEEN = new Date(0).toISOString();

export function createMemoryPresence(cfg: MemoryPresenceConfig, opts: MemoryPresenceOptions = {}): Presence {
  return new MemoryPresence(cfg, opts);
}

interface UserEntry {
  readonly userId: string;
  /** connectionId -> expiry time */
  readonly connections: Map<string, number>;
  status: PresenceStatus;
  customStatus: string | undefined;
  device: DeviceInfo | undefined;
  lastSeen: number;
}

// tenant and id are joined with a character neither contains, so tenants cannot collide
const key = (tenant: string, id: string) => `${tenant}\u0000${id}`;

class MemoryPresence implements Presence {
  readonly kind = 'memory' as const;
  readonly #clock: () => number;
  readonly #ttlMs: number;
  readonly #typingMs: number;
  readonly #offlineRetentionMs: number;
  readonly #users = new Map<string, UserEntry>();
  /** tenant+room -> userId -> expiry time */
  readonly #typing = new Map<string, Map<string, number>>();
  /** tenant+room -> messages sent in the room */
  readonly #roomCounts = new Map<string, number>();
  /** tenant+user -> room -> room count read up to */
  readonly #readCounts = new Map<string, Map<string, number>>();
  #sweeper: NodeJS.Timeout | undefined;

  constructor(cfg: MemoryPresenceConfig, opts: MemoryPresenceOptions) {
    this.#clock = opts.now ?? Date.now;
    this.#ttlMs = cfg.ttlSec * 1000;
    this.#typingMs = cfg.typingTimeoutMs;
    this.#offlineRetentionMs = opts.offlineRetentionMs ?? DEFAULT_OFFLINE_RETENTION_MS;
    const every = opts.sweepIntervalMs
      ?? Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(MIN_SWEEP_INTERVAL_MS, Math.min(this.#ttlMs, this.#typingMs * 10)));
    this.#sweeper = setInterval(() => this.#sweep(), every);
    this.#sweeper.unref();
  }

  async connect(c: ConnectionInfo): Promise<{ wentOnline: boolean }> {
    const now = this.#clock();
    const k = key(c.tenant, c.userId);
    let user = this.#users.get(k);
    if (user === undefined) {
      user = { userId: c.userId, connections: new Map(), status: 'online', customStatus: undefined, device: undefined, lastSeen: now };
      this.#users.set(k, user);
    }
    const wentOnline = this.#live(user, now) === 0;
    user.connections.set(c.connectionId, now + this.#ttlMs);
    if (c.device !== undefined) user.device = c.device;
    user.lastSeen = now;
    return { wentOnline };
  }

  async disconnect(tenant: string, userId: string, connectionId: string): Promise<{ wentOffline: boolean }> {
    const user = this.#users.get(key(tenant, userId));
    if (user === undefined) return { wentOffline: false };
    const now = this.#clock();
    // an expired connection went offline silently when it expired; only a live one is a transition
    const wasLive = this.#live(user, now) > 0 && user.connections.delete(connectionId);
    user.lastSeen = now;
    return { wentOffline: wasLive && user.connections.size === 0 };
  }

  async heartbeat(tenant: string, connections: Array<{ userId: string; connectionId: string }>): Promise<void> {
    const now = this.#clock();
    for (const c of connections) {
      const user = this.#users.get(key(tenant, c.userId));
      if (user === undefined) continue;
      const expiresAt = user.connections.get(c.connectionId);
      // an expired connection is gone: it comes back only through connect, which reports wentOnline
      if (expiresAt === undefined || expiresAt <= now) continue;
      user.connections.set(c.connectionId, now + this.#ttlMs);
      user.lastSeen = now;
    }
  }

  async setStatus(tenant: string, userId: string, update: StatusUpdate): Promise<PresenceInfo> {
    const now = this.#clock();
    const k = key(tenant, userId);
    let user = this.#users.get(k);
    if (user === undefined) {
      user = { userId, connections: new Map(), status: update.status, customStatus: undefined, device: undefined, lastSeen: now };
      this.#users.set(k, user);
    }
    user.status = update.status;
    // absent keeps the current value; an empty string clears the custom status
    if (update.customStatus !== undefined) user.customStatus = update.customStatus === '' ? undefined : update.customStatus;
    if (update.device !== undefined) user.device = update.device;
    return this.#info(user, now);
  }

  async get(tenant: string, userIds: string[]): Promise<PresenceInfo[]> {
    const now = this.#clock();
    return userIds.map((userId) => {
      const user = this.#users.get(key(tenant, userId));
      return user === undefined ? { userId, status: 'offline', lastSeen: NEVER_SEEN, connections: 0 } : this.#info(user, now);
    });
  }

  async startTyping(tenant: string, roomId: string, userId: string): Promise<boolean> {
    const now = this.#clock();
    const k = key(tenant, roomId);
    let room = this.#typing.get(k);
    if (room === undefined) this.#typing.set(k, room = new Map());
    const until = room.get(userId);
    room.set(userId, now + this.#typingMs);
    return until === undefined || until <= now;
  }

  async stopTyping(tenant: string, roomId: string, userId: string): Promise<boolean> {
    const k = key(tenant, roomId);
    const room = this.#typing.get(k);
    const until = room?.get(userId);
    if (room === undefined || until === undefined) return false;
    room.delete(userId);
    if (room.size === 0) this.#typing.delete(k);
    return until > this.#clock();
  }

  async typingIn(tenant: string, roomId: string): Promise<string[]> {
    const k = key(tenant, roomId);
    const room = this.#typing.get(k);
    if (room === undefined) return [];
    const now = this.#clock();
    const out: string[] = [];
    for (const [userId, until] of room) {
      if (until > now) out.push(userId);
      else room.delete(userId);
    }
    if (room.size === 0) this.#typing.delete(k);
    return out;
  }

  async noteMessage(tenant: string, roomId: string, authorId: string): Promise<void> {
    const k = key(tenant, roomId);
    const count = (this.#roomCounts.get(k) ?? 0) + 1;
    this.#roomCounts.set(k, count);
    this.#readUpTo(tenant, authorId, roomId, count);
  }

  async markRoomRead(tenant: string, roomId: string, userId: string, leftUnread = 0): Promise<void> {
    this.#readUpTo(tenant, userId, roomId, (this.#roomCounts.get(key(tenant, roomId)) ?? 0) - leftUnread);
  }

  async unreadCounts(tenant: string, userId: string, roomIds: string[]): Promise<Map<string, number>> {
    const read = this.#readCounts.get(key(tenant, userId));
    const out = new Map<string, number>();
    for (const roomId of roomIds) {
      out.set(roomId, Math.max(0, (this.#roomCounts.get(key(tenant, roomId)) ?? 0) - (read?.get(roomId) ?? 0)));
    }
    return out;
  }

  #readUpTo(tenant: string, userId: string, roomId: string, count: number): void {
    const k = key(tenant, userId);
    let rooms = this.#readCounts.get(k);
    if (rooms === undefined) this.#readCounts.set(k, (rooms = new Map()));
    if ((rooms.get(roomId) ?? 0) < count) rooms.set(roomId, count);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  /** Drops expired connections of `user`; returns how many live ones remain. */
  #live(user: UserEntry, now: number): number {
    for (const [id, expiresAt] of user.connections) if (expiresAt <= now) user.connections.delete(id);
    return user.connections.size;
  }

  #info(user: UserEntry, now: number): PresenceInfo {
    const connections = this.#live(user, now);
    const info: PresenceInfo = {
      userId: user.userId,
      status: connections === 0 ? 'offline' : user.status,
      lastSeen: new Date(user.lastSeen).toISOString(),
      connections,
    };
    if (user.customStatus !== undefined) info.customStatus = user.customStatus;
    if (user.device !== undefined) info.device = { ...user.device };
    return info;
  }

  #sweep(): void {
    const now = this.#clock();
    const forgetBefore = now - this.#offlineRetentionMs;
    for (const [k, user] of this.#users) {
      if (this.#live(user, now) === 0 && user.lastSeen < forgetBefore) this.#users.delete(k);
    }
    for (const [k, room] of this.#typing) {
      for (const [userId, until] of room) if (until <= now) room.delete(userId);
      if (room.size === 0) this.#typing.delete(k);
    }
  }
}
