import type { TemplatedApp } from 'uWebSockets.js';
import { subjects, type Bus, type Subscription } from '../shared/bus/bus.ts';
import { decodeMsgpack, peekMsgpackType } from '../shared/protocol/codec.ts';
import type { ServerFrame } from '../shared/protocol/frames.ts';
import type { Room } from '../shared/domain/models.ts';
import { metrics } from '../shared/telemetry/metrics.ts';
import type { Logger } from '../shared/telemetry/logger.ts';
import type { Connection, Socket } from './connection.ts';

/**
 * Room fan-out: the gateway's hot path. The gateway listens to a room's bus subjects only while
 * at least one local socket is in the room. Each socket subscribes to one uWS topic per room for
 * its encoding; a bus payload (already a msgpack frame) is published to the msgpack topic as is,
 * and decoded + stringified once for the JSON topic, so the cost per message is per gateway,
 * never per socket.
 */
interface RoomEntry {
  readonly roomId: string;
  readonly topicMsgpack: string;
  readonly topicJson: string;
  readonly topicLegacy: string;
  /** Rooms belong to one tenant, so every socket in the room has this tenant. */
  readonly tenant: string;
  sockets: number;
  /** Local user id -> sockets in the room (direct rooms report delivery per recipient). */
  readonly users: Map<string, number>;
  direct: boolean;
  subs: Subscription[];
}

export interface FanoutHooks {
  /** A control frame (membership, settings) for the room arrived; runs before clients see it. */
  onControl(roomId: string, frame: ServerFrame): void;
  /** A new message in a direct room reached these local recipients' sockets. */
  onDirectDelivered(roomId: string, messageId: string, userIds: string[]): void;
  loadRoom(roomId: string): Promise<Room | undefined>;
  /** The gateway now listens to the room's control subject (caches for it may be kept). */
  watch(roomId: string): void;
  unwatch(roomId: string): void;
}

export class RoomFanout {
  private readonly rooms = new Map<string, RoomEntry>();
  private readonly outCounters = new Map<string, { inc(): void }>();

  constructor(
    private readonly app: TemplatedApp,
    private readonly bus: Bus,
    private readonly hooks: FanoutHooks,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.rooms.size;
  }

  has(roomId: string): boolean {
    return this.rooms.has(roomId);
  }

  /** Subscribes the socket to the room (idempotent per socket). */
  add(ws: Socket, roomId: string): void {
    const conn = ws.getUserData();
    if (conn.closed || conn.rooms.has(roomId)) return;
    let entry = this.rooms.get(roomId);
    if (!entry) entry = this.open(roomId, conn.principal.tenant);
    conn.rooms.add(roomId);
    entry.sockets++;
    const userId = conn.principal.userId;
    entry.users.set(userId, (entry.users.get(userId) ?? 0) + 1);
    if (conn.format === 'msgpack') ws.subscribe(entry.topicMsgpack);
    else ws.subscribe(entry.topicJson);
    if (conn.legacy) ws.subscribe(entry.topicLegacy);
  }

  /** Unsubscribes the socket from the room; without `ws` (already closed) only the bookkeeping is undone. */
  remove(ws: Socket | undefined, conn: Connection, roomId: string): void {
    if (!conn.rooms.delete(roomId)) return;
    const entry = this.rooms.get(roomId);
    if (!entry) return;
    if (ws) {
      ws.unsubscribe(entry.topicMsgpack);
      ws.unsubscribe(entry.topicJson);
      if (conn.legacy) ws.unsubscribe(entry.topicLegacy);
    }
    const userId = conn.principal.userId;
    const left = (entry.users.get(userId) ?? 1) - 1;
    if (left <= 0) entry.users.delete(userId);
    else entry.users.set(userId, left);
    if (--entry.sockets <= 0) this.closeEntry(entry);
  }

  removeAll(ws: Socket | undefined, conn: Connection): void {
    for (const roomId of [...conn.rooms]) this.remove(ws, conn, roomId);
  }

  /** Sends a frame to this gateway's sockets in the room only (no bus). */
  publishLocal(roomId: string, payload: Uint8Array): void {
    const entry = this.rooms.get(roomId);
    if (entry) this.forward(entry, payload, undefined);
  }

  close(): void {
    for (const entry of [...this.rooms.values()]) this.closeEntry(entry);
  }

  /** The tenant of a room this gateway holds sockets in. */
  tenantOf(roomId: string): string | undefined {
    return this.rooms.get(roomId)?.tenant;
  }

  private open(roomId: string, tenant: string): RoomEntry {
    const entry: RoomEntry = {
      roomId,
      tenant,
      topicMsgpack: `m:${roomId}`,
      topicJson: `j:${roomId}`,
      topicLegacy: `l:${roomId}`,
      sockets: 0,
      users: new Map(),
      direct: false,
      subs: [],
    };
    this.rooms.set(roomId, entry);
    metrics.roomSubscriptions.set(this.rooms.size);
    this.hooks.watch(roomId);
    entry.subs.push(
      this.bus.subscribe(subjects.roomEvents(roomId), (payload) => this.forward(entry, payload, undefined)),
      this.bus.subscribe(subjects.roomControl(roomId), (payload) => this.control(entry, payload)),
    );
    this.hooks.loadRoom(roomId).then(
      (room) => { entry.direct = room?.type === 'direct'; },
      (err) => this.log.warn({ err, roomId }, 'room type lookup failed; delivery status off for this room'),
    );
    return entry;
  }

  private closeEntry(entry: RoomEntry): void {
    for (const sub of entry.subs) sub.unsubscribe();
    entry.subs = [];
    this.rooms.delete(entry.roomId);
    metrics.roomSubscriptions.set(this.rooms.size);
    this.hooks.unwatch(entry.roomId);
  }

  private control(entry: RoomEntry, payload: Uint8Array): void {
    let frame: ServerFrame;
    try {
      frame = decodeMsgpack(payload) as ServerFrame;
    } catch (err) {
      this.log.error({ err, roomId: entry.roomId }, 'undecodable control frame dropped');
      return;
    }
    this.hooks.onControl(entry.roomId, frame);
    // The hook may have removed the last local socket of the room.
    if (this.rooms.get(entry.roomId) === entry) this.forward(entry, payload, frame);
  }

  /** The per-message path: no per-socket work, at most one decode and one stringify. */
  private forward(entry: RoomEntry, payload: Uint8Array, decoded: ServerFrame | undefined): void {
    this.app.publish(entry.topicMsgpack, payload, true);
    const wantsJson = this.app.numSubscribers(entry.topicJson) > 0;
    const wantsLegacy = this.app.numSubscribers(entry.topicLegacy) > 0;
    if (wantsJson || wantsLegacy || entry.direct) {
      let frame = decoded;
      try {
        frame ??= decodeMsgpack(payload) as ServerFrame;
      } catch (err) {
        this.log.error({ err, roomId: entry.roomId }, 'undecodable room frame not forwarded to JSON sockets');
        return;
      }
      if (wantsJson) this.app.publish(entry.topicJson, JSON.stringify(frame), false);
      if (frame.type === 'new_message') {
        if (wantsLegacy) {
          const m = frame.message;
          this.app.publish(entry.topicLegacy, JSON.stringify({
            type: 'message', data: { id: m.messageId, room: m.roomId, message: m.content, username: m.authorName, timestamp: m.timestamp },
          }), false);
        }
        if (entry.direct) {
          const authorId = frame.message.authorId;
          const recipients = [...entry.users.keys()].filter((u) => u !== authorId);
          if (recipients.length) this.hooks.onDirectDelivered(entry.roomId, frame.message.messageId, recipients);
        }
      }
    }
    this.countOut(payload);
  }

  private countOut(payload: Uint8Array): void {
    const type = peekMsgpackType(payload) ?? 'unknown';
    let counter = this.outCounters.get(type);
    if (!counter) {
      counter = metrics.framesOut.labels(type);
      this.outCounters.set(type, counter);
    }
    counter.inc();
  }
}
