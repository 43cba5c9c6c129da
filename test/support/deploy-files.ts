import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Reading deploy/: the dashboard's queries, the alert rules, and which tools this machine has. */
export const ROOT = resolve(import.meta.dirname, '../..');
export const DEPLOY = join(ROOT, 'deploy');

/** Whether `cmd` runs here (`cmd --version`, or the given arguments, exit 0). */
export function hasTool(cmd: string, args = ['--version']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

export interface DashboardQuery { panel: string; expr: string }

/** Every query of every panel of the Grafana dashboard. */
export function dashboardQueries(): DashboardQuery[] {
  const dash = JSON.parse(readFileSync(join(DEPLOY, 'grafana/chat-svc.json'), 'utf8')) as {
    panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }>;
  };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
}

/** The `expr` of every alert rule, by alert name. */
export function alertExprs(): Map<string, string> {
  const text = readFileSync(join(DEPLOY, 'prometheus/alerts.yml'), 'utf8');
  const out = new Map<string, string>();
  // rules are `- alert: Name` followed by `expr: |` and an indented block
  for (const m of text.matchAll(/- alert: (\w+)\n\s+expr: \|\n((?:\s{10,}.*\n)+)/g)) out.set(m[1]!, m[2]!.replace(/\s+/g, ' ').trim());
  return out;
}

/**
 * The metric names a PromQL expression reads: ours (chat_*), Node's and the process's from
 * prom-client's defaults, and Prometheus's `up`; histogram series suffixes are cut to the metric.
 */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/\b((?:chat|process|nodejs)_[a-z0-9_]+|up)\b(?=\s*[{[)])/g)) {
    names.add(m[1]!.replace(/_(bucket|sum|count)$/, ''));
  }
  return [...names];
}

/** PromQL as Grafana sends it, with its interval variables set. */
export function grafanaToPromql(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s');
}
