import cassandra from 'cassandra-driver';
import { ChatError } from '../protocol/errors.ts';
import { cassandraError } from './cassandra-errors.ts';
import { moveRoomsToKeys } from './cassandra-room-key-moves.ts';
import type { StoreLog } from './store-log.ts';

const { Client, types } = cassandra;

/**
 * The Cassandra schema, as versioned migrations that `chat migrate` applies in order and records in
 * `<keyspace>.schema_migrations`. Append, never edit one that has shipped. Every statement is
 * `IF NOT EXISTS`, so a migration that stopped half-way is simply run again.
 *
 * Tables (partition key first):
 * - messages ((room_id, bucket), message_id DESC): every message of a room, thread replies too;
 *   `bucket` is the message's 10-day time window (from its id), so no partition grows forever.
 *   Cells are written with the event time as their timestamp (last writer wins per cell); a row
 *   whose `created` is not true holds only what events that came before the create wrote.
 *   `content_terms` are the words of search-terms.ts; a SAI index on them serves search.
 * - room_buckets ((room_id), bucket DESC): the buckets that hold messages; history walks them
 *   and stops at the room's first.
 * - thread_replies ((room_id, thread_id), message_id DESC): the ids of a thread's replies.
 * - reactions ((room_id, bucket), message_id, emoji, user_id): one row per live reaction, so a
 *   page of history reads its reactions from one partition per bucket.
 * - pins ((room_id), message_id): pinned messages with their pin time.
 * - read_marks ((room_id, user_id), message_id DESC), read_users ((room_id), user_id),
 *   deliveries ((room_id, message_id), user_id): written with reversed timestamps, so the
 *   earliest time of each mark or delivery is what stays.
 * - ai_contexts ((tenant, user_id)): a user's AI context as JSON, written with a TTL up to its
 *   expiresAt, so Cassandra drops it by itself.
 * - notification_prefs ((tenant, user_id)), webhooks ((tenant, owner), webhook_id) (owner: the
 *   user's id, or '' for the tenant's), push_subscriptions ((tenant, user_id), endpoint),
 *   notifications_sent ((tenant, user_id), message_id) with a TTL: the offline notifier's state
 *   (since version 6).
 * - tenants ((tenant)), tenant_api_keys ((tenant), key_id): each tenant's record as JSON and its
 *   API keys, hashed (since version 7).
 * - rooms ((room_id)), rooms_by_tenant ((tenant), room_id), room_members ((room_id), user_id),
 *   rooms_by_user ((user_id), room_id): the control plane, written directly by the api.
 * - rooms_by_match ((tenant, match_id)): the room of each match (seed 004), claimed with a
 *   lightweight transaction so one match has one room; archived_rooms ((user_id), room_id): the
 *   rooms each member archived for themselves (since version 5).
 *
 * Since version 4 every `room_id` holds the room's key (shared/domain/room-key.ts: tenant and id),
 * so two tenants' rooms of the same id are two rooms; the default tenant's keys are the bare ids,
 * so its rows stayed where they were and migration 4 moved the rooms of the other tenants.
 */
export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
  /** Rows to rewrite once the statements ran; idempotent, like them. */
  data?: (run: MigrationRun, keyspace: string, log: StoreLog) => Promise<void>;
}

export type MigrationRun = (cql: string, params?: unknown[], options?: cassandra.QueryOptions) => Promise<cassandra.types.ResultSet>;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'rooms, members, messages, reactions, pins, threads, read state',
    statements: [
      `CREATE TABLE IF NOT EXISTS rooms (
        room_id text PRIMARY KEY,
        claimed boolean, tenant text, name text, description text, type text, avatar text, banner text,
        created_by text, created_at text, updated_at text, member_count int, max_members int,
        last_activity bigint, settings text, is_active boolean, tags text)`,
      `CREATE TABLE IF NOT EXISTS rooms_by_tenant (
        tenant text, room_id text, type text, last_activity bigint,
        PRIMARY KEY ((tenant), room_id))`,
      `CREATE TABLE IF NOT EXISTS room_members (
        room_id text, user_id text, display_name text, avatar text, role text, joined_at text,
        is_muted boolean, is_banned boolean,
        PRIMARY KEY ((room_id), user_id))`,
      `CREATE TABLE IF NOT EXISTS rooms_by_user (
        user_id text, room_id text, tenant text, room_type text, is_banned boolean,
        PRIMARY KEY ((user_id), room_id))`,
      `CREATE TABLE IF NOT EXISTS messages (
        room_id text, bucket int, message_id bigint,
        created boolean, author_id text, thread_id bigint, body text,
        content text, content_terms set<text>, edited_at bigint,
        deleted boolean, deleted_at bigint, pinned boolean,
        PRIMARY KEY ((room_id, bucket), message_id))
        WITH CLUSTERING ORDER BY (message_id DESC)`,
      `CREATE TABLE IF NOT EXISTS room_buckets (
        room_id text, bucket int,
        PRIMARY KEY ((room_id), bucket))
        WITH CLUSTERING ORDER BY (bucket DESC)`,
      `CREATE TABLE IF NOT EXISTS thread_replies (
        room_id text, thread_id bigint, message_id bigint,
        PRIMARY KEY ((room_id, thread_id), message_id))
        WITH CLUSTERING ORDER BY (message_id DESC)`,
      `CREATE TABLE IF NOT EXISTS reactions (
        room_id text, bucket int, message_id bigint, emoji text, user_id text, at bigint,
        PRIMARY KEY ((room_id, bucket), message_id, emoji, user_id))`,
      `CREATE TABLE IF NOT EXISTS pins (
        room_id text, message_id bigint, pinned_at bigint,
        PRIMARY KEY ((room_id), message_id))`,
      `CREATE TABLE IF NOT EXISTS read_marks (
        room_id text, user_id text, message_id bigint, at bigint,
        PRIMARY KEY ((room_id, user_id), message_id))
        WITH CLUSTERING ORDER BY (message_id DESC)`,
      `CREATE TABLE IF NOT EXISTS read_users (
        room_id text, user_id text,
        PRIMARY KEY ((room_id), user_id))`,
      `CREATE TABLE IF NOT EXISTS deliveries (
        room_id text, message_id bigint, user_id text, at bigint,
        PRIMARY KEY ((room_id, message_id), user_id))`,
    ],
  },
  {
    version: 2,
    name: 'search: SAI index on the words of message content',
    statements: [
      `CREATE CUSTOM INDEX IF NOT EXISTS messages_content_terms ON messages (VALUES(content_terms))
        USING 'StorageAttachedIndex'`,
    ],
  },
  {
    version: 3,
    name: 'ai_contexts: the assistant\'s memory of a user\'s questions outside rooms',
    statements: [
      `CREATE TABLE IF NOT EXISTS ai_contexts (
        tenant text, user_id text, body text, expires_at bigint,
        PRIMARY KEY ((tenant, user_id)))`,
    ],
  },
  {
    version: 4,
    name: 'rooms keyed by tenant: the rooms of tenants other than the default one move to their keys',
    statements: [],
    data: moveRoomsToKeys,
  },
  {
    version: 5,
    name: 'match rooms (one room per match in a tenant) and the rooms each member archived',
    statements: [
      'ALTER TABLE rooms ADD IF NOT EXISTS match_id text',
      `CREATE TABLE IF NOT EXISTS rooms_by_match (
        tenant text, match_id text, room_id text,
        PRIMARY KEY ((tenant, match_id)))`,
      `CREATE TABLE IF NOT EXISTS archived_rooms (
        user_id text, room_id text, archived_at text,
        PRIMARY KEY ((user_id), room_id))`,
    ],
  },
  {
    version: 6,
    name: 'offline notifications: preferences, webhooks, push subscriptions, sent-records',
    statements: [
      `CREATE TABLE IF NOT EXISTS notification_prefs (
        tenant text, user_id text, body text,
        PRIMARY KEY ((tenant, user_id)))`,
      `CREATE TABLE IF NOT EXISTS webhooks (
        tenant text, owner text, webhook_id text, body text, health text,
        PRIMARY KEY ((tenant, owner), webhook_id))`,
      `CREATE TABLE IF NOT EXISTS push_subscriptions (
        tenant text, user_id text, endpoint text, body text,
        PRIMARY KEY ((tenant, user_id), endpoint))`,
      `CREATE TABLE IF NOT EXISTS notifications_sent (
        tenant text, user_id text, message_id text, expires_at bigint,
        PRIMARY KEY ((tenant, user_id), message_id))`,
    ],
  },
  {
    version: 7,
    name: 'tenants: each tenant\'s record (quotas, settings, secrets) and its API keys (hashed)',
    statements: [
      `CREATE TABLE IF NOT EXISTS tenants (
        tenant text, body text,
        PRIMARY KEY ((tenant)))`,
      `CREATE TABLE IF NOT EXISTS tenant_api_keys (
        tenant text, key_id text, body text,
        PRIMARY KEY ((tenant), key_id))`,
    ],
  },
];

export const CASSANDRA_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export interface MigrateOptions {
  keyspace: string;
  localDataCenter: string;
  replicationFactor: number;
}

const KEYSPACE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,47}$/;

export function checkKeyspace(keyspace: string): void {
  if (!KEYSPACE_NAME.test(keyspace)) throw new ChatError('bad_request', `keyspace ${JSON.stringify(keyspace)} is not a valid name`);
}

/**
 * Creates the keyspace (NetworkTopologyStrategy, `replicationFactor` in the local datacenter) if
 * missing, then applies the migrations not yet recorded. Returns the versions it applied. The
 * client must not be bound to the keyspace (it may not exist yet).
 */
export async function migrateCassandra(client: cassandra.Client, opts: MigrateOptions, log: StoreLog): Promise<number[]> {
  const ks = opts.keyspace;
  checkKeyspace(ks);
  const dc = opts.localDataCenter.replace(/'/g, "''");
  const run: MigrationRun = async (cql, params, options) => {
    try {
      return await client.execute(cql, params, options ?? { prepare: params !== undefined });
    } catch (err) {
      throw cassandraError(err, 'migrate');
    }
  };
  await run(`CREATE KEYSPACE IF NOT EXISTS ${ks}
    WITH replication = {'class': 'NetworkTopologyStrategy', '${dc}': ${Math.trunc(opts.replicationFactor)}}`);
  await run(`CREATE TABLE IF NOT EXISTS ${ks}.schema_migrations (version int PRIMARY KEY, name text, applied_at timestamp)`);
  const applied = await appliedVersions(client, ks);
  const done: number[] = [];
  for (const m of MIGRATIONS) {
    if (applied.has(m.version)) continue;
    for (const statement of m.statements) await run(qualify(statement, ks));
    if (m.data) await m.data(run, ks, log);
    await run(`INSERT INTO ${ks}.schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, [m.version, m.name, new Date()]);
    log.info({ keyspace: ks, version: m.version, name: m.name }, 'cassandra schema migrated');
    done.push(m.version);
  }
  return done;
}

/** Versions recorded in the keyspace; empty when the keyspace or its migrations table is missing. */
export async function appliedVersions(client: cassandra.Client, keyspace: string): Promise<Set<number>> {
  checkKeyspace(keyspace);
  const exists = await client.execute(
    'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?',
    [keyspace, 'schema_migrations'], { prepare: true },
  ).catch((err: unknown) => { throw cassandraError(err, 'schema version'); });
  if (exists.rowLength === 0) return new Set();
  const rs = await client.execute(`SELECT version FROM ${keyspace}.schema_migrations`, [], { prepare: true })
    .catch((err: unknown) => { throw cassandraError(err, 'schema version'); });
  return new Set(rs.rows.map((r) => r.get('version') as number));
}

/** Puts the keyspace in front of the table a DDL statement names. */
function qualify(statement: string, ks: string): string {
  return statement
    .replace(/^(\s*CREATE TABLE IF NOT EXISTS )(\w+)/, `$1${ks}.$2`)
    .replace(/^(\s*ALTER TABLE )(\w+)/, `$1${ks}.$2`)
    .replace(/( ON )(\w+)( \()/, `$1${ks}.$2$3`);
}

export interface CassandraMigrateConfig extends MigrateOptions {
  contactPoints: string[];
  credentials?: { username: string; password: string };
}

/** What `chat migrate` runs: connects, migrates the keyspace, disconnects. Returns the versions applied. */
export async function runCassandraMigrations(cfg: CassandraMigrateConfig, log: StoreLog): Promise<number[]> {
  const client = new Client({
    contactPoints: cfg.contactPoints,
    localDataCenter: cfg.localDataCenter,
    ...(cfg.credentials ? { credentials: cfg.credentials } : {}),
    // DDL is applied by one coordinator; the driver waits for the schema to agree before going on.
    queryOptions: { consistency: types.consistencies.localQuorum },
    protocolOptions: { maxSchemaAgreementWaitSeconds: 30 },
    socketOptions: { connectTimeout: 5000, readTimeout: 60_000 },
  });
  try {
    await client.connect().catch((err: unknown) => { throw cassandraError(err, 'migrate: connect'); });
    return await migrateCassandra(client, cfg, log);
  } finally {
    await client.shutdown();
  }
}
