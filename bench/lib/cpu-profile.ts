import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The part of a V8 .cpuprofile (node --cpu-prof) this summary reads. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
  startTime: number;
  endTime: number;
}

export interface ProfileEntry {
  /** function (file:line), or a group name. */
  name: string;
  /** Share of the busy samples (all but idle), percent. */
  selfPercent: number;
}

export interface ProfileSummary {
  files: number;
  seconds: number;
  /** Share of samples that were not idle, percent. */
  busyPercent: number;
  topFunctions: ProfileEntry[];
  /** Self time grouped by where the code lives (chat-svc folder, package, native, GC, idle). */
  byArea: ProfileEntry[];
}

function area(url: string, functionName: string, root: string): string {
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(garbage collector)') return '(garbage collector)';
  if (functionName === '(program)') return '(program: native, uWS C++)';
  if (!url) return '(native / builtins)';
  if (url.startsWith('node:')) return 'node: core';
  const path = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return `npm: ${pkg[1]}`;
  const rel = relative(root, path);
  if (!rel.startsWith('..')) return rel.split('/').slice(0, rel.startsWith('shared/') ? 2 : 1).join('/') + '/';
  return 'other';
}

/** Sums self samples of every .cpuprofile in `dir` (one per process) into the top functions and areas. */
export function summarizeProfiles(dir: string, root: string, top = 15): ProfileSummary | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (!files.length) return undefined;
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  let all = 0;
  let micros = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    micros += p.endTime - p.startTime;
    for (const n of p.nodes) {
      const hits = n.hitCount ?? 0;
      if (!hits) continue;
      all += hits;
      if (n.callFrame.functionName === '(idle)') continue;
      total += hits;
      const { functionName, url, lineNumber } = n.callFrame;
      const file = url ? relative(root, url.replace(/^file:\/\//, '')) : '';
      const key = `${functionName || '(anonymous)'}${file ? ` (${file}:${lineNumber + 1})` : ''}`;
      byFn.set(key, (byFn.get(key) ?? 0) + hits);
      const a = area(url, functionName, root);
      byArea.set(a, (byArea.get(a) ?? 0) + hits);
    }
  }
  const pct = (m: Map<string, number>, n: number) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, hits]) => ({ name, selfPercent: Math.round((hits / total) * 1000) / 10 }));
  return { files: files.length, seconds: micros / 1e6, busyPercent: all ? Math.round((total / all) * 1000) / 10 : 0, topFunctions: pct(byFn, top), byArea: pct(byArea, 12) };
}
