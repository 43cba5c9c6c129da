import type Database from 'better-sqlite3';
import { sqliteError } from './sqlite-errors.ts';
import { prepareStatements, type SqliteStatements } from './sqlite-statements.ts';
import type { StoreLog } from './store-log.ts';

/** What the parts of the SQLite store (rooms, events, messages, search, read state) share. */
export interface SqliteContext {
  readonly db: Database.Database;
  readonly s: SqliteStatements;
  /**
   * Runs a synchronous database call, turning driver errors into ChatErrors. `fn` must not be
   * async: only what it throws synchronously is translated.
   */
  run<T>(op: string, fn: () => T): Promise<T>;
}

/** Prepares every statement of a migrated database. */
export function sqliteContext(db: Database.Database, log: StoreLog): SqliteContext {
  return {
    db,
    s: prepareStatements(db),
    async run(op, fn) {
      try {
        return fn();
      } catch (err) {
        throw sqliteError(err, op, log, db);
      }
    },
  };
}
