import type { TenantQuotas, TenantRecord } from '../domain/tenants.ts';
import { QUOTA_NAMES } from '../domain/tenants.ts';
import { ChatError } from '../protocol/errors.ts';
import { metrics } from '../telemetry/metrics.ts';
import type { RateLimiter } from '../rate-limit/rate-limit.ts';

/** The quotas in force for a tenant: its own where it set them, else the deployment's defaults. */
export function effectiveQuotas(defaults: TenantQuotas, record: Pick<TenantRecord, 'quotas'> | undefined): TenantQuotas {
  const q = { ...defaults };
  for (const name of QUOTA_NAMES) {
    const own = record?.quotas[name];
    if (typeof own === 'number') q[name] = own;
  }
  return q;
}

export interface TenantQuotaSource {
  getTenant(tenant: string): Promise<Pick<TenantRecord, 'quotas'> | undefined>;
}

/** How long a tenant's quotas are kept before the store is read again: a change takes at most this long to apply everywhere. */
export const QUOTA_CACHE_MS = 5000;
const CACHE_MAX = 10_000;

/**
 * A tenant's quotas for the hot paths (every message, every AI request), read from the store at
 * most once per QUOTA_CACHE_MS per tenant, so enforcing them costs no store round trip per message.
 */
export class TenantQuotaReader {
  readonly #cache = new Map<string, { at: number; quotas: Promise<TenantQuotas> }>();
  readonly #source: TenantQuotaSource | undefined;
  readonly #defaults: TenantQuotas;
  readonly #ttlMs: number;
  readonly #now: () => number;

  readonly #labels: ReadonlySet<string>;

  /** `metricLabels`: the tenants counted under their own name in chat_quota_refusals_total; the others are "other". */
  constructor(
    defaults: TenantQuotas, source: TenantQuotaSource | undefined,
    opts: { ttlMs?: number; now?: () => number; metricLabels?: readonly string[] } = {},
  ) {
    this.#labels = new Set(opts.metricLabels ?? []);
    this.#defaults = defaults;
    this.#source = source;
    this.#ttlMs = opts.ttlMs ?? QUOTA_CACHE_MS;
    this.#now = opts.now ?? Date.now;
  }

  of(tenant: string): Promise<TenantQuotas> {
    if (!this.#source) return Promise.resolve(this.#defaults);
    const now = this.#now();
    const hit = this.#cache.get(tenant);
    if (hit && now - hit.at < this.#ttlMs) return hit.quotas;
    const quotas = this.#source.getTenant(tenant).then((r) => effectiveQuotas(this.#defaults, r));
    // a failed read is not kept: the next call tries again
    quotas.catch(() => this.#cache.delete(tenant));
    if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(tenant, { at: now, quotas });
    return quotas;
  }

  /** The tenant as a metric label: bounded by TENANT_METRIC_LABELS, whatever the number of tenants. */
  label(tenant: string): string {
    return this.#labels.has(tenant) ? tenant : 'other';
  }

  /** The error of a count over its quota (rooms, members per room), counted. */
  exceeded(tenant: string, quota: 'rooms' | 'membersPerRoom', limit: number, what: string): ChatError {
    metrics.quotaRefusals.inc({ tenant: this.label(tenant), quota });
    return new ChatError('quota_exceeded', `tenant quota ${quota} exceeded: ${what} (limit ${limit})`, { details: { quota, limit } });
  }

  /**
   * Takes one from the tenant's bucket of a rate quota, `limit` per `perSec` seconds with a burst of
   * `burst`; rate_limited naming the quota when it is spent. A quota of 0 is unlimited.
   */
  async takeRate(limiter: RateLimiter, tenant: string, quota: 'messagesPerSecond' | 'aiRequestsPerMinute', key: string): Promise<void> {
    const limit = (await this.of(tenant))[quota];
    if (limit <= 0) return;
    const rule = quota === 'messagesPerSecond' ? { perSecond: limit, burst: limit * 2 } : { perSecond: limit / 60, burst: limit };
    const taken = await limiter.take(key, rule);
    if (taken.allowed) return;
    metrics.quotaRefusals.inc({ tenant: this.label(tenant), quota });
    const retryAfterMs = Math.ceil(taken.retryAfterMs);
    const unit = quota === 'messagesPerSecond' ? '/s' : '/min';
    throw new ChatError('rate_limited', `tenant quota ${quota} exceeded (${limit}${unit}); retry in ${retryAfterMs} ms`, { details: { quota, limit, retryAfterMs } });
  }
}
