import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DEPLOY, alertExprs, hasTool } from './support/deploy-files.ts';

/**
 * The alert rules (deploy/prometheus/alerts.yml) load in Prometheus and fire as their unit tests
 * (alerts.test.yml) say: each alert on a failing series, and not on a healthy one. Needs promtool
 * (Debian's `prometheus` package); without it the test says so and skips.
 */
const PROMTOOL = process.env['PROMTOOL'] ?? 'promtool';
const available = hasTool(PROMTOOL);

t.test('alerts - every alert the issue asks for has a rule', async (t) => {
  const alerts = alertExprs();
  for (const name of ['ChatPersisterLag', 'ChatSendAckSlow', 'ChatErrorRateHigh', 'ChatConsumerPendingGrowing', 'ChatNoReadyGateway', 'ChatNodeIdLeaseLost']) {
    t.ok(alerts.has(name), `${name} is defined`);
  }
});

t.test('alerts - promtool check rules accepts alerts.yml', { skip: !available && `${PROMTOOL} not found (apt-get install prometheus)` }, async (t) => {
  const r = spawnSync(PROMTOOL, ['check', 'rules', join(DEPLOY, 'prometheus/alerts.yml')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stdout + r.stderr);
  t.match(r.stdout, new RegExp(`SUCCESS: ${alertExprs().size} rules found`), 'every rule is read');
});

t.test('alerts - promtool test rules: each alert fires on its failing series and not on a healthy one', { skip: !available && `${PROMTOOL} not found (apt-get install prometheus)` }, async (t) => {
  const r = spawnSync(PROMTOOL, ['test', 'rules', 'alerts.test.yml'], { cwd: join(DEPLOY, 'prometheus'), encoding: 'utf8' });
  t.equal(r.status, 0, r.stdout + r.stderr);
  t.match(r.stdout, /SUCCESS/);
});
