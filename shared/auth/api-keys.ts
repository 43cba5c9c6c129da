import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { canonicalId } from '../domain/identity.ts';
import type { TenantApiKey, TenantRecord } from '../domain/tenants.ts';
import { ChatError } from '../protocol/errors.ts';
import type { Principal } from './principal.ts';

/**
 * Tenant API keys (issue 15, seed 003's server-to-server calls): `Authorization: Bearer ctk_...`
 * with `X-Tenant-ID: <tenant>`. The prefix tells a key from a JWT at a glance (and to secret
 * scanners); the key names its id, so one row is read and one hash compared, in constant time.
 */
export const API_KEY_PREFIX = 'ctk_';
/** The role of the principal a key acts as: the tenant's own service, not a person. */
export const TENANT_SERVICE_ROLE = 'tenant_service';

const KEY_ID_BYTES = 8;
const SECRET_BYTES = 32;
const KEY_SHAPE = /^ctk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export function isApiKey(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX);
}

/** A new key: the whole key (shown once), its id and the hash that is all the store keeps. */
export function newApiKey(): { keyId: string; key: string; hash: string } {
  const keyId = randomBytes(KEY_ID_BYTES).toString('hex');
  const key = `${API_KEY_PREFIX}${keyId}_${randomBytes(SECRET_BYTES).toString('base64url')}`;
  return { keyId, key, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The user id of the principal a key acts as: its messages show it as their author. */
export function serviceUserId(keyId: string): string {
  return `service:${keyId}`;
}

/** What the verifier reads from the store. */
export interface ApiKeyLookup {
  getTenant(tenant: string): Promise<TenantRecord | undefined>;
  getApiKey(tenant: string, keyId: string): Promise<TenantApiKey | undefined>;
}

export interface ApiKeyVerifier {
  /**
   * The tenant's service principal for `key`. Rejects with unauthorized when the key is malformed,
   * unknown, revoked or not this tenant's, and with not_found when no such tenant exists.
   * Error messages never repeat the key.
   */
  verify(tenantHeader: string, key: string): Promise<Principal>;
}

export function createApiKeyVerifier(store: ApiKeyLookup): ApiKeyVerifier {
  const refused = () => new ChatError('unauthorized', 'API key refused');
  return {
    async verify(tenantHeader, key) {
      let tenant: string;
      try {
        tenant = canonicalId(tenantHeader, 'X-Tenant-ID');
      } catch (err) {
        throw new ChatError('unauthorized', (err as Error).message);
      }
      const shape = KEY_SHAPE.exec(key);
      if (!shape) throw refused();
      const keyId = shape[1]!;
      const [record, stored] = await Promise.all([store.getTenant(tenant), store.getApiKey(tenant, keyId)]);
      if (!record) throw new ChatError('not_found', 'unknown tenant');
      const expected = Buffer.from(stored?.hash ?? '0'.repeat(64), 'hex');
      const given = Buffer.from(hashApiKey(key), 'hex');
      // compared even when there is no such key, so the time taken tells nothing
      const same = expected.length === given.length && timingSafeEqual(expected, given);
      if (!stored || !same || stored.revokedAt !== undefined) throw refused();
      return { userId: serviceUserId(keyId), name: stored.name, tenant, roles: [TENANT_SERVICE_ROLE], expiresAt: undefined };
    },
  };
}
