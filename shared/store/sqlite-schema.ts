import type Database from 'better-sqlite3';
import { BARE_KEY_TENANT, roomKey } from '../domain/room-key.ts';
import { ChatError } from '../protocol/errors.ts';
import { contentTerms } from './search-terms.ts';
import type { StoreLog } from './store-log.ts';

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
 *
 * Since version 4 every `room_id` column holds the room's key (shared/domain/room-key.ts: tenant
 * and id), so two tenants' rooms of the same id are two rooms. The default tenant's keys are the
 * bare ids: its rows stay as they were; migration 4 moves the rooms of other tenants, with their
 * members, messages, reactions, read marks and deliveries, to their keys.
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
  `
  -- The assistant's memory of one user's questions outside rooms (seed 000's AIContext), as JSON;
  -- rows past expires_at are ignored by reads and deleted by the next write.
  CREATE TABLE ai_contexts (
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    body TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id)
  ) WITHOUT ROWID;
  CREATE INDEX ai_contexts_by_expiry ON ai_contexts (expires_at);
  `,
  `
  CREATE TEMP TABLE room_key_moves AS
    SELECT room_id AS old_id, chat_room_key(tenant, room_id) AS new_id FROM rooms WHERE tenant <> '${BARE_KEY_TENANT}';
  UPDATE members SET room_id = (SELECT new_id FROM room_key_moves WHERE old_id = members.room_id)
    WHERE room_id IN (SELECT old_id FROM room_key_moves);
  UPDATE messages SET room_id = (SELECT new_id FROM room_key_moves WHERE old_id = messages.room_id)
    WHERE room_id IN (SELECT old_id FROM room_key_moves);
  UPDATE reactions SET room_id = (SELECT new_id FROM room_key_moves WHERE old_id = reactions.room_id)
    WHERE room_id IN (SELECT old_id FROM room_key_moves);
  UPDATE read_marks SET room_id = (SELECT new_id FROM room_key_moves WHERE old_id = read_marks.room_id)
    WHERE room_id IN (SELECT old_id FROM room_key_moves);
  UPDATE deliveries SET room_id = (SELECT new_id FROM room_key_moves WHERE old_id = deliveries.room_id)
    WHERE room_id IN (SELECT old_id FROM room_key_moves);
  UPDATE rooms SET room_id = (SELECT new_id FROM room_key_moves WHERE old_id = rooms.room_id)
    WHERE room_id IN (SELECT old_id FROM room_key_moves);
  DROP TABLE room_key_moves;
  `,
  `
  -- Seed 004: the match a direct room was opened for; one room per match in a tenant.
  ALTER TABLE rooms ADD COLUMN match_id TEXT;
  CREATE UNIQUE INDEX rooms_by_match ON rooms (tenant, match_id) WHERE match_id IS NOT NULL;

  -- The rooms each member archived for themselves (only their own room list hides them).
  CREATE TABLE archives (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    archived_at TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
  ) WITHOUT ROWID;
  `,
  `
  -- Offline notifications (api/notify): each user's preferences, the webhooks of a user or of the
  -- tenant (owner ''), Web Push subscriptions, and the sent-records that make a redelivered event
  -- notify nobody twice (swept once expired).
  -- IF NOT EXISTS: a file set back to an older version for a test runs it again.
  CREATE TABLE IF NOT EXISTS notification_prefs (
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant, user_id)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS webhooks (
    tenant TEXT NOT NULL, owner TEXT NOT NULL, webhook_id TEXT NOT NULL, body TEXT NOT NULL, health TEXT NOT NULL,
    PRIMARY KEY (tenant, owner, webhook_id)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS push_subscriptions (
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, endpoint TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant, user_id, endpoint)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS notifications_sent (
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, message_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id, message_id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS notifications_sent_by_expiry ON notifications_sent (expires_at);
  `,
  `
  -- Tenants (issue 15): each tenant's record (quotas, settings, secrets) and its API keys (hashed).
  CREATE TABLE IF NOT EXISTS tenants (
    tenant TEXT NOT NULL PRIMARY KEY, body TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS tenant_api_keys (
    tenant TEXT NOT NULL, key_id TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (tenant, key_id)
  ) WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the open database to SCHEMA_VERSION, one migration per transaction. Registers first the
 * SQL functions the migrations call: `chat_search_terms` (the words search indexes, migration 2)
 * and `chat_room_key` (a room's key, migration 4).
 */
export function migrateSqlite(db: Database.Database, file: string, log: StoreLog): void {
  db.function('chat_search_terms', { deterministic: true }, (content: unknown) =>
    typeof content === 'string' ? contentTerms(content).join(' ') : '');
  db.function('chat_room_key', { deterministic: true }, (tenant: unknown, roomId: unknown) => roomKey(String(tenant), String(roomId)));
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
