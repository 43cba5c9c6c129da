import type cassandra from 'cassandra-driver';
import { ChatError } from '../protocol/errors.ts';
import { batchesOf, type StatementGroups } from './cassandra-batches.ts';
import { cassandraError } from './cassandra-errors.ts';
import { cassandraQueries, type CassandraQueries } from './cassandra-queries.ts';
import { CASSANDRA_SCHEMA_VERSION, appliedVersions } from './cassandra-schema.ts';
import { ControlClock } from './cassandra-write-time.ts';
import { inParallel } from './in-parallel.ts';
import type { StoreLog } from './store-log.ts';

type Row = cassandra.types.Row;
type ResultSet = cassandra.types.ResultSet;

/** Rows per page of a read; `all` pages through the rest. */
export const PAGE_SIZE = 1000;

export interface SessionOptions {
  keyspace: string;
  /** Partition writes (batches) of one `write` in flight at once. */
  writeConcurrency: number;
  /** For the log line once connected. */
  contactPoints: string[];
}

/**
 * What the parts of the Cassandra store (rooms, events, messages, search, read state) share: one
 * driver client, the statements, and the way every call goes out: connected lazily, driver errors
 * turned into ChatErrors (internal ones logged), writes batched per partition with bounded
 * concurrency.
 */
export class CassandraSession {
  readonly q: CassandraQueries;
  readonly keyspace: string;
  readonly writeConcurrency: number;
  /** Timestamps of control-plane writes. */
  readonly clock = new ControlClock();
  private readonly contactPoints: string[];
  private connecting: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly client: cassandra.Client, opts: SessionOptions, private readonly log: StoreLog) {
    this.keyspace = opts.keyspace;
    this.writeConcurrency = opts.writeConcurrency;
    this.contactPoints = opts.contactPoints;
    this.q = cassandraQueries(opts.keyspace);
  }

  /** Connects once and checks the schema; a failed attempt is retried by the next call. */
  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new ChatError('unavailable', 'cassandra store: the store is closed'));
    this.connecting ??= this.connect().catch((err: unknown) => {
      this.connecting = undefined;
      throw cassandraError(err, 'connect');
    });
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const ks = this.keyspace;
    await this.client.connect();
    const versions = await appliedVersions(this.client, ks);
    const current = versions.size === 0 ? 0 : Math.max(...versions);
    if (current < CASSANDRA_SCHEMA_VERSION) {
      throw new ChatError('unavailable',
        `cassandra store: keyspace ${ks} has schema version ${current}, this build needs ${CASSANDRA_SCHEMA_VERSION}: run \`chat migrate\``);
    }
    if (current > CASSANDRA_SCHEMA_VERSION) {
      throw new ChatError('internal', `cassandra store: keyspace ${ks} has schema version ${current}; this build knows up to ${CASSANDRA_SCHEMA_VERSION}`);
    }
    this.log.info({ keyspace: ks, schemaVersion: current, contactPoints: this.contactPoints }, 'cassandra store connected');
  }

  async exec(op: string, query: string, params: unknown[], options?: cassandra.QueryOptions): Promise<ResultSet> {
    await this.ready();
    try {
      return await this.client.execute(query, params, options);
    } catch (err) {
      throw this.failed(err, op);
    }
  }

  /** Every row of a query, page by page. */
  async all(op: string, query: string, params: unknown[]): Promise<Row[]> {
    const rows: Row[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.exec(op, query, params, pageState === undefined ? undefined : { pageState });
      for (const r of rs.rows) rows.push(r);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return rows;
  }

  /** Sends statements grouped by partition: one batch per partition (chunked), bounded concurrency. */
  async write(op: string, groups: StatementGroups): Promise<void> {
    await this.ready();
    await inParallel(batchesOf(groups), this.writeConcurrency, async (unit) => {
      try {
        if (unit.length === 1) await this.client.execute(unit[0]!.query, unit[0]!.params);
        else await this.client.batch(unit, { logged: false });
      } catch (err) {
        throw this.failed(err, op);
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.shutdown();
  }

  private failed(err: unknown, op: string): ChatError {
    const e = cassandraError(err, op);
    if (e.code === 'internal') this.log.error({ err, op }, 'cassandra store failed');
    return e;
  }
}
