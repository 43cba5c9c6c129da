/**
 * The `ai` scenario's headline: for each repetition, the p99 of its "ai" phase over the p99 of the
 * baseline phase just before it (the same minute of a shared machine), then the median of those
 * per-rep ratios. A mean of p99s let one phase hit by an outside stall (another job's burst, a
 * disk flush) carry the whole result either way; the median needs more than half the reps to agree.
 * What is measured is unchanged: the p99 of ordinary messages with the answers streaming and without.
 */
export interface PhaseP99 {
  kind: 'baseline' | 'ai';
  rep: number;
  p99: number | null;
}

/** Each rep's ai p99 / its baseline p99; reps lacking either (or with a zero baseline) are left out. */
export function repRatios(phases: readonly PhaseP99[]): Array<{ rep: number; ratio: number }> {
  const out: Array<{ rep: number; ratio: number }> = [];
  for (const ai of phases) {
    if (ai.kind !== 'ai' || ai.p99 === null) continue;
    const base = phases.find((p) => p.kind === 'baseline' && p.rep === ai.rep);
    if (!base || base.p99 === null || !(base.p99 > 0)) continue;
    out.push({ rep: ai.rep, ratio: ai.p99 / base.p99 });
  }
  return out;
}

export function median(values: readonly number[]): number | null {
  if (!values.length) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** The headline: the median of the per-rep ratios, or null with no complete rep. */
export function headlineRatio(phases: readonly PhaseP99[]): number | null {
  return median(repRatios(phases).map((r) => r.ratio));
}
