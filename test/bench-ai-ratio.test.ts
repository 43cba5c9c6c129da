import t from 'tap';
import { headlineRatio, median, repRatios } from '../bench/scenarios/ai-ratio.ts';

t.test('each rep is compared with its own baseline, and the median of those is the headline', async (t) => {
  const phases = [
    { kind: 'baseline' as const, rep: 1, p99: 4 }, { kind: 'ai' as const, rep: 1, p99: 4.2 },
    { kind: 'baseline' as const, rep: 2, p99: 5 }, { kind: 'ai' as const, rep: 2, p99: 100 },
    { kind: 'baseline' as const, rep: 3, p99: 80 }, { kind: 'ai' as const, rep: 3, p99: 4 },
  ];
  t.same(repRatios(phases).map((r) => r.rep), [1, 2, 3]);
  t.equal(repRatios(phases)[1]!.ratio, 20);
  // one outlier phase on each side: a mean of p99s would read (108.2/3)/(89/3) = 1.22
  t.equal(headlineRatio(phases), 1.05);
});

t.test('reps with a missing or zero p99 are left out; none left is no ratio', async (t) => {
  t.same(repRatios([{ kind: 'baseline', rep: 1, p99: 0 }, { kind: 'ai', rep: 1, p99: 3 }, { kind: 'ai', rep: 2, p99: 3 }]), []);
  t.equal(headlineRatio([{ kind: 'baseline', rep: 1, p99: null }, { kind: 'ai', rep: 1, p99: 3 }]), null);
});

t.test('median of an even count is the mean of the middle two', async (t) => {
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([7]), 7);
  t.equal(median([]), null);
});
