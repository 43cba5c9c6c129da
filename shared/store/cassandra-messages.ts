import type cassandra from 'cassandra-driver';
import type { Message } from '../domain/models.ts';
import { bucketOf, byBucket } from './cassandra-buckets.ts';
import type { CassandraSession } from './cassandra-session.ts';
import { toMessage, type MessageRecord } from './message-record.ts';
import { MAX_ID, bound, cursor, parseId } from './store-input.ts';
import type { HistoryQuery, Store } from './store.ts';

type Row = cassandra.types.Row;

/** Message ids per `IN` query. */
const ID_IN_CHUNK = 100;

interface Reaction { emoji: string; userId: string; at: bigint }

/**
 * Reading messages back: by id, by page of the timeline (walking the room's time buckets) or of a
 * thread, and with their reactions. Search and read state use the same rows.
 */
export class MessageRows {
  constructor(private readonly db: CassandraSession) {}

  /** The buckets that hold messages of the room, newest first. */
  async bucketsOf(op: string, roomId: string): Promise<number[]> {
    return (await this.db.all(op, this.db.q.buckets, [roomId])).map((r) => r.get('bucket') as number);
  }

  /** Messages of rows of one room, with their reactions (one query per bucket and chunk of ids). */
  async toMessages(roomId: string, rows: Row[]): Promise<Message[]> {
    if (rows.length === 0) return [];
    const reactions = new Map<bigint, Reaction[]>();
    await Promise.all([...byBucket(rows.map((r) => r.get('message_id') as bigint))].map(async ([b, list]) => {
      for (let i = 0; i < list.length; i += ID_IN_CHUNK) {
        for (const r of await this.db.all('reactions', this.db.q.reactionsIn, [roomId, b, list.slice(i, i + ID_IN_CHUNK)])) {
          const id = r.get('message_id') as bigint;
          let entries = reactions.get(id);
          if (!entries) reactions.set(id, (entries = []));
          entries.push({ emoji: r.get('emoji') as string, userId: r.get('user_id') as string, at: r.get('at') as bigint });
        }
      }
    }));
    return rows.map((row) => toMessage(messageRecord(roomId, row), reactionRecord(reactions.get(row.get('message_id') as bigint))));
  }

  /** Created message rows of the given ids, in the order of the ids. */
  async byId(op: string, roomId: string, ids: bigint[]): Promise<Row[]> {
    const found = new Map<bigint, Row>();
    await Promise.all([...byBucket(ids)].map(async ([b, list]) => {
      for (let i = 0; i < list.length; i += ID_IN_CHUNK) {
        for (const r of await this.db.all(op, this.db.q.messagesIn, [roomId, b, list.slice(i, i + ID_IN_CHUNK)])) {
          if (r.get('created') === true) found.set(r.get('message_id') as bigint, r);
        }
      }
    }));
    const out: Row[] = [];
    for (const id of ids) {
      const r = found.get(id);
      if (r) out.push(r);
    }
    return out;
  }
}

export function cassandraMessages(db: CassandraSession, rows: MessageRows): Pick<Store, 'getMessage' | 'history' | 'pinned'> {
  const { q } = db;
  return {
    async getMessage(roomId, messageId) {
      const id = parseId(messageId);
      if (id === undefined) return undefined;
      const row = (await db.exec('getMessage', q.getMessage, [roomId, bucketOf(id), id])).first();
      if (!row || row.get('created') !== true) return undefined;
      return (await rows.toMessages(roomId, [row]))[0];
    },

    async history(roomId, query: HistoryQuery) {
      const limit = bound(query.limit);
      if (limit === 0) return [];
      const before = query.before === undefined ? MAX_ID : cursor(query.before, 'before');
      const after = query.after === undefined ? -1n : cursor(query.after, 'after');
      const oldestFirst = query.after !== undefined && query.before === undefined;
      if (query.threadId !== undefined) {
        const threadId = cursor(query.threadId, 'threadId');
        const ids = (await db.exec('history', oldestFirst ? q.repliesAsc : q.repliesDesc, [roomId, threadId, before, after, limit]))
          .rows.map((r) => r.get('message_id') as bigint);
        if (oldestFirst) ids.reverse();
        return rows.toMessages(roomId, await rows.byId('history', roomId, ids));
      }
      const low = bucketOf(after < 0n ? 0n : after);
      const high = bucketOf(before);
      const buckets = (await rows.bucketsOf('history', roomId)).filter((b) => b >= low && b <= high);
      if (oldestFirst) buckets.reverse();
      const page: Row[] = [];
      for (const b of buckets) {
        const rs = await db.exec('history', oldestFirst ? q.timelineAsc : q.timelineDesc, [roomId, b, before, after, limit - page.length]);
        for (const r of rs.rows) page.push(r);
        if (page.length >= limit) break;
      }
      if (oldestFirst) page.reverse();
      return rows.toMessages(roomId, page);
    },

    async pinned(roomId) {
      const pins = (await db.all('pinned', q.pins, [roomId]))
        .map((r) => ({ id: r.get('message_id') as bigint, at: r.get('pinned_at') as bigint }))
        .sort((a, b) => (a.at === b.at ? (a.id < b.id ? 1 : -1) : a.at < b.at ? 1 : -1));
      const pinnedRows = (await rows.byId('pinned', roomId, pins.map((p) => p.id))).filter((r) => r.get('deleted') !== true);
      return rows.toMessages(roomId, pinnedRows);
    },
  };
}

/** Unset cells: 0 for edited_at and thread_id (written so at create), null for the rest. */
function messageRecord(roomId: string, row: Row): MessageRecord {
  const editedAt = (row.get('edited_at') as bigint | null) ?? 0n;
  const threadId = (row.get('thread_id') as bigint | null) ?? 0n;
  const deletedAt = row.get('deleted_at') as bigint | null;
  return {
    messageId: (row.get('message_id') as bigint).toString(),
    room: roomId,
    authorId: row.get('author_id') as string,
    threadId: threadId === 0n ? null : threadId.toString(),
    body: row.get('body') as string,
    content: (row.get('content') as string | null) ?? '',
    editedAt: editedAt > 0n ? Number(editedAt) : undefined,
    deleted: row.get('deleted') === true,
    deletedAt: deletedAt == null ? undefined : Number(deletedAt),
    pinned: row.get('pinned') === true,
  };
}

/** Reactions per emoji, users in the order they reacted. */
function reactionRecord(entries: Reaction[] | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!entries) return out;
  entries.sort((a, b) => (a.at === b.at ? (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0) : a.at < b.at ? -1 : 1));
  for (const e of entries) (out[e.emoji] ??= []).push(e.userId);
  return out;
}
