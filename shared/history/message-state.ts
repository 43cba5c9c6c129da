import type { DurableEvent } from '../domain/events.ts';
import type { Message } from '../domain/models.ts';
import type { RoomKey } from '../domain/room-key.ts';
import { compareIds, idTime } from '../ids/index.ts';
import { messageBody, toMessage } from '../store/index.ts';

/**
 * One message as the window keeps it: every field an event changes, with the last-writer-wins
 * key that decided it, so that events apply here exactly as the stores apply them
 * (shared/store/sqlite-statements.ts is the reference):
 * - content is LWW on (at, event id); the create's content clears `editedAt`, an edit's sets it;
 *   a deleted message's content is '' whatever wins afterwards;
 * - a delete is a tombstone; `deletedAt` keeps the latest delete time;
 * - pin and each (emoji, user) reaction are LWW on `at`, and on equal times the removal wins;
 * - the fields no later event changes (author, thread, the JSON body) come from the first create;
 * - a state that has seen events but no create is a placeholder: reads skip it, like the stores.
 *
 * A state seeded from a message the store returned does not know the keys that decided its
 * fields (the store does not return them): they are taken as older than any event the window
 * applies afterwards, which holds while event times follow the order events are stored in (the
 * clocks of the processes that stamp them agree to within the time between two events of one
 * message). Reactions seeded that way keep the store's order of each emoji's users; the order of
 * the emojis among themselves (the key order of `reactions`) can differ from the store's once the
 * first reactor of an emoji is removed, as the store's answer does not say how the reactions of
 * different emojis interleave. A state seeded again takes the store's newer answer for every
 * field no event decided.
 */
export interface MessageState {
  readonly messageId: string;
  created: boolean;
  authorId: string;
  threadId: string | null;
  /** JSON of the fields no event after the create changes (message-record.ts MessageBody). */
  body: string;
  content: string;
  /** LWW key of `content`: time, then event id ('' when unknown: loses a tie). -Infinity: unknown. */
  contentAt: number;
  contentId: string;
  editedAt: number | undefined;
  deletedAt: number | undefined;
  pinned: boolean;
  /** -Infinity when unknown (seeded) or never pinned. */
  pinnedAt: number;
  /** `emoji \0 userId` -> the winning reaction event. */
  reactions: Map<string, ReactionCell>;
  /** The message as clients see it and its JSON, built on first read after a change. */
  message: Message | undefined;
  json: string | undefined;
}

export interface ReactionCell {
  emoji: string;
  userId: string;
  present: boolean;
  at: number;
  /** Taken from a store read, not decided by an event the window applied. */
  seeded: boolean;
}

/** Seeded reactions get times below any real one, in the store's order. */
const SEEDED_REACTION_AT = -1e15;

export function emptyState(messageId: string): MessageState {
  return {
    messageId, created: false, authorId: '', threadId: null, body: '', content: '', contentAt: -Infinity, contentId: '',
    editedAt: undefined, deletedAt: undefined, pinned: false, pinnedAt: -Infinity, reactions: new Map(), message: undefined, json: undefined,
  };
}

/** The content key (at, id) beats the state's. */
function contentWins(s: MessageState, at: number, id: string): boolean {
  return at > s.contentAt || (at === s.contentAt && compareIds(id, s.contentId) > 0);
}

/**
 * Applies one event of this message; returns whether anything a read shows may have changed.
 * Read marks and deliveries change no message and are not passed here.
 */
export function applyEvent(s: MessageState, e: DurableEvent): boolean {
  switch (e.kind) {
    case 'message.created': {
      const m = e.message;
      if (!s.created) {
        s.created = true;
        s.authorId = m.authorId;
        s.threadId = m.threadId ?? null;
        s.body = messageBody(m);
      }
      if (contentWins(s, e.at, e.id)) {
        s.content = s.deletedAt !== undefined ? '' : m.content;
        s.editedAt = undefined;
        s.contentAt = e.at;
        s.contentId = e.id;
      }
      break;
    }
    case 'message.edited':
      if (!contentWins(s, e.at, e.id)) return false;
      s.content = s.deletedAt !== undefined ? '' : e.content;
      s.editedAt = e.at;
      s.contentAt = e.at;
      s.contentId = e.id;
      break;
    case 'message.deleted':
      s.content = '';
      if (s.deletedAt === undefined || e.at > s.deletedAt) s.deletedAt = e.at;
      break;
    case 'message.pinned':
      if (!(e.at > s.pinnedAt)) return false;
      s.pinned = true;
      s.pinnedAt = e.at;
      break;
    case 'message.unpinned':
      if (!(e.at >= s.pinnedAt)) return false;
      s.pinned = false;
      s.pinnedAt = e.at;
      break;
    case 'reaction.added':
    case 'reaction.removed': {
      const key = `${e.emoji}\0${e.userId}`;
      const cell = s.reactions.get(key);
      const add = e.kind === 'reaction.added';
      if (cell === undefined) s.reactions.set(key, { emoji: e.emoji, userId: e.userId, present: add, at: e.at, seeded: false });
      else if (add ? e.at > cell.at : e.at >= cell.at) {
        cell.present = add;
        cell.at = e.at;
        cell.seeded = false;
      } else return false;
      break;
    }
    default:
      return false;
  }
  s.message = undefined;
  s.json = undefined;
  return true;
}

/**
 * Joins what the store returned for this message into the state: every field the state has no
 * newer key for takes the store's value (see the note on seeding above). The content of a
 * message that was never edited is keyed as its create is: the message's id and time (the
 * command layer stamps a create with its id's time). Returns whether it changed.
 */
export function seedState(s: MessageState, m: Message): boolean {
  let changed = false;
  if (!s.created) {
    s.created = true;
    s.authorId = m.authorId;
    s.threadId = m.threadId;
    s.body = messageBody(m);
    changed = true;
  }
  if (m.isDeleted) {
    const at = m.deletedAt === undefined ? -Infinity : Date.parse(m.deletedAt);
    if (s.deletedAt === undefined || at > s.deletedAt) {
      s.deletedAt = at;
      s.content = '';
      changed = true;
    }
  }
  const editedAt = m.editedAt === undefined ? undefined : Date.parse(m.editedAt);
  const at = editedAt ?? idTime(m.messageId);
  const id = editedAt === undefined ? m.messageId : '';
  if (contentWins(s, at, id)) {
    s.content = s.deletedAt !== undefined ? '' : m.content;
    s.editedAt = editedAt;
    s.contentAt = at;
    s.contentId = id;
    changed = true;
  }
  if (s.pinnedAt === -Infinity && s.pinned !== m.isPinned) {
    s.pinned = m.isPinned;
    changed = true;
  }
  if (seedReactions(s, m.reactions)) changed = true;
  if (changed) {
    s.message = undefined;
    s.json = undefined;
  }
  return changed;
}

/**
 * Reactions no event of the window decided follow the store's latest answer, in its order;
 * those an event decided keep the event's outcome.
 */
function seedReactions(s: MessageState, reactions: Record<string, string[]>): boolean {
  let changed = false;
  const listed = new Set<string>();
  let order = 0;
  for (const [emoji, users] of Object.entries(reactions)) {
    for (const userId of users) {
      const key = `${emoji}\0${userId}`;
      listed.add(key);
      const at = SEEDED_REACTION_AT + order++;
      const cell = s.reactions.get(key);
      if (cell === undefined) {
        s.reactions.set(key, { emoji, userId, present: true, at, seeded: true });
        changed = true;
      } else if (cell.seeded && cell.at !== at) {
        cell.at = at;
        changed = true;
      }
    }
  }
  for (const [key, cell] of s.reactions) {
    if (cell.seeded && !listed.has(key)) {
      s.reactions.delete(key);
      changed = true;
    }
  }
  return changed;
}

/** The message a store would return for this state (only for created states). */
export function materialize(s: MessageState, roomId: RoomKey): Message {
  if (s.message !== undefined) return s.message;
  const cells: ReactionCell[] = [];
  for (const c of s.reactions.values()) if (c.present) cells.push(c);
  // the stores' order: by time, then user id, then emoji (SQLite compares text as UTF-8 bytes)
  cells.sort((a, b) => (a.at !== b.at ? a.at - b.at : compareText(a.userId, b.userId) || compareText(a.emoji, b.emoji)));
  const reactions: Record<string, string[]> = {};
  for (const c of cells) (reactions[c.emoji] ??= []).push(c.userId);
  const deleted = s.deletedAt !== undefined;
  s.message = toMessage({
    messageId: s.messageId, room: roomId, authorId: s.authorId, threadId: s.threadId, body: s.body, content: s.content,
    editedAt: s.editedAt, deleted, deletedAt: deleted && Number.isFinite(s.deletedAt) ? s.deletedAt : undefined, pinned: s.pinned,
  }, reactions);
  return s.message;
}

/** Code point order, which is the byte order of UTF-8 (UTF-16 units order astral characters differently). */
function compareText(a: string, b: string): number {
  if (a === b) return 0;
  for (let i = 0; ; ) {
    const x = a.codePointAt(i);
    const y = b.codePointAt(i);
    if (x === undefined || y === undefined) return x === undefined ? (y === undefined ? 0 : -1) : 1;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
  }
}

/** The JSON of `materialize`, made once per change: reads serve it as is. */
export function messageJson(s: MessageState, roomId: RoomKey): string {
  return (s.json ??= JSON.stringify(materialize(s, roomId)));
}

/** About how much memory the state holds, for the window's byte bound. */
export function stateBytes(s: MessageState): number {
  return 400 + 2 * (s.body.length + s.content.length + (s.json?.length ?? 0)) + 96 * s.reactions.size;
}
