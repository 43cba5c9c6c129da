import { pino } from 'pino';
import { createMemoryPresence } from '../../shared/presence/memory-presence.ts';
import { createRedisPresence } from '../../shared/presence/redis-presence.ts';
import type { Presence } from '../../shared/presence/presence.ts';
import { sumCpu } from '../lib/proc-stats.ts';
import { redisAvailable, startRedis } from '../lib/redis-server.ts';
import { table, type Ratio } from '../report/report.ts';
import type { Chart } from '../report/svg.ts';
import { fmt, mean, type Context, type ScenarioResult } from './context.ts';

export interface PresenceOptions {
  members: number;
  durationMs: number;
  reps: number;
}

const OPERATIONS = ['connect', 'set status', 'heartbeat (500 per call)', 'read 100 members', `read whole room`, 'disconnect'] as const;
type Operation = (typeof OPERATIONS)[number];

interface PresenceRun {
  adapter: 'memory' | 'redis';
  rep: number;
  /** Calls per second per operation, and users per second for the batched ones. */
  ops: Array<{ op: Operation; callsPerSec: number; usersPerSec: number; calls: number }>;
  redisCpuMs?: number;
}

const TENANT = 'bench';
/** Calls in flight: the memory adapter answers synchronously, Redis is a round trip away. */
const LANES = { memory: 1, redis: 32 } as const;
const MAX_CALLS = 2_000_000;

/** Runs `call(i)` over `lanes` concurrent loops until `count` calls or `ms` elapsed. */
async function drive(lanes: number, ms: number, count: number, call: (i: number) => Promise<unknown>): Promise<{ calls: number; seconds: number }> {
  let next = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < count && performance.now() - t0 < ms) await call(next++);
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return { calls: next, seconds: (performance.now() - t0) / 1000 };
}

async function measure(presence: Presence, adapter: 'memory' | 'redis', rep: number, opts: PresenceOptions): Promise<PresenceRun> {
  const lanes = LANES[adapter];
  const users = Array.from({ length: opts.members }, (_, i) => `p-u${i}`);
  const ops: PresenceRun['ops'] = [];
  const record = (op: Operation, r: { calls: number; seconds: number }, perCall = 1) => ops.push({ op, calls: r.calls, callsPerSec: r.calls / r.seconds, usersPerSec: (r.calls * perCall) / r.seconds });

  // every member online once (bounded by count, not time: the room must be whole for the reads)
  record('connect', await drive(lanes, Number.POSITIVE_INFINITY, users.length, (i) => presence.connect({ tenant: TENANT, userId: users[i]!, connectionId: `c${i}` })));
  const statuses = ['online', 'away', 'busy'] as const;
  record('set status', await drive(lanes, opts.durationMs, MAX_CALLS, (i) => presence.setStatus(TENANT, users[(i * 7919) % users.length]!, { status: statuses[i % 3]! })));
  const batches: Array<Array<{ userId: string; connectionId: string }>> = [];
  for (let i = 0; i < users.length; i += 500) batches.push(users.slice(i, i + 500).map((u, j) => ({ userId: u, connectionId: `c${i + j}` })));
  record('heartbeat (500 per call)', await drive(lanes, opts.durationMs, MAX_CALLS, (i) => presence.heartbeat(TENANT, batches[i % batches.length]!)), 500);
  const pages: string[][] = [];
  for (let i = 0; i < users.length; i += 100) pages.push(users.slice(i, i + 100));
  record('read 100 members', await drive(lanes, opts.durationMs, MAX_CALLS, async (i) => {
    const got = await presence.get(TENANT, pages[i % pages.length]!);
    if (got.length !== pages[i % pages.length]!.length) throw new Error(`presence.get returned ${got.length} users`);
  }), 100);
  record('read whole room', await drive(lanes, opts.durationMs, MAX_CALLS, () => presence.get(TENANT, users)), users.length);
  record('disconnect', await drive(lanes, Number.POSITIVE_INFINITY, users.length, (i) => presence.disconnect(TENANT, users[i]!, `c${i}`)));
  return { adapter, rep, ops };
}

export async function presence(ctx: Context, opts: PresenceOptions): Promise<ScenarioResult> {
  const withRedis = redisAvailable();
  if (!withRedis) ctx.notes.push('Redis presence skipped: no redis-server here (set REDIS_SERVER to its path).');
  const adapters: Array<'memory' | 'redis'> = withRedis ? ['memory', 'redis'] : ['memory'];
  const runs: PresenceRun[] = [];
  ctx.progress.start(adapters.length * opts.reps);
  for (let rep = 1; rep <= opts.reps; rep++) {
    for (const adapter of adapters) {
      ctx.progress.phase(`${adapter} #${rep}`);
      if (adapter === 'memory') {
        const p = createMemoryPresence({ ttlSec: 300, typingTimeoutMs: 3000 });
        try {
          runs.push(await measure(p, 'memory', rep, opts));
        } finally {
          await p.close();
        }
      } else {
        const redis = await startRedis();
        try {
          const p = await createRedisPresence({ url: redis.url, ttlSec: 300, typingTimeoutMs: 3000 }, pino({ level: 'warn' }), { commandTimeoutMs: 5000 });
          const cpu0 = sumCpu([redis.pid]);
          try {
            const run = await measure(p, 'redis', rep, opts);
            run.redisCpuMs = (sumCpu([redis.pid]) - cpu0) / 1000;
            runs.push(run);
          } finally {
            await p.close();
          }
        } finally {
          await redis.stop();
        }
      }
      const last = runs[runs.length - 1]!;
      ctx.progress.log(`presence ${adapter} #${rep}: ` + last.ops.map((o) => `${o.op} ${fmt(o.callsPerSec)}/s`).join(', '));
      ctx.progress.tick('presence');
    }
  }
  const rate = (adapter: string, op: Operation) => mean(runs.filter((r) => r.adapter === adapter).map((r) => r.ops.find((o) => o.op === op)?.callsPerSec));
  const ratios: Ratio[] = adapters.flatMap((a) => [
    { name: `${a}: presence updates/s (${fmt(opts.members)}-member room)`, value: rate(a, 'set status'), target: 'context', met: null },
    { name: `${a}: reads/s of 100 members`, value: rate(a, 'read 100 members'), target: 'context', met: null },
  ]);
  const md = [
    `One room of ${fmt(opts.members)} members, each with one connection, through the presence port (\`shared/presence\`) in this process; `
      + `${LANES.memory} call in flight for memory, ${LANES.redis} for Redis (a private redis-server on loopback). Timed operations run ${opts.durationMs} ms each; `
      + 'connect and disconnect cover every member once.',
    '', '![presence]({{SVG}})', '',
    table(['adapter', 'rep', ...OPERATIONS.map((o) => `${o} /s`)],
      runs.map((r) => [r.adapter, r.rep, ...OPERATIONS.map((o) => fmt(r.ops.find((x) => x.op === o)?.callsPerSec))])),
    '',
    'Users per second for the batched calls: ' + runs.map((r) => `${r.adapter} #${r.rep}: heartbeat ${fmt(r.ops.find((o) => o.op === 'heartbeat (500 per call)')?.usersPerSec)}, `
      + `read 100 ${fmt(r.ops.find((o) => o.op === 'read 100 members')?.usersPerSec)}, whole room ${fmt(r.ops.find((o) => o.op === 'read whole room')?.usersPerSec)}`
      + (r.redisCpuMs !== undefined ? ` (redis-server CPU ${fmt(r.redisCpuMs)} ms)` : '')).join('; ') + '.',
  ];
  const charts: Chart[] = [{
    kind: 'bars', title: `presence: calls/s, ${fmt(opts.members)}-member room (mean of reps)`, unit: 'calls/s', groups: OPERATIONS.map((o) => o),
    series: adapters.map((a) => ({ name: a, values: OPERATIONS.map((o) => rate(a, o)) })),
  }];
  return { options: { ...opts }, results: { runs }, ratios, markdown: md.join('\n'), charts };
}
