import type { TenantRecord } from '../domain/index.ts';
import type { SecretCipher } from './secret-cipher.ts';

/** The part of the store tenant records are read and written through. */
export interface TenantRecordStore {
  getTenant(tenant: string): Promise<TenantRecord | undefined>;
  putTenant(record: TenantRecord): Promise<void>;
}

/** What a sealed secret is bound to: its tenant and its name (a NUL cannot be in either). */
const context = (tenant: string, name: string): string => `tenant-secret\0${tenant}\0${name}`;

/**
 * Tenant records with their secrets sealed at rest. Every store keeps what it is given, so sealing
 * happens here, once, for all of them: `read` opens the secrets, `update` seals every secret again
 * on each write (a plain value stored before sealing existed, or one sealed under a previous key,
 * leaves sealed under the current key). Records without secrets need no key either way.
 *
 * Throws SecretsError when a secret does not open (no such key, tampered) or cannot be sealed (no
 * key); the quota and API-key paths read records through the store directly and never need the key.
 */
export class TenantSecrets {
  readonly #store: TenantRecordStore;
  readonly #cipher: SecretCipher;

  constructor(store: TenantRecordStore, cipher: SecretCipher) {
    this.#store = store;
    this.#cipher = cipher;
  }

  /** Whether secrets can be written at all (a deployment without a key cannot). */
  get canSeal(): boolean {
    return this.#cipher.canSeal;
  }

  /** The tenant's record with its secrets in the clear; undefined for a tenant without a record. */
  async read(tenant: string): Promise<TenantRecord | undefined> {
    const stored = await this.#store.getTenant(tenant);
    return stored && { ...stored, secrets: this.#openAll(tenant, stored.secrets) };
  }

  /**
   * Applies `change` to the tenant's record (clear secrets in, clear secrets out), made if missing,
   * and stores it with every secret sealed. Returns the record as `change` left it.
   */
  async update(tenant: string, change: (r: TenantRecord) => TenantRecord): Promise<TenantRecord> {
    const now = new Date().toISOString();
    const stored = await this.#store.getTenant(tenant);
    const current = stored ? { ...stored, secrets: this.#openAll(tenant, stored.secrets) } : { tenant, quotas: {}, config: {}, secrets: {}, createdAt: now, updatedAt: now };
    const next = { ...change(current), updatedAt: now };
    const sealed: Record<string, string> = {};
    for (const [name, value] of Object.entries(next.secrets)) {
      // without a key a secret left as it was is written back as it was, so quotas and keys can
      // still be changed; a new value needs the key
      const unchanged = stored !== undefined && name in stored.secrets && current.secrets[name] === value;
      sealed[name] = !this.#cipher.canSeal && unchanged ? stored.secrets[name]! : this.#cipher.seal(value, context(tenant, name));
    }
    await this.#store.putTenant({ ...next, secrets: sealed });
    return next;
  }

  #openAll(tenant: string, secrets: Record<string, string>): Record<string, string> {
    const open: Record<string, string> = {};
    for (const [name, value] of Object.entries(secrets)) open[name] = this.#cipher.open(value, context(tenant, name));
    return open;
  }
}
