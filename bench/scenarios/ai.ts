import WebSocket from 'ws';
import { newHistogram, summarize, type LatencySummary } from '../lib/histogram.ts';
import { sumCpu } from '../lib/proc-stats.ts';
import { table, type Ratio } from '../report/report.ts';
import type { Chart } from '../report/svg.ts';
import { ROOT, UNLIMITED_ENV } from '../peers/peers.ts';
import { startChatProcess, removeDir, type ChatProcess } from '../../test/support/chat-process.ts';
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { summarizeProfiles } from '../lib/cpu-profile.ts';
import type { AiLoadCommand } from '../driver/ai-load.ts';
import { devToken } from '../../test/support/tokens.ts';
import { fmt, type Context, type ScenarioResult } from './context.ts';
import { headlineRatio, median, repRatios } from './ai-ratio.ts';

export interface AiOptions {
  reps: number;
  /** Rooms of ordinary conversation and their members. */
  rooms: number;
  members: number;
  /** Ordinary messages per second over all rooms. */
  rate: number;
  /** AI answers streaming at once during the loaded phase. */
  answers: number;
  /** Chunks per answer and the provider's pause between them. */
  chunks: number;
  chunkMs: number;
  seconds: number;
}

interface Phase {
  kind: 'baseline' | 'ai';
  rep: number;
  latency: LatencySummary;
  sent: number;
  answersDone: number;
  chunksSeen: number;
  /** The chat process's event-loop delay over the phase (prom-client resets it at each scrape), ms. */
  loopP99: number | null;
  loopMax: number | null;
  /** CPU the chat process used over the phase, as a share of one core. */
  serverCores: number;
  /**
   * The measured window on the monotonic clock in µs, the clock of a .cpuprofile's timestamps
   * (startTime + timeDeltas), so a profile of the chat process can be cut by phase.
   */
  monoStartUs: number;
  monoEndUs: number;
}

interface Client {
  ws: WebSocket;
}

/**
 * The p99 of ordinary messages while the assistant streams answers into other rooms, beside the
 * same load without them: `chat all` with an OpenAI-compatible provider faked in this process
 * (answers of `chunks` pieces, `chunkMs` apart); `answers` rooms each keep one answer streaming
 * (a new `@ai` question as soon as the last one is done) while `rooms` rooms chat at `rate`.
 * Phases alternate baseline, ai, baseline, ai (`reps`), so drift of the machine hits both alike.
 * The headline is the median over reps of each rep's ai p99 / its baseline p99 (ai-ratio.ts).
 */
export async function aiScenario(ctx: Context, opts: AiOptions): Promise<ScenarioResult> {
  const load = fork(join(import.meta.dirname, '../driver/ai-load.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const tell = request(load);
  const { url } = await tell<{ url: string }>({ cmd: 'provider', chunks: opts.chunks, chunkMs: opts.chunkMs });
  let srv: ChatProcess | undefined;
  const clients: Client[] = [];
  const phases: Phase[] = [];
  const profileDir = ctx.profile ? mkdtempSync(join(tmpdir(), 'bench-prof-')) : undefined;
  try {
    srv = await startChatProcess({
      ...(profileDir ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}),
      env: {
        AI_PROVIDERS: 'openai', OPENAI_BASE_URL: url, AI_RESPONSE_TIMEOUT: '60000',
        ...UNLIMITED_ENV, AI_RATE_LIMIT_PER_MINUTE: '1000000',
      },
    });
    const http = srv.http;
    const owner = await devToken('bench-owner');
    const create = async (name: string, members: string[], enableAI: boolean) => {
      const res = await fetch(`${http}/v1/chat/rooms`, {
        method: 'POST', headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name, type: 'group', members, settings: { enableAI, moderationLevel: 'none' } }),
      });
      const body = (await res.json()) as any;
      if (!body.success) throw new Error(`create room: ${JSON.stringify(body.error)}`);
      return body.data.roomId as string;
    };

    ctx.progress.phase('ai: rooms and clients');
    let hist = newHistogram();
    const talk: Array<{ roomId: string; sender: Client }> = [];
    for (let r = 0; r < opts.rooms; r++) {
      const users = Array.from({ length: opts.members }, (_, i) => `bench-t${r}-u${i}`);
      const roomId = await create(`talk ${r}`, users, false);
      const members = await Promise.all(users.map((u) => connect(srv!.ws, u, roomId, (raw) => {
        // the marker is found in the raw frame, without decoding it (as the fanout scenario does)
        const at = raw.indexOf('"bench:');
        if (at < 0) return;
        const sentAt = Number(raw.slice(at + 7, raw.indexOf(':', at + 7)));
        hist.recordValue(Math.max(1, Math.round((performance.timeOrigin + performance.now() - sentAt) * 1000)));
      })));
      clients.push(...members);
      talk.push({ roomId, sender: members[0]! });
    }
    const aiRooms: Array<{ roomId: string; users: string[] }> = [];
    for (let r = 0; r < opts.answers; r++) {
      const users = [`bench-a${r}-u0`, `bench-a${r}-u1`];
      aiRooms.push({ roomId: await create(`ai ${r}`, users, true), users });
    }
    await tell({ cmd: 'clients', ws: srv.ws, rooms: aiRooms });

    // warm-up, not measured: each AI room's first answer starts its history window (a store read
    // and a replay of the stream) and the assistant's code paths get compiled
    ctx.progress.phase('ai: warm-up');
    await tell({ cmd: 'stream', on: true });
    await sleep(opts.chunks * opts.chunkMs + 2000);
    await tell({ cmd: 'stream', on: false });
    await sleep(opts.chunks * opts.chunkMs + 1000);

    const order: Array<{ kind: Phase['kind']; rep: number }> = [];
    for (let rep = 1; rep <= opts.reps; rep++) order.push({ kind: 'baseline', rep }, { kind: 'ai', rep });
    ctx.progress.start(order.length);
    for (const { kind, rep } of order) {
      ctx.progress.phase(`ai: ${kind} #${rep}`);
      if (kind === 'ai') {
        await tell({ cmd: 'stream', on: true });
        // let every answer start streaming before measuring
        await sleep(opts.chunkMs * 3 + 500);
      }
      await loopLag(http); // resets the server's event-loop delay histogram
      hist = newHistogram();
      const cpu0 = sumCpu([srv.child.pid!]);
      const t0 = performance.now();
      const before = await tell<{ chunks: number; answers: number }>({ cmd: 'stats' });
      const monoStartUs = monotonicUs();
      const sent = await sendAt(talk, opts.rate, opts.seconds * 1000);
      const monoEndUs = monotonicUs();
      await sleep(500); // the last messages arrive
      const after = await tell<{ chunks: number; answers: number }>({ cmd: 'stats' });
      const serverCores = (sumCpu([srv.child.pid!]) - cpu0) / 1000 / (performance.now() - t0);
      const loop = await loopLag(http);
      phases.push({ kind, rep, latency: summarize(hist), sent, answersDone: after.answers - before.answers, chunksSeen: after.chunks - before.chunks, ...loop, serverCores, monoStartUs, monoEndUs });
      if (kind === 'ai') {
        await tell({ cmd: 'stream', on: false });
        // the answers under way finish before the next baseline
        const deadline = Date.now() + opts.chunks * opts.chunkMs + 10_000;
        let last = -1;
        for (;;) {
          const now = (await tell<{ chunks: number }>({ cmd: 'stats' })).chunks;
          if (now === last || Date.now() > deadline) break;
          last = now;
          await sleep(opts.chunkMs * 4 + 300);
        }
      }
      ctx.progress.log(`ai ${kind} #${rep}: p50 ${fmt(phases.at(-1)!.latency.p50, 2)} ms, p99 ${fmt(phases.at(-1)!.latency.p99, 2)} ms, ${phases.at(-1)!.chunksSeen} chunks`);
      ctx.progress.tick('ai');
    }
  } finally {
    for (const c of clients) c.ws.terminate();
    // a profiled process writes its profile on a clean exit only
    if (profileDir) await stopWithin(srv, 20_000);
    await srv?.kill();
    if (srv) removeDir(srv.dataDir);
    await tell({ cmd: 'close' }).catch(() => load.kill());
    if (profileDir) {
      const summary = summarizeProfiles(profileDir, ROOT);
      if (summary) ctx.profiles.push({ peer: 'chat', label: 'chat-svc embedded', summary });
      rmSync(profileDir, { recursive: true, force: true });
    }
  }

  const p99s = phases.map((p) => ({ kind: p.kind, rep: p.rep, p99: p.latency.p99 }));
  const perRep = new Map(repRatios(p99s).map((r) => [r.rep, r.ratio]));
  const value = headlineRatio(p99s);
  const ratios: Ratio[] = [{
    name: `p99 of ordinary messages with ${opts.answers} AI answers streaming / without (median over reps of each rep's ai p99 / its baseline p99)`,
    value, target: '<= 1.1', met: value === null ? null : value <= 1.1,
  }];
  const md = [
    `\`chat all\` (SQLite, in-process bus), after a warm-up in which every AI room had one answer (not measured), ${opts.rooms} rooms x ${opts.members} members chatting at ${opts.rate} messages/s (JSON clients in the bench process), `
      + `and ${opts.answers} rooms with AI enabled, each keeping one answer streaming (${opts.chunks} chunks, ${opts.chunkMs} ms apart, from an OpenAI-compatible provider faked in a separate process, which also holds the AI rooms' members) `
      + `during the "ai" phases. Latency: send to delivery of an ordinary message, every member. ${opts.seconds} s per phase.`,
    '',
    `The headline is the median over the ${opts.reps} reps of each rep's ratio (its "ai" phase's p99 / the p99 of the baseline phase just before it), `
      + 'so a single phase hit by a stall from outside (the machine is shared) does not decide it; the ratio column has each rep\'s value.',
    '', '![ai]({{SVG}})', '',
    table(['phase', 'rep', 'messages sent', 'deliveries', 'p50 ms', 'p99 ms', 'max ms', 'AI chunks delivered', 'AI answers completed', 'server loop delay p99 ms', 'server loop delay max ms', 'server CPU (cores)', 'ratio p99 ai / baseline'],
      phases.map((p) => [p.kind, p.rep, fmt(p.sent), fmt(p.latency.count), fmt(p.latency.p50, 2), fmt(p.latency.p99, 2), fmt(p.latency.max, 2), fmt(p.chunksSeen), fmt(p.answersDone), fmt(p.loopP99, 1), fmt(p.loopMax, 1), fmt(p.serverCores, 2),
        p.kind === 'ai' ? fmt(perRep.get(p.rep), 2) : ''])),
  ];
  const charts: Chart[] = [{
    kind: 'bars', title: 'ordinary messages: latency without and with AI answers streaming (median of reps)', unit: 'ms', groups: ['p50', 'p99'],
    series: (['baseline', 'ai'] as const).map((k) => ({
      name: k === 'baseline' ? 'without AI' : `${opts.answers} AI answers streaming`,
      values: [median(phases.filter((p) => p.kind === k).map((p) => p.latency.p50)), median(phases.filter((p) => p.kind === k).map((p) => p.latency.p99))],
    })),
  }];
  return { options: { ...opts }, results: { phases }, ratios, markdown: md.join('\n'), charts };
}

/** `onFrame` gets each frame as text: the measuring process decodes nothing it does not need. */
async function connect(base: string, user: string, roomId: string, onFrame: (raw: string) => void): Promise<Client> {
  const ws = new WebSocket(`${base}/chat?token=${encodeURIComponent(await devToken(user))}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  let joinedNow: () => void = () => {};
  const joined = new Promise<void>((resolve) => { joinedNow = resolve; });
  ws.on('message', (data: Buffer) => {
    const raw = data.toString('utf8');
    if (raw.includes('"ref":"join"')) joinedNow();
    onFrame(raw);
  });
  ws.send(JSON.stringify({ type: 'join_room', roomId, ref: 'join' }));
  await joined;
  return { ws };
}

/** Open loop: `rate` messages/s round-robin over the rooms' senders on a 5 ms tick. */
async function sendAt(talk: Array<{ roomId: string; sender: Client }>, rate: number, ms: number): Promise<number> {
  const started = performance.now();
  let sent = 0;
  let i = 0;
  while (performance.now() - started < ms) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    for (; sent < due; sent++) {
      const { roomId, sender } = talk[i++ % talk.length]!;
      sender.ws.send(JSON.stringify({ type: 'send_message', roomId, content: `bench:${performance.timeOrigin + performance.now()}:hello` }));
    }
    await sleep(5);
  }
  return sent;
}

/** The chat process's event-loop delay since the last scrape (p99 and max, ms). */
async function loopLag(http: string): Promise<{ loopP99: number | null; loopMax: number | null }> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const read = (name: string) => {
    const m = new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text);
    return m ? Number(m[1]) * 1000 : null;
  };
  return { loopP99: read('nodejs_eventloop_lag_p99_seconds'), loopMax: read('nodejs_eventloop_lag_max_seconds') };
}

/** One command to the AI load process at a time, answered in order. */
function request(child: ChildProcess) {
  const waiting: Array<(reply: any) => void> = [];
  child.on('message', (reply) => waiting.shift()?.(reply));
  return <T = unknown>(cmd: AiLoadCommand): Promise<T> => new Promise<T>((resolve, reject) => {
    waiting.push((reply: any) => (reply?.error ? reject(new Error(reply.error)) : resolve(reply as T)));
    child.send(cmd);
  });
}

function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

async function stopWithin(srv: ChatProcess | undefined, ms: number): Promise<void> {
  if (!srv) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([srv.stop(), new Promise((r) => { timer = setTimeout(r, ms); })]);
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

