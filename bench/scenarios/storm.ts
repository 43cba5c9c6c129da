import { sumCpu } from '../lib/proc-stats.ts';
import { peerLabel, topologyText, type Peer, type PeerName, type Topology } from '../peers/peers.ts';
import { postMessage } from '../peers/rest.ts';
import { table, type Ratio } from '../report/report.ts';
import type { Chart } from '../report/svg.ts';
import { connectClients, fmt, interleave, mean, roomShape, withPeer, type ConnectResult, type Context, type ScenarioResult } from './context.ts';

export interface StormOptions extends Topology {
  peers: PeerName[];
  reps: number;
  clients: number;
  members: number;
  /** Connection attempts in flight over all workers. */
  concurrency: number;
  format: 'json' | 'msgpack';
}

export interface StormRun {
  peer: PeerName;
  label: string;
  rep: number;
  connect: ConnectResult | null;
  serverCpuMs: number;
  serverCpuUsPerClient: number | null;
  auxCpuMs: Record<string, number>;
  error?: string;
}

async function runPeer(ctx: Context, peer: Peer, rep: number, opts: StormOptions): Promise<StormRun> {
  const rooms = Math.ceil(opts.clients / opts.members);
  const prefix = `s${rep}`;
  const roomIds = Array.from({ length: rooms }, (_, r) => `${prefix}-r${r}`);
  ctx.progress.phase(`${peer.label} #${rep}: ${rooms} rooms`);
  await peer.createRooms(roomIds);
  // a message in each room, so resume has something to replay from (chat-svc only)
  const last = new Map<string, string>();
  if (peer.rest) {
    const { base, token } = peer.rest;
    for (const roomId of roomIds) last.set(roomId, await postMessage(base, token, roomId, `before the storm in ${roomId}`));
  }
  const { perWorker } = roomShape(prefix, rooms, opts.members, ctx.pool().size, last);
  const pids = peer.serverPids();
  const aux = peer.auxPids();
  const cpu0 = sumCpu(pids);
  const aux0 = Object.fromEntries(Object.entries(aux).map(([k, p]) => [k, sumCpu(p)]));
  ctx.progress.phase(`${peer.label} #${rep}: storm of ${fmt(opts.clients)}`);
  const connect = await connectClients(ctx, peer, perWorker, { join: true, resume: true, concurrency: opts.concurrency, timeoutMs: 60_000, retries: 1 });
  const cpu = sumCpu(pids) - cpu0;
  return {
    peer: peer.name, label: peer.label, rep, connect, serverCpuMs: cpu / 1000,
    serverCpuUsPerClient: connect.ok > 0 ? cpu / connect.ok : null,
    auxCpuMs: Object.fromEntries(Object.entries(aux).map(([k, p]) => [k, (sumCpu(p) - aux0[k]!) / 1000])),
    ...(connect.failed > 0 ? { error: `${connect.failed} failed: ${connect.errors.join('; ')}` } : {}),
  };
}

export async function storm(ctx: Context, opts: StormOptions): Promise<ScenarioResult> {
  const runs: StormRun[] = [];
  const order = interleave(opts.peers, opts.reps);
  ctx.progress.start(order.length);
  for (const { peer: name, rep } of order) {
    const label = peerLabel(name, opts);
    try {
      const run = await withPeer(ctx, name, { format: opts.format, gateways: opts.gateways, persisters: opts.persisters }, (peer) => runPeer(ctx, peer, rep, opts), `${label} #${rep}`);
      runs.push(run);
      ctx.progress.log(`storm ${run.label} #${rep}: ${fmt(run.connect?.ok)} ready in ${fmt((run.connect?.resumedMs ?? 0) / 1000, 2)} s, ${run.connect?.failed} failed`);
    } catch (err) {
      ctx.progress.log(`storm ${label} #${rep} failed: ${(err as Error).message}`);
      runs.push({ peer: name, label, rep, connect: null, serverCpuMs: 0, serverCpuUsPerClient: null, auxCpuMs: {}, error: (err as Error).message });
    }
    ctx.progress.tick('storm');
  }
  const allReady = (p: PeerName) => mean(runs.filter((r) => r.peer === p && r.connect).map((r) => r.connect!.resumedMs / 1000));
  const ratios: Ratio[] = [];
  for (const ours of (['chat', 'chat-nats'] as const).filter((p) => opts.peers.includes(p))) {
    const raw = allReady('raw-uws');
    const mine = allReady(ours);
    const name = ours === 'chat' ? 'embedded' : `NATS (${topologyText(opts)})`;
    if (raw !== null && mine !== null) ratios.push({ name: `${name}: time to all resumed / raw uWS`, value: mine / raw, target: 'context', met: null });
    const failed = runs.filter((r) => r.peer === ours).reduce((n, r) => n + (r.connect?.failed ?? 0) + (r.connect?.retried ?? 0), 0);
    ratios.push({ name: `${name}: failed attempts (retried or not)`, value: failed, target: '0', met: failed === 0 });
  }
  const md = [
    `${fmt(opts.clients)} clients, ${opts.members} per room, at most ${opts.concurrency} connection attempts in flight. Each client: connect (token verified), `
      + '`welcome`, `join_room` (ack), `resume` with the id of a message sent to the room before the storm (chat-svc replays from the stream; the reference peers just ack). '
      + 'A failed client is tried once more (counted as retried). Times are from the first attempt until the last client was welcomed / joined / resumed; "ready" is one client\'s connect-to-resumed time.',
    '', '![storm]({{SVG}})', '',
    table(['peer', 'rep', 'ready', 'failed', 'retried', 'all welcomed s', 'all joined s', 'all resumed s', 'ready p50 ms', 'ready p99 ms', 'server CPU s', 'server CPU us/client', 'broker CPU s', 'error'],
      runs.map((r) => [r.label, r.rep, fmt(r.connect?.ok), fmt(r.connect?.failed), fmt(r.connect?.retried), fmt((r.connect?.welcomedMs ?? 0) / 1000, 2), fmt((r.connect?.joinedMs ?? 0) / 1000, 2),
        fmt((r.connect?.resumedMs ?? 0) / 1000, 2), fmt(r.connect?.ready.p50, 1), fmt(r.connect?.ready.p99, 1), fmt(r.serverCpuMs / 1000, 2), fmt(r.serverCpuUsPerClient, 0),
        Object.entries(r.auxCpuMs).map(([k, ms]) => `${fmt(ms / 1000, 2)} (${k})`).join(', '), r.error ?? ''])),
  ];
  const charts: Chart[] = [
    {
      kind: 'bars', title: `storm: ${fmt(opts.clients)} clients connect + join + resume (mean of reps)`, unit: 'seconds', groups: ['all welcomed', 'all joined', 'all resumed'],
      series: opts.peers.map((p) => {
        const mine = runs.filter((r) => r.peer === p && r.connect);
        return { name: peerLabel(p, opts), values: [mean(mine.map((r) => r.connect!.welcomedMs / 1000)), mean(mine.map((r) => r.connect!.joinedMs / 1000)), mean(mine.map((r) => r.connect!.resumedMs / 1000))] };
      }),
    },
    {
      kind: 'bars', title: 'storm: server CPU per client (mean of reps)', unit: 'us/client', groups: ['server CPU per client'],
      series: opts.peers.map((p) => ({ name: peerLabel(p, opts), values: [mean(runs.filter((r) => r.peer === p).map((r) => r.serverCpuUsPerClient))] })),
    },
  ];
  return { options: { ...opts }, results: { runs }, ratios, markdown: md.join('\n'), charts };
}
