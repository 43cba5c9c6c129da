import cassandra from 'cassandra-driver';
import { idTime } from '../../shared/ids/index.ts';
import type { DurableEvent } from '../../shared/domain/index.ts';
import { storedFields } from '../lib/store-fixtures.ts';
import { timed, type Timed } from '../lib/timed.ts';

/**
 * The limit for the Cassandra store: a bare `cassandra-driver` loop writing the rows the store
 * writes for `message.created` events into the same `messages` table, the way the store sends them
 * (prepared INSERT, one UNLOGGED BATCH per partition and event batch, at most 32 statements per
 * batch, `concurrency` requests in flight, LOCAL_QUORUM) and nothing else: rows are built before the
 * clock starts, no room activity, no bucket index, no wait between event batches.
 */
export interface BareCassandraTarget {
  contactPoints: string[];
  localDataCenter: string;
  keyspace: string;
}

/** 10 days, as the store's buckets (shared/store/cassandra-store.ts BUCKET_MS). */
const BUCKET_MS = 10 * 24 * 3600 * 1000;
/** The store's limit per UNLOGGED BATCH (its rows here stay far below its 24 KiB size limit). */
const BATCH_MAX_STATEMENTS = 32;

type Params = unknown[];

export interface BareCassandraLoop {
  /** The node's release_version. */
  version: string;
  /** Writes the events' rows, `batchSize` events per batch; the rows are built before the clock starts. */
  write(events: DurableEvent[], batchSize: number, concurrency: number): Promise<Timed>;
  close(): Promise<void>;
}

export async function openBareCassandraLoop(target: BareCassandraTarget): Promise<BareCassandraLoop> {
  const client = new cassandra.Client({
    contactPoints: target.contactPoints,
    localDataCenter: target.localDataCenter,
    encoding: { useBigIntAsLong: true, useUndefinedAsUnset: true },
    queryOptions: { consistency: cassandra.types.consistencies.localQuorum, prepare: true, isIdempotent: true },
  });
  await client.connect();
  const insert = `INSERT INTO ${target.keyspace}.messages (room_id, bucket, message_id, created, author_id, thread_id, body, content, content_terms, edited_at)
    VALUES (?, ?, ?, true, ?, ?, ?, ?, ?, 0) USING TIMESTAMP ?`;
  const version = String((await client.execute('SELECT release_version FROM system.local')).first()?.get('release_version') ?? 'unknown');
  return {
    version,
    async write(events, batchSize, concurrency) {
      const units = toUnits(events, batchSize);
      const queries = units.map((unit) => unit.map((params) => ({ query: insert, params })));
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < queries.length; i = next++) {
          const unit = queries[i]!;
          if (unit.length === 1) await client.execute(unit[0]!.query, unit[0]!.params);
          else await client.batch(unit, { logged: false });
        }
      };
      return timed(() => Promise.all(Array.from({ length: Math.min(concurrency, queries.length) }, lane)));
    },
    close: () => client.shutdown(),
  };
}

/** Per event batch: rows grouped by partition (room, bucket), chunked to the store's batch limit. */
function toUnits(events: DurableEvent[], batchSize: number): Params[][] {
  const units: Params[][] = [];
  for (let from = 0; from < events.length; from += batchSize) {
    const partitions = new Map<string, Params[]>();
    for (const e of events.slice(from, from + batchSize)) {
      if (e.kind !== 'message.created') continue;
      const m = e.message;
      const id = BigInt(m.messageId);
      const bucket = Math.floor(idTime(m.messageId) / BUCKET_MS);
      const { body, terms } = storedFields(m);
      const key = `${e.roomId}\0${bucket}`;
      const rows = partitions.get(key) ?? [];
      rows.push([e.roomId, bucket, id, m.authorId, 0n, body, m.content, terms, BigInt(e.at) * 1000n]);
      partitions.set(key, rows);
    }
    for (const rows of partitions.values()) {
      for (let i = 0; i < rows.length; i += BATCH_MAX_STATEMENTS) units.push(rows.slice(i, i + BATCH_MAX_STATEMENTS));
    }
  }
  return units;
}
