import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t from 'tap';
import { natsServerAvailable } from '../bench/lib/nats-server.ts';

/**
 * The load harness must not rot: `npm run bench -- fanout --quick` runs every peer (raw uWS, ws,
 * Socket.IO, chat-svc embedded, chat-svc on NATS when nats-server is here) at tiny sizes and writes
 * a report whose numbers are real.
 */
const ROOT = resolve(import.meta.dirname, '..');

interface Step { deliveredPerSec: number; latency: { count: number; p50: number; p99: number }; serverCpuUsPerDelivery: number | null }
interface Run { peer: string; rep: number; error?: string; connect: { ok: number }; common: Step | null; steps: Step[]; best: Step | null }
interface FanoutReport {
  scenario: string;
  quick: boolean;
  machine: { nproc: number; node: string };
  options: { peers: string[] };
  results: { runs: Run[] };
  ratios: Array<{ name: string; value: number | null }>;
}

t.test('bench - fanout --quick runs every peer and writes JSON, Markdown and SVG', { timeout: 180_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bench-quick-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', 'fanout', '--quick', '--no-progress', '--out', out], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => { output += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { output += b.toString(); });
  const started = Date.now();
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  t.equal(code, 0, `bench exits 0\n${output}`);
  t.ok(Date.now() - started < 120_000, 'the quick run takes under 2 minutes');

  for (const ext of ['json', 'md', 'svg']) t.ok(existsSync(join(out, `fanout-latest.${ext}`)), `fanout-latest.${ext} written`);
  const report = JSON.parse(readFileSync(join(out, 'fanout-latest.json'), 'utf8')) as FanoutReport;
  t.equal(report.scenario, 'fanout');
  t.equal(report.quick, true);
  t.ok(report.machine.nproc > 0 && report.machine.node.startsWith('v'), 'machine described');

  const expected = ['raw-uws', 'ws', 'socketio', 'chat', ...(natsServerAvailable() ? ['chat-nats'] : [])];
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
      t.ok(run.best && run.best.deliveredPerSec > 0, `${peer}: a sustainable step`);
    }
  }
  t.ok(report.ratios.some((r) => typeof r.value === 'number' && r.value > 0), 'ratios computed');

  const md = readFileSync(join(out, 'fanout-latest.md'), 'utf8');
  t.match(md, /## Headline ratios/);
  t.match(md, /!\[fanout\]\(fanout-latest\.svg\)/, 'the Markdown links the plot');
  const svg = readFileSync(join(out, 'fanout-latest.svg'), 'utf8');
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.match(svg, /<rect [^>]*height="\d/, 'the plot has bars');
});
