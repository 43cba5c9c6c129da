import type { TenantApiKey, TenantRecord } from '../domain/tenants.ts';
import type { CassandraSession } from './cassandra-session.ts';
import type { Store } from './store.ts';

type TenantParts = 'getTenant' | 'putTenant' | 'putApiKey' | 'getApiKey' | 'listApiKeys';

/** Tenant records and API keys (their migration is in cassandra-schema.ts): one partition per tenant each. */
export function cassandraTenants(db: CassandraSession): Pick<Store, TenantParts> {
  const ks = db.keyspace;
  const q = {
    getTenant: `SELECT body FROM ${ks}.tenants WHERE tenant = ?`,
    putTenant: `INSERT INTO ${ks}.tenants (tenant, body) VALUES (?, ?)`,
    getKey: `SELECT body FROM ${ks}.tenant_api_keys WHERE tenant = ? AND key_id = ?`,
    putKey: `INSERT INTO ${ks}.tenant_api_keys (tenant, key_id, body) VALUES (?, ?, ?)`,
    listKeys: `SELECT body FROM ${ks}.tenant_api_keys WHERE tenant = ?`,
  };
  return {
    async getTenant(tenant) {
      const row = (await db.exec('getTenant', q.getTenant, [tenant])).first();
      return row ? JSON.parse(row.get('body') as string) as TenantRecord : undefined;
    },
    async putTenant(record) {
      await db.exec('putTenant', q.putTenant, [record.tenant, JSON.stringify(record)]);
    },
    async putApiKey(key) {
      await db.exec('putApiKey', q.putKey, [key.tenant, key.keyId, JSON.stringify(key)]);
    },
    async getApiKey(tenant, keyId) {
      const row = (await db.exec('getApiKey', q.getKey, [tenant, keyId])).first();
      return row ? JSON.parse(row.get('body') as string) as TenantApiKey : undefined;
    },
    async listApiKeys(tenant) {
      // the clustering order is key_id: already ordered
      const rows = await db.all('listApiKeys', q.listKeys, [tenant]);
      return rows.map((r) => JSON.parse(r.get('body') as string) as TenantApiKey);
    },
  };
}
