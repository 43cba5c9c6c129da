import Database from 'better-sqlite3';
import { ChatError } from '../protocol/errors.ts';
import { driverError } from './store-errors.ts';
import type { StoreLog } from './store-log.ts';

/**
 * SQLite's side of store-errors.ts: a closed store and a lock held by another connection (a CLI,
 * a backup) are `unavailable`; every other driver error is `internal`, logged here with its code.
 */
export function sqliteError(err: unknown, op: string, log: StoreLog, db: Database.Database): ChatError {
  if (err instanceof ChatError) return err;
  if (!db.open) return driverError('sqlite', op, err, 'unavailable', 'the store is closed');
  if (err instanceof Database.SqliteError) {
    if (err.code.startsWith('SQLITE_BUSY') || err.code.startsWith('SQLITE_LOCKED')) {
      log.warn({ op, code: err.code }, 'sqlite store busy');
      return driverError('sqlite', op, err, 'unavailable', 'database is busy');
    }
    log.error({ err, op, code: err.code }, 'sqlite store failed');
    return driverError('sqlite', op, err, 'internal', err.code);
  }
  log.error({ err, op }, 'sqlite store failed');
  return driverError('sqlite', op, err, 'internal');
}
