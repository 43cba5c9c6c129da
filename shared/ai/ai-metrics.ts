import { Counter, Histogram } from 'prom-client';
import { registry } from '../telemetry/metrics.ts';

/** The assistant's metrics, per provider; labels come from closed sets (provider names, outcomes). */
export const aiMetrics = {
  requests: new Counter({
    name: 'chat_ai_requests_total',
    help: 'Requests to AI providers by outcome: ok, rate_limited, http, malformed, timeout, network, skipped (circuit open)',
    labelNames: ['provider', 'outcome'], registers: [registry],
  }),
  latency: new Histogram({
    name: 'chat_ai_request_seconds', help: 'Time an AI provider took to finish its answer (or fail)', labelNames: ['provider'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30], registers: [registry],
  }),
  tokens: new Counter({ name: 'chat_ai_tokens_total', help: 'Tokens used, by provider and kind (prompt, completion)', labelNames: ['provider', 'kind'], registers: [registry] }),
  moderation: new Counter({
    name: 'chat_ai_moderation_total', help: 'Messages the word list flagged, by room moderation level and action (flagged, refused)',
    labelNames: ['level', 'action'], registers: [registry],
  }),
};
