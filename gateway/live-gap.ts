import type { Bus, Subscription } from '../shared/bus/index.ts';
import type { RoomKey } from '../shared/domain/index.ts';
import type { Logger } from '../shared/telemetry/index.ts';
import type { RoomFanout } from './room-fanout.ts';
import type { LiveItem } from './gap-merge.ts';

/** Rooms replayed at once after an outage: a gateway in many rooms must not flood JetStream. */
const CONCURRENCY = 4;
/** JetStream may need a moment after a server restart before it serves reads again. */
const RETRY_MS = 500;
const GIVE_UP_MS = 20_000;

/** Whether a gap in live delivery is being repaired: resume positions must not move meanwhile. */
export interface LiveGapState {
  readonly repairing: boolean;
}

/**
 * Closes the hole a lost NATS connection (or a cluster node that died with messages in flight)
 * leaves in live delivery. While the gateway is cut off,
 * events other gateways publish never reach it, and its sockets stay open, so their clients
 * would not know to resume. So: when the bus reports the live plane interrupted, every room
 * holds its live frames back; when it is restored, each room replays from the stream what was
 * stored since the interruption began (minus RESUME_SKEW for clock differences), and the
 * replayed and held frames go out merged in stream order. Clients drop the repeats by `seq`, as
 * after a resume; the stream is the only source, so nothing is shown that was not stored.
 *
 * A room whose replay keeps failing (JetStream not back within GIVE_UP_MS) drops what it held and
 * goes live, and `unrepaired` is told, so the gateway closes the sockets in it for their clients
 * to resume from the last event they got (which replays what they missed): a gap is never left
 * silently. (The held frames are not sent first: they would move the clients' resume point past
 * the gap.)
 *
 * This serves every transport: the rooms hold and release their frames for WebSockets and stream
 * receivers alike. A stream receiver's resume position (SSE event ids) stands still while
 * `repairing`: from the interruption until a repair that no newer interruption overtook is done
 * (its connections in rooms that could not be repaired are reset first).
 */
export class LiveGapRepair implements LiveGapState {
  #gen = 0;
  #repairing = false;
  /** Start of the oldest interruption not yet repaired (a second outage during a repair). */
  #repairFrom: number | undefined;
  #sub: Subscription | undefined;
  #stopped = false;

  constructor(
    private readonly bus: Bus,
    private readonly fanout: RoomFanout,
    private readonly skewMs: number,
    private readonly log: Logger,
    /** Keys of the rooms whose gap was not repaired. */
    private readonly unrepaired: (rooms: RoomKey[]) => void,
    private readonly giveUpMs = GIVE_UP_MS,
  ) {}

  get repairing(): boolean {
    return this.#repairing;
  }

  start(): void {
    this.#sub = this.bus.watchLive({
      interrupted: () => {
        this.#repairing = true;
        this.#gen = this.fanout.holdAll();
      },
      restored: (since) => { void this.#repair(since); },
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#sub?.unsubscribe();
  }

  async #repair(since: number): Promise<void> {
    const gen = this.#gen;
    this.#repairFrom = Math.min(this.#repairFrom ?? since, since);
    const from = this.#repairFrom - this.skewMs;
    this.fanout.stopHolding();
    const rooms = this.fanout.heldRooms(gen);
    const started = Date.now();
    let replayed = 0;
    const failed: RoomKey[] = [];
    const queue = [...rooms];
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, async () => {
      for (let roomId = queue.shift(); roomId !== undefined; roomId = queue.shift()) {
        const frames = await this.#replay(roomId, from);
        if (frames === undefined) {
          failed.push(roomId);
          this.fanout.discard(roomId, gen);
        } else {
          replayed += frames.length;
          this.fanout.release(roomId, gen, frames);
        }
      }
    }));
    const report = { rooms: rooms.length, replayed, failed: failed.length, tookMs: Date.now() - started, downMs: started - since };
    if (failed.length) {
      this.log.error({ ...report, failedRooms: failed.slice(0, 20) }, 'live gap not repaired for some rooms; closing their connections so that clients resume');
      if (!this.#stopped) this.unrepaired(failed);
    } else {
      this.log.info(report, 'live gap repaired from the stream');
    }
    // Cut again meanwhile: the next repair finishes the gap.
    if (this.#gen !== gen) return;
    this.#repairFrom = undefined;
    this.#repairing = false;
  }

  /** The room's stored events since `from`, as the stream would have republished them. */
  async #replay(roomId: RoomKey, from: number): Promise<LiveItem[] | undefined> {
    const deadline = Date.now() + this.giveUpMs;
    for (;;) {
      const events: LiveItem[] = [];
      try {
        await this.bus.replay(roomId, from, (msg) => { events.push({ payload: msg.data, seq: msg.seq }); });
        return events;
      } catch (err) {
        if (this.#stopped || Date.now() + RETRY_MS > deadline) {
          this.log.warn({ err, room: roomId }, 'live gap: replay failed');
          return undefined;
        }
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }
}
