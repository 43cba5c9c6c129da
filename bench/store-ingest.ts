/**
 * Store benchmark: persister ingest (events/s at batch sizes 100, 500, 1000, 5000) and history reads
 * (p50/p99 for pages of 50 and 100) on the Cassandra store beside the SQLite store, in one run.
 *
 *   node --import tsx bench/store-ingest.ts [--quick] [--out <dir>]
 *
 * Ingest goes through the real persister (startPersister: msgpack decode, batch write, acks) fed by
 * an in-process stream that already holds every event, so the consumer always finds a full batch
 * and the number is the write path's, not the batch interval's. Cassandra is taken from
 * CASSANDRA_CONTACT_POINTS (default 127.0.0.1; `npm run cassandra:start`), in a fresh keyspace that
 * is dropped afterwards. Writes JSON and Markdown to bench/results/store-<timestamp>.{json,md}.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createMemoryBus } from '../shared/bus/index.ts';
import type { DurableEvent } from '../shared/domain/events.ts';
import { Snowflake } from '../shared/ids/snowflake.ts';
import { encodeMsgpack } from '../shared/protocol/codec.ts';
import { createSqliteStore } from '../shared/store/sqlite-store.ts';
import { createTestKeyspace, type TestKeyspace } from '../test/support/cassandra-keyspace.ts';
import type { Store } from '../shared/store/store.ts';
import { silentLogger } from '../shared/telemetry/logger.ts';
import { startPersister } from '../persister/start.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIdx = args.indexOf('--out');
const OUT = resolve(outIdx >= 0 && args[outIdx + 1] ? args[outIdx + 1]! : join(import.meta.dirname, 'results'));
const BATCH_SIZES = [100, 500, 1000, 5000];
const EVENTS_PER_SIZE = quick ? 5000 : 30_000;
const ROOMS = 50;
const HISTORY_ROOM_MESSAGES = quick ? 1000 : 5000;
const HISTORY_READS = quick ? 100 : 1000;
const HISTORY_CONCURRENCY = 4;
const contactPoints = (process.env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1').split(',').map((s) => s.trim()).filter(Boolean);

interface IngestResult { batchSize: number; events: number; seconds: number; eventsPerSec: number }
interface ReadResult { limit: number; reads: number; p50Ms: number; p99Ms: number; meanMs: number }
interface StoreResult { store: string; ingest: IngestResult[]; history: ReadResult[]; error?: string }

const ids = new Snowflake(7);
const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];

function message(roomId: string, i: number): DurableEvent {
  const id = ids.next();
  const at = Date.now();
  const content = `message ${i} ${words[i % words.length]} ${words[(i * 7) % words.length]} and some ordinary chat text of a usual length`;
  return {
    kind: 'message.created', id, at, roomId,
    message: {
      messageId: id, roomId, authorId: `u${i % 20}`, authorName: `User ${i % 20}`, content, type: 'text',
      timestamp: new Date(at).toISOString(), reactions: {}, replyTo: null, threadId: null, mentions: [], attachments: [],
      isEdited: false, isDeleted: false, isPinned: false, isAnonymous: false,
    },
  };
}

/** Events/s of the persister writing `count` events in batches of `batchSize`, spread over ROOMS rooms. */
async function ingest(store: Store, batchSize: number, count: number, tag: string): Promise<IngestResult> {
  const bus = createMemoryBus({ recoveryWindowSec: 3600, maxMessages: count + 10 });
  for (let i = 0; i < count; i++) {
    const e = message(`${tag}-b${batchSize}-r${i % ROOMS}`, i);
    await bus.publishDurable(e.roomId, e.id, encodeMsgpack(e));
  }
  const started = process.hrtime.bigint();
  const persister = startPersister({
    bus, store, persist: { intervalMs: 100, batchMax: batchSize, maxDeliver: 5 }, log: silentLogger(), durable: `bench-${batchSize}`,
  });
  while ((await persister.pending()) > 0) await new Promise((r) => setTimeout(r, 5));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await persister.flushAndStop(1000);
  await bus.close();
  return { batchSize, events: count, seconds: round(seconds, 3), eventsPerSec: Math.round(count / seconds) };
}

async function historyReads(store: Store, tag: string): Promise<ReadResult[]> {
  const roomId = `${tag}-history`;
  const events = Array.from({ length: HISTORY_ROOM_MESSAGES }, (_, i) => message(roomId, i));
  for (let i = 0; i < events.length; i += 500) await store.applyEvents(events.slice(i, i + 500));
  const idsInRoom = events.map((e) => e.id);
  const out: ReadResult[] = [];
  for (const limit of [50, 100]) {
    await store.history(roomId, { limit }); // warm up the prepared statements and caches
    const latencies: number[] = [];
    let next = 0;
    const worker = async () => {
      while (next < HISTORY_READS) {
        const k = next++;
        // Half read the newest page (the common case), half page back from a random cursor.
        const before = k % 2 === 0 ? undefined : idsInRoom[limit + Math.floor(Math.random() * (idsInRoom.length - limit))];
        const t0 = process.hrtime.bigint();
        const page = await store.history(roomId, before === undefined ? { limit } : { limit, before });
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (page.length !== limit) throw new Error(`history returned ${page.length} of ${limit}`);
      }
    };
    await Promise.all(Array.from({ length: HISTORY_CONCURRENCY }, worker));
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    out.push({
      limit, reads: latencies.length, p50Ms: round(at(0.5), 2), p99Ms: round(at(0.99), 2),
      meanMs: round(latencies.reduce((s, x) => s + x, 0) / latencies.length, 2),
    });
  }
  return out;
}

async function runStore(name: string, open: () => Promise<Store>, tag: string): Promise<StoreResult> {
  const store = await open();
  try {
    const result: StoreResult = { store: name, ingest: [], history: [] };
    for (const size of BATCH_SIZES) {
      const count = Math.max(EVENTS_PER_SIZE, size * 4);
      const r = await ingest(store, size, count, tag);
      process.stderr.write(`${name}: batch ${size}: ${r.eventsPerSec} events/s (${count} in ${r.seconds} s)\n`);
      result.ingest.push(r);
    }
    result.history = await historyReads(store, tag);
    for (const h of result.history) process.stderr.write(`${name}: history ${h.limit}: p50 ${h.p50Ms} ms, p99 ${h.p99Ms} ms\n`);
    return result;
  } finally {
    await store.close();
  }
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function cassandraVersion(): string {
  try {
    return readFileSync(join(import.meta.dirname, '../deploy/cassandra/pom.xml'), 'utf8').match(/<cassandra.version>([^<]+)</)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function commit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const machine = {
    nproc: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version, loadAverage1m: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]), commit: commit(),
  };
  const results: StoreResult[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'chat-bench-store-'));
  try {
    results.push(await runStore('sqlite (WAL, file)', async () => createSqliteStore({ dataDir: dir }), 'sq'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  let ks: TestKeyspace | undefined;
  try {
    ks = await createTestKeyspace(contactPoints, { prefix: 'chat_bench' });
    results.push(await runStore(`cassandra ${cassandraVersion()} (1 node, LOCAL_QUORUM, RF 1)`, () => ks!.open(), 'cs'));
  } catch (err) {
    process.stderr.write(`cassandra: skipped: ${err instanceof Error ? err.message : String(err)}\n`);
    results.push({ store: 'cassandra', ingest: [], history: [], error: err instanceof Error ? err.message : String(err) });
  } finally {
    await ks?.drop();
  }

  const report = {
    benchmark: 'store-ingest', quick, date: started.toISOString(), machine,
    setup: {
      eventsPerBatchSize: EVENTS_PER_SIZE, rooms: ROOMS, historyRoomMessages: HISTORY_ROOM_MESSAGES,
      historyReads: HISTORY_READS, historyConcurrency: HISTORY_CONCURRENCY, cassandraContactPoints: contactPoints,
    },
    results,
  };
  mkdirSync(OUT, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const base = join(OUT, `store-${stamp}${quick ? '-quick' : ''}`);
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(`${base}.md`, markdown(report));
  process.stderr.write(`wrote ${base}.json and ${base}.md\n`);
}

function markdown(r: { date: string; quick: boolean; machine: Record<string, unknown>; setup: Record<string, unknown>; results: StoreResult[] }): string {
  const lines = [
    `# Store benchmark: persister ingest and history reads${r.quick ? ' (quick)' : ''}`,
    '',
    `${r.date}; ${r.machine.nproc} × ${String(r.machine.cpuModel)}, ${String(r.machine.memoryGiB)} GiB, Node ${String(r.machine.node)}, `
      + `load average ${String(r.machine.loadAverage1m)} at start, commit ${String(r.machine.commit ?? '?')}.`,
    'Command: `node --import tsx bench/store-ingest.ts' + (r.quick ? ' --quick' : '') + '`.',
    '',
    `Ingest: the real persister (decode, applyEvents, ack) drains an in-process stream pre-filled with ${String(r.setup.eventsPerBatchSize)} `
      + `message.created events per batch size (at least 4 batches), over ${String(r.setup.rooms)} rooms. The Cassandra node runs on the same `
      + '2-core machine as the benchmark, so both compete for CPU.',
    '',
    '## Ingest (events/s)',
    '',
    `| batch size | ${r.results.map((x) => x.store).join(' | ')} |`,
    `|---:|${r.results.map(() => '---:').join('|')}|`,
    ...BATCH_SIZES.map((b) => `| ${b} | ${r.results.map((x) => x.ingest.find((i) => i.batchSize === b)?.eventsPerSec ?? '—').join(' | ')} |`),
    '',
    `## History reads (ms; ${String(r.setup.historyReads)} reads per page size, ${String(r.setup.historyConcurrency)} in flight, `
      + `room of ${String(r.setup.historyRoomMessages)} messages, half newest page, half from a random cursor)`,
    '',
    '| store | page | p50 | p99 | mean |',
    '|---|---:|---:|---:|---:|',
    ...r.results.flatMap((x) => x.history.map((h) => `| ${x.store} | ${h.limit} | ${h.p50Ms} | ${h.p99Ms} | ${h.meanMs} |`)),
    ...r.results.filter((x) => x.error).map((x) => `\n${x.store}: not measured: ${x.error}`),
    '',
  ];
  return lines.join('\n');
}

await main();
