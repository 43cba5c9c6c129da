import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics, type OpenMetricsContentType } from 'prom-client';

/**
 * Every metric of the process, registered on one registry served at /metrics. Tiers import the
 * ones they update; label values come from closed sets (frame types, error codes, routes) so
 * cardinality stays bounded.
 *
 * The exposition is OpenMetrics (what Prometheus asks for first; it reads it whatever it asked):
 * one format only, because prom-client renames counters in place when it writes OpenMetrics, so a
 * registry cannot switch formats per request. Under OpenMetrics a counter's family drops `_total`,
 * so no other metric may be named like a counter without it.
 */
export const registry = new Registry();
// The metrics' `registers` option is typed for the default registry type, hence the cast.
(registry as unknown as Registry<OpenMetricsContentType>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
collectDefaultMetrics({ register: registry });

/** Work that brings gauges up to date just before they are read (readiness, dependency checks). */
const scrapeHooks = new Set<() => Promise<void>>();
let refreshing: Promise<void> | undefined;

/**
 * Runs `refresh` whenever /metrics is scraped, before the gauges it sets are read; returns the
 * function that stops it. Refreshes run once per scrape, however many gauges wait for them.
 */
export function refreshOnScrape(refresh: () => Promise<void>): () => void {
  scrapeHooks.add(refresh);
  return () => { scrapeHooks.delete(refresh); };
}

function refreshed(): Promise<void> {
  // the gauges of one scrape are read concurrently: they all wait for the same refresh
  refreshing ??= Promise.allSettled([...scrapeHooks].map((h) => h())).then(() => { refreshing = undefined; });
  return refreshing;
}

export const metrics = {
  // Not `chat_ws_connections`: OpenMetrics strips `_total` from counter names, so that gauge would
  // clash with the counter `chat_ws_connections_total` below.
  connections: new Gauge({ name: 'chat_ws_open_connections', help: 'Open WebSocket connections', registers: [registry] }),
  connectionsTotal: new Counter({ name: 'chat_ws_connections_total', help: 'WebSocket connections accepted', registers: [registry] }),
  upgradesRejected: new Counter({ name: 'chat_ws_upgrades_rejected_total', help: 'WebSocket upgrades refused', labelNames: ['code'], registers: [registry] }),
  // counted in plain numbers on the hot path and added here at each scrape (gateway/frame-tally.ts)
  framesIn: new Counter({ name: 'chat_frames_in_total', help: 'Client frames received, by type', labelNames: ['type'], registers: [registry], collect: refreshed }),
  framesOut: new Counter({
    name: 'chat_frames_out_total',
    help: 'Server frames published, by type (one per topic publish, not per socket)',
    labelNames: ['type'], registers: [registry], collect: refreshed,
  }),
  errors: new Counter({ name: 'chat_errors_total', help: 'Errors returned to clients, by code', labelNames: ['code'], registers: [registry] }),
  // tenant: one of TENANT_METRIC_LABELS, else "other" (shared/commands/tenant-quotas.ts), so the label stays bounded
  quotaRefusals: new Counter({
    name: 'chat_quota_refusals_total', help: "Requests refused by a tenant's quota, by tenant (TENANT_METRIC_LABELS, else other) and quota",
    labelNames: ['tenant', 'quota'], registers: [registry],
  }),
  roomSubscriptions: new Gauge({ name: 'chat_gateway_room_subscriptions', help: 'Rooms this gateway is subscribed to on the bus', registers: [registry] }),
  fallbackConnections: new Gauge({
    name: 'chat_fallback_connections', help: 'Open connections without a WebSocket: SSE streams and long-poll sessions',
    labelNames: ['transport'], registers: [registry],
  }),
  slowConsumers: new Counter({
    name: 'chat_slow_consumers_total', help: 'Connections cut because their reader fell too far behind, by transport (ws|sse)',
    labelNames: ['transport'], registers: [registry],
  }),
  sendAck: new Histogram({
    name: 'chat_send_ack_seconds', help: 'Send received (WebSocket frame or REST request) to ack written',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
  }),
  persistBatchSize: new Histogram({
    name: 'chat_persist_batch_size', help: 'Events per persisted batch',
    buckets: [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000], registers: [registry],
  }),
  persistLatency: new Histogram({
    name: 'chat_persist_batch_seconds', help: 'Store write time per batch',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
  }),
  persistedEvents: new Counter({ name: 'chat_persisted_events_total', help: 'Durable events written to the store', labelNames: ['kind'], registers: [registry] }),
  persistFailures: new Counter({ name: 'chat_persist_failures_total', help: 'Batches the store rejected (retried)', registers: [registry] }),
  deadLetters: new Counter({ name: 'chat_dead_letters_total', help: 'Events sent to the dead-letter subject', registers: [registry] }),
  notifications: new Counter({ name: 'chat_notifications_total', help: 'Offline notifications sent to a user (all channels), by reason', labelNames: ['reason'], registers: [registry] }),
  notifyDeliveries: new Counter({
    name: 'chat_notify_deliveries_total', help: 'Webhook and Web Push deliveries by channel and outcome (delivered, dead_letter, gone)',
    labelNames: ['channel', 'outcome'], registers: [registry],
  }),
  notifyDeadLetters: new Counter({ name: 'chat_notify_dead_letters_total', help: 'Webhook and Web Push deliveries given up on after their tries, by channel', labelNames: ['channel'], registers: [registry] }),
  channelInbound: new Counter({ name: 'chat_channel_inbound_total', help: 'Platform webhooks by platform and outcome (stored, duplicate, status, ignored, refused)', labelNames: ['platform', 'outcome'], registers: [registry] }),
  channelSends: new Counter({ name: 'chat_channel_sends_total', help: 'Replies sent to a platform by platform and outcome (sent, dead_letter)', labelNames: ['platform', 'outcome'], registers: [registry] }),
  channelDeadLetters: new Counter({ name: 'chat_channel_dead_letters_total', help: 'Replies to a platform given up on after their tries, by platform', labelNames: ['platform'], registers: [registry] }),
  channelSessionsStarted: new Counter({ name: 'chat_channel_sessions_started_total', help: 'Channel sessions started by a person\'s message (none live, or the last one expired after SESSION_TTL), by platform', labelNames: ['platform'], registers: [registry] }),
  channelSessionErrors: new Counter({ name: 'chat_channel_session_errors_total', help: 'Session touches that failed (the message or reply went on without its session), by direction', labelNames: ['direction'], registers: [registry] }),
  webhooksDisabled: new Counter({ name: 'chat_webhooks_disabled_total', help: 'Webhooks disabled because their deliveries kept failing', registers: [registry] }),
  persistLag: new Histogram({
    name: 'chat_persist_lag_seconds', help: 'Per persisted event: stream publish time to store commit',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry],
  }),
  streamToStore: new Histogram({
    name: 'chat_stream_to_store_seconds', help: 'Per batch: age of its oldest event (stream publish time) when the batch commits',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry],
  }),
  consumerPending: new Gauge({
    name: 'chat_persist_consumer_pending', help: 'Durable events not yet persisted (consumer num_pending, read at each scrape)',
    registers: [registry], collect: refreshed,
  }),
  ready: new Gauge({
    name: 'chat_ready', help: '1 while the tier reports ready on /health/ready, else 0 (checked at each scrape)',
    labelNames: ['tier'], registers: [registry], collect: refreshed,
  }),
  nodeIdLeaseLost: new Counter({ name: 'chat_node_id_lease_lost_total', help: 'Node-id leases lost (the process exits right after)', registers: [registry] }),
  dependencyUp: new Gauge({
    name: 'chat_dependency_up', help: '1 when the last check of a dependency succeeded, else 0 (nats|redis|cassandra|sqlite)',
    labelNames: ['dependency'], registers: [registry], collect: refreshed,
  }),
  dependencyLatency: new Gauge({
    name: 'chat_dependency_latency_seconds', help: 'Latency of the last check of a dependency',
    labelNames: ['dependency'], registers: [registry], collect: refreshed,
  }),
  httpRequests: new Counter({ name: 'chat_http_requests_total', help: 'REST requests', labelNames: ['route', 'status'], registers: [registry] }),
  httpDuration: new Histogram({
    name: 'chat_http_request_seconds', help: 'REST request duration', labelNames: ['route'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry],
  }),
};

// Both transports' series exist from the start, so a dashboard shows 0 rather than nothing.
for (const transport of ['ws', 'sse']) metrics.slowConsumers.inc({ transport }, 0);
