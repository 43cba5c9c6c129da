import type { Message } from '../domain/models.ts';
import { toMessage } from './message-record.ts';
import type { SqliteContext } from './sqlite-context.ts';
import type { SqliteStatements } from './sqlite-statements.ts';
import { MAX_ID, bound, cursor, parseId } from './store-input.ts';
import type { HistoryQuery, Store } from './store.ts';

/** A created message as the read statements select it (MESSAGE_COLUMNS). */
export interface MessageRow {
  id: string; room_id: string; author_id: string; thread_id: string | null; body: string; content: string;
  edited_at: number | null; deleted_at: number | null; pinned: number;
}

/** Messages of rows of one room, with their reactions (one query for all of them). */
export function withReactions(s: SqliteStatements, roomId: string, rows: MessageRow[]): Message[] {
  if (rows.length === 0) return [];
  const reactions = new Map<string, Record<string, string[]>>();
  const ids = '[' + rows.map((r) => r.id).join(',') + ']';
  for (const r of s.reactionsOf.all(roomId, ids) as Array<{ id: string; emoji: string; user_id: string }>) {
    let byEmoji = reactions.get(r.id);
    if (byEmoji === undefined) reactions.set(r.id, (byEmoji = {}));
    (byEmoji[r.emoji] ??= []).push(r.user_id);
  }
  return rows.map((row) => toMessage({
    messageId: row.id, room: row.room_id, authorId: row.author_id, threadId: row.thread_id, body: row.body,
    content: row.content, editedAt: row.edited_at ?? undefined, deleted: row.deleted_at !== null,
    deletedAt: row.deleted_at ?? undefined, pinned: row.pinned === 1,
  }, reactions.get(row.id) ?? {}));
}

/** Reads of messages by id, by page of a timeline or thread, and the pinned ones. */
export function sqliteMessages({ s, run }: SqliteContext): Pick<Store, 'getMessage' | 'history' | 'pinned'> {
  return {
    getMessage: (roomId, messageId) => run('getMessage', () => {
      const id = parseId(messageId);
      if (id === undefined) return undefined;
      const row = s.getMessage.get(roomId, id) as MessageRow | undefined;
      return row === undefined ? undefined : withReactions(s, roomId, [row])[0];
    }),

    history: (roomId, q: HistoryQuery) => run('history', () => {
      const limit = bound(q.limit);
      if (limit === 0) return [];
      const params = {
        roomId, limit,
        before: q.before === undefined ? MAX_ID : cursor(q.before, 'before'),
        after: q.after === undefined ? -1n : cursor(q.after, 'after'),
        threadId: q.threadId === undefined ? null : cursor(q.threadId, 'threadId'),
      };
      const oldestFirst = q.after !== undefined && q.before === undefined;
      const stmt = q.threadId === undefined
        ? (oldestFirst ? s.historyAsc : s.historyDesc)
        : (oldestFirst ? s.threadAsc : s.threadDesc);
      const rows = stmt.all(params) as MessageRow[];
      if (oldestFirst) rows.reverse();
      return withReactions(s, roomId, rows);
    }),

    pinned: (roomId) => run('pinned', () => withReactions(s, roomId, s.pinned.all(roomId) as MessageRow[])),
  };
}
