import type { TemplatedApp } from 'uWebSockets.js';
import { subjects, type Bus, type Subscription } from '../shared/bus/index.ts';
import { decodeMsgpack, encodeMsgpack, eventToFrame, newMessageFrameMsgpack, peekMsgpackType, type ServerFrame } from '../shared/protocol/index.ts';
import { roomKey, type DurableEvent, type Room, type RoomKey } from '../shared/domain/index.ts';
import { context, contextFromTraceparent, metrics, SpanKind, trace, tracer, tracingEnabled, type Logger } from '../shared/telemetry/index.ts';
import type { Socket } from './connection.ts';
import { framesOut } from './frame-tally.ts';
import { mergeInStreamOrder, type LiveItem } from './gap-merge.ts';
import { isSocket, stateOf, type Receiver, type StreamReceiver } from './receiver.ts';

/**
 * Room fan-out: the gateway's hot path, for every transport. The gateway listens to a room's bus
 * subjects (one subscription each, whatever its receivers) only while at least one local
 * connection is in the room. Each WebSocket subscribes to one uWS topic per room for its
 * encoding. The room's live subject brings two kinds of payload:
 * - a stored event, republished by the stream with its sequence: decoded and turned into its
 *   frame once per gateway, then encoded once for each encoding the room's connections use
 *   (msgpack only if a msgpack socket is in the room, JSON only if a JSON socket or stream is);
 *   a new message's msgpack frame is spliced from the stored bytes without decoding them;
 * - an ephemeral frame (typing, presence, read status), already a msgpack frame: published to the
 *   msgpack topic as is, decoded and stringified once for JSON.
 * So the cost per message is per gateway, never per socket. SSE streams and long-poll sessions,
 * rare, get that same JSON text one by one.
 *
 * Rooms are kept by key (shared/domain/room-key.ts: tenant and id), so are their subjects and uWS
 * topics; connections name rooms by id (a connection has one tenant). Frames show the room's id,
 * which the entry holds ready (and msgpack-encoded for the spliced frames): nothing is made per
 * message.
 */
interface RoomEntry {
  readonly key: RoomKey;
  /** The id clients know the room by. */
  readonly roomId: string;
  /** `roomId` as a msgpack string, for the frames spliced from stored bytes. */
  readonly roomIdPacked: Uint8Array;
  readonly topicMsgpack: string;
  readonly topicJson: string;
  readonly topicLegacy: string;
  /** Local connections in the room, of every transport. */
  receivers: number;
  /** Of those, WebSockets subscribed to each topic: what the room's frames are encoded for. */
  msgpackSockets: number;
  jsonSockets: number;
  legacySockets: number;
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
  items: LiveItem[];
}

/** Live frames kept per room while a gap is repaired; past it the room goes live unordered. */
const MAX_HELD_FRAMES = 10_000;

export interface FanoutHooks {
  /**
   * A control frame (membership, settings) for the room arrived; runs before any connection sees
   * it, and may take connections out of the room (a member who left learns of it on their own subject).
   */
  onControl(key: RoomKey, frame: ServerFrame): void;
  /** A new message in a direct room reached these local recipients' connections. */
  onDirectDelivered(key: RoomKey, messageId: string, userIds: string[]): void;
  loadRoom(key: RoomKey): Promise<Room | undefined>;
  /** The gateway now listens to the room's control subject (caches for it may be kept). */
  watch(key: RoomKey): void;
  unwatch(key: RoomKey): void;
}

export class RoomFanout {
  private readonly rooms = new Map<RoomKey, RoomEntry>();
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

  has(key: RoomKey): boolean {
    return this.rooms.has(key);
  }

  /** Puts the connection in its tenant's room `roomId` (idempotent per connection). */
  add(r: Receiver, roomId: string): void {
    const state = stateOf(r);
    if (state.closed || state.rooms.has(roomId)) return;
    const key = roomKey(state.principal.tenant, roomId);
    const entry = this.rooms.get(key) ?? this.open(key, roomId);
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
    const entry = this.rooms.get(roomKey(state.principal.tenant, roomId));
    if (!entry) return;
    if (!isSocket(r)) entry.streams.delete(r);
    else unsubscribe(r, entry, state.closed);
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
  publishLocal(key: RoomKey, payload: Uint8Array): void {
    const entry = this.rooms.get(key);
    if (entry) this.forwardFrame(entry, payload, undefined);
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
      else entry.held = { gen, items: [] };
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
  discard(key: RoomKey, gen: number): void {
    const entry = this.rooms.get(key);
    if (entry?.held !== undefined && entry.held.gen === gen) entry.held = undefined;
  }

  /** Keys of the rooms held for generation `gen`. */
  heldRooms(gen: number): RoomKey[] {
    return [...this.rooms.values()].filter((e) => e.held?.gen === gen).map((e) => e.key);
  }

  /**
   * Ends the room's hold of generation `gen`: forwards the replayed events and the held live
   * messages merged in stream order, and the room is live again. Ignored when a newer
   * interruption took the hold over.
   */
  release(key: RoomKey, gen: number, replayed: LiveItem[]): void {
    const entry = this.rooms.get(key);
    if (!entry || (entry.held !== undefined && entry.held.gen !== gen)) return;
    const held = entry.held?.items ?? [];
    entry.held = undefined;
    for (const item of mergeInStreamOrder(replayed, held)) this.forward(entry, item.payload, item.seq);
  }

  private open(key: RoomKey, roomId: string): RoomEntry {
    const entry: RoomEntry = {
      key,
      roomId,
      // a copy: the encoder's result is a view of a shared buffer, which a long-lived room would keep alive
      roomIdPacked: new Uint8Array(encodeMsgpack(roomId)),
      topicMsgpack: `m:${key}`,
      topicJson: `j:${key}`,
      topicLegacy: `l:${key}`,
      receivers: 0,
      msgpackSockets: 0,
      jsonSockets: 0,
      legacySockets: 0,
      users: new Map(),
      streams: new Set(),
      direct: false,
      subs: [],
      held: this.holding ? { gen: this.holdGen, items: [] } : undefined,
    };
    this.rooms.set(key, entry);
    metrics.roomSubscriptions.set(this.rooms.size);
    this.hooks.watch(key);
    entry.subs.push(
      this.bus.subscribe(subjects.roomEvents(key), (payload, _subject, seq, traceparent) => {
        if (seq !== undefined && tracingEnabled()) this.tracedLive(entry, payload, seq, traceparent);
        else this.live(entry, payload, seq);
      }),
      this.bus.subscribe(subjects.roomControl(key), (payload) => this.control(entry, payload)),
    );
    this.hooks.loadRoom(key).then(
      (room) => { entry.direct = room?.type === 'direct'; },
      (err) => this.log.warn({ err, room: key }, 'room type lookup failed; delivery status off for this room'),
    );
    return entry;
  }

  private closeEntry(entry: RoomEntry): void {
    for (const sub of entry.subs) sub.unsubscribe();
    entry.subs = [];
    this.rooms.delete(entry.key);
    metrics.roomSubscriptions.set(this.rooms.size);
    this.hooks.unwatch(entry.key);
  }

  private control(entry: RoomEntry, payload: Uint8Array): void {
    let frame: ServerFrame;
    try {
      frame = decodeMsgpack(payload) as ServerFrame;
    } catch (err) {
      this.log.error({ err, room: entry.key }, 'undecodable control frame dropped');
      return;
    }
    this.hooks.onControl(entry.key, frame);
    // The hook may have taken the last local connections out of the room.
    if (this.rooms.get(entry.key) === entry) this.forwardFrame(entry, payload, frame);
  }

  /**
   * A stored event, in a span of the sender's trace (when it has one): the fan-out to this
   * gateway's connections, with how many were in the room.
   */
  private tracedLive(entry: RoomEntry, payload: Uint8Array, seq: number, traceparent: string | undefined): void {
    const parent = contextFromTraceparent(traceparent) ?? context.active();
    if (trace.getSpan(parent) === undefined) return this.live(entry, payload, seq);
    const span = tracer.startSpan('chat.fanout', {
      kind: SpanKind.CONSUMER,
      attributes: { 'chat.room_id': entry.key, 'chat.stream_seq': seq, 'chat.delivery_count': entry.receivers, 'chat.held': entry.held !== undefined },
    }, parent);
    try {
      context.with(trace.setSpan(parent, span), () => this.live(entry, payload, seq));
    } finally {
      span.end();
    }
  }

  private live(entry: RoomEntry, payload: Uint8Array, seq: number | undefined): void {
    const held = entry.held;
    if (held === undefined) return this.forward(entry, payload, seq);
    if (held.items.length < MAX_HELD_FRAMES) {
      held.items.push({ payload, seq });
      return;
    }
    // a gap that takes this long to repair: deliver what we have rather than grow without bound
    this.log.warn({ room: entry.key, held: held.items.length }, 'too many live frames held while repairing a gap; delivering them unordered');
    entry.held = undefined;
    for (const item of held.items) this.forward(entry, item.payload, item.seq);
    this.forward(entry, payload, seq);
  }

  /** A live message: a stored event (it has a seq) or a ready ephemeral frame. */
  private forward(entry: RoomEntry, payload: Uint8Array, seq: number | undefined): void {
    if (seq === undefined) this.forwardFrame(entry, payload, undefined);
    else this.forwardEvent(entry, payload, seq);
  }

  /**
   * A stored event: at most one conversion per gateway (decode, frame), then one encoding per
   * wire format in use. A new message reaches msgpack sockets as stored: its bytes are spliced
   * into the frame, not decoded and encoded again, so a room of msgpack sockets decodes nothing.
   * No per-socket work.
   */
  private forwardEvent(entry: RoomEntry, data: Uint8Array, seq: number): void {
    const msgpack = entry.msgpackSockets > 0;
    let packed = msgpack ? newMessageFrameMsgpack(data, seq, entry.roomIdPacked) : undefined;
    let frame: ServerFrame | undefined;
    if ((msgpack && packed === undefined) || entry.jsonSockets > 0 || entry.streams.size > 0 || entry.legacySockets > 0 || entry.direct) {
      try {
        frame = eventToFrame(decodeMsgpack(data) as DurableEvent, seq, entry.roomId);
      } catch (err) {
        this.log.error({ err, room: entry.key, seq }, 'undecodable room event not forwarded');
        return;
      }
      if (msgpack) packed ??= encodeMsgpack(frame);
    }
    if (packed !== undefined) this.app.publish(entry.topicMsgpack, packed, true);
    if (frame !== undefined) this.forwardDecoded(entry, frame);
    framesOut.count(frame?.type ?? 'new_message');
  }

  /**
   * A ready frame (ephemeral, or control): msgpack sockets get the payload untouched; it is
   * decoded (once) only if a JSON connection, a seed-001 socket or a direct room needs it.
   */
  private forwardFrame(entry: RoomEntry, payload: Uint8Array, decoded: ServerFrame | undefined): void {
    if (entry.msgpackSockets > 0) this.app.publish(entry.topicMsgpack, payload, true);
    if (entry.jsonSockets > 0 || entry.streams.size > 0 || entry.legacySockets > 0 || entry.direct) {
      let frame = decoded;
      try {
        frame ??= decodeMsgpack(payload) as ServerFrame;
      } catch (err) {
        this.log.error({ err, room: entry.key }, 'undecodable room frame not forwarded to JSON connections');
        return;
      }
      this.forwardDecoded(entry, frame);
    }
    framesOut.count(decoded?.type ?? peekMsgpackType(payload) ?? 'unknown');
  }

  /** What every frame needs besides msgpack: JSON text once, seed-001 frames, direct delivery. */
  private forwardDecoded(entry: RoomEntry, frame: ServerFrame): void {
    if (entry.jsonSockets > 0 || entry.streams.size > 0) {
      const json = JSON.stringify(frame);
      if (entry.jsonSockets > 0) this.app.publish(entry.topicJson, json, false);
      for (const stream of entry.streams) stream.deliver(frame, json);
    }
    if (frame.type !== 'new_message') return;
    if (entry.legacySockets > 0) {
      const m = frame.message;
      this.app.publish(entry.topicLegacy, JSON.stringify({
        type: 'message', data: { id: m.messageId, room: m.roomId, message: m.content, username: m.authorName, timestamp: m.timestamp },
      }), false);
    }
    if (entry.direct) {
      const authorId = frame.message.authorId;
      const recipients = [...entry.users.keys()].filter((u) => u !== authorId);
      if (recipients.length) this.hooks.onDirectDelivered(entry.key, frame.message.messageId, recipients);
    }
  }
}

/** Subscribes the socket to the room's topic of its encoding (and the seed-001 one), counting them. */
function subscribe(ws: Socket, entry: RoomEntry): void {
  const conn = ws.getUserData();
  if (conn.format === 'msgpack') {
    ws.subscribe(entry.topicMsgpack);
    entry.msgpackSockets++;
  } else {
    ws.subscribe(entry.topicJson);
    entry.jsonSockets++;
  }
  if (conn.legacy) {
    ws.subscribe(entry.topicLegacy);
    entry.legacySockets++;
  }
}

/** Undoes `subscribe`; of a closed socket only the counts (uWS dropped its topics). */
function unsubscribe(ws: Socket, entry: RoomEntry, closed: boolean): void {
  const conn = ws.getUserData();
  if (conn.format === 'msgpack') entry.msgpackSockets--;
  else entry.jsonSockets--;
  if (conn.legacy) entry.legacySockets--;
  if (closed) return;
  ws.unsubscribe(conn.format === 'msgpack' ? entry.topicMsgpack : entry.topicJson);
  if (conn.legacy) ws.unsubscribe(entry.topicLegacy);
}
