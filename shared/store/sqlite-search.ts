import type { Message } from '../domain/models.ts';
import { queryTerms } from './search-terms.ts';
import type { SqliteContext } from './sqlite-context.ts';
import { withReactions, type MessageRow } from './sqlite-messages.ts';
import { bound } from './store-input.ts';
import type { SearchQuery, Store } from './store.ts';

/**
 * Turns user text into an FTS5 query that cannot be a syntax error: every word of search-terms.ts
 * becomes a quoted string (so AND, OR, NEAR, quotes, parentheses, colons and stars are just text)
 * and all of them must match as whole words. Undefined when the text has no word at all.
 */
export function ftsQuery(text: string): string | undefined {
  const terms = queryTerms(text);
  return terms.length === 0 ? undefined : terms.map((w) => `"${w}"`).join(' ');
}

/** Search through message_fts, which sqlite-events.ts keeps in step with the messages. */
export function sqliteSearch({ s, run }: SqliteContext): Pick<Store, 'search'> {
  return {
    search: (q: SearchQuery) => run('search', () => {
      const match = ftsQuery(q.text);
      const limit = bound(q.limit);
      if (match === undefined || q.roomIds.length === 0 || limit === 0) return [];
      const rows = s.search.all({ match, rooms: JSON.stringify(q.roomIds), limit }) as MessageRow[];
      // Rows may span rooms: fetch reactions per room, keep the newest-first order.
      const byRoom = new Map<string, MessageRow[]>();
      for (const r of rows) {
        const list = byRoom.get(r.room_id);
        if (list === undefined) byRoom.set(r.room_id, [r]);
        else list.push(r);
      }
      const built = new Map<MessageRow, Message>();
      for (const [roomId, list] of byRoom) {
        const msgs = withReactions(s, roomId, list);
        for (let i = 0; i < list.length; i++) built.set(list[i]!, msgs[i]!);
      }
      return rows.map((r) => built.get(r)!);
    }),
  };
}
