// Cuts a CPU profile of the chat process (bench `ai --profile`, raw .cpuprofile kept) by the
// report's phases and says, per phase kind, where the CPU went and how the busy time came:
//   node bench/results/ai-p99/profile-by-phase.mjs <report.json> <dir with .cpuprofile> [minMs]
// "stretches": runs of consecutive non-idle samples of at least minMs (5); "gap": a sample that
// covers more than 4 ms (the thread was not sampled: descheduled by the OS, or blocked).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [reportFile, dir, minArg = '5'] = process.argv.slice(2);
const minMs = Number(minArg);
const phases = JSON.parse(readFileSync(reportFile, 'utf8')).results.phases;
const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const rules = [
  ['GC', (f) => f[0] === '(garbage collector)@'],
  ['AI answer stored (postAiAnswer)', (f) => f.some((s) => s.startsWith('postAiAnswer@'))],
  ['persister batch (SQLite, FTS)', (f) => f.some((s) => s.startsWith('writeBatch@batch-writer'))],
  ['stream journal group commit', (f) => f.some((s) => s.includes('@group-commit'))],
  ['AI question start (room, limits, context window)', (f) => f.some((s) => /^(roomLines|summaryLines|limited|answerRoom)@/.test(s))],
  ['provider stream (HTTP, SSE, parse)', (f) => f.some((s) => /undici|webstreams|_http_client|_http_agent|_http_incoming|sse-request|openai-provider|eventsource-parser/.test(s))],
  ['gateway fan-out', (f) => f.some((s) => s.includes('@room-fanout'))],
  ['sendMessage', (f) => f.some((s) => s.startsWith('sendMessage@'))],
  ['gateway other', (f) => f.some((s) => /@(connection|websocket|frame-handlers)\.ts/.test(s))],
  ['(program)', (f) => f[0] === '(program)@'],
];
const memo = new Map();
function category(id) {
  if (memo.has(id)) return memo.get(id);
  const frames = [];
  for (let x = id; x !== undefined; x = parent.get(x)) frames.push(`${byId.get(x).callFrame.functionName}@${byId.get(x).callFrame.url.replace(/.*\//, '')}`);
  const c = frames[0] === '(idle)@' ? 'idle' : (rules.find(([, test]) => test(frames))?.[0] ?? 'other');
  memo.set(id, c);
  return c;
}

let t = p.startTime;
const times = p.timeDeltas.map((d) => (t += d));
for (const kind of ['baseline', 'ai']) {
  const cpu = new Map();
  let seconds = 0;
  const stretches = [];
  const gapMs = { in: 0 };
  for (const ph of phases.filter((x) => x.kind === kind)) {
    seconds += (ph.monoEndUs - ph.monoStartUs) / 1e6;
    let run = 0;
    let runGap = 0;
    const close = () => { if (run >= minMs) stretches.push({ ms: run, gap: runGap }); run = 0; runGap = 0; };
    for (let i = 0; i < p.samples.length - 1; i++) {
      if (times[i] < ph.monoStartUs || times[i] > ph.monoEndUs) continue;
      const c = category(p.samples[i]);
      if (c === 'idle') { close(); continue; }
      const dt = p.timeDeltas[i + 1] / 1000;
      run += dt;
      if (dt > 4) { runGap += dt; gapMs.in += dt; }
      else cpu.set(c, (cpu.get(c) ?? 0) + dt);
    }
    close();
  }
  const sampled = [...cpu.values()].reduce((a, b) => a + b, 0);
  stretches.sort((a, b) => b.ms - a.ms);
  const noGap = stretches.filter((s) => s.gap === 0);
  console.log(`== ${kind} phases (${seconds.toFixed(0)} s): sampled CPU ${(sampled / seconds).toFixed(1)} ms/s, gaps ${(gapMs.in / seconds).toFixed(1)} ms/s`);
  for (const [k, v] of [...cpu].sort((a, b) => b[1] - a[1])) console.log(`   ${(v / seconds).toFixed(1).padStart(6)} ms/s  ${k}`);
  console.log(`   busy stretches >= ${minMs} ms: ${(stretches.length / seconds).toFixed(2)}/s (longest ${stretches.slice(0, 5).map((s) => s.ms.toFixed(0)).join(', ')} ms); without gaps: ${(noGap.length / seconds).toFixed(2)}/s (longest ${noGap.slice(0, 5).map((s) => s.ms.toFixed(0)).join(', ')} ms)`);
}
