import type { TenantQuotas, TenantRecord } from '../domain/tenants.ts';
import { QUOTA_NAMES } from '../domain/tenants.ts';

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

  constructor(defaults: TenantQuotas, source: TenantQuotaSource | undefined, opts: { ttlMs?: number; now?: () => number } = {}) {
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
}
