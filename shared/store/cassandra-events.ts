import type { DurableEvent } from '../domain/events.ts';
import { roomIdOf } from '../domain/room-key.ts';
import { addStatement, type StatementGroups } from './cassandra-batches.ts';
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
  /** Message partitions (`messageKey`) whose bucket is already in room_buckets: listed once, not with every message. */
  const knownBuckets = new Set<string>();

  /** What one applyEvents call collects: statements by partition, room activity, buckets it lists. */
  interface Bound {
    groups: StatementGroups;
    touches: Map<string, number>;
    newBuckets: Set<string>;
  }

  function bindEvent(e: DurableEvent, index: number, b: Bound): void {
    const at = e.at;
    if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) throw badEvent(index, e, 'at must be a finite, non-negative number');
    const room = e.roomId;
    if (typeof room !== 'string') throw badEvent(index, e, 'roomId must be a string');
    const { groups } = b;
    switch (e.kind) {
      case 'message.created': {
        const m = e.message;
        if (!m || m.roomId !== roomIdOf(room)) throw badEvent(index, e, `message.roomId ${m?.roomId} differs from the event's room`);
        const id = eventId(m.messageId, index, e);
        // a create's event id is its message id: parsed once
        const ts = contentTs(at, e.id === m.messageId ? id : eventId(e.id, index, e));
        const threadId = m.threadId == null ? 0n : eventId(m.threadId, index, e);
        const bucket = bucketOf(id);
        const key = messageKey(room, bucket);
        addStatement(groups, key, {
          query: q.createMessage,
          params: [room, bucket, id, m.authorId, threadId, messageBody(m), m.content, contentTerms(m.content), ts],
        });
        if (!knownBuckets.has(key) && !b.newBuckets.has(key)) {
          b.newBuckets.add(key);
          addStatement(groups, `b\0${room}`, { query: q.addBucket, params: [room, bucket, msTs(at)] });
        }
        if (threadId !== 0n) addStatement(groups, `t\0${room}\0${threadId}`, { query: q.addReply, params: [room, threadId, id, msTs(at)] });
        const prev = b.touches.get(room);
        if (prev === undefined || at > prev) b.touches.set(room, at);
        return;
      }
      case 'message.edited': {
        const id = eventId(e.messageId, index, e);
        const bucket = bucketOf(id);
        const ts = contentTs(at, eventId(e.id, index, e));
        addStatement(groups, messageKey(room, bucket), { query: q.editMessage, params: [ts, e.content, contentTerms(e.content), BigInt(at), room, bucket, id] });
        return;
      }
      case 'message.deleted': {
        const id = eventId(e.messageId, index, e);
        const bucket = bucketOf(id);
        const key = messageKey(room, bucket);
        addStatement(groups, key, { query: q.eraseMessage, params: [STICKY, room, bucket, id] });
        addStatement(groups, key, { query: q.deletedAt, params: [msTs(at), BigInt(at), room, bucket, id] });
        return;
      }
      case 'reaction.added':
      case 'reaction.removed': {
        const id = eventId(e.messageId, index, e);
        if (typeof e.emoji !== 'string' || typeof e.userId !== 'string') throw badEvent(index, e, 'emoji and userId must be strings');
        const bucket = bucketOf(id);
        if (e.kind === 'reaction.added') {
          addStatement(groups, `r\0${room}\0${bucket}`, { query: q.addReaction, params: [room, bucket, id, e.emoji, e.userId, BigInt(at), msTs(at)] });
        } else {
          addStatement(groups, `r\0${room}\0${bucket}`, { query: q.removeReaction, params: [msTs(at), room, bucket, id, e.emoji, e.userId] });
        }
        return;
      }
      case 'message.pinned': {
        const id = eventId(e.messageId, index, e);
        const bucket = bucketOf(id);
        addStatement(groups, messageKey(room, bucket), { query: q.pinMessage, params: [msTs(at), room, bucket, id] });
        addStatement(groups, `p\0${room}`, { query: q.addPin, params: [room, id, BigInt(at), msTs(at)] });
        return;
      }
      case 'message.unpinned': {
        const id = eventId(e.messageId, index, e);
        const bucket = bucketOf(id);
        addStatement(groups, messageKey(room, bucket), { query: q.unpinMessage, params: [msTs(at), room, bucket, id] });
        addStatement(groups, `p\0${room}`, { query: q.removePin, params: [msTs(at), room, id] });
        return;
      }
      case 'read.marked': {
        const id = eventId(e.messageId, index, e);
        if (typeof e.userId !== 'string') throw badEvent(index, e, 'userId must be a string');
        addStatement(groups, `rm\0${room}\0${e.userId}`, { query: q.markRead, params: [room, e.userId, id, BigInt(at), reversedTs(at)] });
        addStatement(groups, `ru\0${room}`, { query: q.readUser, params: [room, e.userId, REVERSED_BASE] });
        return;
      }
      case 'message.delivered': {
        const id = eventId(e.messageId, index, e);
        if (typeof e.userId !== 'string') throw badEvent(index, e, 'userId must be a string');
        addStatement(groups, `d\0${room}\0${id}`, { query: q.markDelivered, params: [room, id, e.userId, BigInt(at), reversedTs(at)] });
        return;
      }
      default:
        throw unknownKind(index, e);
    }
  }

  return {
    async applyEvents(events) {
      if (events.length === 0) return;
      const b: Bound = { groups: new Map(), touches: new Map(), newBuckets: new Set() };
      for (let i = 0; i < events.length; i++) bindEvent(events[i]!, i, b);
      // Events name only the room; its activity is also kept in its tenant's list.
      await Promise.all([...b.touches].map(async ([roomId, at]) => {
        const key = await keys.of('applyEvents', roomId);
        if (key) activityStatements(b.groups, db, roomId, key.tenant, at);
      }));
      await db.write('applyEvents', b.groups);
      // only once written: a failed call lists its buckets again when retried
      if (knownBuckets.size > 100_000) knownBuckets.clear();
      for (const key of b.newBuckets) knownBuckets.add(key);
    },
  };
}

/** The partition of a message row (and the key knownBuckets remembers its bucket by). */
function messageKey(room: string, bucket: number): string {
  return `m\0${room}\0${bucket}`;
}
