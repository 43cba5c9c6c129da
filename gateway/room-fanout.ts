import type { TemplatedApp } from 'uWebSockets.js';
import { subjects, type Bus, type Subscription } from '../shared/bus/index.ts';
import { decodeMsgpack, peekMsgpackType, type ServerFrame } from '../shared/protocol/index.ts';
import type { Room } from '../shared/domain/index.ts';
import { metrics, type Logger } from '../shared/telemetry/index.ts';
import type { Socket } from './connection.ts';
import { mergeInStreamOrder, type ReplayedFrame } from './gap-merge.ts';
import { isSocket, stateOf, type Receiver, type StreamReceiver } from './receiver.ts';

/**
 * Room fan-out: the gateway's hot path, for every transport. The gateway listens to a room's bus
 * subjects (one subscription each, whatever its receivers) only while at least one local
 * connection is in the room. Each WebSocket subscribes to one uWS topic per room for its
 * encoding; a bus payload (already a msgpack frame) is published to the msgpack topic as is, and
 * decoded + stringified once for the JSON topic, so the cost per message is per gateway, never per
 * socket. SSE streams and long-poll sessions, rare, get that same JSON text one by one.
 */
interface RoomEntry {
  readonly roomId: string;
  readonly topicMsgpack: string;
  readonly topicJson: string;
  readonly topicLegacy: string;
  /** Rooms belong to one tenant, so every connection in the room has this tenant. */
  readonly tenant: string;
  /** Local connections in the room, of every transport. */
  receivers: number;
  /** Local user id -> connections in the room (direct rooms report delivery per recipient). */
  readonly users: Map<string, number>;
  /** The room's SSE streams and long-poll sessions. */
  readonly streams: Set<StreamReceiver>;
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

/** Live frames kept per room while a gap is repaired; past it the room goes live unordered. */
const MAX_HELD_FRAMES = 10_000;

export interface FanoutHooks {
  /**
   * A control frame (membership, settings) for the room arrived; runs before any connection sees
   * it, and may take connections out of the room (a member who left learns of it on their own subject).
   */
  onControl(roomId: string, frame: ServerFrame): void;
  /** A new message in a direct room reached these local recipients' connections. */
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

  /** Puts the connection in the room (idempotent per connection). */
  add(r: Receiver, roomId: string): void {
    const state = stateOf(r);
    if (state.closed || state.rooms.has(roomId)) return;
    const entry = this.rooms.get(roomId) ?? this.open(roomId, state.principal.tenant);
    state.rooms.add(roomId);
    entry.receivers++;
    const userId = state.principal.userId;
    entry.users.set(userId, (entry.users.get(userId) ?? 0) + 1);
    if (isSocket(r)) subscribe(r, entry);
    else entry.streams.add(r);
  }

  /** Takes the connection out of the room; of a closed socket only the bookkeeping is undone (uWS dropped its topics). */
  remove(r: Receiver, roomId: string): void {
    const state = stateOf(r);
    if (!state.rooms.delete(roomId)) return;
    const entry = this.rooms.get(roomId);
    if (!entry) return;
    if (!isSocket(r)) entry.streams.delete(r);
    else if (!state.closed) unsubscribe(r, entry);
    const userId = state.principal.userId;
    const left = (entry.users.get(userId) ?? 1) - 1;
    if (left <= 0) entry.users.delete(userId);
    else entry.users.set(userId, left);
    if (--entry.receivers <= 0) this.closeEntry(entry);
  }

  removeAll(r: Receiver): void {
    for (const roomId of [...stateOf(r).rooms]) this.remove(r, roomId);
  }

  /** Sends a frame to this gateway's connections in the room only (no bus). */
  publishLocal(roomId: string, payload: Uint8Array): void {
    const entry = this.rooms.get(roomId);
    if (entry) this.forward(entry, payload, undefined);
  }

  close(): void {
    for (const entry of [...this.rooms.values()]) this.closeEntry(entry);
  }

  /**
   * The live plane was interrupted: from now on every room keeps its live frames back, so that
   * once the missed events are replayed (`release`) connections get all of them in stream order.
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
   * Ends the room's hold of generation `gen` without forwarding what it held: for connections that
   * are about to be closed and will resume from the last event they got before the gap (forwarding
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
   * merged in stream order, and the room is live again. Ignored when a newer interruption took
   * the hold over.
   */
  release(roomId: string, gen: number, replayed: ReplayedFrame[]): void {
    const entry = this.rooms.get(roomId);
    if (!entry || (entry.held !== undefined && entry.held.gen !== gen)) return;
    const held = entry.held?.frames ?? [];
    entry.held = undefined;
    for (const payload of mergeInStreamOrder(replayed, held)) this.forward(entry, payload, undefined);
  }

  /** The tenant of a room this gateway holds connections in. */
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
      receivers: 0,
      users: new Map(),
      streams: new Set(),
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
    // The hook may have taken the last local connections out of the room.
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

  /**
   * The per-message path: no per-socket work, at most one decode and one stringify. Stream
   * receivers (rare) are the only loop, over the same JSON text.
   */
  private forward(entry: RoomEntry, payload: Uint8Array, decoded: ServerFrame | undefined): void {
    this.app.publish(entry.topicMsgpack, payload, true);
    const jsonSockets = this.app.numSubscribers(entry.topicJson) > 0;
    const wantsJson = jsonSockets || entry.streams.size > 0;
    const wantsLegacy = this.app.numSubscribers(entry.topicLegacy) > 0;
    if (wantsJson || wantsLegacy || entry.direct) {
      let frame = decoded;
      try {
        frame ??= decodeMsgpack(payload) as ServerFrame;
      } catch (err) {
        this.log.error({ err, roomId: entry.roomId }, 'undecodable room frame not forwarded to JSON connections');
        return;
      }
      if (wantsJson) {
        const json = JSON.stringify(frame);
        if (jsonSockets) this.app.publish(entry.topicJson, json, false);
        for (const stream of entry.streams) stream.deliver(frame, json);
      }
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

function subscribe(ws: Socket, entry: RoomEntry): void {
  const conn = ws.getUserData();
  ws.subscribe(conn.format === 'msgpack' ? entry.topicMsgpack : entry.topicJson);
  if (conn.legacy) ws.subscribe(entry.topicLegacy);
}

function unsubscribe(ws: Socket, entry: RoomEntry): void {
  ws.unsubscribe(entry.topicMsgpack);
  ws.unsubscribe(entry.topicJson);
  if (ws.getUserData().legacy) ws.unsubscribe(entry.topicLegacy);
}
