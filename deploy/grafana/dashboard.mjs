// Writes chat-svc.json, the Grafana dashboard (node deploy/grafana/dashboard.mjs). The JSON is
// what Grafana provisions and what the tests read; this script is its source, so panels stay
// uniform (one datasource variable, one grid) and a change is one line here.
import { writeFileSync } from 'node:fs';

const DS = { type: 'prometheus', uid: '${datasource}' };
const W = 24;
let y = 0;
let id = 0;
const panels = [];

function row(title) {
  panels.push({ type: 'row', title, id: ++id, collapsed: false, gridPos: { h: 1, w: W, x: 0, y }, panels: [] });
  y += 1;
}

/** A line of panels of equal width; each is [title, unit, targets, description, type?]. */
function line(...specs) {
  const w = W / specs.length;
  specs.forEach(([title, unit, targets, description, type = 'timeseries'], i) => {
    panels.push({
      type, title, description, id: ++id, datasource: DS,
      gridPos: { h: 8, w, x: i * w, y },
      fieldConfig: { defaults: { unit, ...(type === 'stat' ? { thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] } } : {}) }, overrides: [] },
      options: type === 'stat'
        ? { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'none', textMode: 'value_and_name' }
        : { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
      targets: targets.map(([expr, legendFormat], j) => ({ refId: String.fromCharCode(65 + j), datasource: DS, expr, legendFormat })),
    });
  });
  y += 8;
}

const q = (p, metric, by = '') => `histogram_quantile(${p}, sum by (le${by ? `, ${by}` : ''}) (rate(${metric}_bucket[$__rate_interval])))`;

row('Traffic');
line(
  ['Open connections', 'short', [
    ['sum by (job) (chat_ws_open_connections)', 'WebSocket {{job}}'],
    ['sum by (transport) (chat_fallback_connections)', '{{transport}}'],
  ], 'WebSocket connections per tier, and SSE / long-poll sessions'],
  ['Sends / s', 'reqps', [
    ['sum(rate(chat_frames_in_total{type="send_message"}[$__rate_interval]))', 'WebSocket sends'],
    ['sum by (type) (rate(chat_frames_in_total{type!="send_message"}[$__rate_interval]))', '{{type}}'],
  ], 'Client frames received: send_message, and every other type'],
  ['Send -> ack', 's', [
    [q(0.99, 'chat_send_ack_seconds'), 'p99'],
    [q(0.5, 'chat_send_ack_seconds'), 'p50'],
  ], 'From a send frame (or REST send) received to its ack written: JetStream stored it'],
);
line(
  ['Errors by code', 'reqps', [
    ['sum by (code) (rate(chat_errors_total[$__rate_interval]))', '{{code}}'],
  ], 'Errors returned to clients (frames and REST), by stable code'],
  ['REST requests', 'reqps', [
    ['sum by (status) (rate(chat_http_requests_total[$__rate_interval]))', '{{status}}'],
    [q(0.99, 'chat_http_request_seconds'), 'p99 (s)'],
  ], 'Requests by status, and their p99 duration'],
  ['Slow consumers cut', 'short', [
    ['sum by (transport) (increase(chat_slow_consumers_total[$__rate_interval]))', '{{transport}}'],
  ], 'Connections closed because they read too slowly'],
);

row('Persistence');
line(
  ['Persist lag', 's', [
    [q(0.99, 'chat_persist_lag_seconds'), 'p99'],
    [q(0.5, 'chat_persist_lag_seconds'), 'p50'],
    [q(0.99, 'chat_stream_to_store_seconds'), 'oldest event in batch, p99'],
  ], 'Per event: stream publish -> store commit; per batch: age of its oldest event at commit'],
  ['Consumer pending', 'short', [
    ['max(chat_persist_consumer_pending)', 'pending'],
  ], 'Durable events not yet persisted (the durable consumer\'s num_pending)'],
  ['Batches', 'short', [
    [q(0.99, 'chat_persist_batch_size'), 'size p99'],
    [q(0.99, 'chat_persist_batch_seconds'), 'write p99 (s)'],
    ['sum(rate(chat_persist_failures_total[$__rate_interval]))', 'failures / s'],
    ['sum(increase(chat_dead_letters_total[$__rate_interval]))', 'dead letters'],
  ], 'Events per batch, store write time, refused batches and dead letters'],
);

row('AI');
line(
  ['AI latency', 's', [
    [q(0.99, 'chat_ai_request_seconds', 'provider'), 'p99 {{provider}}'],
    [q(0.5, 'chat_ai_request_seconds', 'provider'), 'p50 {{provider}}'],
  ], 'Provider call duration'],
  ['AI requests', 'reqps', [
    ['sum by (provider, outcome) (rate(chat_ai_requests_total[$__rate_interval]))', '{{provider}} {{outcome}}'],
  ], 'Provider calls by outcome'],
  ['AI tokens / s', 'short', [
    ['sum by (provider, kind) (rate(chat_ai_tokens_total[$__rate_interval]))', '{{provider}} {{kind}}'],
  ], 'Prompt and completion tokens'],
);

row('Health');
line(
  ['Dependencies up', 'short', [
    ['min by (dependency) (chat_dependency_up)', '{{dependency}}'],
  ], 'NATS, Redis, Cassandra (or SQLite): 1 when every process that checks it reaches it', 'stat'],
  ['Dependency latency', 's', [
    ['max by (dependency) (chat_dependency_latency_seconds)', '{{dependency}}'],
  ], 'The slowest process\'s last check of each dependency'],
  ['Ready processes', 'short', [
    ['sum by (tier) (chat_ready)', '{{tier}}'],
    ['sum by (job) (up)', 'scraped {{job}}'],
  ], 'Processes whose /health/ready answers 200, by tier; targets Prometheus reaches'],
);
line(
  ['CPU', 'percentunit', [
    ['sum by (job) (rate(process_cpu_seconds_total[$__rate_interval]))', '{{job}}'],
  ], 'CPU seconds per second, by tier'],
  ['Memory', 'bytes', [
    ['sum by (job) (process_resident_memory_bytes)', '{{job}}'],
  ], 'Resident memory, by tier'],
  ['Event loop lag p99', 's', [
    ['max by (job) (nodejs_eventloop_lag_p99_seconds)', '{{job}}'],
  ], 'The slowest process of each tier'],
);

const dashboard = {
  uid: 'chat-svc',
  title: 'chat-svc',
  description: 'chat-svc: connections, sends, acks, persistence, AI, dependencies (deploy/grafana/dashboard.mjs)',
  tags: ['chat-svc'],
  timezone: 'utc',
  editable: true,
  schemaVersion: 39,
  version: 1,
  refresh: '30s',
  time: { from: 'now-1h', to: 'now' },
  templating: {
    list: [{ type: 'datasource', name: 'datasource', label: 'Prometheus', query: 'prometheus', current: {}, hide: 0 }],
  },
  annotations: { list: [] },
  panels,
};

writeFileSync(new URL('./chat-svc.json', import.meta.url), JSON.stringify(dashboard, null, 2) + '\n');
