import type { TenantApiKey, TenantRecord } from '../domain/tenants.ts';
import type { SqliteContext } from './sqlite-context.ts';
import type { Store } from './store.ts';

type TenantParts = 'getTenant' | 'putTenant' | 'putApiKey' | 'getApiKey' | 'listApiKeys';

/** Tenant records and API keys, as JSON rows keyed like the Cassandra tables. */
export function sqliteTenants({ db, run }: SqliteContext): Pick<Store, TenantParts> {
  const getTenant = db.prepare('SELECT body FROM tenants WHERE tenant = ?');
  const putTenant = db.prepare('INSERT INTO tenants (tenant, body) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET body = excluded.body');
  const getKey = db.prepare('SELECT body FROM tenant_api_keys WHERE tenant = ? AND key_id = ?');
  const putKey = db.prepare(`INSERT INTO tenant_api_keys (tenant, key_id, body) VALUES (?, ?, ?)
    ON CONFLICT (tenant, key_id) DO UPDATE SET body = excluded.body`);
  const listKeys = db.prepare('SELECT body FROM tenant_api_keys WHERE tenant = ? ORDER BY key_id');

  return {
    getTenant: (tenant) => run('getTenant', () => {
      const row = getTenant.get(tenant) as { body: string } | undefined;
      return row === undefined ? undefined : JSON.parse(row.body) as TenantRecord;
    }),
    putTenant: (record) => run('putTenant', () => {
      putTenant.run(record.tenant, JSON.stringify(record));
    }),
    putApiKey: (key) => run('putApiKey', () => {
      putKey.run(key.tenant, key.keyId, JSON.stringify(key));
    }),
    getApiKey: (tenant, keyId) => run('getApiKey', () => {
      const row = getKey.get(tenant, keyId) as { body: string } | undefined;
      return row === undefined ? undefined : JSON.parse(row.body) as TenantApiKey;
    }),
    listApiKeys: (tenant) => run('listApiKeys', () =>
      (listKeys.all(tenant) as Array<{ body: string }>).map((r) => JSON.parse(r.body) as TenantApiKey)),
  };
}
