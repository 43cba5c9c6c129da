import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { DurableEvent } from '../domain/events.ts';
import type { Message, MessageStatus, ReadState, Room, RoomMember } from '../domain/models.ts';
import { ChatError } from '../protocol/errors.ts';
import { contentTerms, queryTerms } from './search-terms.ts';
import { MAX_ID, badEvent, cursor, eventId, parseId } from './store-input.ts';
import type { HistoryQuery, ListRoomsQuery, SearchQuery, Store } from './store.ts';

/** What the store logs through; a pino logger fits. */
export interface StoreLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type SqliteStoreConfig =
  | { dataDir: string; busyTimeoutMs?: number }
  | { file: string; busyTimeoutMs?: number };

export const SQLITE_FILE_NAME = 'chat.db';
/**
 * How long a write waits for another connection's lock before failing with `unavailable`.
 * better-sqlite3 is synchronous, so the wait blocks the event loop: keep it short. Only another
 * process (a CLI, a backup) can hold the lock; the server itself uses one connection.
 */
export const DEFAULT_BUSY_TIMEOUT_MS = 2000;

const MAX_BOUND = 2 ** 31 - 1;

/**
 * Schema migrations; entry i takes `PRAGMA user_version` from i to i + 1. Append, never edit one
 * that has shipped.
 *
 * Messages are keyed (room_id, message_id) so a room's history is one range scan, and an event
 * naming the wrong room can never touch another room's message. A row with `created = 0` is a
 * placeholder: it holds what events that arrived before the message's create did (edit, delete,
 * pin), so the create, whenever it comes, lands on the right final state. Reads skip placeholders.
 *
 * Content is last-writer-wins on (content_at, content_id): the event time, then the event id to
 * break ties. `edited_at` is set while the winning content is an edit's. Content of a deleted
 * message is erased and stays erased; later edits still move the LWW key so every order of the
 * same events ends in the same row.
 *
 * message_fts is contentless (the text is stored once, in messages); applyEvents keeps it in sync:
 * a message is indexed exactly while it is created and not deleted. Its rowid is the message id
 * (snowflakes are unique across rooms). Since version 2 it indexes the words of search-terms.ts
 * (lower-cased, accent-folded, one FTS token each with the `ascii` tokenizer) rather than the raw
 * content, so search matches whole words exactly as the Cassandra store does.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    type TEXT NOT NULL,
    avatar TEXT,
    banner TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    member_count INTEGER NOT NULL DEFAULT 0,
    max_members INTEGER NOT NULL,
    last_activity TEXT NOT NULL,
    last_activity_ms INTEGER NOT NULL,
    settings TEXT NOT NULL,
    is_active INTEGER NOT NULL,
    tags TEXT NOT NULL
  );
  CREATE INDEX rooms_by_activity ON rooms (tenant, last_activity_ms DESC, room_id);

  CREATE TABLE members (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    avatar TEXT,
    role TEXT NOT NULL,
    joined_at TEXT NOT NULL,
    is_muted INTEGER NOT NULL,
    is_banned INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
  ) WITHOUT ROWID;
  CREATE INDEX members_by_user ON members (user_id, room_id);

  CREATE TABLE messages (
    room_id TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    created INTEGER NOT NULL DEFAULT 0,
    author_id TEXT,
    thread_id INTEGER,
    body TEXT,
    content TEXT NOT NULL DEFAULT '',
    content_at INTEGER,
    content_id INTEGER,
    edited_at INTEGER,
    deleted_at INTEGER,
    pinned INTEGER NOT NULL DEFAULT 0,
    pinned_at INTEGER,
    PRIMARY KEY (room_id, message_id)
  ) WITHOUT ROWID;
  CREATE INDEX messages_by_thread ON messages (room_id, thread_id, message_id) WHERE thread_id IS NOT NULL;
  CREATE INDEX messages_pinned ON messages (room_id, pinned_at) WHERE pinned = 1;

  CREATE VIRTUAL TABLE message_fts USING fts5(
    content, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2'
  );

  CREATE TABLE reactions (
    room_id TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    emoji TEXT NOT NULL,
    user_id TEXT NOT NULL,
    present INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (room_id, message_id, emoji, user_id)
  ) WITHOUT ROWID;

  -- Every read mark, first time per (user, id): read state is the highest, and a message's read
  -- time for a user is the earliest mark at or after it.
  CREATE TABLE read_marks (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id, message_id)
  ) WITHOUT ROWID;

  CREATE TABLE deliveries (
    room_id TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (room_id, message_id, user_id)
  ) WITHOUT ROWID;
  `,
  `
  DROP TABLE message_fts;
  CREATE VIRTUAL TABLE message_fts USING fts5(content, content = '', contentless_delete = 1, tokenize = 'ascii');
  INSERT INTO message_fts (rowid, content)
    SELECT message_id, chat_search_terms(content) FROM messages WHERE created = 1 AND deleted_at IS NULL;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

// ---- rows

interface RoomRow {
  room_id: string; tenant: string; name: string; description: string; type: Room['type'];
  avatar: string | null; banner: string | null; created_by: string; created_at: string; updated_at: string;
  member_count: number; max_members: number; last_activity: string; settings: string; is_active: number; tags: string;
}

interface MemberRow {
  room_id: string; user_id: string; display_name: string; avatar: string | null; role: RoomMember['role'];
  joined_at: string; is_muted: number; is_banned: number;
}

interface MessageRow {
  id: string; room_id: string; author_id: string; thread_id: string | null; body: string; content: string;
  edited_at: number | null; deleted_at: number | null; pinned: number;
}

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

const MESSAGE_COLUMNS = `CAST(message_id AS TEXT) AS id, room_id, author_id, CAST(thread_id AS TEXT) AS thread_id,
  body, content, edited_at, deleted_at, pinned`;

/** The (content_at, content_id) of the incoming row beats the stored one. */
const CONTENT_WINS = `(content_at IS NULL OR excluded.content_at > content_at
  OR (excluded.content_at = content_at AND excluded.content_id > content_id))`;

const UPSERT_RETURNING = 'created, deleted_at IS NULL AS live, content';

const ROLE_ORDER = `CASE role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'moderator' THEN 2 ELSE 3 END`;

const SILENT_LOG: StoreLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * The embedded store: one SQLite file, `chat.db` in `dataDir` (created if missing), or `file`;
 * `{ file: ':memory:' }` gives a private in-memory database. WAL with synchronous=NORMAL: a crash
 * of the process loses nothing committed, a crash of the machine may roll back the last few
 * transactions (never corrupts the file). One connection: writes are serialized by the event loop.
 *
 * Beyond the port's contract: applyEvents rejects with bad_request (details.index is the event's
 * position) when an event is malformed, before writing anything; putMember and updateRoom reject
 * with not_found when the room does not exist.
 */
export function createSqliteStore(cfg: SqliteStoreConfig, log: StoreLog = SILENT_LOG): Store {
  const file = 'file' in cfg ? cfg.file : join(cfg.dataDir, SQLITE_FILE_NAME);
  let db: Database.Database;
  try {
    if ('dataDir' in cfg) mkdirSync(cfg.dataDir, { recursive: true });
    db = new Database(file);
  } catch (err) {
    throw new ChatError('unavailable', `cannot open the SQLite store at ${file}`, { cause: err });
  }
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.trunc(cfg.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS))}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('temp_store = MEMORY');
    db.pragma('cache_size = -65536'); // KiB: room for the hot index pages of messages and search
    db.function('chat_search_terms', { deterministic: true }, (content: unknown) =>
      typeof content === 'string' ? contentTerms(content).join(' ') : '');
    migrate(db, file, log);
  } catch (err) {
    const error = toStoreError(err, 'open', log, db);
    db.close();
    throw error;
  }

  const s = prepareStatements(db);

  const createRoomTx = db.transaction((room: Room, members: RoomMember[]) => {
    if (s.insertRoom.run(roomParams(room)).changes === 0) {
      throw new ChatError('conflict', `room ${room.roomId} already exists`);
    }
    for (const m of members) {
      if (m.roomId !== room.roomId) throw new ChatError('bad_request', `member ${m.userId} belongs to room ${m.roomId}, not ${room.roomId}`);
      s.upsertMember.run(memberParams(m));
    }
    s.recountMembers.run(room.roomId);
  });

  const putMemberTx = db.transaction((m: RoomMember) => {
    if (s.roomExists.get(m.roomId) === undefined) throw new ChatError('not_found', `room ${m.roomId} does not exist`);
    const old = s.memberBanned.get(m.roomId, m.userId) as { is_banned: number } | undefined;
    s.upsertMember.run(memberParams(m));
    const delta = (m.isBanned ? 0 : 1) - (old === undefined || old.is_banned ? 0 : 1);
    if (delta !== 0) s.addMemberCount.run(delta, m.roomId);
  });

  const removeMemberTx = db.transaction((roomId: string, userId: string) => {
    const old = s.memberBanned.get(roomId, userId) as { is_banned: number } | undefined;
    if (old === undefined) return;
    s.deleteMember.run(roomId, userId);
    if (!old.is_banned) s.addMemberCount.run(-1, roomId);
  });

  /** Keeps the search index in step with a message row an upsert returned. */
  function syncSearch(messageId: bigint, row: UpsertedMessage): void {
    if (row.created === 1 && row.live === 1) s.ftsReplace.run(messageId, contentTerms(row.content).join(' '));
  }

  // FTS is written here rather than by triggers: FTS5 flushes its pending terms at every
  // statement savepoint a trigger opens, which made ingest three times slower.
  const applyTx = db.transaction((ops: BoundEvent[], touches: Map<string, number>) => {
    for (const op of ops) {
      const p = op.params;
      switch (op.kind) {
        case 'message.created':
          // Fast path: a new message. A placeholder or a redelivery takes the LWW upsert.
          if (s.insertMessage.run(p).changes === 1) s.ftsInsert.run(op.messageId, contentTerms(op.content).join(' '));
          else syncSearch(op.messageId, s.createMessage.get(p) as UpsertedMessage);
          break;
        case 'message.edited':
          syncSearch(op.messageId, s.editMessage.get(p) as UpsertedMessage);
          break;
        case 'message.deleted':
          if ((s.deleteMessage.get(p) as { created: number }).created === 1) s.ftsDelete.run(op.messageId);
          break;
        case 'reaction.added': s.addReaction.run(p); break;
        case 'reaction.removed': s.removeReaction.run(p); break;
        case 'message.pinned': s.pinMessage.run(p); break;
        case 'message.unpinned': s.unpinMessage.run(p); break;
        case 'read.marked': s.markRead.run(p); break;
        case 'message.delivered': s.markDelivered.run(p); break;
      }
    }
    for (const [roomId, ms] of touches) s.touchRoom.run({ roomId, ms, iso: new Date(ms).toISOString() });
  });

  function bindEvent(e: DurableEvent, index: number): BoundEvent {
    const at = e.at;
    if (typeof at !== 'number' || !Number.isFinite(at)) throw badEvent(index, e, 'at must be a finite number');
    switch (e.kind) {
      case 'message.created': {
        const m = e.message;
        if (m.roomId !== e.roomId) throw badEvent(index, e, `message.roomId ${m.roomId} differs from the event's room`);
        const body: MessageBody = {
          authorName: m.authorName, authorAvatar: m.authorAvatar, type: m.type, timestamp: m.timestamp,
          // Defaults guard against producers that leave out empty fields (the wire is msgpack, not TypeScript).
          replyTo: m.replyTo ?? null, mentions: m.mentions ?? [], attachments: m.attachments ?? [], isAnonymous: m.isAnonymous ?? false,
          anonymousName: m.anonymousName, clientMsgId: m.clientMsgId, metadata: m.metadata,
        };
        const messageId = eventId(m.messageId, index, e);
        return {
          kind: e.kind, messageId, content: m.content,
          params: {
            roomId: e.roomId, messageId, authorId: m.authorId,
            threadId: m.threadId == null ? null : eventId(m.threadId, index, e),
            body: JSON.stringify(body), content: m.content, at, eventId: eventId(e.id, index, e),
          },
        };
      }
      case 'message.edited': {
        const messageId = eventId(e.messageId, index, e);
        return {
          kind: e.kind, messageId, content: e.content,
          params: { roomId: e.roomId, messageId, content: e.content, at, eventId: eventId(e.id, index, e) },
        };
      }
      case 'message.deleted':
      case 'message.pinned':
      case 'message.unpinned': {
        const messageId = eventId(e.messageId, index, e);
        return { kind: e.kind, messageId, content: '', params: { roomId: e.roomId, messageId, at } };
      }
      case 'reaction.added':
      case 'reaction.removed': {
        const messageId = eventId(e.messageId, index, e);
        return { kind: e.kind, messageId, content: '', params: { roomId: e.roomId, messageId, emoji: e.emoji, userId: e.userId, at } };
      }
      case 'read.marked':
      case 'message.delivered': {
        const messageId = eventId(e.messageId, index, e);
        return { kind: e.kind, messageId, content: '', params: { roomId: e.roomId, messageId, userId: e.userId, at } };
      }
      default: {
        const unknown: never = e;
        const { kind, id } = unknown as { kind?: unknown; id?: unknown };
        throw new ChatError('bad_request', `event ${index}: unknown kind ${String(kind)}`, { details: { index, eventId: id, kind } });
      }
    }
  }

  function toMessages(roomId: string, rows: MessageRow[]): Message[] {
    if (rows.length === 0) return [];
    const reactions = new Map<string, Record<string, string[]>>();
    const ids = '[' + rows.map((r) => r.id).join(',') + ']';
    for (const r of s.reactionsOf.all(roomId, ids) as Array<{ id: string; emoji: string; user_id: string }>) {
      let byEmoji = reactions.get(r.id);
      if (byEmoji === undefined) reactions.set(r.id, (byEmoji = {}));
      (byEmoji[r.emoji] ??= []).push(r.user_id);
    }
    return rows.map((row) => toMessage(row, reactions.get(row.id) ?? {}));
  }

  /** Runs a synchronous database call, turning driver errors into ChatErrors. */
  async function run<T>(op: string, fn: () => T): Promise<T> {
    try {
      return fn();
    } catch (err) {
      throw toStoreError(err, op, log, db);
    }
  }

  log.info({ file, schemaVersion: SCHEMA_VERSION }, 'sqlite store open');

  return {
    kind: 'sqlite',

    createRoom: (room, members) => run('createRoom', () => createRoomTx.immediate(room, members)),

    getRoom: (roomId) => run('getRoom', () => {
      const row = s.getRoom.get(roomId) as RoomRow | undefined;
      return row === undefined ? undefined : toRoom(row);
    }),

    updateRoom: (room) => run('updateRoom', () => {
      const r = s.updateRoom.run({
        roomId: room.roomId, name: room.name, description: room.description, avatar: room.avatar ?? null,
        banner: room.banner ?? null, settings: JSON.stringify(room.settings), tags: JSON.stringify(room.tags),
        maxMembers: room.maxMembers, updatedAt: room.updatedAt,
      });
      if (r.changes === 0) throw new ChatError('not_found', `room ${room.roomId} does not exist`);
    }),

    listRooms: (q: ListRoomsQuery) => run('listRooms', () => {
      const params = {
        tenant: q.tenant, type: q.type ?? null, memberOf: q.memberOf ?? null, discoverable: q.discoverable ? 1 : 0,
        limit: bound(q.limit), offset: bound(q.offset),
      };
      const [list, count] = q.memberOf === undefined ? [s.listRooms, s.countRooms] : [s.listRoomsOf, s.countRoomsOf];
      const rooms = (list.all(params) as RoomRow[]).map(toRoom);
      const { n } = count.get(params) as { n: number };
      return { rooms, total: n };
    }),

    findDirectRoom: (tenant, userA, userB) => run('findDirectRoom', () => {
      const row = s.findDirectRoom.get({ tenant, userA, userB }) as RoomRow | undefined;
      return row === undefined ? undefined : toRoom(row);
    }),

    touchRoom: (roomId, at) => run('touchRoom', () => {
      const ms = Date.parse(at);
      if (Number.isNaN(ms)) throw new ChatError('bad_request', `touchRoom: ${JSON.stringify(at)} is not a time`);
      s.touchRoom.run({ roomId, ms, iso: at });
    }),

    putMember: (member) => run('putMember', () => putMemberTx.immediate(member)),

    getMember: (roomId, userId) => run('getMember', () => {
      const row = s.getMember.get(roomId, userId) as MemberRow | undefined;
      return row === undefined ? undefined : toMember(row);
    }),

    removeMember: (roomId, userId) => run('removeMember', () => removeMemberTx.immediate(roomId, userId)),

    listMembers: (roomId, page) => run('listMembers', () => {
      const rows = s.listMembers.all(roomId, bound(page.limit), bound(page.offset)) as MemberRow[];
      const { n } = s.countMembers.get(roomId) as { n: number };
      return { members: rows.map(toMember), total: n };
    }),

    roomsOfUser: (tenant, userId) => run('roomsOfUser', () =>
      (s.roomsOfUser.all(userId, tenant) as Array<{ room_id: string }>).map((r) => r.room_id)),

    applyEvents: (events) => run('applyEvents', () => {
      if (events.length === 0) return;
      const ops = new Array<BoundEvent>(events.length);
      const touches = new Map<string, number>();
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        ops[i] = bindEvent(e, i);
        if (e.kind === 'message.created') {
          const prev = touches.get(e.roomId);
          if (prev === undefined || e.at > prev) touches.set(e.roomId, e.at);
        }
      }
      applyTx.immediate(ops, touches);
    }),

    getMessage: (roomId, messageId) => run('getMessage', () => {
      const id = parseId(messageId);
      if (id === undefined) return undefined;
      const row = s.getMessage.get(roomId, id) as MessageRow | undefined;
      return row === undefined ? undefined : toMessages(roomId, [row])[0];
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
      return toMessages(roomId, rows);
    }),

    pinned: (roomId) => run('pinned', () => toMessages(roomId, s.pinned.all(roomId) as MessageRow[])),

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
        const msgs = toMessages(roomId, list);
        for (let i = 0; i < list.length; i++) built.set(list[i]!, msgs[i]!);
      }
      return rows.map((r) => built.get(r)!);
    }),

    getReadState: (roomId, userId) => run('getReadState', () => {
      const row = s.readState.get(roomId, userId) as { id: string; at: number } | undefined;
      if (row === undefined) return undefined;
      return { roomId, userId, lastReadId: row.id, readAt: new Date(row.at).toISOString() } satisfies ReadState;
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

    ping: () => run('ping', () => {
      s.ping.get();
    }),

    close: async () => {
      if (!db.open) return;
      try {
        db.pragma('optimize');
      } catch (err) {
        log.warn({ err, file }, 'sqlite store: optimize before close failed');
      }
      db.close();
    },
  } satisfies Store;
}

/** An event checked and converted to statement parameters, before the transaction starts. */
interface BoundEvent {
  kind: DurableEvent['kind'];
  messageId: bigint;
  content: string;
  params: Record<string, unknown>;
}

/** What a message upsert returns: whether the row is now searchable, and with which text. */
interface UpsertedMessage {
  created: number;
  live: number;
  content: string;
}

function migrate(db: Database.Database, file: string, log: StoreLog): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new ChatError('internal', `the SQLite store at ${file} has schema version ${current}; this build knows up to ${MIGRATIONS.length}`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
    log.info({ file, from: v, to: v + 1 }, 'sqlite store schema migrated');
  }
}

/**
 * Every statement, prepared once. CROSS JOIN and INDEXED BY pin plans that the planner of a young
 * database (no statistics) would not pick: start from the user's memberships rather than from all
 * of a tenant's rooms, and read one thread through its index rather than the room's whole timeline.
 */
function prepareStatements(db: Database.Database) {
  return {
    ping: db.prepare('SELECT 1'),

    // rooms
    insertRoom: db.prepare(`INSERT INTO rooms (room_id, tenant, name, description, type, avatar, banner, created_by,
        created_at, updated_at, member_count, max_members, last_activity, last_activity_ms, settings, is_active, tags)
      VALUES (@roomId, @tenant, @name, @description, @type, @avatar, @banner, @createdBy, @createdAt, @updatedAt, 0,
        @maxMembers, @lastActivity, @lastActivityMs, @settings, @isActive, @tags)
      ON CONFLICT (room_id) DO NOTHING`),
    getRoom: db.prepare('SELECT * FROM rooms WHERE room_id = ?'),
    roomExists: db.prepare('SELECT 1 FROM rooms WHERE room_id = ?'),
    updateRoom: db.prepare(`UPDATE rooms SET name = @name, description = @description, avatar = @avatar, banner = @banner,
      settings = @settings, tags = @tags, max_members = @maxMembers, updated_at = @updatedAt WHERE room_id = @roomId`),
    touchRoom: db.prepare(`UPDATE rooms SET last_activity = @iso, last_activity_ms = @ms
      WHERE room_id = @roomId AND last_activity_ms < @ms`),
    listRooms: db.prepare(`SELECT * FROM rooms WHERE tenant = @tenant
      AND (@type IS NULL OR type = @type) AND (@discoverable = 0 OR type IN ('public', 'announcement'))
      ORDER BY last_activity_ms DESC, room_id LIMIT @limit OFFSET @offset`),
    countRooms: db.prepare(`SELECT count(*) AS n FROM rooms WHERE tenant = @tenant
      AND (@type IS NULL OR type = @type) AND (@discoverable = 0 OR type IN ('public', 'announcement'))`),
    listRoomsOf: db.prepare(`SELECT r.* FROM members m CROSS JOIN rooms r ON r.room_id = m.room_id
      WHERE m.user_id = @memberOf AND m.is_banned = 0 AND r.tenant = @tenant
      AND (@type IS NULL OR r.type = @type) AND (@discoverable = 0 OR r.type IN ('public', 'announcement'))
      ORDER BY r.last_activity_ms DESC, r.room_id LIMIT @limit OFFSET @offset`),
    countRoomsOf: db.prepare(`SELECT count(*) AS n FROM members m CROSS JOIN rooms r ON r.room_id = m.room_id
      WHERE m.user_id = @memberOf AND m.is_banned = 0 AND r.tenant = @tenant
      AND (@type IS NULL OR r.type = @type) AND (@discoverable = 0 OR r.type IN ('public', 'announcement'))`),
    findDirectRoom: db.prepare(`SELECT r.* FROM members a CROSS JOIN rooms r ON r.room_id = a.room_id
      WHERE a.user_id = @userA AND r.tenant = @tenant AND r.type = 'direct'
      AND EXISTS (SELECT 1 FROM members b WHERE b.room_id = r.room_id AND b.user_id = @userB)
      ORDER BY r.room_id LIMIT 1`),

    // members
    upsertMember: db.prepare(`INSERT INTO members (room_id, user_id, display_name, avatar, role, joined_at, is_muted, is_banned)
      VALUES (@roomId, @userId, @displayName, @avatar, @role, @joinedAt, @isMuted, @isBanned)
      ON CONFLICT (room_id, user_id) DO UPDATE SET display_name = excluded.display_name, avatar = excluded.avatar,
        role = excluded.role, joined_at = excluded.joined_at, is_muted = excluded.is_muted, is_banned = excluded.is_banned`),
    memberBanned: db.prepare('SELECT is_banned FROM members WHERE room_id = ? AND user_id = ?'),
    deleteMember: db.prepare('DELETE FROM members WHERE room_id = ? AND user_id = ?'),
    addMemberCount: db.prepare('UPDATE rooms SET member_count = member_count + ? WHERE room_id = ?'),
    recountMembers: db.prepare(`UPDATE rooms SET member_count =
      (SELECT count(*) FROM members WHERE members.room_id = rooms.room_id AND is_banned = 0) WHERE room_id = ?`),
    getMember: db.prepare('SELECT * FROM members WHERE room_id = ? AND user_id = ?'),
    listMembers: db.prepare(`SELECT * FROM members WHERE room_id = ? ORDER BY joined_at, ${ROLE_ORDER}, user_id LIMIT ? OFFSET ?`),
    countMembers: db.prepare('SELECT count(*) AS n FROM members WHERE room_id = ?'),
    roomsOfUser: db.prepare(`SELECT m.room_id FROM members m CROSS JOIN rooms r ON r.room_id = m.room_id
      WHERE m.user_id = ? AND m.is_banned = 0 AND r.tenant = ? ORDER BY m.room_id`),

    // message events
    insertMessage: db.prepare(`INSERT INTO messages (room_id, message_id, created, author_id, thread_id, body, content, content_at, content_id)
      VALUES (@roomId, @messageId, 1, @authorId, @threadId, @body, @content, @at, @eventId)
      ON CONFLICT (room_id, message_id) DO NOTHING`),
    createMessage: db.prepare(`INSERT INTO messages (room_id, message_id, created, author_id, thread_id, body, content, content_at, content_id)
      VALUES (@roomId, @messageId, 1, @authorId, @threadId, @body, @content, @at, @eventId)
      ON CONFLICT (room_id, message_id) DO UPDATE SET
        created = 1,
        author_id = CASE WHEN created = 1 THEN author_id ELSE excluded.author_id END,
        thread_id = CASE WHEN created = 1 THEN thread_id ELSE excluded.thread_id END,
        body = CASE WHEN created = 1 THEN body ELSE excluded.body END,
        content = CASE WHEN deleted_at IS NOT NULL THEN '' WHEN ${CONTENT_WINS} THEN excluded.content ELSE content END,
        edited_at = CASE WHEN ${CONTENT_WINS} THEN NULL ELSE edited_at END,
        content_at = CASE WHEN ${CONTENT_WINS} THEN excluded.content_at ELSE content_at END,
        content_id = CASE WHEN ${CONTENT_WINS} THEN excluded.content_id ELSE content_id END
      RETURNING ${UPSERT_RETURNING}`),
    editMessage: db.prepare(`INSERT INTO messages (room_id, message_id, content, content_at, content_id, edited_at)
      VALUES (@roomId, @messageId, @content, @at, @eventId, @at)
      ON CONFLICT (room_id, message_id) DO UPDATE SET
        content = CASE WHEN deleted_at IS NOT NULL THEN '' WHEN ${CONTENT_WINS} THEN excluded.content ELSE content END,
        edited_at = CASE WHEN ${CONTENT_WINS} THEN excluded.edited_at ELSE edited_at END,
        content_at = CASE WHEN ${CONTENT_WINS} THEN excluded.content_at ELSE content_at END,
        content_id = CASE WHEN ${CONTENT_WINS} THEN excluded.content_id ELSE content_id END
      RETURNING ${UPSERT_RETURNING}`),
    // Deleted stays deleted whatever comes later; deleted_at itself is LWW like every other field.
    deleteMessage: db.prepare(`INSERT INTO messages (room_id, message_id, content, deleted_at) VALUES (@roomId, @messageId, '', @at)
      ON CONFLICT (room_id, message_id) DO UPDATE SET content = '',
        deleted_at = CASE WHEN deleted_at IS NULL OR excluded.deleted_at > deleted_at THEN excluded.deleted_at ELSE deleted_at END
      RETURNING created`),
    ftsInsert: db.prepare('INSERT INTO message_fts (rowid, content) VALUES (?, ?)'),
    ftsReplace: db.prepare('INSERT OR REPLACE INTO message_fts (rowid, content) VALUES (?, ?)'),
    ftsDelete: db.prepare('DELETE FROM message_fts WHERE rowid = ?'),
    // Pins and reactions: LWW by time; on equal times the removal wins.
    pinMessage: db.prepare(`INSERT INTO messages (room_id, message_id, pinned, pinned_at) VALUES (@roomId, @messageId, 1, @at)
      ON CONFLICT (room_id, message_id) DO UPDATE SET pinned = 1, pinned_at = excluded.pinned_at
      WHERE pinned_at IS NULL OR excluded.pinned_at > pinned_at`),
    unpinMessage: db.prepare(`INSERT INTO messages (room_id, message_id, pinned, pinned_at) VALUES (@roomId, @messageId, 0, @at)
      ON CONFLICT (room_id, message_id) DO UPDATE SET pinned = 0, pinned_at = excluded.pinned_at
      WHERE pinned_at IS NULL OR excluded.pinned_at >= pinned_at`),
    addReaction: db.prepare(`INSERT INTO reactions (room_id, message_id, emoji, user_id, present, at)
      VALUES (@roomId, @messageId, @emoji, @userId, 1, @at)
      ON CONFLICT (room_id, message_id, emoji, user_id) DO UPDATE SET present = 1, at = excluded.at WHERE excluded.at > at`),
    removeReaction: db.prepare(`INSERT INTO reactions (room_id, message_id, emoji, user_id, present, at)
      VALUES (@roomId, @messageId, @emoji, @userId, 0, @at)
      ON CONFLICT (room_id, message_id, emoji, user_id) DO UPDATE SET present = 0, at = excluded.at WHERE excluded.at >= at`),
    markRead: db.prepare(`INSERT INTO read_marks (room_id, user_id, message_id, at) VALUES (@roomId, @userId, @messageId, @at)
      ON CONFLICT (room_id, user_id, message_id) DO UPDATE SET at = excluded.at WHERE excluded.at < at`),
    // A message is delivered (or read up to an id) when that first happened: the earliest time stays.
    markDelivered: db.prepare(`INSERT INTO deliveries (room_id, message_id, user_id, at) VALUES (@roomId, @messageId, @userId, @at)
      ON CONFLICT (room_id, message_id, user_id) DO UPDATE SET at = excluded.at WHERE excluded.at < at`),

    // message reads
    getMessage: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND message_id = ? AND created = 1`),
    reactionsOf: db.prepare(`SELECT CAST(message_id AS TEXT) AS id, emoji, user_id FROM reactions
      WHERE room_id = ? AND message_id IN (SELECT value FROM json_each(?)) AND present = 1
      ORDER BY message_id, at, user_id`),
    historyDesc: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages
      WHERE room_id = @roomId AND message_id < @before AND message_id > @after AND created = 1 AND thread_id IS NULL
      ORDER BY message_id DESC LIMIT @limit`),
    historyAsc: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages
      WHERE room_id = @roomId AND message_id < @before AND message_id > @after AND created = 1 AND thread_id IS NULL
      ORDER BY message_id ASC LIMIT @limit`),
    threadDesc: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages INDEXED BY messages_by_thread
      WHERE room_id = @roomId AND thread_id = @threadId AND message_id < @before AND message_id > @after AND created = 1
      ORDER BY message_id DESC LIMIT @limit`),
    threadAsc: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages INDEXED BY messages_by_thread
      WHERE room_id = @roomId AND thread_id = @threadId AND message_id < @before AND message_id > @after AND created = 1
      ORDER BY message_id ASC LIMIT @limit`),
    pinned: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages
      WHERE room_id = ? AND pinned = 1 AND created = 1 AND deleted_at IS NULL ORDER BY pinned_at DESC, message_id DESC`),
    search: db.prepare(`SELECT CAST(m.message_id AS TEXT) AS id, m.room_id, m.author_id, CAST(m.thread_id AS TEXT) AS thread_id,
        m.body, m.content, m.edited_at, m.deleted_at, m.pinned
      FROM message_fts f JOIN messages m ON m.message_id = f.rowid
      WHERE message_fts MATCH @match AND m.room_id IN (SELECT value FROM json_each(@rooms))
        AND m.created = 1 AND m.deleted_at IS NULL
      ORDER BY f.rowid DESC LIMIT @limit`),
    readState: db.prepare(`SELECT CAST(message_id AS TEXT) AS id, at FROM read_marks
      WHERE room_id = ? AND user_id = ? ORDER BY message_id DESC LIMIT 1`),
    countUnread: db.prepare(`SELECT count(*) AS n FROM (SELECT 1 FROM messages
      WHERE room_id = @roomId AND message_id > @after AND created = 1 AND thread_id IS NULL AND deleted_at IS NULL
        AND author_id IS NOT @userId LIMIT @cap)`),
    messageStatus: db.prepare(`WITH users (user_id) AS (
        SELECT user_id FROM deliveries WHERE room_id = @roomId AND message_id = @messageId
        UNION SELECT user_id FROM read_marks WHERE room_id = @roomId AND message_id >= @messageId)
      SELECT u.user_id,
        (SELECT at FROM deliveries d WHERE d.room_id = @roomId AND d.message_id = @messageId AND d.user_id = u.user_id) AS delivered_at,
        (SELECT min(at) FROM read_marks r WHERE r.room_id = @roomId AND r.user_id = u.user_id AND r.message_id >= @messageId) AS read_at
      FROM users u
      WHERE u.user_id IS NOT (SELECT author_id FROM messages WHERE room_id = @roomId AND message_id = @messageId AND created = 1)
      ORDER BY u.user_id`),
  };
}

// ---- mapping

function roomParams(r: Room) {
  const lastActivityMs = Date.parse(r.lastActivity);
  if (Number.isNaN(lastActivityMs)) throw new ChatError('bad_request', `room ${r.roomId}: lastActivity ${JSON.stringify(r.lastActivity)} is not a time`);
  return {
    roomId: r.roomId, tenant: r.tenant, name: r.name, description: r.description, type: r.type,
    avatar: r.avatar ?? null, banner: r.banner ?? null, createdBy: r.createdBy, createdAt: r.createdAt,
    updatedAt: r.updatedAt, maxMembers: r.maxMembers, lastActivity: r.lastActivity, lastActivityMs,
    settings: JSON.stringify(r.settings), isActive: r.isActive ? 1 : 0, tags: JSON.stringify(r.tags),
  };
}

function toRoom(row: RoomRow): Room {
  const room: Room = {
    roomId: row.room_id,
    tenant: row.tenant,
    name: row.name,
    description: row.description,
    type: row.type,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    memberCount: row.member_count,
    maxMembers: row.max_members,
    lastActivity: row.last_activity,
    settings: JSON.parse(row.settings) as Room['settings'],
    isActive: row.is_active === 1,
    tags: JSON.parse(row.tags) as string[],
  };
  if (row.avatar !== null) room.avatar = row.avatar;
  if (row.banner !== null) room.banner = row.banner;
  return room;
}

function memberParams(m: RoomMember) {
  return {
    roomId: m.roomId, userId: m.userId, displayName: m.displayName, avatar: m.avatar ?? null, role: m.role,
    joinedAt: m.joinedAt, isMuted: m.isMuted ? 1 : 0, isBanned: m.isBanned ? 1 : 0,
  };
}

function toMember(row: MemberRow): RoomMember {
  const m: RoomMember = {
    roomId: row.room_id,
    userId: row.user_id,
    displayName: row.display_name,
    role: row.role,
    joinedAt: row.joined_at,
    isMuted: row.is_muted === 1,
    isBanned: row.is_banned === 1,
  };
  if (row.avatar !== null) m.avatar = row.avatar;
  return m;
}

function toMessage(row: MessageRow, reactions: Record<string, string[]>): Message {
  const b = JSON.parse(row.body) as MessageBody;
  const deleted = row.deleted_at !== null;
  const m: Message = {
    messageId: row.id,
    roomId: row.room_id,
    authorId: row.author_id,
    authorName: b.authorName,
    content: row.content,
    type: b.type,
    timestamp: b.timestamp,
    reactions,
    replyTo: b.replyTo,
    threadId: row.thread_id,
    mentions: b.mentions,
    // A tombstone keeps no trace of what was said, attachments included.
    attachments: deleted ? [] : b.attachments,
    isEdited: row.edited_at !== null,
    isDeleted: deleted,
    isPinned: row.pinned === 1,
    isAnonymous: b.isAnonymous,
  };
  if (b.authorAvatar !== undefined) m.authorAvatar = b.authorAvatar;
  if (row.edited_at !== null) m.editedAt = new Date(row.edited_at).toISOString();
  if (row.deleted_at !== null) m.deletedAt = new Date(row.deleted_at).toISOString();
  if (b.anonymousName !== undefined) m.anonymousName = b.anonymousName;
  if (b.clientMsgId !== undefined) m.clientMsgId = b.clientMsgId;
  if (b.metadata !== undefined) m.metadata = b.metadata;
  return m;
}

// ---- ids and queries


/** A limit, offset or cap as SQLite wants it: a non-negative integer (NaN and negatives are 0). */
function bound(n: number): number {
  return n > 0 ? Math.min(Math.trunc(n), MAX_BOUND) : 0;
}


/**
 * Turns user text into an FTS5 query that cannot be a syntax error: every word of search-terms.ts
 * becomes a quoted string (so AND, OR, NEAR, quotes, parentheses, colons and stars are just text)
 * and all of them must match as whole words. Undefined when the text has no word at all.
 */
export function ftsQuery(text: string): string | undefined {
  const terms = queryTerms(text);
  return terms.length === 0 ? undefined : terms.map((w) => `"${w}"`).join(' ');
}

function toStoreError(err: unknown, op: string, log: StoreLog, db: Database.Database): ChatError {
  if (err instanceof ChatError) return err;
  if (!db.open) return new ChatError('unavailable', `sqlite store: ${op}: the store is closed`, { cause: err });
  if (err instanceof Database.SqliteError) {
    if (err.code.startsWith('SQLITE_BUSY') || err.code.startsWith('SQLITE_LOCKED')) {
      log.warn({ op, code: err.code }, 'sqlite store busy');
      return new ChatError('unavailable', `sqlite store: ${op}: database is busy`, { cause: err });
    }
    log.error({ err, op, code: err.code }, 'sqlite store failed');
    return new ChatError('internal', `sqlite store: ${op}: ${err.code}`, { cause: err });
  }
  log.error({ err, op }, 'sqlite store failed');
  return new ChatError('internal', `sqlite store: ${op} failed`, { cause: err });
}
