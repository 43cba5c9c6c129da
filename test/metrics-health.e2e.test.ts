import t from 'tap';
import { Counter, Gauge, Registry, type OpenMetricsContentType } from 'prom-client';
import { startChatProcess } from './support/chat-process.ts';
import { startChatCluster } from './support/chat-cluster.ts';
import { startNatsServer } from './support/nats-server.ts';
import { startRedisServer } from './support/redis-server.ts';
import { parseOpenMetrics, type Exposition } from './support/openmetrics.ts';
import { eventually, restClient } from './support/rest.ts';
import { devToken } from './support/tokens.ts';
import { TestClient } from './support/ws-client.ts';

/** Every name of the agreed list (issue 14), which the dashboard and the alert rules query. */
const AGREED = [
  'chat_ws_open_connections', 'chat_ws_connections', 'chat_fallback_connections', 'chat_frames_in', 'chat_errors',
  'chat_send_ack_seconds', 'chat_slow_consumers', 'chat_persist_batch_size', 'chat_persist_batch_seconds',
  'chat_persist_lag_seconds', 'chat_stream_to_store_seconds', 'chat_persist_consumer_pending', 'chat_dead_letters',
  'chat_ready', 'chat_node_id_lease_lost', 'chat_dependency_up', 'chat_dependency_latency_seconds',
  'chat_http_requests', 'chat_http_request_seconds', 'process_cpu_seconds',
];

async function scrape(base: string): Promise<Exposition> {
  const res = await fetch(`${base}/metrics`, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  if (!res.headers.get('content-type')?.startsWith('application/openmetrics-text')) throw new Error(`content type ${res.headers.get('content-type')}`);
  return parseOpenMetrics(await res.text());
}

t.test('openmetrics - the reader refuses a gauge named like a counter without _total (the old chat_ws_connections clash)', async (t) => {
  const exposition = async (gauge: string) => {
    const r = new Registry();
    (r as unknown as Registry<OpenMetricsContentType>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    new Gauge({ name: gauge, help: 'open', registers: [r] });
    new Counter({ name: 'x_connections_total', help: 'accepted', registers: [r] });
    return r.metrics();
  };
  const text1 = await exposition('x_connections');
  const text2 = await exposition('x_open_connections');
  t.throws(() => parseOpenMetrics(text1), /name clash/);
  t.doesNotThrow(() => parseOpenMetrics(text2), 'with the gauge renamed, it reads');
});

t.test('metrics - a running process exposes every agreed series as OpenMetrics, and they move', async (t) => {
  const proc = await startChatProcess();
  t.teardown(async () => { await proc.stop(); });
  const before = await scrape(proc.http);
  for (const name of AGREED) t.ok(before.families.has(name), `family ${name}`);
  t.equal(before.value('chat_ready', { tier: 'all' }), 1, 'the process reports itself ready');
  t.equal(before.value('chat_dependency_up', { dependency: 'sqlite' }), 1, 'its store answers');
  t.ok((before.value('chat_dependency_latency_seconds', { dependency: 'sqlite' }) ?? -1) >= 0, 'with the check\'s latency');
  t.equal(before.value('chat_slow_consumers_total', { transport: 'ws' }), 0);
  t.equal(before.value('chat_slow_consumers_total', { transport: 'sse' }), 0);
  t.equal(before.value('chat_send_ack_seconds_count'), 0, 'no send acked yet');

  const token = await devToken('metered');
  const rest = restClient(proc.http, token);
  const roomId = (await rest('POST', '/v1/chat/rooms', { name: 'metered', type: 'public' })).body.data.roomId as string;
  const client = await TestClient.connect(`${proc.ws}/chat`, { token });
  t.teardown(() => client.close());
  await client.next((f) => f.type === 'welcome');
  t.equal((await client.request({ type: 'send_message', roomId, content: 'one' })).type, 'ack');
  t.equal((await rest('POST', `/v1/chat/rooms/${roomId}/messages`, { content: 'two' })).status, 201);

  const after = await eventually(async () => {
    const m = await scrape(proc.http);
    return (m.value('chat_persist_lag_seconds_count') ?? 0) >= 2 ? m : undefined;
  }, 10_000);
  t.equal(after.value('chat_send_ack_seconds_count'), 2, 'one observation per acked send, WebSocket and REST');
  t.ok((after.value('chat_send_ack_seconds_sum') ?? 0) > 0);
  t.equal(after.value('chat_ws_open_connections'), 1, 'the open socket');
  t.ok((after.value('chat_ws_connections_total') ?? 0) >= 1, 'and the accepted one');
  t.equal(after.value('chat_frames_in_total', { type: 'send_message' }), 1);
  t.ok((after.value('chat_stream_to_store_seconds_count') ?? 0) >= 1, 'batches timed from their oldest event');
  t.equal(after.value('chat_persist_consumer_pending'), 0, 'nothing left to persist');
  t.equal(after.value('chat_node_id_lease_lost_total'), 0);
  await client.close();
  await eventually(async () => (await scrape(proc.http)).value('chat_ws_open_connections') === 0, 5000);
});

t.test('health - /health/detailed and /info say what runs and how each dependency answers', async (t) => {
  const proc = await startChatProcess();
  t.teardown(async () => { await proc.stop(); });
  const detailed = await fetch(`${proc.http}/health/detailed`);
  t.equal(detailed.status, 200);
  const d = await detailed.json() as Record<string, any>;
  t.equal(d['status'], 'ready');
  t.equal(d['service'], 'chat-svc');
  t.equal(d['tier'], 'all');
  t.match(d['version'], /^\d+\.\d+\.\d+/);
  t.match(d['build'], /^([0-9a-f]{7,64}|\d+\.\d+\.\d+.*)$/, 'the git commit, or the version');
  t.equal(d['nodeId'], 0, 'the in-process bus uses node id 0');
  t.ok(d['uptimeSeconds'] > 0);
  t.same(Object.keys(d['checks']).sort(), ['bus', 'store']);
  t.equal(d['checks'].store.status, 'ok');
  t.equal(d['checks'].store.dependency, 'sqlite');
  t.type(d['checks'].store.latencyMs, 'number');
  t.notOk(d['checks'].bus.dependency, 'the in-process bus is no server to depend on');

  const info = await (await fetch(`${proc.http}/info`)).json() as Record<string, any>;
  t.equal(info['service'], 'chat-svc');
  t.equal(info['version'], d['version']);
  t.equal(info['build'], info['commit'] ?? info['version'], 'build is the commit when known, else the version');
  t.equal(info['node'], process.version.replace(/^v/, 'v'));
  t.ok(Date.parse(info['startedAt']) <= Date.now());

  const doc = await (await fetch(`${proc.http}/v1/openapi.json`)).json() as { paths: Record<string, unknown> };
  t.ok(doc.paths['/health/detailed'] && doc.paths['/info'], 'both are in the OpenAPI document');
});

t.test('health - distributed: Redis is a readiness check of the gateway and api, not of the persister; an outage shows in readiness and metrics', async (t) => {
  const nats = await startNatsServer();
  t.teardown(() => nats.destroy());
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const cluster = await startChatCluster({ natsUrl: nats.url, gateways: 1, persisters: 1, env: { REDIS_URL: redis.url } });
  t.teardown(() => cluster.stop());
  const gateway = cluster.gateways[0]!;
  const persister = cluster.persisters[0]!;

  const ready = await (await fetch(`${gateway.http}/health/ready`)).json() as { status: string; checks: Record<string, string> };
  t.same(ready, { status: 'ready', checks: { bus: 'ok', store: 'ok', redis: 'ok' } });
  const d = await (await fetch(`${gateway.http}/health/detailed`)).json() as Record<string, any>;
  t.equal(d['tier'], 'gateway');
  t.type(d['nodeId'], 'number', 'the node id the gateway leased');
  t.same({ bus: d['checks'].bus.dependency, store: d['checks'].store.dependency, redis: d['checks'].redis.dependency }, { bus: 'nats', store: 'sqlite', redis: 'redis' });
  const p = await (await fetch(`${persister.http}/health/ready`)).json() as { checks: Record<string, string> };
  t.same(Object.keys(p.checks).sort(), ['bus', 'store'], 'the persister does not read presence');
  const api = await (await fetch(`${cluster.api.http}/health/ready`)).json() as { checks: Record<string, string> };
  t.equal(api.checks['redis'], 'ok');

  const up = await scrape(gateway.http);
  t.equal(up.value('chat_ready', { tier: 'gateway' }), 1);
  t.equal(up.value('chat_dependency_up', { dependency: 'nats' }), 1);
  t.equal(up.value('chat_dependency_up', { dependency: 'redis' }), 1);
  t.equal((await scrape(persister.http)).value('chat_ready', { tier: 'persister' }), 1);

  await redis.stop();
  const down = await fetch(`${gateway.http}/health/ready`);
  t.equal(down.status, 503, 'without Redis the gateway is not ready');
  t.not(((await down.json()) as { checks: Record<string, string> }).checks['redis'], 'ok');
  const m = await scrape(gateway.http);
  t.equal(m.value('chat_ready', { tier: 'gateway' }), 0, 'chat_ready says so at the next scrape');
  t.equal(m.value('chat_dependency_up', { dependency: 'redis' }), 0);
  t.equal(m.value('chat_dependency_up', { dependency: 'nats' }), 1);
  t.equal((await fetch(`${persister.http}/health/ready`)).status, 200, 'the persister stays ready');
});
