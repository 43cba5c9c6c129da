import type { StoreConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import { createSqliteStore, type StoreLog } from './sqlite-store.ts';
import type { Store } from './store.ts';

export type { Store, ListRoomsQuery, HistoryQuery, SearchQuery } from './store.ts';
export { createSqliteStore, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION } from './sqlite-store.ts';
export type { StoreLog, SqliteStoreConfig } from './sqlite-store.ts';

/** The one place a store adapter is chosen. */
export function createStore(cfg: StoreConfig, log: StoreLog): Store {
  switch (cfg.adapter) {
    case 'sqlite':
      return createSqliteStore({ dataDir: cfg.dataDir }, log);
    case 'cassandra':
      throw new ChatError('unavailable', 'the cassandra store is not built yet');
    default: {
      const never: never = cfg;
      throw new ChatError('internal', `unknown store adapter ${String((never as { adapter?: unknown }).adapter)}`);
    }
  }
}
