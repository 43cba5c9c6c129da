import type { DurableEvent } from '../domain/events.ts';
import { addStatement, type Statement, type StatementGroups } from './cassandra-batches.ts';
import { bucketOf } from './cassandra-buckets.ts';
import { activityStatements, type RoomKeys } from './cassandra-rooms.ts';
import type { CassandraSession } from './cassandra-session.ts';
import { REVERSED_BASE, STICKY, contentTs, msTs, reversedTs } from './cassandra-write-time.ts';
import { messageBody } from './message-record.ts';
import { contentTerms } from './search-terms.ts';
import { badEvent, eventId, unknownKind } from './store-input.ts';
import type { Store } from './store.ts';

/**
 * The message plane's write path: applyEvents turns events into statements, groups them by
 * partition and sends each partition's statements as one UNLOGGED BATCH (cassandra-batches.ts).
 * Every statement is idempotent and carries its event time as write timestamp
 * (cassandra-write-time.ts), so redelivery, parallel persisters and any order end in one state.
 * A malformed event rejects the call before anything is written.
 */
export function cassandraEvents(db: CassandraSession, keys: RoomKeys): Pick<Store, 'applyEvents'> {
  const { q } = db;
  /** `room\0bucket` pairs already in room_buckets: a bucket is listed once, not with every message. */
  const knownBuckets = new Set<string>();

  function bindEvent(e: DurableEvent, index: number, add: (key: string, s: Statement) => void, touches: Map<string, number>): void {
    const at = e.at;
    if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) throw badEvent(index, e, 'at must be a finite, non-negative number');
    const room = e.roomId;
    if (typeof room !== 'string') throw badEvent(index, e, 'roomId must be a string');
    const msgKey = (id: bigint) => `m\0${room}\0${bucketOf(id)}`;
    switch (e.kind) {
      case 'message.created': {
        const m = e.message;
        if (!m || m.roomId !== room) throw badEvent(index, e, `message.roomId ${m?.roomId} differs from the event's room`);
        const id = eventId(m.messageId, index, e);
        const threadId = m.threadId == null ? 0n : eventId(m.threadId, index, e);
        const bucket = bucketOf(id);
        const ts = contentTs(at, eventId(e.id, index, e));
        const body = messageBody(m);
        add(msgKey(id), {
          query: q.createMessage,
          params: [room, bucket, id, m.authorId, threadId, body, m.content, contentTerms(m.content), ts],
        });
        if (!knownBuckets.has(`${room}\0${bucket}`)) add(`b\0${room}`, { query: q.addBucket, params: [room, bucket, msTs(at)] });
        if (threadId !== 0n) add(`t\0${room}\0${threadId}`, { query: q.addReply, params: [room, threadId, id, msTs(at)] });
        const prev = touches.get(room);
        if (prev === undefined || at > prev) touches.set(room, at);
        return;
      }
      case 'message.edited': {
        const id = eventId(e.messageId, index, e);
        const ts = contentTs(at, eventId(e.id, index, e));
        add(msgKey(id), { query: q.editMessage, params: [ts, e.content, contentTerms(e.content), BigInt(at), room, bucketOf(id), id] });
        return;
      }
      case 'message.deleted': {
        const id = eventId(e.messageId, index, e);
        add(msgKey(id), { query: q.eraseMessage, params: [STICKY, room, bucketOf(id), id] });
        add(msgKey(id), { query: q.deletedAt, params: [msTs(at), BigInt(at), room, bucketOf(id), id] });
        return;
      }
      case 'reaction.added':
      case 'reaction.removed': {
        const id = eventId(e.messageId, index, e);
        if (typeof e.emoji !== 'string' || typeof e.userId !== 'string') throw badEvent(index, e, 'emoji and userId must be strings');
        if (e.kind === 'reaction.added') {
          add(`r\0${room}\0${bucketOf(id)}`, { query: q.addReaction, params: [room, bucketOf(id), id, e.emoji, e.userId, BigInt(at), msTs(at)] });
        } else {
          add(`r\0${room}\0${bucketOf(id)}`, { query: q.removeReaction, params: [msTs(at), room, bucketOf(id), id, e.emoji, e.userId] });
        }
        return;
      }
      case 'message.pinned': {
        const id = eventId(e.messageId, index, e);
        add(msgKey(id), { query: q.pinMessage, params: [msTs(at), room, bucketOf(id), id] });
        add(`p\0${room}`, { query: q.addPin, params: [room, id, BigInt(at), msTs(at)] });
        return;
      }
      case 'message.unpinned': {
        const id = eventId(e.messageId, index, e);
        add(msgKey(id), { query: q.unpinMessage, params: [msTs(at), room, bucketOf(id), id] });
        add(`p\0${room}`, { query: q.removePin, params: [msTs(at), room, id] });
        return;
      }
      case 'read.marked': {
        const id = eventId(e.messageId, index, e);
        if (typeof e.userId !== 'string') throw badEvent(index, e, 'userId must be a string');
        add(`rm\0${room}\0${e.userId}`, { query: q.markRead, params: [room, e.userId, id, BigInt(at), reversedTs(at)] });
        add(`ru\0${room}`, { query: q.readUser, params: [room, e.userId, REVERSED_BASE] });
        return;
      }
      case 'message.delivered': {
        const id = eventId(e.messageId, index, e);
        if (typeof e.userId !== 'string') throw badEvent(index, e, 'userId must be a string');
        add(`d\0${room}\0${id}`, { query: q.markDelivered, params: [room, id, e.userId, BigInt(at), reversedTs(at)] });
        return;
      }
      default:
        throw unknownKind(index, e);
    }
  }

  return {
    async applyEvents(events) {
      if (events.length === 0) return;
      const groups: StatementGroups = new Map();
      const touches = new Map<string, number>();
      const add = (key: string, s: Statement) => addStatement(groups, key, s);
      for (let i = 0; i < events.length; i++) bindEvent(events[i]!, i, add, touches);
      // Events name only the room; its activity is also kept in its tenant's list.
      await Promise.all([...touches].map(async ([roomId, at]) => {
        const key = await keys.of('applyEvents', roomId);
        if (key) activityStatements(groups, db, roomId, key.tenant, at);
      }));
      await db.write('applyEvents', groups);
      if (knownBuckets.size > 100_000) knownBuckets.clear();
      for (const s of groups.values()) {
        for (const st of s) if (st.query === q.addBucket) knownBuckets.add(`${st.params[0] as string}\0${st.params[1] as number}`);
      }
    },
  };
}
