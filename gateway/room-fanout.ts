import type { TemplatedApp } from 'uWebSockets.js';
import { subjects, type Bus, type Subscription } from '../shared/bus/index.ts';
import { decodeMsgpack, peekMsgpackType, type ServerFrame } from '../shared/protocol/index.ts';
import type { Room } from '../shared/domain/index.ts';
import { metrics, type Logger } from '../shared/telemetry/index.ts';
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
  /** While the live plane is interrupted and until the room's gap is repaired: live frames kept back. */
  held: Held | undefined;
}

interface Held {
  /** The interruption this hold belongs to (a newer one takes the hold over). */
  gen: number;
  frames: Uint8Array[];
}

/** A frame replayed from the stream to fill a gap. */
export interface ReplayedFrame {
  seq: number;
  payload: Uint8Array;
}

/** Live frames kept per room while a gap is repaired; past it the room goes live unordered. */
const MAX_HELD_FRAMES = 10_000;

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
  private holding = false;
  private holdGen = 0;

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

  /**
   * The live plane was interrupted: from now on every room keeps its live frames back, so that
   * once the missed events are replayed (`release`) sockets get all of them in stream order.
   * Returns the hold's generation.
   */
  holdAll(): number {
    this.holding = true;
    const gen = ++this.holdGen;
    for (const entry of this.rooms.values()) {
      if (entry.held) entry.held.gen = gen;
      else entry.held = { gen, frames: [] };
    }
    return gen;
  }

  /** Live works again: rooms opened from now on are not held (they have nothing to repair). */
  stopHolding(): void {
    this.holding = false;
  }

  /**
   * Ends the room's hold of generation `gen` without forwarding what it held: for sockets that are
   * about to be closed and will resume from the last event they got before the gap (forwarding
   * later events would move their resume point past the events they missed).
   */
  discard(roomId: string, gen: number): void {
    const entry = this.rooms.get(roomId);
    if (entry?.held !== undefined && entry.held.gen === gen) entry.held = undefined;
  }

  /** Rooms held for generation `gen`. */
  heldRooms(gen: number): string[] {
    return [...this.rooms.values()].filter((e) => e.held?.gen === gen).map((e) => e.roomId);
  }

  /**
   * Ends the room's hold of generation `gen`: forwards the replayed frames and the held live ones
   * merged in stream order, each seq once (frames without a seq, such as typing, after them), and
   * the room is live again. Ignored when a newer interruption took the hold over.
   */
  release(roomId: string, gen: number, replayed: ReplayedFrame[]): void {
    const entry = this.rooms.get(roomId);
    if (!entry || (entry.held !== undefined && entry.held.gen !== gen)) return;
    const held = entry.held?.frames ?? [];
    entry.held = undefined;
    const bySeq = new Map<number, Uint8Array>();
    for (const r of replayed) bySeq.set(r.seq, r.payload);
    const unsequenced: Uint8Array[] = [];
    for (const payload of held) {
      const seq = seqOf(payload);
      if (seq === undefined) unsequenced.push(payload);
      else if (!bySeq.has(seq)) bySeq.set(seq, payload);
    }
    for (const seq of [...bySeq.keys()].sort((a, b) => a - b)) this.forward(entry, bySeq.get(seq)!, undefined);
    for (const payload of unsequenced) this.forward(entry, payload, undefined);
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
      held: this.holding ? { gen: this.holdGen, frames: [] } : undefined,
    };
    this.rooms.set(roomId, entry);
    metrics.roomSubscriptions.set(this.rooms.size);
    this.hooks.watch(roomId);
    entry.subs.push(
      this.bus.subscribe(subjects.roomEvents(roomId), (payload) => this.live(entry, payload)),
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

  private live(entry: RoomEntry, payload: Uint8Array): void {
    const held = entry.held;
    if (held === undefined) return this.forward(entry, payload, undefined);
    if (held.frames.length < MAX_HELD_FRAMES) {
      held.frames.push(payload);
      return;
    }
    // a gap that takes this long to repair: deliver what we have rather than grow without bound
    this.log.warn({ roomId: entry.roomId, held: held.frames.length }, 'too many live frames held while repairing a gap; delivering them unordered');
    entry.held = undefined;
    for (const p of held.frames) this.forward(entry, p, undefined);
    this.forward(entry, payload, undefined);
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

/** The stream sequence a live frame carries (durable events have one; typing and presence don't). */
function seqOf(payload: Uint8Array): number | undefined {
  try {
    const seq = (decodeMsgpack(payload) as { seq?: unknown }).seq;
    return typeof seq === 'number' ? seq : undefined;
  } catch {
    return undefined; // undecodable: forward() reports it
  }
}
