import type { StoreConfig } from '../config/config.ts';
import { ChatError } from '../protocol/errors.ts';
import { createCassandraStore } from './cassandra-store.ts';
import { runCassandraMigrations } from './cassandra-schema.ts';
import { createSqliteStore, SCHEMA_VERSION } from './sqlite-store.ts';
import type { StoreLog } from './store-log.ts';
import type { Store } from './store.ts';

export type { Store, ListRoomsQuery, HistoryQuery, SearchQuery } from './store.ts';
export { createSqliteStore, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION } from './sqlite-store.ts';
export type { SqliteStoreConfig } from './sqlite-store.ts';
export type { StoreLog } from './store-log.ts';
export { messageBody, toMessage, type MessageBody, type MessageRecord } from './message-record.ts';
export { cursor as historyCursor } from './store-input.ts';
export { createCassandraStore, type CassandraStoreConfig } from './cassandra-store.ts';
export { CASSANDRA_SCHEMA_VERSION, runCassandraMigrations } from './cassandra-schema.ts';

/** The one place a store adapter is chosen. */
export function createStore(cfg: StoreConfig, log: StoreLog): Store {
  switch (cfg.adapter) {
    case 'sqlite':
      return createSqliteStore({ dataDir: cfg.dataDir }, log);
    case 'cassandra':
      return createCassandraStore(cfg, log);
    default: {
      const never: never = cfg;
      throw new ChatError('internal', `unknown store adapter ${String((never as { adapter?: unknown }).adapter)}`);
    }
  }
}

/**
 * `chat migrate`: brings the configured store's schema to this build's version. SQLite migrates
 * whenever it opens; Cassandra only here (schema changes are an operator's step, not a side effect
 * of starting a tier). Returns a line for the operator.
 */
export async function migrateStore(cfg: StoreConfig, log: StoreLog): Promise<string> {
  switch (cfg.adapter) {
    case 'sqlite': {
      const store = createSqliteStore({ dataDir: cfg.dataDir }, log);
      await store.close();
      return `sqlite store in ${cfg.dataDir} is at schema version ${SCHEMA_VERSION}`;
    }
    case 'cassandra': {
      const applied = await runCassandraMigrations(cfg, log);
      const store = createCassandraStore(cfg, log);
      try {
        await store.ping();
      } finally {
        await store.close();
      }
      return applied.length
        ? `cassandra keyspace ${cfg.keyspace}: applied schema versions ${applied.join(', ')}`
        : `cassandra keyspace ${cfg.keyspace}: schema is current`;
    }
    default: {
      const never: never = cfg;
      throw new ChatError('internal', `unknown store adapter ${String((never as { adapter?: unknown }).adapter)}`);
    }
  }
}
