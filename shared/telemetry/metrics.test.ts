import t from 'tap';
import { Gauge } from 'prom-client';
import { metricsText, registry } from './metrics.ts';

t.test('metrics - a NaN sample is written as OpenMetrics spells it (prom-client writes Nan)', async (t) => {
  const g = new Gauge({ name: 'test_not_measured_yet', help: 'a gauge without a value yet', registers: [registry] });
  t.teardown(() => registry.removeSingleMetric('test_not_measured_yet'));
  g.set(NaN);
  t.match(await registry.metrics(), /^test_not_measured_yet Nan$/m, 'what prom-client writes');
  const text = await metricsText();
  t.match(text, /^test_not_measured_yet NaN$/m);
  t.notMatch(text, / Nan$/m);
});
