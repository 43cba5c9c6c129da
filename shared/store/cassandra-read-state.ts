import type { MessageStatus, ReadState } from '../domain/models.ts';
import { roomIdOf } from '../domain/room-key.ts';
import { bucketOf } from './cassandra-buckets.ts';
import type { MessageRows } from './cassandra-messages.ts';
import { PAGE_SIZE, type CassandraSession } from './cassandra-session.ts';
import { bound, cursor, parseId } from './store-input.ts';
import type { Store } from './store.ts';

/**
 * Read marks and deliveries: how far a user has read, what is unread, who got and read a message.
 * Marks and deliveries keep their earliest time (written at reversed timestamps).
 */
export function cassandraReadState(db: CassandraSession, rows: MessageRows): Pick<Store, 'getReadState' | 'countUnread' | 'messageStatus'> {
  const { q } = db;
  return {
    async getReadState(roomId, userId) {
      const row = (await db.exec('getReadState', q.readState, [roomId, userId])).first();
      if (!row) return undefined;
      return {
        roomId: roomIdOf(roomId), userId, lastReadId: (row.get('message_id') as bigint).toString(), readAt: iso(row.get('at') as bigint),
      } satisfies ReadState;
    },

    async countUnread(roomId, userId, afterId, cap) {
      const limit = bound(cap);
      if (limit === 0) return 0;
      const after = afterId === undefined ? -1n : cursor(afterId, 'afterId');
      const low = bucketOf(after < 0n ? 0n : after);
      const buckets = (await rows.bucketsOf('countUnread', roomId)).filter((b) => b >= low);
      let n = 0;
      for (const b of buckets) {
        let pageState: string | undefined;
        do {
          const rs = await db.exec('countUnread', q.unreadScan, [roomId, b, after], { fetchSize: Math.min(PAGE_SIZE, limit * 2), ...(pageState ? { pageState } : {}) });
          for (const r of rs.rows) {
            if (r.get('author_id') !== userId && r.get('deleted') !== true && ++n >= limit) return n;
          }
          pageState = rs.pageState ?? undefined;
        } while (pageState);
      }
      return n;
    },

    async messageStatus(roomId, messageId) {
      const id = parseId(messageId);
      if (id === undefined) return [];
      const [delivered, readers, message] = await Promise.all([
        db.all('messageStatus', q.deliveries, [roomId, id]),
        db.all('messageStatus', q.readUsers, [roomId]),
        db.exec('messageStatus', q.author, [roomId, bucketOf(id), id]),
      ]);
      const status = new Map<string, MessageStatus>();
      for (const r of delivered) {
        const userId = r.get('user_id') as string;
        status.set(userId, { messageId, userId, deliveredAt: iso(r.get('at') as bigint) });
      }
      const readAt = await Promise.all(readers.map(async (r) => {
        const userId = r.get('user_id') as string;
        const first = (await db.exec('messageStatus', q.firstReadAt, [roomId, userId, id])).first();
        return { userId, at: (first?.get('at') ?? null) as bigint | null };
      }));
      for (const { userId, at } of readAt) {
        if (at === null) continue;
        const st = status.get(userId) ?? { messageId, userId };
        st.readAt = iso(at);
        status.set(userId, st);
      }
      const row = message.first();
      const author = row && row.get('created') === true ? (row.get('author_id') as string) : undefined;
      return [...status.values()].filter((s) => s.userId !== author).sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
    },
  };
}

const iso = (ms: bigint) => new Date(Number(ms)).toISOString();
