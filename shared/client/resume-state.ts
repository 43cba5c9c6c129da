import { idAt, maxId, type RoomCursors } from './room-cursors.ts';

/** Resume starts this much before the last moment the client knows it was live (clock estimate error). */
const RESUME_MARGIN_MS = 2000;
/** Rooms a resume names at most (the server's limit for the `resume` frame). */
export const RESUME_MAX_ROOMS = 500;

/**
 * Where to resume from after a reconnect: per room, the later of the newest message id seen and
 * the moment (server time) the client last heard from the server. The moment covers rooms that
 * were quiet, and events that are not messages; the server replays RESUME_SKEW before it and the
 * room cursors drop what was delivered already.
 */
export class ResumeState {
  /** Local time of the last frame on a welcomed transport. */
  lastFrameAt = 0;
  private serverOffsetMs = 0;
  /** Server time up to which the previous connection is known to have been live. */
  private liveUntil: number | undefined;
  /**
   * The position the server vouches for (SSE event ids): it stops moving while the server repairs
   * a gap in its live feed, which the client cannot see, so resuming never starts after it.
   */
  private serverPosition: string | undefined;

  constructor(
    private readonly cursors: RoomCursors,
    /** Rooms the connection receives. */
    private readonly joined: ReadonlySet<string>,
    /** Whether the current transport said welcome (the client is live now). */
    private readonly isLive: () => boolean,
  ) {}

  /** A `welcome` arrived: the server's clock, and the client is live from now. */
  welcomed(serverTime: string): void {
    this.serverOffsetMs = Date.parse(serverTime) - Date.now();
    this.lastFrameAt = Date.now();
  }

  /** A frame arrived on the welcomed transport. */
  heard(): void {
    this.lastFrameAt = Date.now();
  }

  /** The welcomed transport ended: the client was live until its last frame. */
  lost(): void {
    this.liveUntil = this.lastFrameAt + this.serverOffsetMs;
  }

  /** The server's own resume position (an SSE event id `*:<messageId>`). */
  vouched(messageId: string): void {
    this.serverPosition = messageId;
  }

  /** Where the room resumes from over a WebSocket (`resume` frame), if anywhere. */
  position(roomId: string): string | undefined {
    const live = this.liveAt();
    return maxId(this.cursors.position(roomId), live === undefined ? undefined : idAt(live - RESUME_MARGIN_MS));
  }

  /** Resume positions in the fallback routes' text form: `*:<id>` covers every room of the connection. */
  text(): string {
    const live = this.liveAt();
    if (live === undefined) return '';
    const mine = idAt(live - RESUME_MARGIN_MS);
    const any = this.serverPosition !== undefined && maxId(mine, this.serverPosition) === mine ? this.serverPosition : mine;
    const rooms = [...this.joined].flatMap((roomId) => {
      const pos = this.cursors.position(roomId);
      return pos !== undefined && maxId(pos, any) === pos && pos !== any ? [`${roomId}:${pos}`] : [];
    });
    return [...rooms.slice(0, RESUME_MAX_ROOMS - 1), `*:${any}`].join(',');
  }

  /** Where messages of the room may have been missed from, when the server could not replay them. */
  gapStart(roomId: string): string | undefined {
    return this.cursors.position(roomId) ?? (this.liveUntil !== undefined ? idAt(this.liveUntil - RESUME_MARGIN_MS) : undefined);
  }

  /** Server time up to which everything reached us: now while connected, else when the last connection ended. */
  private liveAt(): number | undefined {
    return this.isLive() ? this.lastFrameAt + this.serverOffsetMs : this.liveUntil;
  }
}
