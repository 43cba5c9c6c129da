import { subjects, type Bus, type Subscription } from '../shared/bus/index.ts';
import { decodeMsgpack, type ServerFrame } from '../shared/protocol/index.ts';
import type { Principal } from '../shared/auth/index.ts';
import type { Room } from '../shared/domain/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import { durableToFrame } from './resume.ts';

/** A connection that is not a WebSocket (SSE stream, long-poll session). */
export interface FallbackSink {
  readonly principal: Principal;
  /** Rooms this sink receives; kept by the fan-out. */
  readonly rooms: Set<string>;
  /** `json` is the frame already stringified, once per message for every sink. */
  deliver(frame: ServerFrame, json: string): void;
  /**
   * The live plane was cut (true) and what was missed is being replayed, or that is done (false).
   * Meanwhile the sink must not advance a resume position past the cut.
   */
  liveGap(pending: boolean): void;
  /** The gap could not be replayed: end the connection so that its client resumes. */
  reset(): void;
}

export interface FallbackFanoutHooks {
  /** A new message in a direct room reached these recipients' fallback connections. */
  onDirectDelivered(roomId: string, messageId: string, userIds: string[]): void;
  loadRoom(roomId: string): Promise<Room | undefined>;
}

interface RoomEntry {
  readonly roomId: string;
  readonly sinks: Set<FallbackSink>;
  readonly subs: Subscription[];
  direct: boolean;
}

interface UserEntry {
  readonly sinks: Set<FallbackSink>;
  readonly sub: Subscription;
}

/**
 * Fan-out for fallback connections. They are rare, so this loops over its sinks per message; it
 * holds its own bus subscriptions (reference-counted per room and per user), so the WebSocket
 * fan-out and its uWS topics never see these connections. Each payload is decoded and
 * stringified once, whatever the number of sinks.
 */
/** JetStream may need a moment after a server restart before it serves reads again. */
const REPLAY_RETRY_MS = 500;
const REPLAY_GIVE_UP_MS = 20_000;

export class FallbackFanout {
  private readonly rooms = new Map<string, RoomEntry>();
  private readonly users = new Map<string, UserEntry>();
  private readonly sinks = new Set<FallbackSink>();
  private watch: Subscription | undefined;
  /** Bumped at each cut of the live plane; a repair finishes the gap only if no cut came after it. */
  private cuts = 0;
  private gapPending = false;
  /** Start of the oldest cut not yet repaired. */
  private repairFrom: number | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly hooks: FallbackFanoutHooks,
    private readonly skewMs: number,
    private readonly log: Logger,
  ) {}

  /**
   * Repairs what a lost bus connection leaves out (as LiveGapRepair does for WebSockets, without
   * holding live frames back: these connections are few and their clients drop repeats): once the
   * live plane is back, each room's events stored since the cut (less the resume skew) are
   * replayed from the stream to its sinks.
   */
  start(): void {
    this.watch = this.bus.watchLive({
      interrupted: () => {
        this.cuts++;
        this.gapPending = true;
        for (const sink of this.sinks) sink.liveGap(true);
      },
      restored: (since) => { void this.repair(since); },
    });
  }

  stop(): void {
    this.watch?.unsubscribe();
    this.watch = undefined;
  }

  /** Starts following the sink's user (invitations, kicks) until `detach`. */
  attach(sink: FallbackSink): void {
    this.sinks.add(sink);
    if (this.gapPending) sink.liveGap(true);
    const key = userKey(sink.principal);
    let entry = this.users.get(key);
    if (!entry) {
      const sub = this.bus.subscribe(subjects.userEvents(sink.principal.tenant, sink.principal.userId), (payload) => this.onUserFrame(key, payload));
      entry = { sinks: new Set(), sub };
      this.users.set(key, entry);
    }
    entry.sinks.add(sink);
  }

  detach(sink: FallbackSink): void {
    this.sinks.delete(sink);
    for (const roomId of [...sink.rooms]) this.remove(sink, roomId);
    const key = userKey(sink.principal);
    const entry = this.users.get(key);
    if (!entry?.sinks.delete(sink) || entry.sinks.size > 0) return;
    entry.sub.unsubscribe();
    this.users.delete(key);
  }

  add(sink: FallbackSink, roomId: string): void {
    if (sink.rooms.has(roomId)) return;
    let entry = this.rooms.get(roomId);
    if (!entry) entry = this.open(roomId);
    entry.sinks.add(sink);
    sink.rooms.add(roomId);
  }

  remove(sink: FallbackSink, roomId: string): void {
    if (!sink.rooms.delete(roomId)) return;
    const entry = this.rooms.get(roomId);
    if (!entry) return;
    entry.sinks.delete(sink);
    if (entry.sinks.size === 0) {
      for (const sub of entry.subs) sub.unsubscribe();
      this.rooms.delete(roomId);
    }
  }

  get roomCount(): number {
    return this.rooms.size;
  }

  private open(roomId: string): RoomEntry {
    const entry: RoomEntry = { roomId, sinks: new Set(), subs: [], direct: false };
    this.rooms.set(roomId, entry);
    entry.subs.push(
      this.bus.subscribe(subjects.roomEvents(roomId), (payload) => this.onRoomFrame(entry, payload)),
      this.bus.subscribe(subjects.roomControl(roomId), (payload) => this.onRoomFrame(entry, payload)),
    );
    this.hooks.loadRoom(roomId).then(
      (room) => { entry.direct = room?.type === 'direct'; },
      (err) => this.log.warn({ err, roomId }, 'room type lookup failed; delivery status off for fallback connections in this room'),
    );
    return entry;
  }

  private onRoomFrame(entry: RoomEntry, payload: Uint8Array): void {
    const frame = this.decode(payload, entry.roomId);
    if (!frame) return;
    const json = JSON.stringify(frame);
    // A member who left, was kicked or banned stops receiving the room after this frame.
    const gone = frame.type === 'user_left' ? frame.user.userId : undefined;
    for (const sink of [...entry.sinks]) {
      sink.deliver(frame, json);
      if (gone === sink.principal.userId) this.remove(sink, entry.roomId);
    }
    if (frame.type === 'new_message' && entry.direct) {
      const author = frame.message.authorId;
      const recipients = new Set<string>();
      for (const sink of entry.sinks) if (sink.principal.userId !== author) recipients.add(sink.principal.userId);
      if (recipients.size) this.hooks.onDirectDelivered(entry.roomId, frame.message.messageId, [...recipients]);
    }
  }

  /** Frames for one user: invited somewhere (start receiving the room), removed (stop). */
  private onUserFrame(key: string, payload: Uint8Array): void {
    const entry = this.users.get(key);
    if (!entry) return;
    const frame = this.decode(payload, undefined);
    const roomId = (frame as { roomId?: unknown } | undefined)?.roomId;
    if (!frame || typeof roomId !== 'string') return;
    const json = JSON.stringify(frame);
    for (const sink of [...entry.sinks]) {
      if (sink.rooms.has(roomId)) {
        // Whichever of the two subjects brings a removal first delivers it and ends the room, so
        // it is seen once; other frames come on the room's subject too.
        if (frame.type === 'user_left') {
          sink.deliver(frame, json);
          this.remove(sink, roomId);
        }
        continue;
      }
      if (frame.type === 'user_left') continue;
      sink.deliver(frame, json);
      if (frame.type === 'user_joined') this.add(sink, roomId);
    }
  }

  private async repair(since: number): Promise<void> {
    const cut = this.cuts;
    this.repairFrom = Math.min(this.repairFrom ?? since, since);
    const from = this.repairFrom - this.skewMs;
    let replayed = 0;
    const failed: string[] = [];
    for (const entry of [...this.rooms.values()]) {
      const frames = await this.replay(entry.roomId, from);
      if (frames === undefined) {
        failed.push(entry.roomId);
        for (const sink of [...entry.sinks]) sink.reset();
        continue;
      }
      replayed += frames.length;
      for (const frame of frames) {
        const json = JSON.stringify(frame);
        for (const sink of [...entry.sinks]) sink.deliver(frame, json);
      }
    }
    if (this.cuts !== cut) return; // cut again meanwhile: the next repair finishes the gap
    this.repairFrom = undefined;
    this.gapPending = false;
    for (const sink of this.sinks) sink.liveGap(false);
    if (failed.length) this.log.error({ failed: failed.length, replayed }, 'live gap not repaired for some rooms of fallback connections; they were reset to resume');
    else if (this.rooms.size) this.log.info({ rooms: this.rooms.size, replayed }, 'live gap of fallback connections repaired from the stream');
  }

  private async replay(roomId: string, from: number): Promise<ServerFrame[] | undefined> {
    const deadline = Date.now() + REPLAY_GIVE_UP_MS;
    for (;;) {
      const frames: ServerFrame[] = [];
      try {
        await this.bus.replay(roomId, from, (msg) => {
          const frame = durableToFrame(msg);
          if (frame !== undefined) frames.push(frame);
        });
        return frames;
      } catch (err) {
        if (!this.watch || Date.now() + REPLAY_RETRY_MS > deadline) {
          this.log.warn({ err, roomId }, 'live gap replay for fallback connections failed');
          return undefined;
        }
        await new Promise((r) => setTimeout(r, REPLAY_RETRY_MS));
      }
    }
  }

  private decode(payload: Uint8Array, roomId: string | undefined): ServerFrame | undefined {
    try {
      return decodeMsgpack(payload) as ServerFrame;
    } catch (err) {
      this.log.error({ err, roomId }, 'undecodable frame not forwarded to fallback connections');
      return undefined;
    }
  }
}

function userKey(p: Principal): string {
  return `${p.tenant}\0${p.userId}`;
}
