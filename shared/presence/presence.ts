import type { PresenceStatus } from '../domain/models.ts';

/**
 * Presence: who is online, with which status and devices, and who is typing where.
 *
 * A user is online while at least one of their connections is registered and alive; each
 * connection lives `ttlSec` unless refreshed by `heartbeat`, so the connections of a gateway that
 * died expire by themselves. `connect`/`disconnect` report the transitions (first connection in,
 * last connection out) so the caller publishes presence_update exactly on change. Users are
 * namespaced by tenant. Typing entries expire after `typingTimeoutMs` without a new start.
 *
 * Presence is advisory: adapters never throw into the chat path; when their backend is down they
 * report the failure through their logger/metrics and answer with what they know (or "offline").
 */
export interface Presence {
  readonly kind: 'memory' | 'redis';

  connect(c: ConnectionInfo): Promise<{ wentOnline: boolean }>;
  disconnect(tenant: string, userId: string, connectionId: string): Promise<{ wentOffline: boolean }>;
  /** Refreshes the TTL of these live connections. */
  heartbeat(tenant: string, connections: Array<{ userId: string; connectionId: string }>): Promise<void>;
  setStatus(tenant: string, userId: string, update: StatusUpdate): Promise<PresenceInfo>;
  get(tenant: string, userIds: string[]): Promise<PresenceInfo[]>;

  /** True when this start began a typing period (not a refresh of one). */
  startTyping(tenant: string, roomId: string, userId: string): Promise<boolean>;
  /** True when the user was typing. */
  stopTyping(tenant: string, roomId: string, userId: string): Promise<boolean>;
  typingIn(tenant: string, roomId: string): Promise<string[]>;

  /**
   * Unread counts. Each room keeps a running count of its messages and each member the count
   * they have read up to; unread = room count - read count, so a read is O(1) per room and a new
   * message is O(1) however large the room. Read positions only move forward.
   */
  /** A message was sent in the room; its author has read it. */
  noteMessage(tenant: string, roomId: string, authorId: string): Promise<void>;
  /**
   * The user has read everything sent in the room so far but the newest `leftUnread` messages
   * (mark_read of an older message; 0 on joining and for the latest).
   */
  markRoomRead(tenant: string, roomId: string, userId: string, leftUnread?: number): Promise<void>;
  /** Unread messages per room id; a room the user never read counts every message sent in it. */
  unreadCounts(tenant: string, userId: string, roomIds: string[]): Promise<Map<string, number>>;

  /**
   * Resolves when the backend answers (the memory adapter always does); rejects with
   * ChatError('unavailable') when it does not. For health checks: unlike the calls above it does
   * not fall back, and it is never on the chat path.
   */
  ping(): Promise<void>;

  close(): Promise<void>;
}

export interface ConnectionInfo {
  tenant: string;
  userId: string;
  connectionId: string;
  device?: DeviceInfo;
}

export interface DeviceInfo {
  type?: string;
  platform?: string;
  version?: string;
}

export interface StatusUpdate {
  status: PresenceStatus;
  customStatus?: string;
  device?: DeviceInfo;
}

export interface PresenceInfo {
  userId: string;
  /** 'offline' when no live connection, whatever status was set. */
  status: PresenceStatus;
  customStatus?: string;
  device?: DeviceInfo;
  /** ISO time of the last connect, heartbeat or disconnect. */
  lastSeen: string;
  connections: number;
}
