import cassandra from 'cassandra-driver';
import type { CassandraConsistency } from '../config/config.ts';
import type { DurableEvent } from '../domain/events.ts';
import type { Message, MessageStatus, ReadState, Room, RoomMember } from '../domain/models.ts';
import { EPOCH_MS } from '../ids/snowflake.ts';
import { ChatError } from '../protocol/errors.ts';
import { toChatError } from './cassandra-errors.ts';
import { CASSANDRA_SCHEMA_VERSION, appliedVersions } from './cassandra-schema.ts';
import { contentTerms, queryTerms } from './search-terms.ts';
import { MAX_ID, badEvent, cursor, eventId, parseId } from './store-input.ts';
import type { StoreLog } from './store-log.ts';
import type { HistoryQuery, ListRoomsQuery, SearchQuery, Store } from './store.ts';

const { Client, types, policies } = cassandra;
type Row = cassandra.types.Row;
type ResultSet = cassandra.types.ResultSet;

export interface CassandraStoreConfig {
  contactPoints: string[];
  keyspace: string;
  localDataCenter: string;
  consistency: CassandraConsistency;
  credentials?: { username: string; password: string };
  /** Partition writes of one applyEvents call in flight at once (default 32). */
  writeConcurrency?: number;
  /** Per-request timeout in ms (default 12000, the driver's). */
  requestTimeoutMs?: number;
}

/** Messages are partitioned by room and this time window, taken from the message id. */
export const BUCKET_MS = 10 * 24 * 3600 * 1000;
const TIME_SHIFT = 22n;
const MAX_BOUND = 2 ** 31 - 1;
const DEFAULT_WRITE_CONCURRENCY = 32;
/** Statements per UNLOGGED BATCH, and their rough size: Cassandra refuses batches over 50 KiB. */
const BATCH_MAX_STATEMENTS = 32;
const BATCH_MAX_BYTES = 24 * 1024;
const ID_IN_CHUNK = 100;
const PAGE_SIZE = 1000;

/**
 * Write timestamps (µs). Message-plane cells carry their event time, so the latest event wins per
 * cell whatever order events arrive in. A delete erases content at STICKY, later than any event
 * time, so nothing written afterwards brings the text back. Read marks and deliveries keep their
 * EARLIEST time: they are written at REVERSED(at), which is larger the earlier `at` is.
 */
const STICKY = 1n << 62n;
const REVERSED_BASE = 1n << 62n;
const msTs = (at: number) => BigInt(at) * 1000n;
/** Content writes: the event time, with the event id's last digits to order events of one millisecond. */
const contentTs = (at: number, eventId: bigint) => BigInt(at) * 1000n + (eventId % 1000n);
const reversedTs = (at: number) => REVERSED_BASE - BigInt(at) * 1000n;

export function bucketOf(id: bigint): number {
  const ms = Number((id < 0n ? 0n : id) >> TIME_SHIFT) + EPOCH_MS;
  return Math.floor(ms / BUCKET_MS);
}

const CONSISTENCY: Record<CassandraConsistency, number> = {
  ONE: types.consistencies.one,
  LOCAL_ONE: types.consistencies.localOne,
  QUORUM: types.consistencies.quorum,
  LOCAL_QUORUM: types.consistencies.localQuorum,
  EACH_QUORUM: types.consistencies.eachQuorum,
  ALL: types.consistencies.all,
};

/** The fields of a message that no event after its create changes, stored as one JSON value. */
interface MessageBody {
  authorName: string;
  authorAvatar?: string;
  type: Message['type'];
  timestamp: string;
  replyTo: string | null;
  mentions: string[];
  attachments: Message['attachments'];
  isAnonymous: boolean;
  anonymousName?: string;
  clientMsgId?: string;
  metadata?: Record<string, unknown>;
}

interface Statement { query: string; params: unknown[] }

const MESSAGE_COLUMNS = 'message_id, created, author_id, thread_id, body, content, edited_at, deleted, deleted_at, pinned';
const ROLE_RANK: Record<RoomMember['role'], number> = { owner: 0, admin: 1, moderator: 2, member: 3 };
const SILENT_LOG: StoreLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * The Cassandra store (schema and its reasons in cassandra-schema.ts; `chat migrate` creates it).
 * Connects on first use and checks that the keyspace has the schema this build needs.
 *
 * Message plane: applyEvents turns events into statements, groups them by partition, sends each
 * partition's statements as one UNLOGGED BATCH (so a batch never spans partitions), with at most
 * `writeConcurrency` partitions in flight. Every statement is idempotent and carries its event
 * time as write timestamp, so redelivery, parallel persisters and any order end in one state.
 *
 * Control plane: rooms and members are written at the configured consistency (LOCAL_QUORUM by
 * default, with reads at the same level that makes them read-your-writes). A room id is claimed
 * with a lightweight transaction. memberCount is recounted from the members partition after every
 * member change and written with the time the recount started, so of concurrent recounts the one
 * that saw the most wins.
 *
 * Beyond the port's contract (as the SQLite store): malformed events and cursors reject with
 * bad_request before anything is written; putMember and updateRoom reject with not_found when the
 * room does not exist.
 */
export function createCassandraStore(cfg: CassandraStoreConfig, log: StoreLog = SILENT_LOG): Store {
  const ks = cfg.keyspace;
  if (!/^[A-Za-z][A-Za-z0-9_]{0,47}$/.test(ks)) throw new ChatError('bad_request', `keyspace ${JSON.stringify(ks)} is not a valid name`);
  const writeConcurrency = Math.max(1, cfg.writeConcurrency ?? DEFAULT_WRITE_CONCURRENCY);
  const client = new Client({
    contactPoints: cfg.contactPoints,
    localDataCenter: cfg.localDataCenter,
    ...(cfg.credentials ? { credentials: cfg.credentials } : {}),
    encoding: { useBigIntAsLong: true, useUndefinedAsUnset: true },
    queryOptions: {
      consistency: CONSISTENCY[cfg.consistency], serialConsistency: types.consistencies.localSerial,
      prepare: true, isIdempotent: true, fetchSize: PAGE_SIZE,
    },
    socketOptions: { connectTimeout: 5000, readTimeout: cfg.requestTimeoutMs ?? 12_000 },
    // Come back quickly after an outage: the persister is waiting to write.
    policies: { reconnection: new policies.reconnection.ExponentialReconnectionPolicy(250, 5000, false) },
    pooling: { heartBeatInterval: 5000 },
  });
  client.on('log', (level: string, className: string, message: string) => {
    if (level === 'error') log.warn({ className, driver: message }, 'cassandra driver');
  });

  const t = (name: string) => `${ks}.${name}`;
  const Q = {
    // rooms
    claimRoom: `INSERT INTO ${t('rooms')} (room_id, claimed) VALUES (?, true) IF NOT EXISTS`,
    writeRoom: `UPDATE ${t('rooms')} USING TIMESTAMP ? SET tenant = ?, name = ?, description = ?, type = ?, avatar = ?, banner = ?,
      created_by = ?, created_at = ?, updated_at = ?, max_members = ?, settings = ?, is_active = ?, tags = ? WHERE room_id = ?`,
    updateRoom: `UPDATE ${t('rooms')} USING TIMESTAMP ? SET name = ?, description = ?, avatar = ?, banner = ?, settings = ?,
      tags = ?, max_members = ?, updated_at = ? WHERE room_id = ?`,
    roomActivity: `UPDATE ${t('rooms')} USING TIMESTAMP ? SET last_activity = ? WHERE room_id = ?`,
    memberCount: `UPDATE ${t('rooms')} USING TIMESTAMP ? SET member_count = ? WHERE room_id = ?`,
    getRoom: `SELECT * FROM ${t('rooms')} WHERE room_id = ?`,
    roomKey: `SELECT tenant, type, name FROM ${t('rooms')} WHERE room_id = ?`,
    tenantRoom: `INSERT INTO ${t('rooms_by_tenant')} (tenant, room_id, type) VALUES (?, ?, ?) USING TIMESTAMP ?`,
    tenantActivity: `UPDATE ${t('rooms_by_tenant')} USING TIMESTAMP ? SET last_activity = ? WHERE tenant = ? AND room_id = ?`,
    tenantRooms: `SELECT room_id, type, last_activity FROM ${t('rooms_by_tenant')} WHERE tenant = ?`,
    tenantRoomsIn: `SELECT room_id, type, last_activity FROM ${t('rooms_by_tenant')} WHERE tenant = ? AND room_id IN ?`,
    // members
    putMember: `INSERT INTO ${t('room_members')} (room_id, user_id, display_name, avatar, role, joined_at, is_muted, is_banned)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    putUserRoom: `INSERT INTO ${t('rooms_by_user')} (user_id, room_id, tenant, room_type, is_banned) VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    deleteMember: `DELETE FROM ${t('room_members')} USING TIMESTAMP ? WHERE room_id = ? AND user_id = ?`,
    deleteUserRoom: `DELETE FROM ${t('rooms_by_user')} USING TIMESTAMP ? WHERE user_id = ? AND room_id = ?`,
    getMember: `SELECT * FROM ${t('room_members')} WHERE room_id = ? AND user_id = ?`,
    members: `SELECT * FROM ${t('room_members')} WHERE room_id = ?`,
    memberBans: `SELECT is_banned FROM ${t('room_members')} WHERE room_id = ?`,
    userRooms: `SELECT room_id, tenant, room_type, is_banned FROM ${t('rooms_by_user')} WHERE user_id = ?`,
    // message writes
    createMessage: `INSERT INTO ${t('messages')} (room_id, bucket, message_id, created, author_id, thread_id, body, content, content_terms, edited_at)
      VALUES (?, ?, ?, true, ?, ?, ?, ?, ?, 0) USING TIMESTAMP ?`,
    editMessage: `UPDATE ${t('messages')} USING TIMESTAMP ? SET content = ?, content_terms = ?, edited_at = ?
      WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    eraseMessage: `UPDATE ${t('messages')} USING TIMESTAMP ? SET deleted = true, content = '', content_terms = null
      WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    deletedAt: `UPDATE ${t('messages')} USING TIMESTAMP ? SET deleted_at = ? WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    pinMessage: `UPDATE ${t('messages')} USING TIMESTAMP ? SET pinned = true WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    unpinMessage: `DELETE pinned FROM ${t('messages')} USING TIMESTAMP ? WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    addPin: `INSERT INTO ${t('pins')} (room_id, message_id, pinned_at) VALUES (?, ?, ?) USING TIMESTAMP ?`,
    removePin: `DELETE FROM ${t('pins')} USING TIMESTAMP ? WHERE room_id = ? AND message_id = ?`,
    addBucket: `INSERT INTO ${t('room_buckets')} (room_id, bucket) VALUES (?, ?) USING TIMESTAMP ?`,
    addReply: `INSERT INTO ${t('thread_replies')} (room_id, thread_id, message_id) VALUES (?, ?, ?) USING TIMESTAMP ?`,
    // A removal is a row deletion: at equal timestamps Cassandra lets the deletion win, as the port asks.
    addReaction: `INSERT INTO ${t('reactions')} (room_id, bucket, message_id, emoji, user_id, at) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
    removeReaction: `DELETE FROM ${t('reactions')} USING TIMESTAMP ? WHERE room_id = ? AND bucket = ? AND message_id = ? AND emoji = ? AND user_id = ?`,
    markRead: `INSERT INTO ${t('read_marks')} (room_id, user_id, message_id, at) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
    readUser: `INSERT INTO ${t('read_users')} (room_id, user_id) VALUES (?, ?) USING TIMESTAMP ?`,
    markDelivered: `INSERT INTO ${t('deliveries')} (room_id, message_id, user_id, at) VALUES (?, ?, ?, ?) USING TIMESTAMP ?`,
    // message reads
    getMessage: `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')} WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    messagesIn: `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')} WHERE room_id = ? AND bucket = ? AND message_id IN ?`,
    buckets: `SELECT bucket FROM ${t('room_buckets')} WHERE room_id = ?`,
    timelineDesc: `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')}
      WHERE room_id = ? AND bucket = ? AND message_id < ? AND message_id > ? AND created = true AND thread_id = 0
      LIMIT ? ALLOW FILTERING`,
    timelineAsc: `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')}
      WHERE room_id = ? AND bucket = ? AND message_id < ? AND message_id > ? AND created = true AND thread_id = 0
      ORDER BY message_id ASC LIMIT ? ALLOW FILTERING`,
    repliesDesc: `SELECT message_id FROM ${t('thread_replies')} WHERE room_id = ? AND thread_id = ? AND message_id < ? AND message_id > ? LIMIT ?`,
    repliesAsc: `SELECT message_id FROM ${t('thread_replies')} WHERE room_id = ? AND thread_id = ? AND message_id < ? AND message_id > ?
      ORDER BY message_id ASC LIMIT ?`,
    unreadScan: `SELECT author_id, deleted FROM ${t('messages')}
      WHERE room_id = ? AND bucket = ? AND message_id > ? AND created = true AND thread_id = 0 ALLOW FILTERING`,
    reactionsIn: `SELECT message_id, emoji, user_id, at FROM ${t('reactions')} WHERE room_id = ? AND bucket = ? AND message_id IN ?`,
    pins: `SELECT message_id, pinned_at FROM ${t('pins')} WHERE room_id = ?`,
    readState: `SELECT message_id, at FROM ${t('read_marks')} WHERE room_id = ? AND user_id = ? LIMIT 1`,
    firstReadAt: `SELECT min(at) AS at FROM ${t('read_marks')} WHERE room_id = ? AND user_id = ? AND message_id >= ?`,
    readUsers: `SELECT user_id FROM ${t('read_users')} WHERE room_id = ?`,
    deliveries: `SELECT user_id, at FROM ${t('deliveries')} WHERE room_id = ? AND message_id = ?`,
    author: `SELECT created, author_id FROM ${t('messages')} WHERE room_id = ? AND bucket = ? AND message_id = ?`,
    ping: 'SELECT release_version FROM system.local',
  } as const;

  /** Search statements by number of words (each word one CONTAINS), prepared as they are first used. */
  const searchQuery = (terms: number) => `SELECT ${MESSAGE_COLUMNS} FROM ${t('messages')} WHERE room_id = ? AND bucket = ? AND `
    + Array.from({ length: terms }, () => 'content_terms CONTAINS ?').join(' AND ') + ' LIMIT ?';

  // ---- connection

  let connecting: Promise<void> | undefined;
  let closed = false;

  /** Connects once and checks the schema; a failed attempt is retried by the next call. */
  function ready(): Promise<void> {
    if (closed) return Promise.reject(new ChatError('unavailable', 'cassandra store: the store is closed'));
    connecting ??= (async () => {
      await client.connect();
      const versions = await appliedVersions(client, ks);
      const current = versions.size === 0 ? 0 : Math.max(...versions);
      if (current < CASSANDRA_SCHEMA_VERSION) {
        throw new ChatError('unavailable',
          `cassandra store: keyspace ${ks} has schema version ${current}, this build needs ${CASSANDRA_SCHEMA_VERSION}: run \`chat migrate\``);
      }
      if (current > CASSANDRA_SCHEMA_VERSION) {
        throw new ChatError('internal', `cassandra store: keyspace ${ks} has schema version ${current}; this build knows up to ${CASSANDRA_SCHEMA_VERSION}`);
      }
      log.info({ keyspace: ks, schemaVersion: current, contactPoints: cfg.contactPoints }, 'cassandra store connected');
    })().catch((err: unknown) => {
      connecting = undefined;
      throw toChatError(err, 'connect');
    });
    return connecting;
  }

  async function exec(op: string, query: string, params: unknown[], options?: cassandra.QueryOptions): Promise<ResultSet> {
    await ready();
    try {
      return await client.execute(query, params, options);
    } catch (err) {
      throw failed(err, op);
    }
  }

  function failed(err: unknown, op: string): ChatError {
    const e = toChatError(err, op);
    if (e.code === 'internal') log.error({ err, op }, 'cassandra store failed');
    return e;
  }

  /** Every row of a query, page by page. */
  async function all(op: string, query: string, params: unknown[]): Promise<Row[]> {
    const rows: Row[] = [];
    let pageState: string | undefined;
    do {
      const rs = await exec(op, query, params, pageState === undefined ? undefined : { pageState });
      for (const r of rs.rows) rows.push(r);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return rows;
  }

  /** Sends statements grouped by partition: one batch per partition (chunked), bounded concurrency. */
  async function write(op: string, groups: Map<string, Statement[]>): Promise<void> {
    await ready();
    const units: Statement[][] = [];
    for (const statements of groups.values()) {
      let chunk: Statement[] = [];
      let bytes = 0;
      for (const s of statements) {
        const size = estimateSize(s);
        if (chunk.length > 0 && (chunk.length >= BATCH_MAX_STATEMENTS || bytes + size > BATCH_MAX_BYTES)) {
          units.push(chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(s);
        bytes += size;
      }
      if (chunk.length > 0) units.push(chunk);
    }
    await inParallel(units, writeConcurrency, async (unit) => {
      try {
        if (unit.length === 1) await client.execute(unit[0]!.query, unit[0]!.params);
        else await client.batch(unit, { logged: false });
      } catch (err) {
        throw failed(err, op);
      }
    });
  }

  // ---- time for control-plane writes

  let lastMicros = 0n;
  /** Monotonic microseconds of this process, for control-plane writes. */
  function nowMicros(): bigint {
    let us = BigInt(Date.now()) * 1000n;
    if (us <= lastMicros) us = lastMicros + 1n;
    lastMicros = us;
    return us;
  }

  // ---- rooms

  /** Room tenants never change: remembered once seen. */
  const tenants = new Map<string, { tenant: string; type: Room['type'] }>();
  async function roomKey(op: string, roomId: string): Promise<{ tenant: string; type: Room['type'] } | undefined> {
    const known = tenants.get(roomId);
    if (known) return known;
    const row = (await exec(op, Q.roomKey, [roomId])).first();
    if (!row || row.get('tenant') == null || row.get('name') == null) return undefined;
    const key = { tenant: row.get('tenant') as string, type: row.get('type') as Room['type'] };
    if (tenants.size > 100_000) tenants.clear();
    tenants.set(roomId, key);
    return key;
  }

  async function getRoom(roomId: string): Promise<Room | undefined> {
    const row = (await exec('getRoom', Q.getRoom, [roomId])).first();
    return row ? toRoom(row) : undefined;
  }

  function memberStatements(m: RoomMember, tenant: string, roomType: string, ts: bigint): Statement[] {
    return [
      { query: Q.putMember, params: [m.roomId, m.userId, m.displayName, m.avatar ?? null, m.role, m.joinedAt, m.isMuted, m.isBanned, ts] },
      { query: Q.putUserRoom, params: [m.userId, m.roomId, tenant, roomType, m.isBanned, ts] },
    ];
  }

  async function recountMembers(roomId: string): Promise<void> {
    const startedAt = nowMicros();
    const rows = await all('memberCount', Q.memberBans, [roomId]);
    let n = 0;
    for (const r of rows) if (r.get('is_banned') !== true) n++;
    await exec('memberCount', Q.memberCount, [startedAt, n, roomId]);
  }

  // ---- messages

  const knownBuckets = new Set<string>();

  async function bucketsOf(op: string, roomId: string): Promise<number[]> {
    return (await all(op, Q.buckets, [roomId])).map((r) => r.get('bucket') as number);
  }

  async function toMessages(roomId: string, rows: Row[]): Promise<Message[]> {
    if (rows.length === 0) return [];
    const byBucket = new Map<number, bigint[]>();
    for (const r of rows) {
      const id = r.get('message_id') as bigint;
      const b = bucketOf(id);
      const list = byBucket.get(b);
      if (list) list.push(id);
      else byBucket.set(b, [id]);
    }
    const reactions = new Map<bigint, Array<{ emoji: string; userId: string; at: bigint }>>();
    await Promise.all([...byBucket].map(async ([b, list]) => {
      for (let i = 0; i < list.length; i += ID_IN_CHUNK) {
        for (const r of await all('reactions', Q.reactionsIn, [roomId, b, list.slice(i, i + ID_IN_CHUNK)])) {
          const id = r.get('message_id') as bigint;
          let entries = reactions.get(id);
          if (!entries) reactions.set(id, (entries = []));
          entries.push({ emoji: r.get('emoji') as string, userId: r.get('user_id') as string, at: r.get('at') as bigint });
        }
      }
    }));
    return rows.map((row) => toMessage(roomId, row, reactionRecord(reactions.get(row.get('message_id') as bigint))));
  }

  /** Created message rows of the given ids, in the order of the ids. */
  async function messagesById(op: string, roomId: string, ids: bigint[]): Promise<Row[]> {
    const byBucket = new Map<number, bigint[]>();
    for (const id of ids) {
      const b = bucketOf(id);
      const list = byBucket.get(b);
      if (list) list.push(id);
      else byBucket.set(b, [id]);
    }
    const found = new Map<bigint, Row>();
    await Promise.all([...byBucket].map(async ([b, list]) => {
      for (let i = 0; i < list.length; i += ID_IN_CHUNK) {
        for (const r of await all(op, Q.messagesIn, [roomId, b, list.slice(i, i + ID_IN_CHUNK)])) {
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
        const body: MessageBody = {
          authorName: m.authorName, authorAvatar: m.authorAvatar, type: m.type, timestamp: m.timestamp,
          replyTo: m.replyTo ?? null, mentions: m.mentions ?? [], attachments: m.attachments ?? [], isAnonymous: m.isAnonymous ?? false,
          anonymousName: m.anonymousName, clientMsgId: m.clientMsgId, metadata: m.metadata,
        };
        const ts = contentTs(at, eventId(e.id, index, e));
        add(msgKey(id), {
          query: Q.createMessage,
          params: [room, bucket, id, m.authorId, threadId, JSON.stringify(body), m.content, contentTerms(m.content), ts],
        });
        if (!knownBuckets.has(`${room}\0${bucket}`)) add(`b\0${room}`, { query: Q.addBucket, params: [room, bucket, msTs(at)] });
        if (threadId !== 0n) add(`t\0${room}\0${threadId}`, { query: Q.addReply, params: [room, threadId, id, msTs(at)] });
        const prev = touches.get(room);
        if (prev === undefined || at > prev) touches.set(room, at);
        return;
      }
      case 'message.edited': {
        const id = eventId(e.messageId, index, e);
        const ts = contentTs(at, eventId(e.id, index, e));
        add(msgKey(id), { query: Q.editMessage, params: [ts, e.content, contentTerms(e.content), BigInt(at), room, bucketOf(id), id] });
        return;
      }
      case 'message.deleted': {
        const id = eventId(e.messageId, index, e);
        add(msgKey(id), { query: Q.eraseMessage, params: [STICKY, room, bucketOf(id), id] });
        add(msgKey(id), { query: Q.deletedAt, params: [msTs(at), BigInt(at), room, bucketOf(id), id] });
        return;
      }
      case 'reaction.added':
      case 'reaction.removed': {
        const id = eventId(e.messageId, index, e);
        if (typeof e.emoji !== 'string' || typeof e.userId !== 'string') throw badEvent(index, e, 'emoji and userId must be strings');
        if (e.kind === 'reaction.added') {
          add(`r\0${room}\0${bucketOf(id)}`, { query: Q.addReaction, params: [room, bucketOf(id), id, e.emoji, e.userId, BigInt(at), msTs(at)] });
        } else {
          add(`r\0${room}\0${bucketOf(id)}`, { query: Q.removeReaction, params: [msTs(at), room, bucketOf(id), id, e.emoji, e.userId] });
        }
        return;
      }
      case 'message.pinned': {
        const id = eventId(e.messageId, index, e);
        add(msgKey(id), { query: Q.pinMessage, params: [msTs(at), room, bucketOf(id), id] });
        add(`p\0${room}`, { query: Q.addPin, params: [room, id, BigInt(at), msTs(at)] });
        return;
      }
      case 'message.unpinned': {
        const id = eventId(e.messageId, index, e);
        add(msgKey(id), { query: Q.unpinMessage, params: [msTs(at), room, bucketOf(id), id] });
        add(`p\0${room}`, { query: Q.removePin, params: [msTs(at), room, id] });
        return;
      }
      case 'read.marked': {
        const id = eventId(e.messageId, index, e);
        if (typeof e.userId !== 'string') throw badEvent(index, e, 'userId must be a string');
        add(`rm\0${room}\0${e.userId}`, { query: Q.markRead, params: [room, e.userId, id, BigInt(at), reversedTs(at)] });
        add(`ru\0${room}`, { query: Q.readUser, params: [room, e.userId, REVERSED_BASE] });
        return;
      }
      case 'message.delivered': {
        const id = eventId(e.messageId, index, e);
        if (typeof e.userId !== 'string') throw badEvent(index, e, 'userId must be a string');
        add(`d\0${room}\0${id}`, { query: Q.markDelivered, params: [room, id, e.userId, BigInt(at), reversedTs(at)] });
        return;
      }
      default: {
        const unknown: never = e;
        const { kind, id } = unknown as { kind?: unknown; id?: unknown };
        throw new ChatError('bad_request', `event ${index}: unknown kind ${String(kind)}`, { details: { index, eventId: id, kind } });
      }
    }
  }

  /** Messages of one bucket matching every term, newest first. */
  async function searchBucket(roomId: string, bucket: number, terms: string[], limit: number): Promise<Row[]> {
    const rs = await exec('search', searchQuery(terms.length), [roomId, bucket, ...terms, limit]);
    return rs.rows.filter((r) => r.get('created') === true && r.get('deleted') !== true);
  }

  log.info({ keyspace: ks, contactPoints: cfg.contactPoints, consistency: cfg.consistency }, 'cassandra store created');

  return {
    kind: 'cassandra',

    async createRoom(room, members) {
      for (const m of members) {
        if (m.roomId !== room.roomId) throw new ChatError('bad_request', `member ${m.userId} belongs to room ${m.roomId}, not ${room.roomId}`);
      }
      const lastActivity = parseTime(room.lastActivity, `room ${room.roomId}: lastActivity`);
      // Not idempotent: a retried claim would find its own first attempt and report a conflict.
      const claim = await exec('createRoom', Q.claimRoom, [room.roomId], { isIdempotent: false });
      if (!claim.wasApplied()) throw new ChatError('conflict', `room ${room.roomId} already exists`);
      const ts = nowMicros();
      const groups = new Map<string, Statement[]>();
      const add = (key: string, s: Statement) => pushTo(groups, key, s);
      add(`room\0${room.roomId}`, {
        query: Q.writeRoom,
        params: [ts, room.tenant, room.name, room.description, room.type, room.avatar, room.banner, room.createdBy, room.createdAt,
          room.updatedAt, room.maxMembers, JSON.stringify(room.settings), room.isActive, JSON.stringify(room.tags), room.roomId],
      });
      add(`room\0${room.roomId}`, { query: Q.roomActivity, params: [msTs(lastActivity), BigInt(lastActivity), room.roomId] });
      add(`tenant\0${room.tenant}`, { query: Q.tenantRoom, params: [room.tenant, room.roomId, room.type, ts] });
      add(`tenant\0${room.tenant}`, { query: Q.tenantActivity, params: [msTs(lastActivity), BigInt(lastActivity), room.tenant, room.roomId] });
      for (const m of members) {
        const [member, userRoom] = memberStatements(m, room.tenant, room.type, ts);
        add(`member\0${room.roomId}`, member!);
        add(`user\0${m.userId}`, userRoom!);
      }
      await write('createRoom', groups);
      await recountMembers(room.roomId);
    },

    getRoom,

    async updateRoom(room) {
      if (!(await roomKey('updateRoom', room.roomId))) throw new ChatError('not_found', `room ${room.roomId} does not exist`);
      await exec('updateRoom', Q.updateRoom, [
        nowMicros(), room.name, room.description, room.avatar ?? null, room.banner ?? null, JSON.stringify(room.settings),
        JSON.stringify(room.tags), room.maxMembers, room.updatedAt, room.roomId,
      ]);
    },

    async listRooms(q: ListRoomsQuery) {
      let entries: Row[];
      if (q.memberOf === undefined) {
        entries = await all('listRooms', Q.tenantRooms, [q.tenant]);
      } else {
        const mine = (await all('listRooms', Q.userRooms, [q.memberOf]))
          .filter((r) => r.get('tenant') === q.tenant && r.get('is_banned') !== true)
          .map((r) => r.get('room_id') as string);
        const chunks: string[][] = [];
        for (let i = 0; i < mine.length; i += ID_IN_CHUNK) chunks.push(mine.slice(i, i + ID_IN_CHUNK));
        entries = (await Promise.all(chunks.map((ids) => all('listRooms', Q.tenantRoomsIn, [q.tenant, ids])))).flat();
      }
      const matching = entries
        .map((r) => ({ roomId: r.get('room_id') as string, type: r.get('type') as string, activity: Number(r.get('last_activity') ?? 0n) }))
        .filter((r) => (q.type === undefined || r.type === q.type) && (!q.discoverable || r.type === 'public' || r.type === 'announcement'))
        .sort((a, b) => b.activity - a.activity || (a.roomId < b.roomId ? -1 : a.roomId > b.roomId ? 1 : 0));
      const offset = bound(q.offset);
      const page = matching.slice(offset, offset + bound(q.limit));
      const rooms = (await Promise.all(page.map((r) => getRoom(r.roomId)))).filter((r): r is Room => r !== undefined);
      return { rooms, total: matching.length };
    },

    async findDirectRoom(tenant, userA, userB) {
      const candidates = (await all('findDirectRoom', Q.userRooms, [userA]))
        .filter((r) => r.get('tenant') === tenant && r.get('room_type') === 'direct')
        .map((r) => r.get('room_id') as string);
      const withB = await Promise.all(candidates.map(async (roomId) =>
        (await exec('findDirectRoom', Q.getMember, [roomId, userB])).rowLength > 0));
      const roomId = candidates.find((_, i) => withB[i]);
      return roomId === undefined ? undefined : getRoom(roomId);
    },

    async touchRoom(roomId, at) {
      const ms = Date.parse(at);
      if (Number.isNaN(ms)) throw new ChatError('bad_request', `touchRoom: ${JSON.stringify(at)} is not a time`);
      const key = await roomKey('touchRoom', roomId);
      if (!key) return;
      const groups = new Map<string, Statement[]>();
      pushTo(groups, `room\0${roomId}`, { query: Q.roomActivity, params: [msTs(ms), BigInt(ms), roomId] });
      pushTo(groups, `tenant\0${key.tenant}`, { query: Q.tenantActivity, params: [msTs(ms), BigInt(ms), key.tenant, roomId] });
      await write('touchRoom', groups);
    },

    async putMember(member) {
      const key = await roomKey('putMember', member.roomId);
      if (!key) throw new ChatError('not_found', `room ${member.roomId} does not exist`);
      const groups = new Map<string, Statement[]>();
      const [m, u] = memberStatements(member, key.tenant, key.type, nowMicros());
      pushTo(groups, 'member', m!);
      pushTo(groups, 'user', u!);
      await write('putMember', groups);
      await recountMembers(member.roomId);
    },

    async getMember(roomId, userId) {
      const row = (await exec('getMember', Q.getMember, [roomId, userId])).first();
      return row ? toMember(row) : undefined;
    },

    async removeMember(roomId, userId) {
      const key = await roomKey('removeMember', roomId);
      const ts = nowMicros();
      const groups = new Map<string, Statement[]>();
      pushTo(groups, 'member', { query: Q.deleteMember, params: [ts, roomId, userId] });
      pushTo(groups, 'user', { query: Q.deleteUserRoom, params: [ts, userId, roomId] });
      await write('removeMember', groups);
      if (key) await recountMembers(roomId);
    },

    async listMembers(roomId, page) {
      const members = (await all('listMembers', Q.members, [roomId])).map(toMember);
      members.sort((a, b) => cmp(a.joinedAt, b.joinedAt) || ROLE_RANK[a.role] - ROLE_RANK[b.role] || cmp(a.userId, b.userId));
      const offset = bound(page.offset);
      return { members: members.slice(offset, offset + bound(page.limit)), total: members.length };
    },

    async roomsOfUser(tenant, userId) {
      return (await all('roomsOfUser', Q.userRooms, [userId]))
        .filter((r) => r.get('tenant') === tenant && r.get('is_banned') !== true)
        .map((r) => r.get('room_id') as string);
    },

    async applyEvents(events) {
      if (events.length === 0) return;
      const groups = new Map<string, Statement[]>();
      const touches = new Map<string, number>();
      const add = (key: string, s: Statement) => pushTo(groups, key, s);
      for (let i = 0; i < events.length; i++) bindEvent(events[i]!, i, add, touches);
      // lastActivity lives with the room and in its tenant's list; events name only the room.
      await Promise.all([...touches].map(async ([roomId, at]) => {
        const key = await roomKey('applyEvents', roomId);
        if (!key) return;
        add(`room\0${roomId}`, { query: Q.roomActivity, params: [msTs(at), BigInt(at), roomId] });
        add(`tenant\0${key.tenant}`, { query: Q.tenantActivity, params: [msTs(at), BigInt(at), key.tenant, roomId] });
      }));
      await write('applyEvents', groups);
      if (knownBuckets.size > 100_000) knownBuckets.clear();
      for (const s of groups.values()) {
        for (const st of s) if (st.query === Q.addBucket) knownBuckets.add(`${st.params[0] as string}\0${st.params[1] as number}`);
      }
    },

    async getMessage(roomId, messageId) {
      const id = parseId(messageId);
      if (id === undefined) return undefined;
      const row = (await exec('getMessage', Q.getMessage, [roomId, bucketOf(id), id])).first();
      if (!row || row.get('created') !== true) return undefined;
      return (await toMessages(roomId, [row]))[0];
    },

    async history(roomId, q: HistoryQuery) {
      const limit = bound(q.limit);
      if (limit === 0) return [];
      const before = q.before === undefined ? MAX_ID : cursor(q.before, 'before');
      const after = q.after === undefined ? -1n : cursor(q.after, 'after');
      const oldestFirst = q.after !== undefined && q.before === undefined;
      if (q.threadId !== undefined) {
        const threadId = cursor(q.threadId, 'threadId');
        const ids = (await exec('history', oldestFirst ? Q.repliesAsc : Q.repliesDesc, [roomId, threadId, before, after, limit]))
          .rows.map((r) => r.get('message_id') as bigint);
        if (oldestFirst) ids.reverse();
        return toMessages(roomId, await messagesById('history', roomId, ids));
      }
      const low = bucketOf(after < 0n ? 0n : after);
      const high = bucketOf(before);
      const buckets = (await bucketsOf('history', roomId)).filter((b) => b >= low && b <= high);
      if (oldestFirst) buckets.reverse();
      const rows: Row[] = [];
      for (const b of buckets) {
        const rs = await exec('history', oldestFirst ? Q.timelineAsc : Q.timelineDesc, [roomId, b, before, after, limit - rows.length]);
        for (const r of rs.rows) rows.push(r);
        if (rows.length >= limit) break;
      }
      if (oldestFirst) rows.reverse();
      return toMessages(roomId, rows);
    },

    async pinned(roomId) {
      const pins = (await all('pinned', Q.pins, [roomId]))
        .map((r) => ({ id: r.get('message_id') as bigint, at: r.get('pinned_at') as bigint }))
        .sort((a, b) => (a.at === b.at ? (a.id < b.id ? 1 : -1) : a.at < b.at ? 1 : -1));
      const rows = (await messagesById('pinned', roomId, pins.map((p) => p.id))).filter((r) => r.get('deleted') !== true);
      return toMessages(roomId, rows);
    },

    async search(q: SearchQuery) {
      const terms = queryTerms(q.text);
      const limit = bound(q.limit);
      const roomIds = [...new Set(q.roomIds)];
      if (terms.length === 0 || roomIds.length === 0 || limit === 0) return [];
      // Walk the time windows newest first, all rooms at once, until `limit` matches are in hand:
      // every match of an older window is older than every match found so far.
      const bucketsByRoom = await Promise.all(roomIds.map((r) => bucketsOf('search', r)));
      const windows = [...new Set(bucketsByRoom.flat())].sort((a, b) => b - a);
      const found: Array<{ roomId: string; row: Row }> = [];
      for (const w of windows) {
        const rooms = roomIds.filter((_, i) => bucketsByRoom[i]!.includes(w));
        const perRoom: Row[][] = new Array(rooms.length);
        await inParallel(rooms.map((r, i) => [r, i] as const), writeConcurrency, async ([roomId, i]) => {
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
      const byRoom = new Map<string, Row[]>();
      for (const f of top) pushTo(byRoom, f.roomId, f.row);
      const built = new Map<Row, Message>();
      await Promise.all([...byRoom].map(async ([roomId, rows]) => {
        const msgs = await toMessages(roomId, rows);
        rows.forEach((r, i) => built.set(r, msgs[i]!));
      }));
      return top.map((f) => built.get(f.row)!);
    },

    async getReadState(roomId, userId) {
      const row = (await exec('getReadState', Q.readState, [roomId, userId])).first();
      if (!row) return undefined;
      return {
        roomId, userId, lastReadId: (row.get('message_id') as bigint).toString(), readAt: iso(row.get('at') as bigint),
      } satisfies ReadState;
    },

    async countUnread(roomId, userId, afterId, cap) {
      const limit = bound(cap);
      if (limit === 0) return 0;
      const after = afterId === undefined ? -1n : cursor(afterId, 'afterId');
      const low = bucketOf(after < 0n ? 0n : after);
      const buckets = (await bucketsOf('countUnread', roomId)).filter((b) => b >= low);
      let n = 0;
      for (const b of buckets) {
        let pageState: string | undefined;
        do {
          const rs = await exec('countUnread', Q.unreadScan, [roomId, b, after], { fetchSize: Math.min(PAGE_SIZE, limit * 2), ...(pageState ? { pageState } : {}) });
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
        all('messageStatus', Q.deliveries, [roomId, id]),
        all('messageStatus', Q.readUsers, [roomId]),
        exec('messageStatus', Q.author, [roomId, bucketOf(id), id]),
      ]);
      const status = new Map<string, MessageStatus>();
      for (const r of delivered) {
        const userId = r.get('user_id') as string;
        status.set(userId, { messageId, userId, deliveredAt: iso(r.get('at') as bigint) });
      }
      const readAt = await Promise.all(readers.map(async (r) => {
        const userId = r.get('user_id') as string;
        const first = (await exec('messageStatus', Q.firstReadAt, [roomId, userId, id])).first();
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
      return [...status.values()].filter((s) => s.userId !== author).sort((a, b) => cmp(a.userId, b.userId));
    },

    async ping() {
      await exec('ping', Q.ping, [], { readTimeout: 2000 });
    },

    async close() {
      if (closed) return;
      closed = true;
      await client.shutdown();
    },
  } satisfies Store;
}

// ---- helpers

async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let error: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && error === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        error ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (error !== undefined) throw error.err;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function estimateSize(s: Statement): number {
  let n = 64;
  for (const p of s.params) {
    if (typeof p === 'string') n += p.length * 3;
    else if (Array.isArray(p)) for (const v of p) n += typeof v === 'string' ? v.length * 3 + 4 : 8;
    else n += 8;
  }
  return n;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const iso = (ms: bigint | number) => new Date(Number(ms)).toISOString();

function reactionRecord(entries: Array<{ emoji: string; userId: string; at: bigint }> | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!entries) return out;
  entries.sort((a, b) => (a.at === b.at ? cmp(a.userId, b.userId) : a.at < b.at ? -1 : 1));
  for (const e of entries) (out[e.emoji] ??= []).push(e.userId);
  return out;
}

function toRoom(row: Row): Room | undefined {
  if (row.get('name') == null || row.get('tenant') == null) return undefined; // claimed, not yet written
  const room: Room = {
    roomId: row.get('room_id') as string,
    tenant: row.get('tenant') as string,
    name: row.get('name') as string,
    description: row.get('description') as string,
    type: row.get('type') as Room['type'],
    createdBy: row.get('created_by') as string,
    createdAt: row.get('created_at') as string,
    updatedAt: row.get('updated_at') as string,
    memberCount: (row.get('member_count') as number | null) ?? 0,
    maxMembers: row.get('max_members') as number,
    lastActivity: row.get('last_activity') == null ? (row.get('created_at') as string) : iso(row.get('last_activity') as bigint),
    settings: JSON.parse(row.get('settings') as string) as Room['settings'],
    isActive: row.get('is_active') === true,
    tags: JSON.parse(row.get('tags') as string) as string[],
  };
  if (row.get('avatar') != null) room.avatar = row.get('avatar') as string;
  if (row.get('banner') != null) room.banner = row.get('banner') as string;
  return room;
}

function toMember(row: Row): RoomMember {
  const m: RoomMember = {
    roomId: row.get('room_id') as string,
    userId: row.get('user_id') as string,
    displayName: row.get('display_name') as string,
    role: row.get('role') as RoomMember['role'],
    joinedAt: row.get('joined_at') as string,
    isMuted: row.get('is_muted') === true,
    isBanned: row.get('is_banned') === true,
  };
  if (row.get('avatar') != null) m.avatar = row.get('avatar') as string;
  return m;
}

function toMessage(roomId: string, row: Row, reactions: Record<string, string[]>): Message {
  const b = JSON.parse(row.get('body') as string) as MessageBody;
  const deleted = row.get('deleted') === true;
  const editedAt = (row.get('edited_at') as bigint | null) ?? 0n;
  const threadId = (row.get('thread_id') as bigint | null) ?? 0n;
  const m: Message = {
    messageId: (row.get('message_id') as bigint).toString(),
    roomId,
    authorId: row.get('author_id') as string,
    authorName: b.authorName,
    content: deleted ? '' : ((row.get('content') as string | null) ?? ''),
    type: b.type,
    timestamp: b.timestamp,
    reactions,
    replyTo: b.replyTo,
    threadId: threadId === 0n ? null : threadId.toString(),
    mentions: b.mentions,
    // A tombstone keeps no trace of what was said, attachments included.
    attachments: deleted ? [] : b.attachments,
    isEdited: editedAt > 0n,
    isDeleted: deleted,
    isPinned: row.get('pinned') === true,
    isAnonymous: b.isAnonymous,
  };
  if (b.authorAvatar !== undefined) m.authorAvatar = b.authorAvatar;
  if (editedAt > 0n) m.editedAt = iso(editedAt);
  if (deleted && row.get('deleted_at') != null) m.deletedAt = iso(row.get('deleted_at') as bigint);
  if (b.anonymousName !== undefined) m.anonymousName = b.anonymousName;
  if (b.clientMsgId !== undefined) m.clientMsgId = b.clientMsgId;
  if (b.metadata !== undefined) m.metadata = b.metadata;
  return m;
}


function parseTime(value: string, what: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new ChatError('bad_request', `${what} ${JSON.stringify(value)} is not a time`);
  return ms;
}

/** A limit, offset or cap: a non-negative integer (NaN and negatives are 0). */
function bound(n: number): number {
  return n > 0 ? Math.min(Math.trunc(n), MAX_BOUND) : 0;
}

