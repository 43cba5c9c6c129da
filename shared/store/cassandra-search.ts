import type cassandra from 'cassandra-driver';
import type { Message } from '../domain/models.ts';
import type { MessageRows } from './cassandra-messages.ts';
import type { CassandraSession } from './cassandra-session.ts';
import { inParallel } from './in-parallel.ts';
import { queryTerms } from './search-terms.ts';
import { bound } from './store-input.ts';
import type { SearchQuery, Store } from './store.ts';

type Row = cassandra.types.Row;

/** Search through the SAI index on `content_terms`, one bucket of one room per query. */
export function cassandraSearch(db: CassandraSession, rows: MessageRows): Pick<Store, 'search'> {
  /** Messages of one bucket matching every term, newest first. */
  async function searchBucket(roomId: string, bucket: number, terms: string[], limit: number): Promise<Row[]> {
    const rs = await db.exec('search', db.q.search(terms.length), [roomId, bucket, ...terms, limit]);
    return rs.rows.filter((r) => r.get('created') === true && r.get('deleted') !== true);
  }

  return {
    async search(q: SearchQuery) {
      const terms = queryTerms(q.text);
      const limit = bound(q.limit);
      const roomIds = [...new Set(q.roomIds)];
      if (terms.length === 0 || roomIds.length === 0 || limit === 0) return [];
      // Walk the time windows newest first, all rooms at once, until `limit` matches are in hand:
      // every match of an older window is older than every match found so far.
      const bucketsByRoom = await Promise.all(roomIds.map((r) => rows.bucketsOf('search', r)));
      const windows = [...new Set(bucketsByRoom.flat())].sort((a, b) => b - a);
      const found: Array<{ roomId: string; row: Row }> = [];
      for (const w of windows) {
        const rooms = roomIds.filter((_, i) => bucketsByRoom[i]!.includes(w));
        const perRoom: Row[][] = new Array(rooms.length);
        await inParallel(rooms.map((r, i) => [r, i] as const), db.writeConcurrency, async ([roomId, i]) => {
          perRoom[i] = await searchBucket(roomId, w, terms, limit);
        });
        rooms.forEach((roomId, i) => { for (const row of perRoom[i]!) found.push({ roomId, row }); });
        if (found.length >= limit) break;
      }
      found.sort((a, b) => {
        const x = a.row.get('message_id') as bigint;
        const y = b.row.get('message_id') as bigint;
        return x < y ? 1 : x > y ? -1 : 0;
      });
      const top = found.slice(0, limit);
      // Rows may span rooms: fetch reactions per room, keep the newest-first order.
      const byRoom = new Map<string, Row[]>();
      for (const f of top) {
        const list = byRoom.get(f.roomId);
        if (list) list.push(f.row);
        else byRoom.set(f.roomId, [f.row]);
      }
      const built = new Map<Row, Message>();
      await Promise.all([...byRoom].map(async ([roomId, list]) => {
        const msgs = await rows.toMessages(roomId, list);
        list.forEach((r, i) => built.set(r, msgs[i]!));
      }));
      return top.map((f) => built.get(f.row)!);
    },
  };
}
