import { rssBytes, sumRss } from '../lib/proc-stats.ts';
import { sleep } from '../lib/net.ts';
import { peerLabel, type Peer, type PeerName, type Topology } from '../peers/peers.ts';
import { table, type Ratio } from '../report/report.ts';
import type { Chart } from '../report/svg.ts';
import { connectClients, fmt, interleave, mean, withPeer, type ConnectResult, type Context, type ScenarioResult } from './context.ts';

export interface IdleOptions {
  peers: PeerName[];
  reps: number;
  /** Connections per single-process peer (19k fits one process's 20k open files). */
  connections: number;
  /** Connections for chat-svc on NATS, spread over its gateways. */
  natsConnections: number;
  natsGateways: number;
  /** Wait after start and after the last connection before reading RSS. */
  settleMs: number;
  format: 'json' | 'msgpack';
}

export interface IdleRun {
  peer: PeerName;
  label: string;
  rep: number;
  connections: number;
  connect: ConnectResult | null;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  /** (RSS after - RSS before) / connections, over every server process. */
  kibPerConnection: number | null;
  /** The same per gateway process (NATS peer), and nats-server's growth apart. */
  perProcessKib: Array<{ pid: number; before: number; after: number }>;
  auxKibPerConnection: Record<string, number>;
  error?: string;
}

const KiB = 1024;
const MiB = 1024 * 1024;

async function runPeer(ctx: Context, peer: Peer, rep: number, n: number, opts: IdleOptions): Promise<IdleRun> {
  const label = `${peer.label} #${rep}`;
  const pids = peer.serverPids();
  const aux = peer.auxPids();
  await sleep(opts.settleMs);
  const before = new Map(pids.map((p) => [p, rssBytes(p)]));
  const auxBefore = Object.fromEntries(Object.entries(aux).map(([k, p]) => [k, sumRss(p)]));
  ctx.progress.phase(`${label}: ${fmt(n)} connections`);
  const perWorker = Array.from({ length: ctx.pool().size }, () => [] as Array<{ idx: number; userId: string; roomId: string }>);
  for (let i = 0; i < n; i++) perWorker[i % perWorker.length]!.push({ idx: i, userId: `idle-u${i}`, roomId: 'none' });
  const connect = await connectClients(ctx, peer, perWorker, { join: false, resume: false, concurrency: 500, timeoutMs: 60_000 });
  await sleep(opts.settleMs);
  const after = new Map(pids.map((p) => [p, rssBytes(p)]));
  const b = [...before.values()].reduce((a, v) => a + v, 0);
  const a = [...after.values()].reduce((x, v) => x + v, 0);
  return {
    peer: peer.name, label: peer.label, rep, connections: connect.ok, connect,
    rssBeforeMiB: b / MiB, rssAfterMiB: a / MiB,
    kibPerConnection: connect.ok > 0 ? (a - b) / KiB / connect.ok : null,
    perProcessKib: pids.map((pid) => ({ pid, before: (before.get(pid) ?? 0) / KiB, after: (after.get(pid) ?? 0) / KiB })),
    auxKibPerConnection: Object.fromEntries(Object.entries(aux).map(([k, p]) => [k, connect.ok > 0 ? (sumRss(p) - auxBefore[k]!) / KiB / connect.ok : 0])),
    ...(connect.failed > 0 ? { error: `${connect.failed} of ${connect.clients} did not connect: ${connect.errors.join('; ')}` } : {}),
  };
}

export async function idle(ctx: Context, opts: IdleOptions): Promise<ScenarioResult> {
  const runs: IdleRun[] = [];
  const order = interleave(opts.peers, opts.reps);
  const topology: Topology = { gateways: opts.natsGateways, persisters: 1 };
  ctx.progress.start(order.length);
  for (const { peer: name, rep } of order) {
    const n = name === 'chat-nats' ? opts.natsConnections : opts.connections;
    const label = peerLabel(name, topology);
    try {
      const run = await withPeer(ctx, name, { format: opts.format, ...topology }, (peer) => runPeer(ctx, peer, rep, n, opts), `${label} #${rep}`);
      runs.push(run);
      ctx.progress.log(`idle ${run.label} #${rep}: ${fmt(run.connections)} connections, ${fmt(run.kibPerConnection, 2)} KiB each${run.error ? ` (${run.error})` : ''}`);
    } catch (err) {
      ctx.progress.log(`idle ${label} #${rep} failed: ${(err as Error).message}`);
      runs.push({ peer: name, label, rep, connections: 0, connect: null, rssBeforeMiB: 0, rssAfterMiB: 0, kibPerConnection: null, perProcessKib: [], auxKibPerConnection: {}, error: (err as Error).message });
    }
    ctx.progress.tick('idle');
  }

  const per = (p: PeerName) => mean(runs.filter((r) => r.peer === p).map((r) => r.kibPerConnection));
  const held = (p: PeerName) => Math.min(...runs.filter((r) => r.peer === p).map((r) => r.connections));
  const ratios: Ratio[] = [];
  if (opts.peers.includes('chat')) {
    const v = per('chat');
    ratios.push({ name: `embedded: KiB RSS per idle connection at ${fmt(held('chat'))}`, value: v, target: `<= 3 at 19,000`, met: v === null ? null : v <= 3 && held('chat') >= 19_000 });
    const raw = per('raw-uws');
    if (raw !== null && v !== null) ratios.push({ name: 'embedded: RSS per connection / raw uWS', value: v / raw, target: 'context', met: null });
  }
  if (opts.peers.includes('chat-nats')) {
    const h = held('chat-nats');
    ratios.push({ name: `NATS (${opts.natsGateways} gateways): connections held`, value: h, target: '>= 50,000', met: h >= 50_000 });
    ratios.push({ name: 'NATS: KiB RSS per idle connection (all tiers)', value: per('chat-nats'), target: 'context', met: null });
  }

  const md = [
    `Each peer is started, left ${opts.settleMs} ms, then gets N authenticated connections (token verified at upgrade, \`welcome\` received, no room joined); `
      + `after another ${opts.settleMs} ms the server processes' RSS is read again. KiB per connection = (RSS after - RSS before) / N, summed over the peer's processes `
      + `(chat-svc on NATS: ${opts.natsGateways} gateways + api + persister, Socket.IO + Redis: both its processes; nats-server and redis-server apart as "broker"). N = ${fmt(opts.connections)} (NATS: ${fmt(opts.natsConnections)}).`,
    '', '![idle]({{SVG}})', '',
    table(['peer', 'rep', 'connections', 'retried', 'RSS before MiB', 'RSS after MiB', 'KiB per connection', 'broker KiB/conn', 'connect: all welcomed s', 'error'],
      runs.map((r) => [r.label, r.rep, fmt(r.connections), fmt(r.connect?.retried), fmt(r.rssBeforeMiB, 1), fmt(r.rssAfterMiB, 1), fmt(r.kibPerConnection, 2),
        Object.entries(r.auxKibPerConnection).map(([k, v]) => `${fmt(v, 2)} (${k})`).join(', '), fmt((r.connect?.welcomedMs ?? 0) / 1000, 1), r.error ?? ''])),
  ];
  const charts: Chart[] = [{
    kind: 'bars', title: 'idle: RSS per idle authenticated connection (mean of reps)', unit: 'KiB', groups: ['KiB per connection'],
    series: opts.peers.map((p) => ({ name: peerLabel(p, topology), values: [per(p)] })),
  }];
  return { options: { ...opts }, results: { runs }, ratios, markdown: md.join('\n'), charts };
}
