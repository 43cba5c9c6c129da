import type { MessageStatus, ReadState } from '../domain/models.ts';
import { roomIdOf } from '../domain/room-key.ts';
import type { SqliteContext } from './sqlite-context.ts';
import { bound, cursor, parseId } from './store-input.ts';
import type { Store } from './store.ts';

/** Read marks and deliveries: how far a user has read, what is unread, who got and read a message. */
export function sqliteReadState({ s, run }: SqliteContext): Pick<Store, 'getReadState' | 'countUnread' | 'messageStatus'> {
  return {
    getReadState: (roomId, userId) => run('getReadState', () => {
      const row = s.readState.get(roomId, userId) as { id: string; at: number } | undefined;
      if (row === undefined) return undefined;
      return { roomId: roomIdOf(roomId), userId, lastReadId: row.id, readAt: new Date(row.at).toISOString() } satisfies ReadState;
    }),

    countUnread: (roomId, userId, afterId, cap) => run('countUnread', () => {
      const limit = bound(cap);
      if (limit === 0) return 0;
      const after = afterId === undefined ? -1n : cursor(afterId, 'afterId');
      return (s.countUnread.get({ roomId, userId, after, cap: limit }) as { n: number }).n;
    }),

    messageStatus: (roomId, messageId) => run('messageStatus', () => {
      const id = parseId(messageId);
      if (id === undefined) return [];
      const rows = s.messageStatus.all({ roomId, messageId: id }) as Array<{ user_id: string; delivered_at: number | null; read_at: number | null }>;
      return rows.map((r) => {
        const st: MessageStatus = { messageId, userId: r.user_id };
        if (r.delivered_at !== null) st.deliveredAt = new Date(r.delivered_at).toISOString();
        if (r.read_at !== null) st.readAt = new Date(r.read_at).toISOString();
        return st;
      });
    }),
  };
}
