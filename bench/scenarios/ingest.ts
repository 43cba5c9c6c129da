import type { IngestReply } from '../driver/messages.ts';
import { mergeEncoded, newHistogram, summarize, type LatencySummary } from '../lib/histogram.ts';
import { sumCpu } from '../lib/proc-stats.ts';
import { sleep } from '../lib/net.ts';
import { peerLabel, topologyText, type Peer, type PeerName, type Topology } from '../peers/peers.ts';
import { historyLength, readCounter } from '../peers/rest.ts';
import { table, type Ratio } from '../report/report.ts';
import type { Chart } from '../report/svg.ts';
import { connectClients, fmt, mean, roomShape, withPeer, type Context, type ScenarioResult } from './context.ts';

export interface IngestOptions extends Topology {
  peers: PeerName[];
  reps: number;
  senders: number;
  messages: number;
  /** Unacknowledged sends each client keeps in flight. */
  window: number;
  payloadBytes: number;
  format: 'json' | 'msgpack';
  /**
   * The embedded peer once per setting of its stream journal, interleaved like peers (off: no
   * journal, as before issue 12; normal / full: MEMORY_STREAM_JOURNAL_SYNC). Absent: the default.
   */
  journals?: JournalSetting[];
}

export const JOURNAL_SETTINGS = ['off', 'normal', 'full'] as const;
export type JournalSetting = (typeof JOURNAL_SETTINGS)[number];

function journalEnv(j: JournalSetting): Record<string, string> {
  return j === 'off' ? { MEMORY_STREAM_JOURNAL: 'off' } : { MEMORY_STREAM_JOURNAL: 'sqlite', MEMORY_STREAM_JOURNAL_SYNC: j };
}

/** A peer as measured: chat-svc embedded may run once per journal setting. */
interface Variant { peer: PeerName; journal: JournalSetting | undefined; key: string }

function variantLabel(v: Variant, topology: Topology): string {
  return peerLabel(v.peer, topology) + (v.journal === undefined ? '' : ` (journal ${v.journal})`);
}

export interface IngestRun {
  peer: PeerName;
  /** The embedded peer's journal setting, when the run compared them. */
  journal?: JournalSetting;
  label: string;
  rep: number;
  sent: number;
  acked: number;
  failed: number;
  ackSeconds: number;
  ackedPerSec: number;
  /** From the first send until the persister's counter covered every acked message. */
  persistedSeconds: number | null;
  persistedPerSec: number | null;
  ackLatency: LatencySummary;
  serverCpuUsPerMessage: number | null;
  auxCpuUsPerMessage: Record<string, number>;
  /** One room's history over REST holds what its sender got acked (up to 100). */
  historyCheck: string;
  errors: Record<string, number>;
  error?: string;
}

const PERSISTED = 'chat_persisted_events_total';

async function runPeer(ctx: Context, peer: Peer, rep: number, opts: IngestOptions): Promise<IngestRun> {
  if (!peer.rest) throw new Error(`${peer.label} has no store to persist into`);
  const { roomIds, perWorker } = roomShape(`i${rep}`, opts.senders, 1, ctx.pool().size);
  ctx.progress.phase(`${peer.label} #${rep}: ${opts.senders} senders`);
  await peer.createRooms(roomIds);
  const connect = await connectClients(ctx, peer, perWorker, { join: true, resume: false, concurrency: 200, timeoutMs: 30_000 });
  if (connect.failed > 0) throw new Error(`${connect.failed} senders did not connect: ${connect.errors.join('; ')}`);
  const persistedSoFar = async () => (await Promise.all(peer.rest!.metricsUrls.map((u) => readCounter(u, PERSISTED)))).reduce((a, b) => a + b, 0);
  const before = await persistedSoFar();
  const pids = peer.serverPids();
  const aux = peer.auxPids();
  const cpu0 = sumCpu(pids);
  const aux0 = Object.fromEntries(Object.entries(aux).map(([k, p]) => [k, sumCpu(p)]));
  const perClient = Math.ceil(opts.messages / opts.senders);
  ctx.progress.phase(`${peer.label} #${rep}: ${fmt(perClient * opts.senders)} messages`);
  const t0 = performance.now();
  const replies = await ctx.pool().all<IngestReply>({ cmd: 'ingest', perClient, window: opts.window, payloadBytes: opts.payloadBytes, timeoutMs: 120_000 });
  const ackSeconds = (performance.now() - t0) / 1000;
  const acked = replies.reduce((n, r) => n + r.acked, 0);
  let persisted = 0;
  let persistedSeconds: number | null = null;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    persisted = (await persistedSoFar()) - before;
    if (persisted >= acked) {
      persistedSeconds = (performance.now() - t0) / 1000;
      break;
    }
    await sleep(20);
  }
  const cpu = sumCpu(pids) - cpu0;
  const stored = await historyLength(peer.rest.base, peer.rest.token, roomIds[0]!, 100);
  const expectOne = Math.min(100, perClient);
  const errors: Record<string, number> = {};
  for (const r of replies) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  return {
    peer: peer.name, label: peer.label, rep, sent: perClient * opts.senders, acked, failed: replies.reduce((n, r) => n + r.failed, 0),
    ackSeconds, ackedPerSec: acked / ackSeconds,
    persistedSeconds, persistedPerSec: persistedSeconds ? acked / persistedSeconds : null,
    ackLatency: summarize(mergeEncoded(newHistogram(), replies.map((r) => r.ackHist))),
    serverCpuUsPerMessage: acked > 0 ? cpu / acked : null,
    auxCpuUsPerMessage: Object.fromEntries(Object.entries(aux).map(([k, p]) => [k, acked > 0 ? (sumCpu(p) - aux0[k]!) / acked : 0])),
    historyCheck: stored >= expectOne ? `ok (${stored})` : `MISSING: ${stored} of ${expectOne}`,
    errors,
    ...(persistedSeconds === null ? { error: `only ${persisted} of ${acked} acked messages persisted after 120 s` } : {}),
  };
}

export async function ingest(ctx: Context, opts: IngestOptions): Promise<ScenarioResult> {
  const runs: IngestRun[] = [];
  const variants: Variant[] = opts.peers.flatMap((peer): Variant[] => (peer === 'chat' && opts.journals?.length
    ? opts.journals.map((journal) => ({ peer, journal, key: `${peer}:${journal}` }))
    : [{ peer, journal: undefined, key: peer }]));
  const order: Array<{ v: Variant; rep: number }> = [];
  for (let rep = 1; rep <= opts.reps; rep++) for (const v of variants) order.push({ v, rep });
  ctx.progress.start(order.length);
  for (const { v, rep } of order) {
    const name = v.peer;
    const label = variantLabel(v, opts);
    try {
      const peerOpts = { format: opts.format, gateways: opts.gateways, persisters: opts.persisters, ...(v.journal ? { chatEnv: journalEnv(v.journal) } : {}) };
      const run = await withPeer(ctx, name, peerOpts, async (peer) => ({ ...await runPeer(ctx, peer, rep, opts), label, ...(v.journal ? { journal: v.journal } : {}) }), `${label} #${rep}`);
      runs.push(run);
      ctx.progress.log(`ingest ${run.label} #${rep}: ${fmt(run.ackedPerSec)} acked/s, ${fmt(run.persistedPerSec)} persisted/s, history ${run.historyCheck}`);
    } catch (err) {
      ctx.progress.log(`ingest ${label} #${rep} failed: ${(err as Error).message}`);
      runs.push({
        peer: name, ...(v.journal ? { journal: v.journal } : {}), label, rep, sent: 0, acked: 0, failed: 0, ackSeconds: 0, ackedPerSec: 0, persistedSeconds: null, persistedPerSec: null,
        ackLatency: summarize(newHistogram()), serverCpuUsPerMessage: null, auxCpuUsPerMessage: {}, historyCheck: 'n/a', errors: {}, error: (err as Error).message,
      });
    }
    ctx.progress.tick('ingest');
  }
  const of = (v: Variant) => runs.filter((r) => r.peer === v.peer && r.journal === v.journal);
  const persistedMean = (v: Variant) => mean(of(v).map((r) => r.persistedPerSec));
  // issue 17: >= 50k/s embedded, >= 30k/s on NATS with 2 gateways + 2 persisters (other topologies: context)
  const natsTarget = opts.gateways === 2 && opts.persisters === 2 ? 30_000 : null;
  const ratios: Ratio[] = variants.map((v) => {
    const value = persistedMean(v);
    const bound = v.peer === 'chat' ? 50_000 : natsTarget;
    return {
      name: `${v.peer === 'chat' ? `embedded${v.journal ? ` (journal ${v.journal})` : ''}` : `NATS (${topologyText(opts)})`}: messages/s acked and persisted`, value,
      target: bound === null ? 'context' : `>= ${fmt(bound)}`, met: value === null || bound === null ? null : value >= bound,
    };
  });
  // issue 12: what the journal costs, as ratios to the same server without it in the same run
  const off = variants.find((v) => v.peer === 'chat' && v.journal === 'off');
  if (off) {
    for (const v of variants.filter((x) => x.peer === 'chat' && x.journal !== undefined && x.journal !== 'off')) {
      // CPU per message holds up better than throughput when other work shares the cores
      const picks = [
        ['acked/s', (r: IngestRun) => r.ackedPerSec], ['persisted/s', (r: IngestRun) => r.persistedPerSec], ['server CPU us/msg', (r: IngestRun) => r.serverCpuUsPerMessage],
      ] as const;
      for (const [what, pick] of picks) {
        const num = mean(of(v).map(pick));
        const den = mean(of(off).map(pick));
        const value = num !== null && den !== null && den > 0 ? num / den : null;
        ratios.push({ name: `embedded, journal ${v.journal} / journal off: ${what}`, value, target: 'context', met: null });
      }
    }
  }
  const md = [
    `${opts.senders} senders, each alone in its own room (so delivery adds one frame per message), each keeping ${opts.window} sends unacknowledged; `
      + `${fmt(opts.messages)} messages of ${opts.payloadBytes} bytes in total. "acked/s" is acked messages over the time to the last ack; "persisted/s" is the same messages over the time `
      + `until the persister's \`${PERSISTED}\` counter covered all of them (so it includes the last batch's write).`,
    '', '![ingest]({{SVG}})', '',
    table(['peer', 'rep', 'acked', 'failed', 'acked/s', 'persisted/s', 'ack p50 ms', 'ack p99 ms', 'server CPU us/msg', 'nats-server us/msg', 'history check', 'error'],
      runs.map((r) => [r.label, r.rep, fmt(r.acked), fmt(r.failed), fmt(r.ackedPerSec), fmt(r.persistedPerSec), fmt(r.ackLatency.p50, 2), fmt(r.ackLatency.p99, 2),
        fmt(r.serverCpuUsPerMessage, 1), r.auxCpuUsPerMessage['nats-server'] !== undefined ? fmt(r.auxCpuUsPerMessage['nats-server'], 1) : '', r.historyCheck,
        r.error ?? (Object.keys(r.errors).length ? JSON.stringify(r.errors) : '')])),
  ];
  const charts: Chart[] = [{
    kind: 'bars', title: 'ingest: messages/s (mean of reps)', unit: 'messages/s', groups: ['acked/s', 'persisted/s'],
    series: variants.map((v) => ({ name: variantLabel(v, opts), values: [mean(of(v).map((r) => r.ackedPerSec)), persistedMean(v)] })),
  }];
  return { options: { ...opts }, results: { runs }, ratios, markdown: md.join('\n'), charts };
}
