import { compareIds, idAtTime } from '../ids/snowflake.ts';
import type { Message, ServerFrame } from './types.ts';

/**
 * Per-room resume state: the newest message id seen, and a bounded set of the durable events
 * already delivered to the application, so replays that overlap live delivery (resume starts a
 * skew window early; two gateways publish slightly out of order) show nothing twice.
 *
 * Events are known by `seq` plus what they are about. `seq` alone would do with a stream that
 * keeps its numbering, but the embedded (in-process) stream starts again from 1 after a restart;
 * a new message is known by its id alone, so history loaded over REST counts as seen too.
 */
export class RoomCursors {
  private readonly last = new Map<string, string>();
  private readonly seen = new Map<string, Set<string>>();

  constructor(private readonly perRoom: number) {}

  /** False when the event was delivered already: drop it. Frames that are not durable events pass. */
  accept(frame: ServerFrame): boolean {
    const key = eventKey(frame);
    if (key === undefined) return true;
    const roomId = (frame as { roomId: string }).roomId;
    if (!this.remember(roomId, key)) return false;
    if (frame.type === 'new_message') this.advance(roomId, frame.message.messageId);
    return true;
  }

  /** A message from history: seen from now on, and a resume position. False if it was seen already. */
  acceptMessage(m: Message): boolean {
    const fresh = this.remember(m.roomId, `m:${m.messageId}`);
    this.advance(m.roomId, m.messageId);
    return fresh;
  }

  /** The newest message id seen in the room. */
  position(roomId: string): string | undefined {
    return this.last.get(roomId);
  }

  forget(roomId: string): void {
    this.last.delete(roomId);
    this.seen.delete(roomId);
  }

  private remember(roomId: string, key: string): boolean {
    let set = this.seen.get(roomId);
    if (!set) this.seen.set(roomId, (set = new Set()));
    if (set.has(key)) return false;
    set.add(key);
    // Sets iterate in insertion order: the first key is the oldest.
    if (set.size > this.perRoom) set.delete(set.values().next().value!);
    return true;
  }

  private advance(roomId: string, messageId: string): void {
    const prev = this.last.get(roomId);
    if (prev === undefined || compareIds(messageId, prev) > 0) this.last.set(roomId, messageId);
  }
}

/** What makes a durable event itself; undefined for frames that are not durable events. */
export function eventKey(f: ServerFrame): string | undefined {
  switch (f.type) {
    case 'new_message': return `m:${f.message.messageId}`;
    case 'message_updated': return `u:${f.seq}:${f.messageId}:${f.editedAt}`;
    case 'message_deleted': return `d:${f.messageId}`;
    case 'reaction_updated': return `r:${f.seq}:${f.messageId}:${f.userId}:${f.emoji}:${f.action}`;
    case 'message_pinned': return `p:${f.seq}:${f.messageId}:${f.pinned}`;
    case 'read_receipt': return `rr:${f.seq}:${f.userId}:${f.messageId}`;
    case 'message_status': return `s:${f.messageId}:${f.userId}:${f.status}`;
    default: return undefined;
  }
}

/** The smallest message id of a moment (server time): a resume position from a time. */
export function idAt(ms: number): string {
  return idAtTime(ms);
}

export function maxId(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return compareIds(a, b) >= 0 ? a : b;
}
