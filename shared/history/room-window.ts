import type { DurableEvent } from '../domain/events.ts';
import type { Message } from '../domain/models.ts';
import { roomIdOf, type RoomKey } from '../domain/room-key.ts';
import { compareIds, isId } from '../ids/index.ts';
import { historyCursor, type HistoryQuery } from '../store/index.ts';
import { applyEvent, emptyState, materialize, messageJson, seedState, stateBytes, type MessageState } from './message-state.ts';

/** One message of a history page: its id and its JSON, exactly as `JSON.stringify` of the store's message. */
export interface HistoryItem {
  readonly messageId: string;
  readonly json: string;
}

/** Bytes held by every window of a process, for their common bound. */
export interface ByteBudget {
  used: number;
}

/**
 * The newest part of one room's main timeline, kept current by applying the room's stored events
 * as they are announced (message-state.ts applies them as the stores do).
 *
 * The window covers the timeline from `floor` up: every created main-timeline message with an id
 * at or above it is in `timeline`, with a state that holds at least what the store holds for it.
 * `floor` is the oldest message of the first store read (none when the room had fewer than the
 * window holds) and moves up as the oldest messages are pushed out by the per-room bound. A page
 * within the covered range is served from memory; a page that reaches below it is the store's
 * page merged with what the window knows of those messages (`others`: messages pushed out,
 * placeholders of events whose create the window has not seen, thread replies), so that a read
 * shows every event the window applied even before the persister wrote it.
 */
export class RoomWindow {
  private readonly states = new Map<string, MessageState>();
  /** Created main-timeline states at or above `floor`, oldest first. */
  private readonly timeline: MessageState[] = [];
  /** Every other state, least recently touched first (bounded like the timeline). */
  private readonly others = new Map<string, MessageState>();
  /** Lowest covered id; undefined while the window covers the room's whole timeline. */
  private floor: string | undefined;
  private held = 0;
  /** Cleared: late events (a feed's read-backs) and reads in flight change nothing any more. */
  private closed = false;

  /**
   * `maxMessages` bounds the timeline, `maxOthers` (default the same) the other states. A page
   * below the floor shows an event the persister has not written yet only while the state it
   * touched is still among the others: the least recently touched are dropped first, so with
   * event times in stream order the bound is `maxOthers` messages touched per persister lag.
   */
  /** The room's id, as its messages show it. */
  private readonly id: string;

  /** `roomId` is the room's key (shared/domain/room-key.ts), as its events name it. */
  constructor(
    readonly roomId: RoomKey,
    private readonly maxMessages: number,
    private readonly budget: ByteBudget,
    private readonly maxOthers = maxMessages,
  ) {
    this.id = roomIdOf(roomId);
  }

  /** Bytes this window holds (approximately). */
  get bytes(): number {
    return this.held;
  }

  /**
   * Applies one stored event of the room; events of other rooms, read marks and deliveries, and
   * malformed events (which no store accepts) are ignored. Idempotent and order-independent.
   */
  apply(e: DurableEvent): void {
    if (this.closed || e.roomId !== this.roomId || typeof e.at !== 'number' || !Number.isFinite(e.at)) return;
    let id: string;
    if (e.kind === 'message.created') {
      if (e.message?.roomId !== this.id || (e.message.threadId != null && !isId(e.message.threadId))) return;
      id = e.message.messageId;
    } else if (e.kind === 'read.marked' || e.kind === 'message.delivered') {
      return;
    } else {
      id = e.messageId;
    }
    if (typeof id !== 'string' || !isId(id)) return;
    // the content key's event id: the stores refuse an event whose id they cannot order by
    if ((e.kind === 'message.created' || e.kind === 'message.edited') && (typeof e.id !== 'string' || !isId(e.id))) return;
    const s = this.stateOf(id);
    const before = stateBytes(s);
    if (!applyEvent(s, e)) return;
    this.placed(s, before);
  }

  /**
   * Seeds the window with the store's newest page (newest first). `whole`: the page holds the
   * room's entire timeline, so the window covers all of it.
   */
  seed(rows: readonly Message[], whole: boolean): void {
    if (!whole && rows.length > 0) {
      this.floor = rows[rows.length - 1]!.messageId;
      // events applied while the store was read filed their messages as if the window covered everything
      while (this.timeline.length > 0 && compareIds(this.timeline[0]!.messageId, this.floor) < 0) {
        const s = this.timeline.shift()!;
        this.others.set(s.messageId, s);
      }
    }
    for (let i = rows.length - 1; i >= 0; i--) {
      const row = rows[i]!;
      const s = this.stateOf(row.messageId);
      const before = stateBytes(s);
      if (seedState(s, row)) this.placed(s, before);
    }
  }

  /**
   * Joins a later read of the store's newest page into the covered range: messages the window
   * missed (stored before its watch began and written by the persister only after its replay)
   * come in, and fields no event decided take the store's newer answer.
   */
  refresh(rows: readonly Message[]): void {
    for (let i = rows.length - 1; i >= 0; i--) {
      const row = rows[i]!;
      if (this.floor !== undefined && compareIds(row.messageId, this.floor) < 0) continue;
      const s = this.stateOf(row.messageId);
      const before = stateBytes(s);
      if (seedState(s, row)) this.placed(s, before);
    }
  }

  /**
   * A page of the main timeline with Store.history's rules (newest first; `before`/`after` are
   * exclusive bounds; with `after` alone, the oldest `limit` after it). `readStore` is the store's
   * history of this room, asked only when the page reaches below the covered range.
   */
  async read(q: HistoryQuery, readStore: (q: HistoryQuery) => Promise<Message[]>): Promise<HistoryItem[]> {
    const limit = q.limit > 0 ? Math.trunc(q.limit) : 0;
    if (limit === 0) return [];
    // cursors as the store takes them: refused when not an id, compared as numbers
    const before = q.before === undefined ? undefined : historyCursor(q.before, 'before').toString();
    const after = q.after === undefined ? undefined : historyCursor(q.after, 'after').toString();
    const ascending = after !== undefined && before === undefined;
    const picked = this.pick(before, after, limit, ascending);
    const covered = this.floor === undefined || (after !== undefined && compareIds(after, this.floor) >= 0);
    if (covered || (!ascending && picked.length === limit)) {
      if (ascending) picked.reverse();
      return picked.map((s) => this.item(s));
    }
    return this.merge({ limit, before, after }, ascending, picked, await readStore(q));
  }

  /**
   * One message (thread replies included) as Store.getMessage returns it, with what the window
   * knows of it; `readStore` is asked unless the window covers the message.
   */
  async message(id: string, readStore: () => Promise<Message | undefined>): Promise<Message | undefined> {
    let s = this.states.get(id);
    if (s !== undefined && s.created && !this.others.has(id)) return materialize(s, this.roomId);
    const row = await readStore();
    s = this.states.get(id);
    if (s === undefined) return row;
    if (row !== undefined) {
      const before = stateBytes(s);
      if (seedState(s, row)) this.placed(s, before);
    }
    return s.created ? materialize(s, this.roomId) : undefined;
  }

  /** Forgets everything (the room is no longer watched). */
  clear(): void {
    this.closed = true;
    this.budget.used -= this.held;
    this.held = 0;
    this.states.clear();
    this.others.clear();
    this.timeline.length = 0;
  }

  private stateOf(id: string): MessageState {
    let s = this.states.get(id);
    if (s === undefined) {
      s = emptyState(id);
      this.states.set(id, s);
      this.others.set(id, s);
    }
    return s;
  }

  private belongsInTimeline(s: MessageState): boolean {
    return s.created && s.threadId === null && (this.floor === undefined || compareIds(s.messageId, this.floor) >= 0);
  }

  /** Files a state that changed where it belongs, accounts its bytes and keeps the bounds. */
  private placed(s: MessageState, bytesBefore: number): void {
    const inTimeline = !this.others.has(s.messageId);
    if (!inTimeline) {
      this.others.delete(s.messageId);
      if (this.belongsInTimeline(s)) this.insert(s);
      else this.others.set(s.messageId, s);
    }
    this.account(stateBytes(s) - bytesBefore);
    while (this.timeline.length > this.maxMessages) {
      const oldest = this.timeline.shift()!;
      this.floor = this.timeline[0]!.messageId;
      this.others.set(oldest.messageId, oldest);
    }
    while (this.others.size > this.maxOthers) {
      const [id, dropped] = this.others.entries().next().value as [string, MessageState];
      this.others.delete(id);
      this.states.delete(id);
      this.account(-stateBytes(dropped));
    }
  }

  private insert(s: MessageState): void {
    const t = this.timeline;
    let i = t.length;
    // new messages are nearly always the newest: search from the end
    while (i > 0 && compareIds(t[i - 1]!.messageId, s.messageId) > 0) i--;
    t.splice(i, 0, s);
  }

  private account(delta: number): void {
    if (this.closed) return;
    this.held += delta;
    this.budget.used += delta;
  }

  private item(s: MessageState): HistoryItem {
    if (s.json !== undefined) return { messageId: s.messageId, json: s.json };
    const before = stateBytes(s);
    const json = messageJson(s, this.roomId);
    this.account(stateBytes(s) - before);
    return { messageId: s.messageId, json };
  }

  /** Up to `limit` timeline states inside the bounds, in the direction of travel. */
  private pick(before: string | undefined, after: string | undefined, limit: number, ascending: boolean): MessageState[] {
    const t = this.timeline;
    const out: MessageState[] = [];
    if (ascending) {
      for (let i = this.firstAbove(after!); i < t.length && out.length < limit; i++) out.push(t[i]!);
      return out;
    }
    let i = before === undefined ? t.length - 1 : this.firstAtOrAbove(before) - 1;
    for (; i >= 0 && out.length < limit; i--) {
      const s = t[i]!;
      if (after !== undefined && compareIds(s.messageId, after) <= 0) break;
      out.push(s);
    }
    return out;
  }

  private firstAtOrAbove(id: string): number {
    let lo = 0;
    let hi = this.timeline.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareIds(this.timeline[mid]!.messageId, id) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private firstAbove(id: string): number {
    let i = this.firstAtOrAbove(id);
    if (i < this.timeline.length && this.timeline[i]!.messageId === id) i++;
    return i;
  }

  /**
   * The store's page joined with the window: its own states for the messages it covers, what it
   * knows of the others (events applied since), and created messages the store does not hold yet.
   */
  private merge(q: { limit: number; before: string | undefined; after: string | undefined }, ascending: boolean, picked: MessageState[], rows: Message[]): HistoryItem[] {
    const limit = q.limit;
    const chosen = new Map<string, HistoryItem>();
    for (const s of picked) chosen.set(s.messageId, this.item(s));
    for (const s of this.others.values()) {
      if (s.created && s.threadId === null && inRange(s.messageId, q)) chosen.set(s.messageId, this.item(s));
    }
    for (const row of rows) {
      const s = this.states.get(row.messageId);
      if (s === undefined) {
        chosen.set(row.messageId, { messageId: row.messageId, json: JSON.stringify(row) });
        continue;
      }
      const before = stateBytes(s);
      if (seedState(s, row)) this.placed(s, before);
      chosen.set(row.messageId, this.item(s));
    }
    const ids = [...chosen.keys()].sort(compareIds);
    const page = ascending ? ids.slice(0, limit) : ids.slice(Math.max(0, ids.length - limit));
    return page.reverse().map((id) => chosen.get(id)!);
  }

  /** The message the window would show for an id (tests). */
  messageOf(id: string): Message | undefined {
    const s = this.states.get(id);
    return s?.created ? materialize(s, this.roomId) : undefined;
  }
}

function inRange(id: string, q: { before: string | undefined; after: string | undefined }): boolean {
  return (q.before === undefined || compareIds(id, q.before) < 0) && (q.after === undefined || compareIds(id, q.after) > 0);
}
