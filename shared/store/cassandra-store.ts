import { cassandraAiContext } from './cassandra-ai-context.ts';
import cassandra from 'cassandra-driver';
import type { CassandraConsistency } from '../config/config.ts';
import { cassandraEvents } from './cassandra-events.ts';
import { MessageRows, cassandraMessages } from './cassandra-messages.ts';
import { cassandraNotifications } from './cassandra-notifications.ts';
import { cassandraReadState } from './cassandra-read-state.ts';
import { RoomKeys, cassandraRooms } from './cassandra-rooms.ts';
import { checkKeyspace } from './cassandra-schema.ts';
import { cassandraSearch } from './cassandra-search.ts';
import { cassandraTenants } from './cassandra-tenants.ts';
import { CassandraSession, PAGE_SIZE } from './cassandra-session.ts';
import { SILENT_STORE_LOG, type StoreLog } from './store-log.ts';
import type { Store } from './store.ts';

const { Client, types, policies } = cassandra;

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

const DEFAULT_WRITE_CONCURRENCY = 32;

const CONSISTENCY: Record<CassandraConsistency, number> = {
  ONE: types.consistencies.one,
  LOCAL_ONE: types.consistencies.localOne,
  QUORUM: types.consistencies.quorum,
  LOCAL_QUORUM: types.consistencies.localQuorum,
  EACH_QUORUM: types.consistencies.eachQuorum,
  ALL: types.consistencies.all,
};

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
 *
 * This file builds the driver client; the store's parts share a CassandraSession
 * (cassandra-session.ts: connection, errors, batched writes): rooms and members
 * (cassandra-rooms.ts), the event write path (cassandra-events.ts), message reads
 * (cassandra-messages.ts), search (cassandra-search.ts) and read state (cassandra-read-state.ts).
 * Every statement is in cassandra-queries.ts, the write timestamps in cassandra-write-time.ts.
 */
export function createCassandraStore(cfg: CassandraStoreConfig, log: StoreLog = SILENT_STORE_LOG): Store {
  const ks = cfg.keyspace;
  checkKeyspace(ks);
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

  const db = new CassandraSession(client, { keyspace: ks, writeConcurrency, contactPoints: cfg.contactPoints }, log);
  const keys = new RoomKeys(db);
  const rows = new MessageRows(db);

  log.info({ keyspace: ks, contactPoints: cfg.contactPoints, consistency: cfg.consistency }, 'cassandra store created');

  return {
    kind: 'cassandra',
    ...cassandraRooms(db, keys),
    ...cassandraEvents(db, keys),
    ...cassandraMessages(db, rows),
    ...cassandraSearch(db, rows),
    ...cassandraReadState(db, rows),
    ...cassandraAiContext(db),
    ...cassandraNotifications(db),
    ...cassandraTenants(db),

    async ping() {
      await db.exec('ping', db.q.ping, [], { readTimeout: 2000 });
    },

    close: () => db.close(),
  } satisfies Store;
}
