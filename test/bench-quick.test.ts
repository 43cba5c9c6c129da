import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { natsServerAvailable } from '../bench/lib/nats-server.ts';
import { redisAvailable } from '../bench/lib/redis-server.ts';
import { testContactPoints } from './support/cassandra-keyspace.ts';

/**
 * The load harness must not rot: `npm run bench -- fanout --quick` runs every peer (raw uWS, ws,
 * Socket.IO, Socket.IO + Redis when redis-server is here, chat-svc embedded, chat-svc on NATS when
 * nats-server is here) at tiny sizes and writes a report whose numbers are real; `store --quick`
 * does the same for the store scenario (SQLite, and Cassandra when CHAT_TEST_CASSANDRA is set).
 */
const ROOT = resolve(import.meta.dirname, '..');

interface Step {
  deliveredPerSec: number; latency: { count: number; p50: number; p99: number }; serverCpuUsPerDelivery: number | null;
  acked: number; serverCpuUsPerAck: number | null; auxCpuUsPerDelivery: Record<string, number>;
}
interface Run { peer: string; label: string; rep: number; error?: string; connect: { ok: number }; common: Step | null; steps: Step[]; best: Step | null }
interface FanoutReport {
  scenario: string;
  quick: boolean;
  machine: { nproc: number; node: string };
  options: { peers: string[]; gateways: number };
  results: { runs: Run[] };
  ratios: Array<{ name: string; value: number | null }>;
}

/** Runs `npm run bench -- <args> --quick --no-progress --out <dir>`; resolves with its exit code, output and run time. */
async function runBench(args: string[], out: string): Promise<{ code: number | null; output: string; ms: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args, '--quick', '--no-progress', '--out', out], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => { output += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { output += b.toString(); });
  const started = Date.now();
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { code, output, ms: Date.now() - started };
}

t.test('bench - fanout --quick runs every peer and writes JSON, Markdown and SVG', { timeout: 180_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bench-quick-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const { code, output, ms } = await runBench(['fanout', '--gateways', '3'], out);
  t.equal(code, 0, `bench exits 0\n${output}`);
  t.ok(ms < 120_000, 'the quick run takes under 2 minutes');

  for (const ext of ['json', 'md', 'svg']) t.ok(existsSync(join(out, `fanout-latest.${ext}`)), `fanout-latest.${ext} written`);
  const report = JSON.parse(readFileSync(join(out, 'fanout-latest.json'), 'utf8')) as FanoutReport;
  t.equal(report.scenario, 'fanout');
  t.equal(report.quick, true);
  t.ok(report.machine.nproc > 0 && report.machine.node.startsWith('v'), 'machine described');

  const expected = ['raw-uws', 'ws', 'socketio', ...(redisAvailable() ? ['socketio-redis'] : []), 'chat', ...(natsServerAvailable() ? ['chat-nats'] : [])];
  t.same([...report.options.peers].sort(), [...expected].sort(), 'every peer was run');
  for (const peer of report.options.peers) {
    const runs = report.results.runs.filter((r) => r.peer === peer);
    t.ok(runs.length > 0, `${peer} ran`);
    for (const run of runs) {
      t.notOk(run.error, `${peer} #${run.rep} has no error`);
      t.ok(run.connect.ok > 0, `${peer}: clients connected`);
      t.ok(run.common && run.common.deliveredPerSec > 0, `${peer}: deliveries at the common rate`);
      t.ok(run.common && run.common.latency.count > 0 && run.common.latency.p50 > 0 && run.common.latency.p99 >= run.common.latency.p50, `${peer}: latency percentiles`);
      t.ok(run.common && (run.common.serverCpuUsPerDelivery ?? 0) > 0, `${peer}: server CPU per delivery`);
      t.ok(run.common && run.common.acked > 0 && (run.common.serverCpuUsPerAck ?? 0) > 0, `${peer}: sends acked, server CPU per acked send`);
      t.ok(run.best && run.best.deliveredPerSec > 0, `${peer}: a sustainable step`);
    }
  }
  t.ok(report.ratios.some((r) => typeof r.value === 'number' && r.value > 0), 'ratios computed');
  t.equal(report.options.gateways, 3, '--gateways is in the options');
  for (const run of report.results.runs.filter((r) => r.peer === 'chat-nats')) {
    t.equal(run.label, 'chat-svc on NATS (3 gateways)', 'the NATS label says its gateway count');
    t.ok((run.common?.auxCpuUsPerDelivery['nats-server'] ?? -1) >= 0, 'nats-server CPU reported apart');
  }
  for (const run of report.results.runs.filter((r) => r.peer === 'socketio-redis')) {
    t.ok((run.common?.auxCpuUsPerDelivery['redis-server'] ?? -1) >= 0, 'redis-server CPU reported apart');
  }

  const md = readFileSync(join(out, 'fanout-latest.md'), 'utf8');
  t.match(md, /## Headline ratios/);
  if (natsServerAvailable()) t.match(md, /\| chat-svc on NATS \(3 gateways\) \|/, 'the Markdown tables say the gateway count');
  t.match(md, /server CPU us\/acked send/, 'the per-acked-send column is in the summary');
  t.match(md, /!\[fanout\]\(fanout-latest\.svg\)/, 'the Markdown links the plot');
  const svg = readFileSync(join(out, 'fanout-latest.svg'), 'utf8');
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg, /<rect [^>]*height="\d/, 'the plot has bars');
});

interface StoreReport {
  scenario: string;
  results: {
    stores: Record<string, string>;
    summaries: Array<{ store: string; batchSize: number; persisterPerSec: number | null; barePerSec: number | null; persisterToBare: number | null }>;
    ingest: Array<{ store: string; path: string; error?: string; eventsPerSec: number }>;
    history: Array<{ store: string; limit: number; latency: { count: number; p50: number; p99: number } }>;
  };
  ratios: Array<{ name: string; value: number | null; target: string }>;
}

t.test('bench - store --quick measures each store beside its bare driver loop', { timeout: 180_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bench-quick-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const cassandra = testContactPoints();
  const stores = cassandra.length ? ['sqlite', 'cassandra'] : ['sqlite'];
  if (!cassandra.length) t.comment('Cassandra part skipped: set CHAT_TEST_CASSANDRA=127.0.0.1 to include it');
  const { code, output } = await runBench(['store', '--stores', stores.join(','), ...(cassandra.length ? ['--cassandra', cassandra.join(',')] : [])], out);
  t.equal(code, 0, `bench exits 0\n${output}`);
  for (const ext of ['json', 'md', 'svg']) t.ok(existsSync(join(out, `store-latest.${ext}`)), `store-latest.${ext} written`);
  const report = JSON.parse(readFileSync(join(out, 'store-latest.json'), 'utf8')) as StoreReport;
  t.equal(report.scenario, 'store');
  t.same(Object.keys(report.results.stores).sort(), [...stores].sort(), 'every store was measured');
  for (const store of stores) {
    const runs = report.results.ingest.filter((r) => r.store === store);
    t.same([...new Set(runs.map((r) => r.path))].sort(), ['bare driver', 'persister', 'store.applyEvents'], `${store}: all three paths ran`);
    for (const r of runs) t.ok(!r.error && r.eventsPerSec > 0, `${store} ${r.path}: events/s measured`);
    for (const s of report.results.summaries.filter((x) => x.store === store)) t.ok((s.persisterToBare ?? 0) > 0, `${store} batch ${s.batchSize}: ratio to the limit`);
    t.same(report.results.history.filter((h) => h.store === store).map((h) => h.limit), [50, 100], `${store}: history of 50 and 100`);
    for (const h of report.results.history.filter((x) => x.store === store)) t.ok(h.latency.count > 0 && h.latency.p99 >= h.latency.p50, `${store} history ${h.limit}: percentiles`);
  }
  const headline = report.ratios.find((r) => r.name.startsWith('cassandra: store (persister)'));
  if (cassandra.length) t.equal(headline?.target, '>= 0.8', 'the Cassandra ratio carries the issue\'s target');
  t.match(readFileSync(join(out, 'store-latest.md'), 'utf8'), /bare driver \(limit\)/);
});
