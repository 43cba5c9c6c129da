import t from 'tap';
import type { TenantApiKey, TenantRecord } from '../domain/tenants.ts';
import { createApiKeyVerifier, hashApiKey, newApiKey, TENANT_SERVICE_ROLE } from './api-keys.ts';
import { authenticate, type ServerCore } from '../http/server-core.ts';
import { createAuthenticator } from './authenticator.ts';

const record = (tenant: string): TenantRecord => ({ tenant, quotas: {}, config: {}, secrets: {}, createdAt: '', updatedAt: '' });

function lookup(keys: TenantApiKey[], tenants: string[]) {
  const reads: string[] = [];
  return {
    reads,
    store: {
      getTenant: async (tenant: string) => (tenants.includes(tenant) ? record(tenant) : undefined),
      getApiKey: async (tenant: string, keyId: string) => {
        reads.push(`${tenant}/${keyId}`);
        return keys.find((k) => k.tenant === tenant && k.keyId === keyId);
      },
    },
  };
}

t.test('api keys - a new key is prefixed, unique, and only its hash is kept', async (t) => {
  const a = newApiKey();
  const b = newApiKey();
  t.match(a.key, /^ctk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  t.not(a.key, b.key);
  t.equal(a.hash, hashApiKey(a.key));
  t.notOk(a.hash.includes(a.key.slice(22)));
});

t.test('api keys - verify: the tenant service for the right key, refused otherwise', async (t) => {
  const k = newApiKey();
  const stored: TenantApiKey = { tenant: 'acme', keyId: k.keyId, name: 'crm', hash: k.hash, createdBy: 'boss', createdAt: '' };
  const { store, reads } = lookup([stored, { ...stored, tenant: 'globex' }], ['acme', 'globex']);
  const verifier = createApiKeyVerifier(store);
  t.match(await verifier.verify('acme', k.key), { tenant: 'acme', roles: [TENANT_SERVICE_ROLE], userId: `service:${k.keyId}`, name: 'crm' });
  t.equal(reads.at(-1), `acme/${k.keyId}`, 'one row, of that tenant, read by the key id');
  await t.rejects(verifier.verify('acme', k.key.slice(0, -1) + (k.key.endsWith('A') ? 'B' : 'A')), { code: 'unauthorized' }, 'one character off');
  await t.rejects(verifier.verify('acme', newApiKey().key), { code: 'unauthorized' }, 'an unknown key');
  await t.rejects(verifier.verify('acme', 'Bearer-nonsense'), { code: 'unauthorized' }, 'malformed');
  await t.rejects(verifier.verify('initech', k.key), { code: 'not_found', message: 'unknown tenant' });
  await t.rejects(verifier.verify('a b', k.key), { code: 'unauthorized' }, 'an X-Tenant-ID no tenant can have');
  const revoked = createApiKeyVerifier(lookup([{ ...stored, revokedAt: 'x' }], ['acme']).store);
  await t.rejects(revoked.verify('acme', k.key), { code: 'unauthorized' }, 'revoked');
  const err = await verifier.verify('acme', k.key + 'x').catch((e: Error) => e);
  t.notOk(String((err as Error).message).includes(k.key.slice(22)), 'the error does not repeat the key');
});

t.test('api keys - the HTTP server takes a key only from the header, with X-Tenant-ID', async (t) => {
  const k = newApiKey();
  const { store } = lookup([{ tenant: 'acme', keyId: k.keyId, name: 'crm', hash: k.hash, createdBy: 'boss', createdAt: '' }], ['acme']);
  const authenticator = await createAuthenticator({ secret: 'unit-test-secret-0123456789-abcdefghij', defaultTenant: 'default' } as never);
  const core = { authenticator, apiKeys: createApiKeyVerifier(store) } as unknown as ServerCore;
  t.match(await authenticate(core, { authorization: `Bearer ${k.key}`, 'x-tenant-id': 'acme' }, undefined), { tenant: 'acme' });
  await t.rejects(authenticate(core, { 'x-tenant-id': 'acme' }, `token=${k.key}`), { code: 'unauthorized', message: /never in the URL/ });
  await t.rejects(authenticate(core, { authorization: `Bearer ${k.key}` }, undefined), { code: 'unauthorized', message: /X-Tenant-ID/ });
  const without = { authenticator, apiKeys: undefined } as unknown as ServerCore;
  await t.rejects(authenticate(without, { authorization: `Bearer ${k.key}`, 'x-tenant-id': 'acme' }, undefined), { code: 'unauthorized' }, 'a server without keys');
  const jwt = await authenticator.sign({ sub: 'alice', tenant: 'acme' });
  t.match(await authenticate(core, { authorization: `Bearer ${jwt}`, 'x-tenant-id': 'acme' }, undefined), { userId: 'alice' });
  await t.rejects(authenticate(core, { authorization: `Bearer ${jwt}`, 'x-tenant-id': 'globex' }, undefined), { code: 'forbidden' });
});
