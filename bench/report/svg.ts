/**
 * Tiny SVG charts drawn from the report's own numbers: grouped bars and lines, stacked into one
 * file. Hand-written rather than a plotting library: the report needs two chart kinds, the output
 * must be a plain file GitHub renders, and nothing native or headless-browser may be required.
 */
export type Chart =
  | { kind: 'bars'; title: string; unit: string; groups: string[]; series: Array<{ name: string; values: Array<number | null> }> }
  /** Each series may have several lines (one per repetition), drawn in the series' colour. */
  | { kind: 'lines'; title: string; xUnit: string; unit: string; logY?: boolean; series: Array<{ name: string; lines: Array<Array<[number, number]>> }> };

const WIDTH = 860;
const HEIGHT = 340;
const MARGIN = { top: 40, right: 190, bottom: 60, left: 80 };
const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** 1, 2, 5 x 10^n steps so that about `count` ticks cover [0, max]. */
function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 0.5; v += step) ticks.push(v);
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) ticks.push(10 ** e);
  return ticks;
}

export function formatNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 100) return String(Math.round(v));
  if (a >= 1) return String(+v.toFixed(2));
  return String(+v.toFixed(3));
}

function legend(names: string[], x: number, y: number): string {
  return names.map((n, i) => `<rect x="${x}" y="${y + i * 18}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`
    + `<text x="${x + 18}" y="${y + i * 18 + 10}" font-size="11">${esc(n)}</text>`).join('');
}

function frame(title: string, body: string, yTicks: Array<[number, string]>, yLabel: string): string {
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const grid = yTicks.map(([y, label]) => `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y}" y2="${y}" stroke="#ddd"/>`
    + `<text x="${MARGIN.left - 6}" y="${y + 4}" font-size="11" text-anchor="end">${esc(label)}</text>`).join('');
  return `<text x="${WIDTH / 2 - MARGIN.right / 2}" y="22" font-size="14" font-weight="bold" text-anchor="middle">${esc(title)}</text>`
    + `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" font-size="11" text-anchor="middle">${esc(yLabel)}</text>`
    + grid + body
    + `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="#333"/>`
    + `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom}" stroke="#333"/>`;
}

function bars(c: Extract<Chart, { kind: 'bars' }>): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const max = Math.max(0, ...c.series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  // headroom for the value printed above the tallest bar
  const ticks = niceTicks(max * 1.1);
  const top = ticks[ticks.length - 1]!;
  const y = (v: number) => MARGIN.top + plotH - (v / top) * plotH;
  const groupW = plotW / Math.max(1, c.groups.length);
  const barW = (groupW * 0.8) / Math.max(1, c.series.length);
  let body = '';
  c.groups.forEach((g, gi) => {
    const gx = MARGIN.left + gi * groupW + groupW * 0.1;
    c.series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === null || v === undefined) return;
      const x = gx + si * barW;
      body += `<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(MARGIN.top + plotH - y(v)).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${s.name} ${g}: ${formatNumber(v)} ${c.unit}`)}</title></rect>`;
      if (barW >= 22) body += `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y(v) - 3).toFixed(1)}" font-size="9" text-anchor="middle">${esc(formatNumber(v))}</text>`;
    });
    body += `<text x="${(gx + groupW * 0.4).toFixed(1)}" y="${HEIGHT - MARGIN.bottom + 16}" font-size="11" text-anchor="middle">${esc(g)}</text>`;
  });
  body += legend(c.series.map((s) => s.name), WIDTH - MARGIN.right + 14, MARGIN.top);
  return frame(c.title, body, ticks.map((t) => [y(t), formatNumber(t)]), c.unit);
}

function lines(c: Extract<Chart, { kind: 'lines' }>): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const pts = c.series.flatMap((s) => s.lines.flat());
  const xTicks = niceTicks(Math.max(0, ...pts.map((p) => p[0])));
  const xTop = xTicks[xTicks.length - 1]!;
  const x = (v: number) => MARGIN.left + (v / xTop) * plotW;
  const ys = pts.map((p) => p[1]).filter((v) => v > 0);
  let y: (v: number) => number;
  let yTicks: number[];
  if (c.logY && ys.length) {
    yTicks = logTicks(Math.min(...ys), Math.max(...ys));
    const lo = Math.log10(yTicks[0]!);
    const hi = Math.log10(yTicks[yTicks.length - 1]!);
    y = (v: number) => MARGIN.top + plotH - ((Math.log10(Math.max(v, yTicks[0]!)) - lo) / Math.max(hi - lo, 1e-9)) * plotH;
  } else {
    yTicks = niceTicks(Math.max(0, ...pts.map((p) => p[1])));
    const top = yTicks[yTicks.length - 1]!;
    y = (v: number) => MARGIN.top + plotH - (v / top) * plotH;
  }
  let body = xTicks.map((t) => `<text x="${x(t).toFixed(1)}" y="${HEIGHT - MARGIN.bottom + 16}" font-size="11" text-anchor="middle">${esc(formatNumber(t))}</text>`).join('');
  body += `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 18}" font-size="11" text-anchor="middle">${esc(c.xUnit)}</text>`;
  c.series.forEach((s, si) => {
    const color = COLORS[si % COLORS.length];
    for (const line of s.lines) {
      const sorted = [...line].sort((a, b) => a[0] - b[0]);
      if (sorted.length > 1) body += `<polyline fill="none" stroke="${color}" stroke-width="2" points="${sorted.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')}"/>`;
    }
    for (const p of s.lines.flat()) body += `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${s.name}: ${formatNumber(p[0])} -> ${formatNumber(p[1])} ${c.unit}`)}</title></circle>`;
  });
  body += legend(c.series.map((s) => s.name), WIDTH - MARGIN.right + 14, MARGIN.top);
  return frame(c.title, body, yTicks.map((t) => [y(t), formatNumber(t)]), c.unit);
}

/** All charts, one under the other, in one standalone SVG document. */
export function renderSvg(charts: Chart[]): string {
  const parts = charts.map((c, i) => `<g transform="translate(0 ${i * HEIGHT})">${c.kind === 'bars' ? bars(c) : lines(c)}</g>`);
  const h = Math.max(1, charts.length) * HEIGHT;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${h}" viewBox="0 0 ${WIDTH} ${h}" font-family="sans-serif">`
    + `<rect width="100%" height="100%" fill="#fff"/>${parts.join('')}</svg>\n`;
}
