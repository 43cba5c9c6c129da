import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryBus } from '../../shared/bus/index.ts';
import { DEFAULTS } from '../../shared/config/index.ts';
import type { DurableEvent } from '../../shared/domain/index.ts';
import { Snowflake } from '../../shared/ids/index.ts';
import { encodeMsgpack } from '../../shared/protocol/index.ts';
import { createCassandraStore, createSqliteStore, type Store } from '../../shared/store/index.ts';
import { createTestKeyspace, type TestKeyspace } from '../../test/support/cassandra-keyspace.ts';
import { silentLogger } from '../../shared/telemetry/index.ts';
import { startPersister } from '../../persister/start.ts';
import { newHistogram, summarize, type LatencySummary } from '../lib/histogram.ts';
import { sleep } from '../lib/net.ts';
import { benchRoom, messageCreated } from '../lib/store-fixtures.ts';
import { timed, type Timed } from '../lib/timed.ts';
import { openBareCassandraLoop, type BareCassandraLoop } from '../peers/bare-cassandra-loop.ts';
import { openBareSqliteLoop } from '../peers/bare-sqlite-loop.ts';
import { table, type Ratio } from '../report/report.ts';
import type { Chart } from '../report/svg.ts';
import { fmt, mean, ratio, type Context, type ScenarioResult } from './context.ts';

export type StoreKind = 'sqlite' | 'cassandra';

export interface StoreOptions {
  stores: StoreKind[];
  reps: number;
  /** Persister batch sizes (PERSIST_BATCH_MAX); every path writes the events in batches of this size. */
  batchSizes: number[];
  /** Events per batch size, path and repetition. */
  events: number;
  rooms: number;
  /** Cassandra requests in flight: the store's writeConcurrency and the bare loop's alike. */
  concurrency: number;
  historyMessages: number;
  historyReads: number;
  cassandra: { contactPoints: string[]; localDataCenter: string };
}

/**
 * How the events reach the database: through the persister (decode, applyEvents, acks: what ingest
 * gets), through `store.applyEvents` alone (one batch at a time, awaited), or the bare driver loop
 * (the limit).
 */
export type IngestPath = 'persister' | 'store.applyEvents' | 'bare driver';
const PATHS: readonly IngestPath[] = ['persister', 'store.applyEvents', 'bare driver'];

export interface IngestRun {
  store: StoreKind;
  path: IngestPath;
  batchSize: number;
  rep: number;
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** CPU of the bench process (persister + store + driver, or the bare loop) per event written. */
  benchCpuUsPerEvent: number;
  error?: string;
}

export interface HistoryRun { store: StoreKind; limit: number; reads: number; latency: LatencySummary }

/** What one store needs for a run: a store on fresh or shared storage, and its bare loop. */
interface StoreTarget {
  kind: StoreKind;
  label: string;
  /** A store ready to write into (rooms created); `done` closes it (and removes a scratch file). */
  openStore(): Promise<{ store: Store; done(): Promise<void> }>;
  /** Writes the events with the bare driver. */
  bare(events: DurableEvent[], batchSize: number): Promise<Timed>;
  close(): Promise<void>;
}

const ids = new Snowflake(7);
const HISTORY_CONCURRENCY = 4;

/** SQLite: a fresh file per measurement, so every path starts from empty tables. */
async function sqliteTarget(opts: StoreOptions): Promise<StoreTarget> {
  const scratchDir = () => mkdtempSync(join(tmpdir(), 'bench-store-'));
  const remove = (dir: string) => rmSync(dir, { recursive: true, force: true });
  return {
    kind: 'sqlite', label: 'SQLite (WAL, file)',
    async openStore() {
      const dir = scratchDir();
      const store = createSqliteStore({ file: join(dir, 'chat.db') });
      const done = async () => {
        await store.close();
        remove(dir);
      };
      try {
        await createRooms(store, opts.rooms);
      } catch (err) {
        await done();
        throw err;
      }
      return { store, done };
    },
    async bare(events, batchSize) {
      const dir = scratchDir();
      try {
        const loop = await openBareSqliteLoop(join(dir, 'chat.db'));
        try {
          return await loop.write(events, batchSize);
        } finally {
          loop.close();
        }
      } finally {
        remove(dir);
      }
    },
    close: async () => {},
  };
}

/** Cassandra: one keyspace, one store and one bare client for the run; measurements write new ids into the same rooms. */
async function cassandraTarget(opts: StoreOptions): Promise<StoreTarget> {
  const ks: TestKeyspace = await createTestKeyspace(opts.cassandra.contactPoints, { prefix: 'chat_bench', localDataCenter: opts.cassandra.localDataCenter });
  let loop: BareCassandraLoop | undefined;
  let store: Store | undefined;
  const close = async () => {
    await store?.close();
    await loop?.close();
    await ks.drop();
  };
  try {
    loop = await openBareCassandraLoop({ ...opts.cassandra, keyspace: ks.keyspace });
    const open = createCassandraStore({ ...ks.config, writeConcurrency: opts.concurrency });
    store = open;
    await createRooms(open, opts.rooms);
    const bare = loop;
    return {
      kind: 'cassandra', label: `Cassandra ${bare.version} (1 node, LOCAL_QUORUM, RF 1)`,
      openStore: async () => ({ store: open, done: async () => {} }),
      bare: (events, batchSize) => bare.write(events, batchSize, opts.concurrency),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

const roomId = (k: number) => `bench-r${k}`;

async function createRooms(store: Store, rooms: number): Promise<void> {
  const now = Date.now();
  for (let k = 0; k < rooms; k++) {
    const { room, members } = benchRoom(roomId(k), now);
    await store.createRoom(room, members);
  }
}

/** Fresh events (new ids) spread round-robin over the rooms. */
function makeEvents(count: number, rooms: number): DurableEvent[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => messageCreated(roomId(i % rooms), ids.next(), i, now + i));
}

/** The real persister draining an in-process stream that already holds every event, so each batch is full. */
async function viaPersister(store: Store, events: DurableEvent[], batchSize: number): Promise<Timed> {
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: events.length + 10 });
  try {
    for (const e of events) await bus.publishDurable(e.roomId, e.id, encodeMsgpack(e));
    let persister: ReturnType<typeof startPersister> | undefined;
    const t = await timed(async () => {
      persister = startPersister({ bus, store, persist: { intervalMs: 100, batchMax: batchSize, maxDeliver: 5 }, log: silentLogger(), durable: 'bench' });
      while ((await persister.pending()) > 0) await sleep(2);
    });
    await persister?.flushAndStop(1000);
    return t;
  } finally {
    await bus.close();
  }
}

function viaApplyEvents(store: Store, events: DurableEvent[], batchSize: number): Promise<Timed> {
  return timed(async () => {
    for (let from = 0; from < events.length; from += batchSize) await store.applyEvents(events.slice(from, from + batchSize));
  });
}

async function measure(target: StoreTarget, path: IngestPath, batchSize: number, rep: number, opts: StoreOptions): Promise<IngestRun> {
  const events = makeEvents(Math.max(opts.events, batchSize * 2), opts.rooms);
  const base = { store: target.kind, path, batchSize, rep, events: events.length };
  try {
    let t: Timed;
    if (path === 'bare driver') {
      t = await target.bare(events, batchSize);
    } else {
      const { store, done } = await target.openStore();
      try {
        t = path === 'persister' ? await viaPersister(store, events, batchSize) : await viaApplyEvents(store, events, batchSize);
      } finally {
        await done();
      }
    }
    return { ...base, seconds: t.seconds, eventsPerSec: events.length / t.seconds, benchCpuUsPerEvent: t.cpuMicros / events.length };
  } catch (err) {
    return { ...base, seconds: 0, eventsPerSec: 0, benchCpuUsPerEvent: 0, error: (err as Error).message };
  }
}

/** history() of 50 and 100 from a room of `historyMessages`: half the newest page, half from a random cursor. */
async function measureHistory(target: StoreTarget, opts: StoreOptions): Promise<HistoryRun[]> {
  const { store, done } = await target.openStore();
  try {
    const room = roomId(0);
    const now = Date.now();
    const events = Array.from({ length: opts.historyMessages }, (_, i) => messageCreated(room, ids.next(), i, now + i));
    for (let i = 0; i < events.length; i += 500) await store.applyEvents(events.slice(i, i + 500));
    const inRoom = events.map((e) => e.id);
    const runs: HistoryRun[] = [];
    for (const limit of [50, 100]) {
      await store.history(room, { limit }); // prepared statements and caches warm
      const h = newHistogram();
      let next = 0;
      const lane = async () => {
        for (let k = next++; k < opts.historyReads; k = next++) {
          const before = k % 2 === 0 ? undefined : inRoom[limit + Math.floor(Math.random() * (inRoom.length - limit))];
          const t0 = performance.now();
          const page = await store.history(room, before === undefined ? { limit } : { limit, before });
          h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
          if (page.length < limit) throw new Error(`${target.kind} history returned ${page.length} of ${limit}`);
        }
      };
      await Promise.all(Array.from({ length: HISTORY_CONCURRENCY }, lane));
      runs.push({ store: target.kind, limit, reads: opts.historyReads, latency: summarize(h) });
    }
    return runs;
  } finally {
    await done();
  }
}

/** Unmeasured: connections, prepared statements and the JIT warm for every path. */
async function warmUp(target: StoreTarget, opts: StoreOptions): Promise<void> {
  for (const path of PATHS) {
    const w = await measure(target, path, Math.min(...opts.batchSizes), 0, { ...opts, events: Math.min(1000, opts.events) });
    if (w.error) throw new Error(`warm-up, ${path}: ${w.error}`);
  }
}

export async function storeScenario(ctx: Context, opts: StoreOptions): Promise<ScenarioResult> {
  const ingest: IngestRun[] = [];
  const history: HistoryRun[] = [];
  const labels: Partial<Record<StoreKind, string>> = {};
  ctx.progress.start(opts.stores.length * (opts.reps * opts.batchSizes.length * PATHS.length + 1));
  for (const kind of opts.stores) {
    let target: StoreTarget | undefined;
    try {
      target = kind === 'sqlite' ? await sqliteTarget(opts) : await cassandraTarget(opts);
      ctx.progress.phase(`${kind}: warm-up`);
      await warmUp(target, opts);
    } catch (err) {
      const where = kind === 'cassandra' ? ` (contact points ${opts.cassandra.contactPoints.join(',')}: --cassandra or CASSANDRA_CONTACT_POINTS)` : '';
      ctx.notes.push(`${kind} skipped: ${(err as Error).message.replace(/\s+/g, ' ').slice(0, 300)}${where}.`);
      await target?.close();
      continue;
    }
    labels[kind] = target.label;
    try {
      // every path once per repetition and batch size, the order rotating so that none always runs
      // first (or right after another's writes): drift of the machine and of the node hits all alike
      for (let rep = 1; rep <= opts.reps; rep++) {
        for (const [b, batchSize] of opts.batchSizes.entries()) {
          const shift = (rep - 1 + b) % PATHS.length;
          for (const path of [...PATHS.slice(shift), ...PATHS.slice(0, shift)]) {
            ctx.progress.phase(`${kind} #${rep}: batch ${batchSize}, ${path}`);
            const run = await measure(target, path, batchSize, rep, opts);
            ingest.push(run);
            ctx.progress.log(`store ${kind} batch ${batchSize} ${path} #${rep}: ${run.error ?? `${fmt(run.eventsPerSec)} events/s`}`);
            ctx.progress.tick(`store ${kind}`);
          }
        }
      }
      ctx.progress.phase(`${kind}: history`);
      const h = await measureHistory(target, opts);
      history.push(...h);
      for (const r of h) ctx.progress.log(`store ${kind} history ${r.limit}: p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms`);
      ctx.progress.tick(`store ${kind}`);
    } finally {
      await target.close();
    }
  }
  return summarizeStore(ingest, history, labels, opts);
}

const perSec = (runs: IngestRun[], kind: StoreKind, batchSize: number, path: IngestPath) =>
  mean(runs.filter((r) => r.store === kind && r.batchSize === batchSize && r.path === path && !r.error).map((r) => r.eventsPerSec));

function summarizeStore(ingest: IngestRun[], history: HistoryRun[], labels: Partial<Record<StoreKind, string>>, opts: StoreOptions): ScenarioResult {
  const stores = opts.stores.filter((k) => labels[k] !== undefined);
  const summaries = stores.flatMap((kind) => opts.batchSizes.map((batchSize) => {
    const persister = perSec(ingest, kind, batchSize, 'persister');
    const apply = perSec(ingest, kind, batchSize, 'store.applyEvents');
    const bare = perSec(ingest, kind, batchSize, 'bare driver');
    return {
      store: kind, label: labels[kind]!, batchSize, persisterPerSec: persister, applyEventsPerSec: apply, barePerSec: bare,
      persisterToBare: persister !== null && bare ? persister / bare : null, applyEventsToBare: apply !== null && bare ? apply / bare : null,
    };
  }));
  // the headline is at the persister's default batch size when it was run, else the largest
  const headlineBatch = opts.batchSizes.includes(DEFAULTS.persistBatchMax) ? DEFAULTS.persistBatchMax : Math.max(...opts.batchSizes);
  const ratios: Ratio[] = stores.map((kind) => {
    const name = `${kind}: store (persister) events/s / bare driver loop, batch ${headlineBatch}`;
    const bare = perSec(ingest, kind, headlineBatch, 'bare driver');
    const mine = perSec(ingest, kind, headlineBatch, 'persister');
    // issue 17 sets the bar for Cassandra; for SQLite the ratio is context
    return kind === 'cassandra' ? ratio(name, mine, bare, '>= 0.8', (r) => r >= 0.8) : { ...ratio(name, mine, bare, 'context', () => true), met: null };
  });
  for (const h of history.filter((x) => x.limit === 50)) ratios.push({ name: `${h.store}: history of 50, p99 ms`, value: h.latency.p99, target: 'context', met: null });

  const md = [
    `Ingest: ${fmt(opts.events)} \`message.created\` events (~90 characters of text) per batch size, path and repetition, spread over ${opts.rooms} rooms `
      + `(created first), written three ways in turn (the order rotating per batch size and repetition): **persister** (the real persister draining an in-process stream that already holds every event: decode, `
      + '`applyEvents` per batch, acks; what ingest gets), **store.applyEvents** (the store alone, one batch at a time, awaited) and the **bare driver** loop, the limit '
      + '(the same rows into the same table with nothing else: rows built before the clock starts, no room activity; SQLite: better-sqlite3, prepared inserts of the '
      + '`messages` and `message_fts` rows, one transaction per batch; Cassandra: cassandra-driver, prepared INSERT, one UNLOGGED BATCH per partition of each event '
      + `batch (at most 32 rows), ${opts.concurrency} requests in flight, no wait between batches). The store gets the same ${opts.concurrency} as its write concurrency. `
      + 'SQLite writes a fresh file per measurement; Cassandra one keyspace (RF 1) for the run, dropped afterwards. The database shares the two cores with the bench.',
    '', '![store]({{SVG}})', '',
    '### Ingest, means over repetitions (events/s)', '',
    table(['store', 'batch', 'persister', 'store.applyEvents', 'bare driver (limit)', 'persister / limit', 'applyEvents / limit'],
      summaries.map((s) => [s.label, s.batchSize, fmt(s.persisterPerSec), fmt(s.applyEventsPerSec), fmt(s.barePerSec), fmt(s.persisterToBare, 2), fmt(s.applyEventsToBare, 2)])),
    '', '### Every run', '',
    table(['store', 'batch', 'path', 'rep', 'events', 'seconds', 'events/s', 'bench CPU us/event', 'error'],
      ingest.map((r) => [labels[r.store] ?? r.store, r.batchSize, r.path, r.rep, fmt(r.events), fmt(r.seconds, 2), fmt(r.eventsPerSec), fmt(r.benchCpuUsPerEvent, 1), r.error ?? ''])),
    '', `### History (\`store.history(room, {limit})\`, room of ${fmt(opts.historyMessages)} messages, ${fmt(opts.historyReads)} reads per page size, `
      + `${HISTORY_CONCURRENCY} in flight, half the newest page, half from a random cursor; ms)`, '',
    table(['store', 'page', 'reads', 'p50', 'p90', 'p99', 'max'],
      history.map((h) => [labels[h.store] ?? h.store, h.limit, fmt(h.reads), fmt(h.latency.p50, 2), fmt(h.latency.p90, 2), fmt(h.latency.p99, 2), fmt(h.latency.max, 1)])),
  ];
  const charts: Chart[] = [
    ...stores.map((kind): Chart => ({
      kind: 'bars', title: `store ingest: ${labels[kind]} (mean of reps)`, unit: 'events/s', groups: opts.batchSizes.map((b) => `batch ${b}`),
      series: PATHS.map((p) => ({ name: p, values: opts.batchSizes.map((b) => perSec(ingest, kind, b, p)) })),
    })),
    {
      kind: 'bars', title: 'store history latency', unit: 'ms', groups: history.map((h) => `${h.store} ${h.limit}`),
      series: [{ name: 'p50', values: history.map((h) => h.latency.p50) }, { name: 'p99', values: history.map((h) => h.latency.p99) }],
    },
  ];
  return { options: { ...opts }, results: { stores: labels, summaries, ingest, history }, ratios, markdown: md.join('\n'), charts };
}
