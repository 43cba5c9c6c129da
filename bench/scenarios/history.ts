import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { createSqliteStore, type Store } from '../../shared/store/index.ts';
import type { DurableEvent } from '../../shared/domain/index.ts';
import { Snowflake } from '../../shared/ids/index.ts';
import { newHistogram, summarize, type LatencySummary } from '../lib/histogram.ts';
import { sumCpu } from '../lib/proc-stats.ts';
import { benchRoom, messageCreated } from '../lib/store-fixtures.ts';
import { startServer } from '../lib/processes.ts';
import { freePort, sleep } from '../lib/net.ts';
import { ROOT } from '../peers/peers.ts';
import { historyLength, postMessage } from '../peers/rest.ts';
import { table, type Ratio } from '../report/report.ts';
import type { Chart } from '../report/svg.ts';
import { fmt, mean, ratio, withPeer, type Context, type ScenarioResult } from './context.ts';

export interface HistoryOptions {
  reps: number;
  durationSec: number;
  connections: number;
  /** history() calls per page size in the in-process store measurement. */
  storeIterations: number;
}

interface HttpRun {
  target: 'chat-svc REST' | 'bare Fastify';
  rep: number;
  requestsPerSec: number;
  latency: { p50: number; p90: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  serverCpuUsPerRequest: number | null;
}

interface StoreRun { limit: number; latency: LatencySummary; perSec: number }

const ROOM = 'history-room';
const MESSAGES = 150;

async function cannon(url: string, opts: HistoryOptions, headers: Record<string, string>): Promise<autocannon.Result> {
  return autocannon({ url, connections: opts.connections, duration: opts.durationSec, headers, pipelining: 1 });
}

async function measureHttp(target: HttpRun['target'], rep: number, url: string, pid: number, opts: HistoryOptions, headers: Record<string, string>): Promise<HttpRun> {
  const cpu0 = sumCpu([pid]);
  const r = await cannon(url, opts, headers);
  const cpu = sumCpu([pid]) - cpu0;
  return {
    target, rep, requestsPerSec: r.requests.average,
    latency: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
    non2xx: r.non2xx, errors: r.errors, serverCpuUsPerRequest: r.requests.total > 0 ? cpu / r.requests.total : null,
  };
}

/** The store port in this process: history pages of 50 and 100 from a room of 1000 messages. */
async function measureStore(opts: HistoryOptions): Promise<StoreRun[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-store-'));
  const store: Store = createSqliteStore({ dataDir: dir });
  try {
    const now = Date.now();
    const { room, members } = benchRoom(ROOM, now);
    await store.createRoom(room, members);
    const ids = new Snowflake(1);
    const events: DurableEvent[] = [];
    for (let i = 0; i < 1000; i++) events.push(messageCreated(ROOM, ids.next(), i, now + i, `history message ${i} `.padEnd(100, 'x')));
    await store.applyEvents(events);
    const runs: StoreRun[] = [];
    for (const limit of [50, 100]) {
      for (let i = 0; i < Math.min(100, opts.storeIterations); i++) await store.history(ROOM, { limit }); // warm-up
      const h = newHistogram();
      const t0 = performance.now();
      for (let i = 0; i < opts.storeIterations; i++) {
        const s = performance.now();
        const page = await store.history(ROOM, { limit });
        h.recordValue(Math.max(1, Math.round((performance.now() - s) * 1000)));
        if (page.length !== limit) throw new Error(`store history returned ${page.length} of ${limit}`);
      }
      runs.push({ limit, latency: summarize(h), perSec: (opts.storeIterations * 1000) / (performance.now() - t0) });
    }
    return runs;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function history(ctx: Context, opts: HistoryOptions): Promise<ScenarioResult> {
  ctx.progress.start(2 * opts.reps + 2);
  ctx.progress.phase('store history in-process');
  const storeRuns = await measureStore(opts);
  ctx.progress.tick('chat-svc + bare Fastify');
  for (const s of storeRuns) ctx.progress.log(`history store limit ${s.limit}: p50 ${s.latency.p50} ms, p99 ${s.latency.p99} ms`);

  const http: HttpRun[] = [];
  await withPeer(ctx, 'chat', { format: 'json', gateways: 1, persisters: 1 }, async (chat) => {
    const tmp = mkdtempSync(join(tmpdir(), 'bench-history-'));
    let fastify: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      const { base, token } = chat.rest!;
      await chat.createRooms([ROOM]);
      for (let i = 0; i < MESSAGES; i++) await postMessage(base, token, ROOM, `history message ${i} `.padEnd(100, 'x'));
      const deadline = Date.now() + 30_000;
      while ((await historyLength(base, token, ROOM, 100)) < 100 && Date.now() < deadline) await sleep(50);
      const path = `/v1/chat/rooms/${ROOM}/messages?limit=50`;
      const headers = { authorization: `Bearer ${token}` };
      const res = await fetch(base + path, { headers });
      const body = await res.text();
      if (!res.ok) throw new Error(`history: HTTP ${res.status} ${body.slice(0, 200)}`);
      writeFileSync(join(tmp, 'body.json'), body);
      const port = await freePort();
      fastify = await startServer(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/peers/fastify-history.ts')], {
        name: 'fastify-history', cwd: ROOT, env: { ...process.env, NODE_ENV: 'production', PORT: String(port), BODY_FILE: join(tmp, 'body.json') },
      });
      ctx.progress.tick('warm-up');
      // a short warm-up of both, unmeasured (JIT)
      await cannon(base + path, { ...opts, durationSec: 1 }, headers);
      await cannon(`http://127.0.0.1:${fastify.port}${path}`, { ...opts, durationSec: 1 }, {});
      for (let rep = 1; rep <= opts.reps; rep++) {
        ctx.progress.phase(`chat-svc REST #${rep}`);
        http.push(await measureHttp('chat-svc REST', rep, base + path, chat.serverPids()[0]!, opts, headers));
        ctx.progress.tick(`bare Fastify #${rep}`);
        http.push(await measureHttp('bare Fastify', rep, `http://127.0.0.1:${fastify.port}${path}`, fastify.pid, opts, {}));
        ctx.progress.tick('history');
      }
      for (const h of http) ctx.progress.log(`history ${h.target} #${h.rep}: ${fmt(h.requestsPerSec)} req/s, p99 ${h.latency.p99} ms, ${h.non2xx} non-2xx`);
    } finally {
      await fastify?.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 'chat-svc REST history');

  const rps = (t: HttpRun['target']) => mean(http.filter((h) => h.target === t).map((h) => h.requestsPerSec));
  const store100 = storeRuns.find((s) => s.limit === 100);
  const ratios: Ratio[] = [
    ratio('REST history req/s / bare Fastify', rps('chat-svc REST'), rps('bare Fastify'), '>= 1.5', (r) => r >= 1.5),
    { name: 'store history of 100: p99 ms', value: store100?.latency.p99 ?? null, target: '<= 2', met: store100 ? store100.latency.p99 <= 2 : null },
  ];
  const md = [
    `REST: \`GET /v1/chat/rooms/{room}/messages?limit=50\` (bearer token verified per request, SQLite store, ${MESSAGES} messages in the room) with autocannon, `
      + `${opts.connections} connections, ${opts.durationSec} s per run, runs alternating; beside it a bare Fastify 5 route on the same path returning the same JSON `
      + 'document (no auth, no store). Store: `store.history(room, {limit})` on the SQLite store in this process, 1000 messages in the room, '
      + `${fmt(opts.storeIterations)} calls per page size.`,
    '', '![history]({{SVG}})', '',
    table(['target', 'rep', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'server CPU us/req'],
      http.map((h) => [h.target, h.rep, fmt(h.requestsPerSec), h.latency.p50, h.latency.p90, h.latency.p99, h.latency.max, h.non2xx, h.errors, fmt(h.serverCpuUsPerRequest, 1)])),
    '',
    table(['store history', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'calls/s'],
      storeRuns.map((s) => [`limit ${s.limit}`, fmt(s.latency.p50, 3), fmt(s.latency.p90, 3), fmt(s.latency.p99, 3), fmt(s.latency.max, 2), fmt(s.perSec)])),
  ];
  const charts: Chart[] = [
    {
      kind: 'bars', title: 'history: REST req/s (mean of reps)', unit: 'req/s', groups: ['limit=50'],
      series: [{ name: 'chat-svc REST', values: [rps('chat-svc REST')] }, { name: 'bare Fastify', values: [rps('bare Fastify')] }],
    },
    {
      kind: 'bars', title: 'history: store.history() latency in-process', unit: 'ms', groups: storeRuns.map((s) => `limit ${s.limit}`),
      series: [
        { name: 'p50', values: storeRuns.map((s) => s.latency.p50) },
        { name: 'p99', values: storeRuns.map((s) => s.latency.p99) },
      ],
    },
  ];
  return { options: { ...opts }, results: { http, store: storeRuns }, ratios, markdown: md.join('\n'), charts };
}
