import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { ENV_SCHEMA, DEFAULTS } from '../shared/config/index.ts';
import { DEPLOY, ROOT, hasTool } from './support/deploy-files.ts';

/**
 * deploy/compose: the stack the issue asks for is all there, and its parts agree: the chat
 * services run chat subcommands with config variables the schema knows, Prometheus scrapes every
 * chat service on its port, nginx's upstreams are those services, the NATS servers route to each
 * other, the traces go to the collector and on to Jaeger, and every mounted file exists. When
 * docker-compose is installed it validates the file against the Compose schema (`config -q`);
 * when nginx is, `nginx -t` checks nginx.conf. Nothing is pulled or started here
 * (test/deploy-proxy.e2e.test.ts runs nginx.conf in front of real tiers).
 */
const COMPOSE = join(DEPLOY, 'compose');
type Service = { image?: string; command?: string[]; environment?: Record<string, string>; volumes?: string[]; depends_on?: Record<string, unknown>; ports?: string[] };
const file = parse(readFileSync(join(COMPOSE, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = file.services;
const COMMANDS = [...readFileSync(join(ROOT, 'bin/chat.ts'), 'utf8').matchAll(/program\.command\('([a-z]+)'\)/g)].map((m) => m[1]!);
const chatServices = Object.entries(services).filter(([, s]) => s.command && COMMANDS.includes(s.command[0]!));
const tierServices = (tier: string) => chatServices.filter(([, s]) => s.command![0] === tier).map(([name]) => name);

t.test('compose - the stack has every part the issue names', async (t) => {
  for (const name of ['nats-1', 'nats-2', 'nats-3', 'redis', 'cassandra', 'proxy', 'prometheus', 'grafana', 'otel-collector', 'jaeger']) {
    t.ok(services[name], `${name} is a service`);
  }
  t.equal(tierServices('gateway').length, 2, '2 gateways');
  t.equal(tierServices('persister').length, 2, '2 persisters');
  t.equal(tierServices('api').length, 1, 'an api');
  t.equal(tierServices('migrate').length, 1, 'a migrate run before them');
  t.match(services['cassandra']!.image, /^cassandra:5\./, 'Cassandra 5');
});

t.test('compose - the chat services use config variables the schema knows and the cluster they are given', async (t) => {
  for (const [name, s] of chatServices) {
    for (const key of Object.keys(s.environment ?? {})) {
      t.ok(key in ENV_SCHEMA || /^OTEL_[A-Z_]+$/.test(key), `${name}: ${key} is a config variable`);
    }
    const env = s.environment!;
    const nats = env['NATS_URL']!.split(',').map((u) => new URL(u).hostname);
    t.same(nats.sort(), ['nats-1', 'nats-2', 'nats-3'], `${name}: NATS_URL lists the 3 NATS servers`);
    t.equal(env['NATS_STREAM_REPLICAS'], '3', `${name}: the stream has a replica on each`);
    t.ok(services[new URL(env['REDIS_URL']!).hostname], `${name}: REDIS_URL is a service`);
    t.ok(services[env['CASSANDRA_CONTACT_POINTS']!], `${name}: CASSANDRA_CONTACT_POINTS is a service`);
    t.equal(new URL(env['OTEL_EXPORTER_OTLP_ENDPOINT']!).hostname, 'otel-collector', `${name}: traces go to the collector`);
    t.ok(env['NODE_ENV'] === 'production' && /JWT_SECRET/.test(env['JWT_SECRET']!), `${name}: production, with JWT_SECRET required from .env`);
    if (s.command![0] !== 'migrate') t.ok(s.depends_on?.['migrate'], `${name}: starts after migrate`);
  }
});

t.test('compose - Prometheus scrapes every chat service on its port, with the tier as job, and loads the alerts', async (t) => {
  const prom = parse(readFileSync(join(COMPOSE, 'prometheus.yml'), 'utf8')) as {
    rule_files: string[]; scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
  };
  const port = DEFAULTS.port;
  for (const tier of ['gateway', 'persister', 'api']) {
    const job = prom.scrape_configs.find((j) => j.job_name === tier);
    t.same(job?.static_configs.flatMap((c) => c.targets).sort(), tierServices(tier).map((n) => `${n}:${port}`).sort(), `job ${tier} scrapes every ${tier}`);
  }
  const mounts = services['prometheus']!.volumes!.map((v) => v.split(':'));
  for (const rules of prom.rule_files) {
    const mount = mounts.find(([, inside]) => inside === rules);
    t.ok(mount && existsSync(resolve(COMPOSE, mount[0]!)), `rule file ${rules} is mounted from the repository`);
  }
});

t.test('compose - nginx sends the page and REST to the api, WebSockets, SSE and long-polls to the gateways', async (t) => {
  const conf = readFileSync(join(COMPOSE, 'nginx.conf'), 'utf8');
  const upstream = (name: string) => [...(conf.match(new RegExp(`upstream ${name} \\{([^}]*)\\}`))?.[1] ?? '').matchAll(/server (\S+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`);
  const gateways = tierServices('gateway').map((n) => `${n}:${DEFAULTS.port}`).sort();
  t.same(upstream('gateways').sort(), gateways, 'the gateways upstream is every gateway');
  t.same(upstream('gateway_polls').sort(), gateways, 'the long-poll upstream too');
  t.same(upstream('api'), [`api:${DEFAULTS.port}`], 'the api upstream');
  t.match(conf, /location ~ \^\/\(chat\|ws\)\$ \{[^}]*proxy_pass http:\/\/gateways;[^}]*proxy_set_header Upgrade \$http_upgrade;[^}]*proxy_set_header Connection \$connection_upgrade;/, 'WebSocket upgrades on /chat and /ws');
  t.match(conf, /location = \/v1\/chat\/stream \{[^}]*proxy_pass http:\/\/gateways;[^}]*proxy_buffering off;/, 'SSE unbuffered');
  t.match(conf, /location = \/v1\/chat\/poll \{[^}]*proxy_pass http:\/\/gateway_polls;/, 'long-polls by session');
  t.match(conf, /location \/ \{[^}]*proxy_pass http:\/\/api;/, 'the rest to the api');
});

t.test('compose - nginx -t accepts nginx.conf', { skip: !hasTool('nginx', ['-v']) && 'nginx not found (apt-get install nginx-light)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'chat-nginx-t-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // the service names only resolve inside the compose network
  const conf = readFileSync(join(COMPOSE, 'nginx.conf'), 'utf8').replace(/server [a-z0-9-]+:(\d+)/g, 'server 127.0.0.1:$1').replaceAll('/tmp/', `${dir}/`);
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const r = spawnSync('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
});

t.test('compose - the NATS servers form one JetStream cluster', async (t) => {
  const conf = readFileSync(join(COMPOSE, 'nats.conf'), 'utf8');
  t.match(conf, /jetstream \{/, 'JetStream on');
  const routes = [...conf.matchAll(/nats:\/\/([a-z0-9-]+):6222/g)].map((m) => m[1]).sort();
  t.same(routes, ['nats-1', 'nats-2', 'nats-3'], 'routes to all three');
  for (const n of ['nats-1', 'nats-2', 'nats-3']) t.equal(services[n]!.environment?.['NATS_SERVER_NAME'], n, `${n} has its own server name`);
});

t.test('compose - traces: the collector receives OTLP over HTTP and exports to Jaeger', async (t) => {
  const otel = parse(readFileSync(join(COMPOSE, 'otel-collector.yaml'), 'utf8'));
  t.equal(otel.receivers.otlp.protocols.http.endpoint, '0.0.0.0:4318', 'OTLP/HTTP on 4318, where the tiers send');
  const pipeline = otel.service.pipelines.traces;
  for (const r of pipeline.receivers) t.ok(otel.receivers[r], `receiver ${r} is defined`);
  for (const p of pipeline.processors) t.ok(otel.processors[p], `processor ${p} is defined`);
  for (const e of pipeline.exporters) {
    t.ok(otel.exporters[e], `exporter ${e} is defined`);
    t.ok(services[otel.exporters[e].endpoint.split(':')[0]], `exporter ${e} sends to a service`);
  }
});

t.test('compose - every file the services mount is in the repository, and Grafana provisions the dashboard', async (t) => {
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const [source] = v.split(':');
      if (!source!.startsWith('.')) continue; // a named volume
      t.ok(existsSync(resolve(COMPOSE, source!)), `${name}: ${source} exists`);
    }
  }
  const provider = parse(readFileSync(join(COMPOSE, 'grafana/dashboards/chat-svc.yaml'), 'utf8'));
  const dashboardMount = services['grafana']!.volumes!.find((v) => v.includes('chat-svc.json'))!.split(':');
  t.ok(dashboardMount[1]!.startsWith(provider.providers[0].options.path), 'the dashboard is mounted where the provider reads');
  const datasources = parse(readFileSync(join(COMPOSE, 'grafana/datasources/prometheus.yaml'), 'utf8'));
  t.ok(datasources.datasources.some((d: { type: string; url: string }) => d.type === 'prometheus' && d.url.includes('prometheus:9090')), 'Prometheus is a datasource');
});

t.test('compose - docker-compose config validates compose.yaml', { skip: !hasTool('docker-compose') && 'docker-compose not found (apt-get install docker-compose)' }, async (t) => {
  const r = spawnSync('docker-compose', ['-f', join(COMPOSE, 'compose.yaml'), 'config', '-q'], {
    encoding: 'utf8', env: { ...process.env, JWT_SECRET: 'x'.repeat(40) },
  });
  t.equal(r.status, 0, r.stderr);
  const missing = spawnSync('docker-compose', ['-f', join(COMPOSE, 'compose.yaml'), 'config', '-q'], {
    encoding: 'utf8', env: { ...process.env, JWT_SECRET: '' }, cwd: tmpdir(),
  });
  t.not(missing.status, 0, 'without JWT_SECRET it refuses to start');
  t.match(missing.stderr, /JWT_SECRET/, 'naming the variable');
});
