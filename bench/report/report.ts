import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Machine } from '../lib/machine.ts';
import { renderSvg, type Chart } from './svg.ts';

export const RESULTS_DIR = resolve(import.meta.dirname, '../results');

export interface Report {
  scenario: string;
  quick: boolean;
  machine: Machine;
  startedAt: string;
  finishedAt: string;
  options: Record<string, unknown>;
  /** Scenario-specific numbers (what the Markdown tables show). */
  results: unknown;
  /** Headline ratios against the targets of the issue. */
  ratios: Ratio[];
  notes: string[];
}

export interface Ratio {
  name: string;
  value: number | null;
  target: string;
  met: boolean | null;
}

export interface WrittenReport {
  json: string;
  md: string;
  svg: string;
}

/**
 * Writes `<scenario>-<timestamp>.{json,md,svg}` and copies them to `<scenario>-latest.*`. Quick
 * runs go to `results/tmp/` (ignored by git) unless a directory is given.
 */
export function writeReport(report: Report, markdown: string, charts: Chart[], dir?: string): WrittenReport {
  const outDir = dir ?? (report.quick ? join(RESULTS_DIR, 'tmp') : RESULTS_DIR);
  mkdirSync(outDir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
  const base = join(outDir, `${report.scenario}-${stamp}`);
  const latest = join(outDir, `${report.scenario}-latest`);
  const files = { json: `${base}.json`, md: `${base}.md`, svg: `${base}.svg` };
  writeFileSync(files.json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(files.svg, renderSvg(charts));
  const svgName = `${report.scenario}-${stamp}.svg`;
  writeFileSync(files.md, markdown.replace('{{SVG}}', svgName));
  copyFileSync(files.json, `${latest}.json`);
  copyFileSync(files.svg, `${latest}.svg`);
  writeFileSync(`${latest}.md`, markdown.replace('{{SVG}}', `${report.scenario}-latest.svg`));
  return files;
}

export function machineMarkdown(report: Report): string {
  const m = report.machine;
  return [
    `Machine: ${m.nproc} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, Linux ${m.kernel}, open files ${m.openFilesLimit}; `
      + `load ${m.loadAverage1m} at start; ${m.date}${m.commit ? `, commit ${m.commit}` : ''}${report.quick ? ' — **quick run (tiny sizes: smoke test, not a measurement)**' : ''}.`,
  ].join('\n');
}

export function ratiosMarkdown(ratios: Ratio[]): string {
  if (!ratios.length) return '';
  const rows = ratios.map((r) => `| ${r.name} | ${r.value === null ? 'n/a' : r.value.toFixed(2)} | ${r.target} | ${r.met === null ? '—' : r.met ? 'yes' : '**no**'} |`);
  return ['| ratio | value | target | met |', '|---|---:|---|---|', ...rows].join('\n');
}

/** A Markdown table from rows of cells. */
export function table(head: string[], rows: Array<Array<string | number>>): string {
  const align = head.map((_, i) => (i === 0 ? '---' : '---:'));
  return [`| ${head.join(' | ')} |`, `|${align.join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}
