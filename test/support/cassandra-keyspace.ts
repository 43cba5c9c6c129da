import { randomBytes } from 'node:crypto';
import cassandra from 'cassandra-driver';
import { MIGRATIONS, runCassandraMigrations } from '../../shared/store/cassandra-schema.ts';
import { createCassandraStore, type CassandraStoreConfig } from '../../shared/store/cassandra-store.ts';
import { SILENT_STORE_LOG, type StoreLog } from '../../shared/store/store-log.ts';
import type { Store } from '../../shared/store/store.ts';

/**
 * For tests and benchmarks against a real Cassandra: a fresh keyspace migrated to the current
 * schema, stores on it, a way to empty it between tests (TRUNCATE is far faster than a new
 * keyspace), and `drop` for teardown.
 */
export interface TestKeyspace {
  keyspace: string;
  config: CassandraStoreConfig;
  /** A store on the keyspace; `empty` first truncates every table. */
  open(opts?: { empty?: boolean }): Promise<Store>;
  truncate(): Promise<void>;
  drop(): Promise<void>;
}

/**
 * Where the Cassandra tests find a node: CHAT_TEST_CASSANDRA (what CI sets; a test-only name, so the
 * chat processes that other tests spawn keep their default store), else CASSANDRA_CONTACT_POINTS.
 * Empty: the Cassandra tests print a skip.
 */
export function testContactPoints(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.CHAT_TEST_CASSANDRA || env.CASSANDRA_CONTACT_POINTS || '').split(',').map((s) => s.trim()).filter(Boolean);
}

const TABLES = MIGRATIONS.flatMap((m) => m.statements)
  .map((s) => /CREATE TABLE IF NOT EXISTS (\w+)/.exec(s)?.[1])
  .filter((name): name is string => name !== undefined);

export async function createTestKeyspace(contactPoints: string[], opts: { prefix?: string; localDataCenter?: string; log?: StoreLog } = {}): Promise<TestKeyspace> {
  const keyspace = `${opts.prefix ?? 'chat_test'}_${randomBytes(4).toString('hex')}`;
  const localDataCenter = opts.localDataCenter ?? 'datacenter1';
  await runCassandraMigrations({ contactPoints, localDataCenter, keyspace, replicationFactor: 1 }, opts.log ?? SILENT_STORE_LOG);
  const admin = new cassandra.Client({ contactPoints, localDataCenter, socketOptions: { readTimeout: 60_000 } });
  await admin.connect();
  const config: CassandraStoreConfig = { contactPoints, keyspace, localDataCenter, consistency: 'LOCAL_QUORUM' };
  const truncate = async () => {
    await Promise.all(TABLES.map((table) => admin.execute(`TRUNCATE ${keyspace}.${table}`)));
  };
  return {
    keyspace,
    config,
    truncate,
    async open(o = {}) {
      if (o.empty) await truncate();
      return createCassandraStore(config, opts.log ?? SILENT_STORE_LOG);
    },
    async drop() {
      try {
        await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
      } finally {
        await admin.shutdown();
      }
    },
  };
}
