import { Command, InvalidArgumentError, Option } from 'commander';
import { WorkerPool } from './driver/pool.ts';
import { describeMachine } from './lib/machine.ts';
import { killAll } from './lib/processes.ts';
import { loadAverage } from './lib/proc-stats.ts';
import { Progress } from './lib/progress.ts';
import { sleep } from './lib/net.ts';
import { PEER_NAMES, peerUnavailable, type PeerName, type Topology } from './peers/peers.ts';
import { machineMarkdown, ratiosMarkdown, table, writeReport, type Report } from './report/report.ts';
import type { Context, ScenarioResult } from './scenarios/context.ts';
import type { ProfileSummary } from './lib/cpu-profile.ts';
import { fanout, type Shape } from './scenarios/fanout.ts';
import { idle } from './scenarios/idle.ts';
import { storm } from './scenarios/storm.ts';
import { ingest, JOURNAL_SETTINGS, type JournalSetting } from './scenarios/ingest.ts';
import { history } from './scenarios/history.ts';
import { presence } from './scenarios/presence.ts';
import { storeScenario, type StoreKind } from './scenarios/store.ts';
import { aiScenario } from './scenarios/ai.ts';

/**
 * `npm run bench -- <scenario> [options]`: runs the peers side by side and writes
 * bench/results/<scenario>-<timestamp>.{json,md,svg} (+ -latest copies; --quick runs go to results/tmp/).
 */
interface Common {
  quick: boolean;
  peers?: string;
  reps?: number;
  workers?: number;
  sourceAddresses: number;
  format: 'json' | 'msgpack';
  out?: string;
  progress: boolean;
  waitIdle?: number;
  profile: boolean;
}

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name}: a positive whole number`);
  return n;
};
function journalList(v: string): JournalSetting[] {
  const list = v.split(',').map((x) => x.trim()).filter(Boolean);
  const bad = list.filter((x) => !(JOURNAL_SETTINGS as readonly string[]).includes(x));
  if (bad.length || !list.length) throw new InvalidArgumentError(`journals: a comma-separated list of ${JOURNAL_SETTINGS.join(', ')}`);
  return list as JournalSetting[];
}
const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name}: a positive number`);
  return n;
};
const intList = (name: string) => (v: string): number[] => v.split(',').map((s) => int(name)(s.trim()));
const hosts = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);
const shapes = (v: string): Shape[] => v.split(',').map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new InvalidArgumentError('shapes: ROOMSxMEMBERS[,ROOMSxMEMBERS...]');
  return { rooms: Number(m[1]), members: Number(m[2]) };
});

function withCommon(cmd: Command): Command {
  return cmd
    .option('--quick', 'tiny sizes: checks the harness in seconds, measures nothing', false)
    .option('--peers <list>', `comma-separated, from ${PEER_NAMES.join(', ')}`)
    .option('--reps <n>', 'times each peer runs (A B A B order)', int('reps'))
    .option('--workers <n>', 'load worker processes', int('workers'))
    .option('--source-addresses <n>', 'client source addresses 127.0.0.2 ... (each gives ~28k ports per server port)', int('source-addresses'), 16)
    .addOption(new Option('--format <format>', 'encoding chat-svc sends (the reference peers speak JSON)').choices(['json', 'msgpack']).default('json'))
    .option('--out <dir>', 'where reports go (default bench/results, or bench/results/tmp for --quick)')
    .option('--no-progress', 'no progress bar or log lines')
    .option('--wait-idle <minutes>', 'first wait (at most this long) for a 1-minute load average below 1.0', num('wait-idle'))
    .option('--profile', 'run chat-svc with --cpu-prof and put the hottest functions in the report (costs some throughput)', false);
}

function choosePeers(list: string | undefined, allowed: readonly PeerName[], notes: string[]): PeerName[] {
  const wanted = (list ? list.split(',').map((s) => s.trim()) : [...allowed]) as PeerName[];
  for (const p of wanted) {
    if (!PEER_NAMES.includes(p)) throw new InvalidArgumentError(`unknown peer ${p}; choose from ${PEER_NAMES.join(', ')}`);
  }
  return wanted.filter((p) => allowed.includes(p)).filter((p) => {
    const why = peerUnavailable(p);
    if (why !== undefined) notes.push(`${p} skipped: ${why}.`);
    return why === undefined;
  });
}

/** --gateways and --persisters: the processes of chat-svc on NATS (fanout, storm, ingest). */
function withTopology(cmd: Command): Command {
  return cmd
    .option('--gateways <n>', 'gateways of chat-svc on NATS (clients spread over them)', int('gateways'), 2)
    .option('--persisters <n>', 'persisters of chat-svc on NATS (one durable consumer shared)', int('persisters'), 1);
}

async function waitIdle(minutes: number | undefined, progress: Progress): Promise<void> {
  if (minutes === undefined) return;
  const deadline = Date.now() + minutes * 60_000;
  while (loadAverage() >= 1.0 && Date.now() < deadline) {
    progress.log(`load average ${loadAverage()} >= 1.0: waiting`);
    await sleep(30_000);
  }
}

async function runScenario(name: string, common: Common, defaultWorkers: number, body: (ctx: Context) => Promise<ScenarioResult>): Promise<void> {
  const progress = new Progress(!common.progress);
  let pool: WorkerPool | undefined;
  const notes: string[] = [];
  const workers = common.workers ?? defaultWorkers;
  const ctx: Context = {
    quick: common.quick, progress, notes, workers, sourceAddresses: common.sourceAddresses, profile: common.profile, profiles: [],
    pool: () => (pool ??= WorkerPool.start(workers)),
    hasPool: () => pool !== undefined,
  };
  if (common.profile) notes.push('chat-svc ran under --cpu-prof (sampling profiler): its numbers in this report are somewhat lower than without.');
  try {
    await waitIdle(common.waitIdle, progress);
    const machine = describeMachine();
    if (!common.quick && machine.loadAverage1m >= 1.0) {
      notes.push(`The 1-minute load average was ${machine.loadAverage1m} at start: other work shared the cores, so absolute numbers are low; ratios within the run still compare peers under the same conditions.`);
    }
    const startedAt = new Date().toISOString();
    const result = await body(ctx);
    progress.stop();
    for (const r of result.ratios) {
      if (r.met !== false || r.value === null) continue;
      const bound = Number(/[\d.,]+/.exec(r.target)?.[0].replace(/,/g, ''));
      const by = Number.isFinite(bound) && bound > 0 ? ` (${r.target.startsWith('<') ? `${(r.value / bound).toFixed(1)}x the bound` : `${((r.value / bound) * 100).toFixed(0)}% of the bound`})` : '';
      notes.push(`Target missed: ${r.name} is ${r.value.toFixed(2)}, target ${r.target}${by}.`);
    }
    const report: Report = {
      scenario: name, quick: common.quick, machine, startedAt, finishedAt: new Date().toISOString(),
      options: result.options, results: ctx.profiles.length ? { ...(result.results as object), profiles: ctx.profiles } : result.results, ratios: result.ratios, notes,
    };
    const md = [
      `# bench: ${name}`, '',
      machineMarkdown(report), '',
      ...(result.ratios.length ? ['## Headline ratios', '', ratiosMarkdown(result.ratios), ''] : []),
      '## Results', '', result.markdown, '',
      ...(ctx.profiles.length ? ['## Where chat-svc spends its CPU', '', profilesMarkdown(ctx.profiles), ''] : []),
      ...(notes.length ? ['## Notes', '', ...notes.map((n) => `- ${n}`), ''] : []),
      `Reproduce: \`npm run bench -- ${process.argv.slice(2).join(' ')}\``, '',
    ].join('\n');
    const files = writeReport(report, md, result.charts, common.out);
    process.stdout.write(`${name}: wrote ${files.json}, ${files.md}, ${files.svg}\n`);
    for (const r of result.ratios) process.stdout.write(`  ${r.name}: ${r.value === null ? 'n/a' : r.value.toFixed(2)} (target ${r.target})\n`);
    for (const n of notes) process.stdout.write(`  note: ${n}\n`);
  } finally {
    progress.stop();
    await pool?.stop();
  }
}

function profilesMarkdown(profiles: Array<{ label: string; summary: ProfileSummary }>): string {
  return profiles.map(({ label, summary }) => [
    `**${label}** — ${summary.files} profile(s) (processes and their loader threads), ${summary.seconds.toFixed(1)} s, ${summary.busyPercent}% busy; `
      + 'the whole run is profiled (start-up, setup, warm-up and every step). Self time as a share of busy samples, so a function\'s callees are not included; '
      + '`(program)` is mostly native code such as uWebSockets.js.', '',
    table(['area', 'self %'], summary.byArea.map((e) => [e.name, e.selfPercent.toFixed(1)])), '',
    table(['function', 'self %'], summary.topFunctions.map((e) => [e.name.replace(/\|/g, '\\|'), e.selfPercent.toFixed(1)])), '',
  ].join('\n')).join('\n');
}

const program = new Command()
  .name('bench')
  .description('chat-svc load harness: peers side by side, JSON + Markdown + SVG reports in bench/results/')
  .showHelpAfterError();

withTopology(withCommon(program.command('fanout')))
  .description('rooms x members x send rate: highest sustainable deliveries/s, latency percentiles, CPU per delivery')
  .option('--shapes <list>', 'ROOMSxMEMBERS,... (default 100x20,10x500)', shapes)
  .option('--step-ms <ms>', 'length of one measured step', int('step-ms'))
  .option('--common-rate <n>', 'deliveries/s of the common-rate phase (default 40000)', int('common-rate'))
  .option('--start-rate <n>', 'deliveries/s of the first search step (default 20000)', int('start-rate'))
  .option('--growth <x>', 'rate factor per step', num('growth'))
  .option('--max-steps <n>', 'steps at most', int('max-steps'))
  .option('--p99-limit <ms>', 'p99 above which a step is not sustainable', num('p99-limit'))
  .option('--payload <bytes>', 'message content size', int('payload'))
  .action(async (o: Common & Topology & { shapes?: Shape[]; stepMs?: number; commonRate?: number; startRate?: number; growth?: number; maxSteps?: number; p99Limit?: number; payload?: number }) => {
    await runScenario('fanout', o, 2, async (ctx) => fanout(ctx, {
      gateways: o.gateways, persisters: o.persisters,
      shapes: o.shapes ?? (o.quick ? [{ rooms: 4, members: 5 }] : [{ rooms: 100, members: 20 }, { rooms: 10, members: 500 }]),
      peers: choosePeers(o.peers, PEER_NAMES, ctx.notes),
      reps: o.reps ?? (o.quick ? 1 : 2),
      stepMs: o.stepMs ?? (o.quick ? 700 : 5000),
      warmupMs: o.quick ? 200 : 2000,
      drainMs: o.quick ? 1500 : 10_000,
      commonDeliveries: o.commonRate ?? (o.quick ? 2000 : 40_000),
      startDeliveries: o.startRate ?? (o.quick ? 1000 : 20_000),
      growth: o.growth ?? (o.quick ? 2 : 1.5),
      maxSteps: o.maxSteps ?? (o.quick ? 2 : 12),
      p99LimitMs: o.p99Limit ?? (o.quick ? 1000 : 100),
      payloadBytes: o.payload ?? 100,
      format: o.format,
    }));
  });

withCommon(program.command('idle'))
  .description('RSS per idle authenticated connection')
  .option('--connections <n>', 'connections per peer (default 19000)', int('connections'))
  .option('--nats-connections <n>', 'connections for chat-svc on NATS (default 50000)', int('nats-connections'))
  .option('--nats-gateways <n>', 'gateways of chat-svc on NATS (default 3)', int('nats-gateways'))
  .action(async (o: Common & { connections?: number; natsConnections?: number; natsGateways?: number }) => {
    const connections = o.connections ?? (o.quick ? 200 : 19_000);
    const natsConnections = o.natsConnections ?? (o.quick ? 300 : 50_000);
    await runScenario('idle', o, Math.max(2, Math.ceil(Math.max(connections, natsConnections) / 18_000)), async (ctx) => idle(ctx, {
      peers: choosePeers(o.peers, PEER_NAMES, ctx.notes),
      reps: o.reps ?? (o.quick ? 1 : 2),
      connections, natsConnections,
      natsGateways: o.natsGateways ?? 3,
      settleMs: o.quick ? 500 : 5000,
      format: o.format,
    }));
  });

withTopology(withCommon(program.command('storm')))
  .description('connect + join + resume of many clients at once')
  .option('--clients <n>', 'clients (default 10000)', int('clients'))
  .option('--members <n>', 'clients per room (default 100)', int('members'))
  .option('--concurrency <n>', 'connection attempts in flight over all workers (default 1000)', int('concurrency'))
  .action(async (o: Common & Topology & { clients?: number; members?: number; concurrency?: number }) => {
    await runScenario('storm', o, 2, async (ctx) => storm(ctx, {
      gateways: o.gateways, persisters: o.persisters,
      peers: choosePeers(o.peers, PEER_NAMES, ctx.notes),
      reps: o.reps ?? (o.quick ? 1 : 2),
      clients: o.clients ?? (o.quick ? 100 : 10_000),
      members: o.members ?? (o.quick ? 10 : 100),
      concurrency: o.concurrency ?? (o.quick ? 50 : 1000),
      format: o.format,
    }));
  });

withTopology(withCommon(program.command('ingest')))
  .description('acked and persisted messages/s (chat-svc peers)')
  .option('--senders <n>', 'sending clients, one room each (default 200)', int('senders'))
  .option('--messages <n>', 'messages in total (default 200000)', int('messages'))
  .option('--window <n>', 'unacknowledged sends per client (default 8)', int('window'))
  .option('--journals <list>', `chat-svc embedded once per stream journal setting, from ${JOURNAL_SETTINGS.join(', ')} (default: the server's default only)`, journalList)
  .action(async (o: Common & Topology & { senders?: number; messages?: number; window?: number; journals?: JournalSetting[] }) => {
    await runScenario('ingest', o, 2, async (ctx) => ingest(ctx, {
      gateways: o.gateways, persisters: o.persisters,
      peers: choosePeers(o.peers, ['chat', 'chat-nats'], ctx.notes),
      reps: o.reps ?? (o.quick ? 1 : 2),
      senders: o.senders ?? (o.quick ? 10 : 200),
      messages: o.messages ?? (o.quick ? 1000 : 200_000),
      window: o.window ?? 8,
      payloadBytes: 100,
      format: o.format,
      ...(o.journals ? { journals: o.journals } : {}),
    }));
  });

withCommon(program.command('history'))
  .description('REST history (autocannon) beside a bare Fastify route; store history in-process')
  .option('--duration <s>', 'seconds per autocannon run (default 10)', int('duration'))
  .option('--connections <n>', 'autocannon connections (default 50)', int('connections'))
  .action(async (o: Common & { duration?: number; connections?: number }) => {
    await runScenario('history', o, 1, async (ctx) => history(ctx, {
      reps: o.reps ?? (o.quick ? 1 : 2),
      durationSec: o.duration ?? (o.quick ? 1 : 10),
      connections: o.connections ?? (o.quick ? 10 : 50),
      storeIterations: o.quick ? 200 : 20_000,
    }));
  });

withCommon(program.command('presence'))
  .description('presence updates/s and reads/s for one large room through the presence port')
  .option('--members <n>', 'room members (default 10000)', int('members'))
  .option('--duration <s>', 'seconds per measurement (default 5)', int('duration'))
  .action(async (o: Common & { members?: number; duration?: number }) => {
    await runScenario('presence', o, 1, async (ctx) => presence(ctx, {
      members: o.members ?? (o.quick ? 500 : 10_000),
      durationMs: (o.duration ?? (o.quick ? 0.3 : 5)) * 1000,
      reps: o.reps ?? (o.quick ? 1 : 2),
    }));
  });

withCommon(program.command('store'))
  .description('store ingest (persister, applyEvents, bare driver loop: the limit) and history latency, SQLite and Cassandra')
  .addOption(new Option('--stores <list>', 'stores to measure').default(['sqlite', 'cassandra'], 'sqlite,cassandra').argParser((v) => {
    const list = v.split(',').map((s) => s.trim());
    for (const k of list) if (k !== 'sqlite' && k !== 'cassandra') throw new InvalidArgumentError(`stores: sqlite and/or cassandra, not ${k}`);
    return list as StoreKind[];
  }))
  .option('--batch-sizes <list>', 'persister batch sizes (default 100,500,1000,5000)', intList('batch-sizes'))
  .option('--events <n>', 'events per batch size, path and repetition (default 30000)', int('events'))
  .option('--rooms <n>', 'rooms the events are spread over', int('rooms'), 50)
  .option('--concurrency <n>', 'Cassandra requests in flight, for the store and the bare loop alike', int('concurrency'), 32)
  .addOption(new Option('--cassandra <hosts>', 'Cassandra contact points').argParser(hosts)
    .default(hosts(process.env.CASSANDRA_CONTACT_POINTS || '127.0.0.1'), 'CASSANDRA_CONTACT_POINTS or 127.0.0.1'))
  .addOption(new Option('--cassandra-dc <dc>', 'Cassandra local datacenter').default(process.env.CASSANDRA_LOCAL_DC || 'datacenter1', 'CASSANDRA_LOCAL_DC or datacenter1'))
  .action(async (o: Common & { stores: StoreKind[]; batchSizes?: number[]; events?: number; rooms: number; concurrency: number; cassandra: string[]; cassandraDc: string }) => {
    await runScenario('store', o, 1, async (ctx) => storeScenario(ctx, {
      stores: o.stores,
      reps: o.reps ?? (o.quick ? 1 : 2),
      batchSizes: o.batchSizes ?? (o.quick ? [100, 1000] : [100, 500, 1000, 5000]),
      events: o.events ?? (o.quick ? 3000 : 30_000),
      rooms: o.rooms,
      concurrency: o.concurrency,
      historyMessages: o.quick ? 1000 : 5000,
      historyReads: o.quick ? 100 : 1000,
      cassandra: { contactPoints: o.cassandra, localDataCenter: o.cassandraDc },
    }));
  });

withCommon(program.command('ai'))
  .description('p99 of ordinary messages while AI answers stream into other rooms, beside the same load without them (chat all, provider faked)')
  .option('--rooms <n>', 'rooms of ordinary conversation (default 10)', int('rooms'))
  .option('--members <n>', 'members per conversation room (default 5)', int('members'))
  .option('--rate <n>', 'ordinary messages per second (default 200)', int('rate'))
  .option('--answers <n>', 'AI answers streaming at once (default 50)', int('answers'))
  .option('--chunks <n>', 'chunks per answer (default 40)', int('chunks'))
  .option('--chunk-ms <n>', 'ms between chunks (default 50)', int('chunk-ms'))
  .option('--seconds <n>', 'seconds per phase (default 10)', int('seconds'))
  .action(async (o: Common & { rooms?: number; members?: number; rate?: number; answers?: number; chunks?: number; chunkMs?: number; seconds?: number }) => {
    await runScenario('ai', o, 1, async (ctx) => aiScenario(ctx, {
      reps: o.reps ?? (o.quick ? 1 : 2),
      rooms: o.rooms ?? (o.quick ? 3 : 10),
      members: o.members ?? (o.quick ? 3 : 5),
      rate: o.rate ?? (o.quick ? 50 : 200),
      answers: o.answers ?? (o.quick ? 5 : 50),
      chunks: o.chunks ?? (o.quick ? 10 : 40),
      chunkMs: o.chunkMs ?? 50,
      seconds: o.seconds ?? (o.quick ? 2 : 10),
    }));
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  killAll();
  process.exit(1);
});
