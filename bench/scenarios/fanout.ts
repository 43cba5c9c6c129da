import type { CollectReply, RunReply, StatsReply } from '../driver/messages.ts';
import { mergeEncoded, newHistogram, summarize, type LatencySummary } from '../lib/histogram.ts';
import { sumCpu } from '../lib/proc-stats.ts';
import { sleep } from '../lib/net.ts';
import { peerLabel, topologyText, type Peer, type PeerName, type Topology } from '../peers/peers.ts';
import { table, type Ratio } from '../report/report.ts';
import type { Chart } from '../report/svg.ts';
import {
  connectClients, fmt, interleave, mean, ratio, roomShape, withPeer, type ConnectResult, type Context, type ScenarioResult,
} from './context.ts';

export interface Shape { rooms: number; members: number }

export interface FanoutOptions extends Topology {
  shapes: Shape[];
  peers: PeerName[];
  reps: number;
  /** Length of one measured step. */
  stepMs: number;
  warmupMs: number;
  /** Longest wait after a step for its last deliveries. */
  drainMs: number;
  /** Deliveries/s of the common-rate phase every peer runs (send rate = this / members). */
  commonDeliveries: number;
  /** Deliveries/s of the first step of the search for the highest sustainable rate. */
  startDeliveries: number;
  growth: number;
  maxSteps: number;
  /** A step whose p99 is above this is not sustainable. */
  p99LimitMs: number;
  payloadBytes: number;
  format: 'json' | 'msgpack';
}

export interface StepResult {
  /** Messages/s offered into the rooms (all senders together). */
  rateIn: number;
  sent: number;
  offeredDeliveriesPerSec: number;
  /** Deliveries received during the step window, per second. */
  deliveredPerSec: number;
  /** Deliveries of this step's messages, including after the window, / sent x members. */
  completion: number;
  latency: LatencySummary;
  serverCpuUsPerDelivery: number | null;
  clientCpuUsPerDelivery: number | null;
  /** nats-server for the NATS peer, redis-server for Socket.IO + Redis. */
  auxCpuUsPerDelivery: Record<string, number>;
  /** Acks of send_message the senders received during the step window. */
  acked: number;
  /** Server CPU over the window / messages acked in it: what one send costs, fan-out included. */
  serverCpuUsPerAck: number | null;
  auxCpuUsPerAck: Record<string, number>;
  serverCpuCores: number;
  errors: Record<string, number>;
  closedConnections: number;
  sustainable: boolean;
  why?: string;
}

export interface PeerRun {
  peer: PeerName;
  label: string;
  rep: number;
  shape: string;
  connect: ConnectResult;
  common: StepResult | null;
  steps: StepResult[];
  /** The sustainable step with the most deliveries/s. */
  best: StepResult | null;
  error?: string;
}

let nextStep = 1;

const shapeName = (s: Shape) => `${s.rooms}x${s.members}`;

async function measureStep(ctx: Context, peer: Peer, shape: Shape, opts: FanoutOptions, rateIn: number, durationMs: number): Promise<StepResult> {
  const pool = ctx.pool();
  const stepId = nextStep++;
  const serverPids = peer.serverPids();
  const aux = peer.auxPids();
  const server0 = sumCpu(serverPids);
  const aux0 = Object.fromEntries(Object.entries(aux).map(([k, pids]) => [k, sumCpu(pids)]));
  const t0 = performance.now();
  const runs = await pool.all<RunReply>({ cmd: 'run', stepId, rate: rateIn / pool.size, durationMs, payloadBytes: opts.payloadBytes });
  const server1 = sumCpu(serverPids);
  const windowMs = performance.now() - t0;
  const aux1 = Object.fromEntries(Object.entries(aux).map(([k, pids]) => [k, sumCpu(pids)]));
  const sent = runs.reduce((n, r) => n + r.sent, 0);
  const inWindow = runs.reduce((n, r) => n + r.deliveredInWindow, 0);
  const acked = runs.reduce((n, r) => n + r.ackedInWindow, 0);
  const clientCpu = runs.reduce((n, r) => n + r.cpuMicros, 0);
  const expected = sent * shape.members;

  // wait for the step's last deliveries: a backlog left now would be counted in the next step
  const drainStart = Date.now();
  let delivered = 0;
  let lastProgress = Date.now();
  while (delivered < expected && Date.now() - drainStart < opts.drainMs && Date.now() - lastProgress < Math.min(1000, opts.drainMs)) {
    await sleep(50);
    const now = (await pool.all<StatsReply>({ cmd: 'stats', stepId })).reduce((n, r) => n + r.delivered, 0);
    if (now > delivered) lastProgress = Date.now();
    delivered = now;
  }
  const collected = await pool.all<CollectReply>({ cmd: 'collect', stepId });
  delivered = collected.reduce((n, r) => n + r.delivered, 0);
  const latency = summarize(mergeEncoded(newHistogram(), collected.map((c) => c.hist)));

  const errors: Record<string, number> = {};
  for (const r of runs) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const deliveredPerSec = (inWindow * 1000) / windowMs;
  const offeredDeliveriesPerSec = (expected * 1000) / windowMs;
  const completion = expected > 0 ? delivered / expected : 0;
  const closed = runs.reduce((n, r) => n + r.closed, 0);
  let why: string | undefined;
  if (completion < 0.99) why = `only ${(completion * 100).toFixed(1)}% delivered`;
  else if (deliveredPerSec < 0.9 * offeredDeliveriesPerSec) why = `delivered ${fmt(deliveredPerSec)}/s of ${fmt(offeredDeliveriesPerSec)}/s offered`;
  else if (latency.p99 > opts.p99LimitMs) why = `p99 ${latency.p99} ms > ${opts.p99LimitMs} ms`;
  else if (closed > 0) why = `${closed} connections closed`;
  return {
    rateIn, sent, offeredDeliveriesPerSec, deliveredPerSec, completion, latency,
    serverCpuUsPerDelivery: inWindow > 0 ? (server1 - server0) / inWindow : null,
    clientCpuUsPerDelivery: inWindow > 0 ? clientCpu / inWindow : null,
    auxCpuUsPerDelivery: Object.fromEntries(Object.keys(aux).map((k) => [k, inWindow > 0 ? (aux1[k]! - aux0[k]!) / inWindow : 0])),
    acked,
    serverCpuUsPerAck: acked > 0 ? (server1 - server0) / acked : null,
    auxCpuUsPerAck: Object.fromEntries(Object.keys(aux).map((k) => [k, acked > 0 ? (aux1[k]! - aux0[k]!) / acked : 0])),
    serverCpuCores: (server1 - server0) / (windowMs * 1000),
    errors, closedConnections: closed, sustainable: why === undefined, ...(why ? { why } : {}),
  };
}

async function runPeer(ctx: Context, peer: Peer, shape: Shape, rep: number, opts: FanoutOptions): Promise<PeerRun> {
  const { roomIds, perWorker } = roomShape(`f${shape.rooms}x${shape.members}`, shape.rooms, shape.members, ctx.pool().size);
  const label = `${peer.label} ${shapeName(shape)} #${rep}`;
  ctx.progress.phase(`${label}: connecting`);
  await peer.createRooms(roomIds);
  const connect = await connectClients(ctx, peer, perWorker, { join: true, resume: false, concurrency: 200, timeoutMs: 30_000 });
  const run: PeerRun = { peer: peer.name, label: peer.label, rep, shape: shapeName(shape), connect, common: null, steps: [], best: null };
  if (connect.failed > 0) {
    run.error = `${connect.failed} of ${connect.clients} clients did not connect: ${connect.errors.join('; ')}`;
    return run;
  }
  ctx.progress.phase(`${label}: warm-up`);
  await measureStep(ctx, peer, shape, opts, opts.startDeliveries / shape.members, opts.warmupMs);

  ctx.progress.phase(`${label}: common rate ${fmt(opts.commonDeliveries)} deliveries/s`);
  run.common = await measureStep(ctx, peer, shape, opts, opts.commonDeliveries / shape.members, opts.stepMs);

  let deliveries = opts.startDeliveries;
  // below the start rate only when the start rate is already too much: halve until a step holds
  let descending = false;
  for (let i = 0; i < opts.maxSteps; i++) {
    ctx.progress.phase(`${label}: step ${i + 1} at ${fmt(deliveries)} deliveries/s offered`);
    const step = await measureStep(ctx, peer, shape, opts, deliveries / shape.members, opts.stepMs);
    const prev = run.steps[run.steps.length - 1];
    run.steps.push(step);
    if (step.sustainable && (!run.best || step.deliveredPerSec > run.best.deliveredPerSec)) run.best = step;
    if (!step.sustainable && run.best === null && (i === 0 || descending) && i < opts.maxSteps - 1) {
      descending = true;
      deliveries /= 2;
      continue;
    }
    if (descending && step.sustainable) step.why = 'first sustainable rate below the start rate';
    if (!step.sustainable || descending) break;
    if (prev && step.deliveredPerSec < prev.deliveredPerSec * 1.05) {
      step.why = 'delivered/s stopped growing';
      break;
    }
    deliveries *= opts.growth;
  }
  return run;
}

export async function fanout(ctx: Context, opts: FanoutOptions): Promise<ScenarioResult> {
  const runs: PeerRun[] = [];
  const order = opts.shapes.flatMap((shape) => interleave(opts.peers, opts.reps).map((o) => ({ ...o, shape })));
  ctx.progress.start(order.length);
  for (const { peer: name, rep, shape } of order) {
    const label = peerLabel(name, opts);
    try {
      const run = await withPeer(ctx, name, { format: opts.format, gateways: opts.gateways, persisters: opts.persisters }, (peer) => runPeer(ctx, peer, shape, rep, opts), `${label} ${shapeName(shape)} #${rep}`);
      runs.push(run);
      const best = run.best;
      ctx.progress.log(`fanout ${shapeName(shape)} ${label} #${rep}: `
        + (run.error ?? `max sustainable ${fmt(best?.deliveredPerSec ?? 0)} deliveries/s; at common rate p99 ${run.common?.latency.p99} ms, `
          + `server ${fmt(run.common?.serverCpuUsPerDelivery, 2)} us/delivery, ${fmt(run.common?.serverCpuUsPerAck, 1)} us/acked send`));
    } catch (err) {
      ctx.progress.log(`fanout ${shapeName(shape)} ${label} #${rep} failed: ${(err as Error).message}`);
      runs.push({
        peer: name, label, rep, shape: shapeName(shape), common: null, steps: [], best: null, error: (err as Error).message,
        connect: { clients: 0, ok: 0, failed: 0, retried: 0, errors: [], welcomedMs: 0, joinedMs: 0, resumedMs: 0, wallMs: 0, ready: summarize(newHistogram()) },
      });
    }
    ctx.progress.tick('fanout');
  }
  return summarizeFanout(runs, opts);
}

interface PeerSummary {
  peer: PeerName;
  label: string;
  shape: string;
  maxDeliveredPerSec: number | null;
  commonP50: number | null;
  commonP99: number | null;
  commonServerUs: number | null;
  /** Including the peer's broker (nats-server, redis-server). */
  commonServerPlusAuxUs: number | null;
  commonServerUsPerAck: number | null;
  commonServerPlusAuxUsPerAck: number | null;
  commonClientUs: number | null;
}

const plusAux = (server: number | null, aux: Record<string, number>): number | null =>
  server === null ? null : server + Object.values(aux).reduce((a, b) => a + b, 0);

export function summarizeFanout(runs: PeerRun[], opts: FanoutOptions): ScenarioResult {
  const summaries: PeerSummary[] = [];
  for (const shape of opts.shapes.map(shapeName)) {
    for (const peer of opts.peers) {
      const mine = runs.filter((r) => r.peer === peer && r.shape === shape && !r.error);
      summaries.push({
        peer, label: peerLabel(peer, opts), shape,
        maxDeliveredPerSec: mean(mine.map((r) => r.best?.deliveredPerSec)),
        commonP50: mean(mine.map((r) => r.common?.latency.p50)),
        commonP99: mean(mine.map((r) => r.common?.latency.p99)),
        commonServerUs: mean(mine.map((r) => r.common?.serverCpuUsPerDelivery)),
        commonServerPlusAuxUs: mean(mine.map((r) => r.common && plusAux(r.common.serverCpuUsPerDelivery, r.common.auxCpuUsPerDelivery))),
        commonServerUsPerAck: mean(mine.map((r) => r.common?.serverCpuUsPerAck)),
        commonServerPlusAuxUsPerAck: mean(mine.map((r) => r.common && plusAux(r.common.serverCpuUsPerAck, r.common.auxCpuUsPerAck))),
        commonClientUs: mean(mine.map((r) => r.common?.clientCpuUsPerDelivery)),
      });
    }
  }
  const get = (peer: PeerName, shape: string) => summaries.find((s) => s.peer === peer && s.shape === shape);
  // targets of issue 17 where it states one (CPU, delivered/s against raw uWS and Socket.IO + Redis, p99)
  const ratios: Ratio[] = [];
  for (const shape of opts.shapes.map(shapeName)) {
    for (const ours of (['chat', 'chat-nats'] as const).filter((p) => opts.peers.includes(p))) {
      const o = get(ours, shape);
      const nats = ours === 'chat-nats';
      const name = nats ? `NATS (${topologyText(opts)})` : 'embedded';
      const raw = get('raw-uws', shape);
      const sio = get('socketio', shape);
      const sioRedis = get('socketio-redis', shape);
      const ws = get('ws', shape);
      if (raw) ratios.push(ratio(`${shape} ${name}: delivered/s / raw uWS`, o?.maxDeliveredPerSec ?? null, raw.maxDeliveredPerSec, '>= 0.7', (r) => r >= 0.7));
      if (sio) ratios.push(ratio(`${shape} ${name}: delivered/s / Socket.IO`, o?.maxDeliveredPerSec ?? null, sio.maxDeliveredPerSec, '>= 5', (r) => r >= 5));
      if (sioRedis && nats) ratios.push(ratio(`${shape} ${name}: delivered/s / Socket.IO + Redis`, o?.maxDeliveredPerSec ?? null, sioRedis.maxDeliveredPerSec, '>= 3', (r) => r >= 3));
      if (ws) ratios.push(ratio(`${shape} ${name}: delivered/s / ws`, o?.maxDeliveredPerSec ?? null, ws.maxDeliveredPerSec, '>= 2', (r) => r >= 2));
      if (raw) {
        const cpuBound = nats ? 2 : 1.5;
        ratios.push(ratio(`${shape} ${name}: server CPU/delivery / raw uWS (common rate)`, o?.commonServerUs ?? null, raw.commonServerUs, `<= ${cpuBound}`, (r) => r <= cpuBound));
        if (nats) ratios.push(ratio(`${shape} ${name}: server+nats-server CPU/delivery / raw uWS (common rate)`, o?.commonServerPlusAuxUs ?? null, raw.commonServerUs, '<= 2', (r) => r <= 2));
        ratios.push(ratio(`${shape} ${name}: p99 / raw uWS (common rate)`, o?.commonP99 ?? null, raw.commonP99, '<= 2', (r) => r <= 2));
      }
    }
  }

  const md: string[] = [];
  md.push(`Shapes ${opts.shapes.map(shapeName).join(', ')} (rooms x members; every member receives every message of its room, the sender included). `
    + `Common rate: ${fmt(opts.commonDeliveries)} deliveries/s offered. Search: from ${fmt(opts.startDeliveries)} deliveries/s, x${opts.growth} per step of ${opts.stepMs} ms, `
    + `until a step is not sustainable (halving instead while none was; a step is not sustainable with less than 99% delivered, under 90% of the offered rate within the step, p99 over ${opts.p99LimitMs} ms, or a connection closed) or delivered/s grows less than 5%. `
    + `Payload ${opts.payloadBytes} bytes of content; chat-svc encoding ${opts.format}. Peers ran A B A B, ${opts.reps} time(s) each.`);
  md.push('', '![fanout]({{SVG}})', '');
  md.push('### Means over repetitions', '');
  md.push('"server CPU" sums every server process of the peer; "incl. broker" adds nats-server (chat-svc on NATS) or redis-server (Socket.IO + Redis). '
    + 'Per delivery = CPU over the common-rate window / deliveries received in it; per acked send = the same CPU / sends acknowledged in it (every peer acks each send).', '');
  const withBroker = (s: PeerSummary, v: number | null, digits: number) => (s.peer === 'chat-nats' || s.peer === 'socketio-redis' ? fmt(v, digits) : '');
  md.push(table(
    ['shape', 'peer', 'max sustainable deliveries/s', 'p50 ms (common)', 'p99 ms (common)', 'server CPU us/delivery (common)', 'incl. broker',
      'server CPU us/acked send (common)', 'incl. broker', 'client CPU us/delivery (common)'],
    summaries.map((s) => [s.shape, s.label, fmt(s.maxDeliveredPerSec), fmt(s.commonP50, 2), fmt(s.commonP99, 2), fmt(s.commonServerUs, 2), withBroker(s, s.commonServerPlusAuxUs, 2),
      fmt(s.commonServerUsPerAck, 1), withBroker(s, s.commonServerPlusAuxUsPerAck, 1), fmt(s.commonClientUs, 2)]),
  ));
  md.push('', '### Every run', '');
  md.push(table(
    ['shape', 'peer', 'rep', 'clients', 'common: delivered/s', 'p50', 'p90', 'p99', 'max', 'server us/deliv', 'server us/ack', 'server cores', 'best step: offered/s', 'delivered/s', 'p99', 'stopped because'],
    runs.map((r) => {
      const last = r.steps[r.steps.length - 1];
      return [r.shape, r.label, r.rep, `${r.connect.ok}${r.connect.retried ? ` (${r.connect.retried} retried)` : ''}`, fmt(r.common?.deliveredPerSec), fmt(r.common?.latency.p50, 2), fmt(r.common?.latency.p90, 2), fmt(r.common?.latency.p99, 2),
        fmt(r.common?.latency.max, 1), fmt(r.common?.serverCpuUsPerDelivery, 2), fmt(r.common?.serverCpuUsPerAck, 1), fmt(r.common?.serverCpuCores, 2),
        fmt(r.best?.offeredDeliveriesPerSec), fmt(r.best?.deliveredPerSec), fmt(r.best?.latency.p99, 2), r.error ?? last?.why ?? 'max steps'];
    }),
  ));

  const shapes = opts.shapes.map(shapeName);
  const charts: Chart[] = [
    {
      kind: 'bars', title: 'fanout: highest sustainable deliveries/s (mean of reps)', unit: 'deliveries/s', groups: shapes,
      series: opts.peers.map((p) => ({ name: peerLabel(p, opts), values: shapes.map((s) => get(p, s)?.maxDeliveredPerSec ?? null) })),
    },
    {
      kind: 'bars', title: `fanout: server CPU per delivery at ${fmt(opts.commonDeliveries)} deliveries/s`, unit: 'us/delivery', groups: shapes,
      series: opts.peers.map((p) => ({ name: peerLabel(p, opts), values: shapes.map((s) => get(p, s)?.commonServerUs ?? null) })),
    },
    {
      kind: 'bars', title: `fanout: send->deliver p99 at ${fmt(opts.commonDeliveries)} deliveries/s`, unit: 'ms', groups: shapes,
      series: opts.peers.map((p) => ({ name: peerLabel(p, opts), values: shapes.map((s) => get(p, s)?.commonP99 ?? null) })),
    },
    ...shapes.map((s): Chart => ({
      kind: 'lines', title: `fanout ${s}: delivered vs offered (one line per run)`, xUnit: 'offered deliveries/s', unit: 'delivered/s',
      series: opts.peers.map((p) => ({ name: peerLabel(p, opts), lines: runs.filter((r) => r.peer === p && r.shape === s).map((r) => r.steps.map((st): [number, number] => [st.offeredDeliveriesPerSec, st.deliveredPerSec])) })),
    })),
    ...shapes.map((s): Chart => ({
      kind: 'lines', title: `fanout ${s}: p99 latency vs offered`, xUnit: 'offered deliveries/s', unit: 'p99 ms (log)', logY: true,
      series: opts.peers.map((p) => ({ name: peerLabel(p, opts), lines: runs.filter((r) => r.peer === p && r.shape === s).map((r) => r.steps.map((st): [number, number] => [st.offeredDeliveriesPerSec, st.latency.p99])) })),
    })),
  ];
  return { options: { ...opts }, results: { summaries, runs }, ratios, markdown: md.join('\n'), charts };
}
