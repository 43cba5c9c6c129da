import cassandra from 'cassandra-driver';
import { BARE_KEY_TENANT, roomIdOf, roomKey } from '../domain/room-key.ts';
import { REVERSED_BASE } from './cassandra-write-time.ts';
import type { StoreLog } from './store-log.ts';

type Run = (cql: string, params?: unknown[], options?: cassandra.QueryOptions) => Promise<cassandra.types.ResultSet>;

/** Every table with a room id in its primary key. */
const ROOM_TABLES = [
  'rooms', 'rooms_by_tenant', 'room_members', 'rooms_by_user', 'messages', 'room_buckets', 'thread_replies',
  'reactions', 'pins', 'read_marks', 'read_users', 'deliveries',
] as const;
const PAGE = 500;

/**
 * Migration 4's data step: the rooms of tenants other than the default one move from their bare
 * id to their key (shared/domain/room-key.ts), with every row that names them. Cassandra cannot
 * change a key, so each row is copied under the new key, cell by cell with the cell's own write
 * time (last writer wins per cell goes on working, read marks keep their earliest time), and the
 * old row is deleted just above its newest cell, so a room of the default tenant that later takes
 * the freed id is not shadowed. Rows whose write time cannot be read (those of key columns only)
 * are deleted at the highest time their writers use. Idempotent: a room already at its key is not
 * moved again, and a copy written twice is the same copy.
 *
 * Reads each table once, whole: the cost grows with the data, which is why it is one migration.
 * Run it with no tier running (events of the old build would name the old ids).
 */
export async function moveRoomsToKeys(run: Run, ks: string, log: StoreLog): Promise<void> {
  const moves = new Map<string, string>();
  await eachRow(run, `SELECT room_id, tenant FROM ${ks}.rooms`, (row) => {
    const id = row.get('room_id') as string;
    const tenant = row.get('tenant') as string | null;
    // a key (it holds ':') is where the room already is
    if (tenant === null || tenant === BARE_KEY_TENANT || roomIdOf(id) !== id) return;
    moves.set(id, roomKey(tenant, id));
  });
  if (moves.size === 0) return;
  for (const table of ROOM_TABLES) {
    const moved = await moveTable(run, ks, table, moves);
    log.info({ keyspace: ks, table, rows: moved, rooms: moves.size }, 'cassandra: rows of other tenants\' rooms moved to their keys');
  }
}

async function moveTable(run: Run, ks: string, table: string, moves: Map<string, string>): Promise<number> {
  const columns = (await run(
    'SELECT column_name, kind, type FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?', [ks, table], { prepare: true },
  )).rows.map((r) => ({ name: r.get('column_name') as string, kind: r.get('kind') as string, type: r.get('type') as string }));
  const keys = columns.filter((c) => c.kind !== 'regular').map((c) => c.name);
  const cells = columns.filter((c) => c.kind === 'regular');
  // write times of collections are not one value: they take the newest of the row's other cells
  const timed = cells.filter((c) => !/^(set|list|map)</.test(c.type));
  const select = [...keys, ...cells.map((c) => c.name), ...timed.map((c) => `writetime(${c.name}) AS wt_${c.name}`)].join(', ');
  const where = keys.map((k) => `${k} = ?`).join(' AND ');
  let moved = 0;
  await eachRow(run, `SELECT ${select} FROM ${ks}.${table}`, async (row) => {
    const to = moves.get(row.get('room_id') as string);
    if (to === undefined) return;
    const oldKeys = keys.map((k) => row.get(k) as unknown);
    const newKeys = keys.map((k) => (k === 'room_id' ? to : row.get(k) as unknown));
    let newest = -1n;
    for (const c of timed) {
      const wt = row.get(`wt_${c.name}`) as cassandra.types.Long | bigint | null;
      if (wt !== null) newest = maxOf(newest, BigInt(wt.toString()));
    }
    const writes: Array<{ query: string; params: unknown[] }> = [
      { query: `INSERT INTO ${ks}.${table} (${keys.join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`, params: newKeys },
    ];
    for (const c of cells) {
      const value = row.get(c.name) as unknown;
      if (value === null || value === undefined) continue;
      const wt = timed.includes(c) ? BigInt((row.get(`wt_${c.name}`) as cassandra.types.Long).toString())
        : newest >= 0n ? newest : BigInt(Date.now()) * 1000n;
      writes.push({ query: `UPDATE ${ks}.${table} USING TIMESTAMP ? SET ${c.name} = ? WHERE ${where}`, params: [long(wt), value, ...newKeys] });
    }
    for (const w of writes) await run(w.query, w.params, { prepare: true });
    // rows of key columns only: room buckets are written at event times, read users at reversed times
    const tombstone = newest >= 0n ? newest + 1n : table === 'read_users' ? REVERSED_BASE : BigInt(Date.now() + 86_400_000) * 1000n;
    await run(`DELETE FROM ${ks}.${table} USING TIMESTAMP ? WHERE ${where}`, [long(tombstone), ...oldKeys], { prepare: true });
    moved++;
  });
  return moved;
}

async function eachRow(run: Run, cql: string, onRow: (row: cassandra.types.Row) => void | Promise<void>): Promise<void> {
  let pageState: string | undefined;
  do {
    const rs = await run(cql, [], { prepare: true, fetchSize: PAGE, ...(pageState ? { pageState } : {}) });
    for (const row of rs.rows) await onRow(row);
    pageState = rs.pageState ?? undefined;
  } while (pageState);
}

const maxOf = (a: bigint, b: bigint) => (a > b ? a : b);
/** The migration's client reads and writes bigint columns as Longs. */
const long = (n: bigint) => cassandra.types.Long.fromString(n.toString());
