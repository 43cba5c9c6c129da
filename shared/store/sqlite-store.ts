import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ChatError } from '../protocol/errors.ts';
import { sqliteAiContext } from './sqlite-ai-context.ts';
import { sqliteContext } from './sqlite-context.ts';
import { sqliteError } from './sqlite-errors.ts';
import { sqliteEvents } from './sqlite-events.ts';
import { sqliteMessages } from './sqlite-messages.ts';
import { sqliteNotifications } from './sqlite-notifications.ts';
import { sqliteReadState } from './sqlite-read-state.ts';
import { sqliteRooms } from './sqlite-rooms.ts';
import { SCHEMA_VERSION, migrateSqlite } from './sqlite-schema.ts';
import { sqliteSearch } from './sqlite-search.ts';
import { sqliteTenants } from './sqlite-tenants.ts';
import { SILENT_STORE_LOG, type StoreLog } from './store-log.ts';
import type { Store } from './store.ts';

export { SCHEMA_VERSION } from './sqlite-schema.ts';

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

/**
 * The embedded store: one SQLite file, `chat.db` in `dataDir` (created if missing), or `file`;
 * `{ file: ':memory:' }` gives a private in-memory database. WAL with synchronous=NORMAL: a crash
 * of the process loses nothing committed, a crash of the machine may roll back the last few
 * transactions (never corrupts the file). One connection: writes are serialized by the event loop.
 *
 * Beyond the port's contract: applyEvents rejects with bad_request (details.index is the event's
 * position) when an event is malformed, before writing anything; putMember and updateRoom reject
 * with not_found when the room does not exist.
 *
 * This file opens the database; the store's parts share a SqliteContext (sqlite-context.ts):
 * rooms and members (sqlite-rooms.ts), the event write path (sqlite-events.ts), message reads
 * (sqlite-messages.ts), search (sqlite-search.ts) and read state (sqlite-read-state.ts). The
 * schema and its reasons are in sqlite-schema.ts, every statement in sqlite-statements.ts.
 */
export function createSqliteStore(cfg: SqliteStoreConfig, log: StoreLog = SILENT_STORE_LOG): Store {
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
    migrateSqlite(db, file, log);
  } catch (err) {
    const error = sqliteError(err, 'open', log, db);
    db.close();
    throw error;
  }

  const ctx = sqliteContext(db, log);
  log.info({ file, schemaVersion: SCHEMA_VERSION }, 'sqlite store open');

  return {
    kind: 'sqlite',
    ...sqliteRooms(ctx),
    ...sqliteEvents(ctx),
    ...sqliteMessages(ctx),
    ...sqliteSearch(ctx),
    ...sqliteReadState(ctx),
    ...sqliteAiContext(ctx),
    ...sqliteNotifications(ctx),
    ...sqliteTenants(ctx),

    ping: () => ctx.run('ping', () => {
      ctx.s.ping.get();
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
